"""The app the load and end-to-end tests serve, and a uvicorn server process to serve it in.

``build_app(settings)`` makes a Starlette app behind ``JWTMiddleware`` with three routes:

- ``/health``: public
- ``/me``: any valid token, Bearer or DPoP (answers the subject and the DPoP key thumbprint)
- ``/once``: a one-time token (``Rule(one_time=True)``)

``app_from_env()`` builds the same app from the ``JWTMW_LOAD_APP`` environment variable (the
settings as JSON), so ``ServerProcess`` can start it in its own interpreter with
``uvicorn tests.load.app:app_from_env --factory``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from jwt_middleware import (
    Authenticator,
    Config,
    DPoPSettings,
    Issuer,
    JWKSFile,
    JWKSUrl,
    JWTMiddleware,
    KeyPolicy,
    Rule,
)

ROOT = Path(__file__).resolve().parents[2]
ENV_NAME = "JWTMW_LOAD_APP"
AUDIENCE = "api"
RULES = (Rule("/health", access="public"), Rule("/once", one_time=True))


@dataclass(frozen=True)
class AppSettings:
    """Everything the served app is built from; JSON-serialisable for a subprocess."""

    issuer: str
    #: keys from an HTTPS JWKS URL (trusting ``ca_file``) or from a JWKS file
    jwks_url: str | None = None
    jwks_file: str | None = None
    ca_file: str | None = None
    #: KeyPolicy fields (numbers only; ``tls`` comes from ``ca_file``)
    key_policy: dict[str, float] = field(default_factory=dict)
    #: a nonce store in this Redis (AsyncRedisNonceStore); None: the default MemoryNonceStore
    redis_port: int | None = None
    #: "documented": the client the store's docstring recommends; "plain": only the two timeouts
    redis_client: str = "documented"
    store_failure: str = "closed"
    #: the public origin DPoP proofs name in ``htu`` (several servers behind one address)
    external_base_url: str | None = None
    #: without external_base_url, the hosts DPoP proofs may name (ServerProcess fills in its own)
    allowed_hosts: tuple[str, ...] = ()
    #: serve the routes without the middleware (the wrk baseline)
    bare: bool = False

    def to_env(self) -> dict[str, str]:
        return {ENV_NAME: json.dumps(asdict(self))}


def _routes() -> list[Route]:
    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def me(request: Request) -> JSONResponse:
        identity = request.scope.get("jwt_middleware.identity")
        if identity is None:
            return JSONResponse({"sub": None, "jkt": None})
        return JSONResponse({"sub": identity.subject, "jkt": identity.binding})

    async def once(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("used")

    return [Route("/health", health), Route("/me", me, methods=["GET", "POST"]), Route("/once", once)]


def redis_client(port: int, kind: str = "documented") -> Any:
    """A ``redis.asyncio`` client for the nonce store; "documented" follows RedisNonceStore's docstring."""
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    if kind == "plain":
        return redis.asyncio.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    return redis.asyncio.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1),
    )


def build_authenticator(settings: AppSettings) -> Authenticator:
    if settings.jwks_url is not None:
        source: JWKSUrl | JWKSFile = JWKSUrl(settings.jwks_url)
    elif settings.jwks_file is not None:
        source = JWKSFile(settings.jwks_file)
    else:
        raise ValueError("AppSettings: give jwks_url or jwks_file")
    policy = KeyPolicy(tls=settings.ca_file or True, **settings.key_policy)  # type: ignore[arg-type]
    config = Config(
        issuers=(Issuer(settings.issuer, algorithms=("ES256",), keys=source),),
        audience=AUDIENCE,
        rules=RULES,
        keys=policy,
        dpop=DPoPSettings(algorithms=("ES256",), external_base_url=settings.external_base_url,
                          allowed_hosts=() if settings.external_base_url else settings.allowed_hosts),
        store_failure=settings.store_failure,  # type: ignore[arg-type]
    )
    store = None
    if settings.redis_port is not None:
        from jwt_middleware.stores import AsyncRedisNonceStore

        store = AsyncRedisNonceStore(redis_client(settings.redis_port, settings.redis_client), prefix="jwtmw:load:")
    return Authenticator(config, nonce_store=store)


def build_app(settings: AppSettings) -> Any:
    app = Starlette(routes=_routes())
    if settings.bare:
        return app
    return JWTMiddleware(app, build_authenticator(settings))


def app_from_env() -> Any:
    """uvicorn's ``--factory`` entry point: settings from ``$JWTMW_LOAD_APP``; library warnings to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    library = logging.getLogger("jwt_middleware")
    library.addHandler(handler)
    library.setLevel(logging.WARNING)
    logging.getLogger("jwt_middleware.audit").setLevel(logging.ERROR)  # one line per refusal otherwise
    return build_app(AppSettings(**json.loads(os.environ[ENV_NAME])))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``uvicorn tests.load.app:app_from_env --factory`` in its own interpreter on 127.0.0.1.

    ``spawn()`` then ``wait_ready()`` (several can be spawned before waiting); ``stop()`` always
    ends the process (terminate, then kill after a bounded wait).
    """

    def __init__(self, settings: AppSettings, port: int | None = None) -> None:
        self.port = port or free_port()
        if settings.external_base_url is None and not settings.allowed_hosts:
            settings = replace(settings, allowed_hosts=(f"127.0.0.1:{self.port}",))
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> ServerProcess:
        command = [
            sys.executable, "-m", "uvicorn", "tests.load.app:app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
            "--no-access-log", "--lifespan", "off",
            # Why: uvicorn closes a keep-alive connection idle for 5 s; a client reusing it at
            # that moment sees a disconnect that says nothing about the app (a driver artefact)
            "--timeout-keep-alive", "120",
        ]
        env = {**os.environ, **self.settings.to_env(), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 15.0) -> ServerProcess:
        """Return once ``/health`` answers 200. :raises RuntimeError: exited or not ready in time"""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.log()}")

    def start(self, timeout: float = 15.0) -> ServerProcess:
        return self.spawn().wait_ready(timeout)

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far, from /proc."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
