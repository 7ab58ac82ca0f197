"""Key warm-up at start-up (issue 11, item 6): ``warm`` / ``awarm`` fetch every remote issuer's
keys and say which failed; under ASGI the lifespan start-up runs it, and a strict failure keeps a
real uvicorn from starting."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jwt_middleware import (
    Authenticator,
    Config,
    ConfigError,
    Identity,
    Issuer,
    JWKSUrl,
    JWTMiddleware,
    KeyPolicy,
    OIDCDiscovery,
    RequestView,
    StaticKeys,
)
from jwt_middleware._lifespan import WarmKeys, check_warm_keys, lifespan_with_warmup
from jwt_middleware._types import Receive, Scope, Send
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks
from jwt_middleware.warmup import IssuerWarmup, WarmupError, awarm, warm

from .keys.helpers import wait_until
from .support.jwks_server import JWKSServer
from .support.redis_server import free_port
from .support.uvicorn_server import serve

Warm = Callable[..., Awaitable[tuple[IssuerWarmup, ...]]]


@pytest.fixture(params=["async", "sync"])
def warm_up(request: pytest.FixtureRequest) -> Warm:
    """``awarm``, or the sync ``warm`` run in a worker thread (as a WSGI app's start-up would)."""
    if request.param == "async":
        return awarm

    async def sync(auth: Authenticator, **options: Any) -> tuple[IssuerWarmup, ...]:
        return await asyncio.to_thread(lambda: warm(auth, **options))

    return sync


@pytest.fixture
def other_jwks_server(ca: trustme.CA) -> Iterator[JWKSServer]:
    """A second real HTTPS issuer (another port, so another issuer URL)."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    server = JWKSServer(server_tls).start()
    yield server
    server.stop()


@pytest.fixture
def key() -> Key:
    return make_key("ES256", kid="warm-1")


def authenticator(policy: KeyPolicy, clock: FakeClock | None = None, *issuers: Issuer) -> Authenticator:
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    return Authenticator(Config(issuers=issuers, audience="api", keys=policy, **options))


def down_issuer() -> Issuer:
    """An issuer on a closed loopback port: ``ConnectError``, quickly and on every machine."""
    port = free_port()
    return Issuer(f"http://127.0.0.1:{port}", algorithms=("ES256",), keys=JWKSUrl(f"http://127.0.0.1:{port}/jwks"))


# --- warm / awarm -------------------------------------------------------------------------------
async def test_warm_loads_every_remote_issuer_so_the_first_request_fetches_nothing(
    warm_up: Warm, jwks_server: JWKSServer, other_jwks_server: JWKSServer, key_policy: KeyPolicy,
    clock: FakeClock, key: Key,
) -> None:
    other = make_key("ES256", kid="other-1")
    jwks_server.behaviour.jwks = public_jwks(key)
    other_jwks_server.behaviour.jwks = public_jwks(other, make_key("ES256", kid="other-2"))
    static = Issuer("https://static.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    auth = authenticator(
        key_policy, clock,
        Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)),
        Issuer(other_jwks_server.url, algorithms=("ES256",), keys=OIDCDiscovery()),
        static,
    )
    results = await warm_up(auth)
    assert results == (
        IssuerWarmup(jwks_server.url, jwks_server.jwks_url, 1),
        IssuerWarmup(other_jwks_server.url, other_jwks_server.jwks_url, 2),  # the URL discovery found
    )  # the static issuer needs no warm-up and is not listed
    assert str(results[1]) == f"issuer {other_jwks_server.url!r}: {other_jwks_server.jwks_url} (keys: 2)"
    hits = (jwks_server.behaviour.hits(), other_jwks_server.behaviour.hits())
    assert hits == (1, 1)
    token = mint(other, issuer=other_jwks_server.url, now=clock.now)
    step = auth.begin(RequestView("GET", "/", [(b"authorization", f"Bearer {token}".encode())]))
    assert isinstance(step, Identity) and step.subject == "user-1"  # decided without I/O (no Resume)
    assert (jwks_server.behaviour.hits(), other_jwks_server.behaviour.hits()) == hits


async def test_strict_warm_raises_naming_every_failed_issuer_url_and_cause(
    warm_up: Warm, jwks_server: JWKSServer, other_jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key,
) -> None:
    jwks_server.behaviour.jwks = public_jwks(key)
    other_jwks_server.behaviour.mode = "503"
    down = down_issuer()
    auth = authenticator(
        key_policy, None,
        Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)),
        Issuer(other_jwks_server.url, algorithms=("ES256",), keys=OIDCDiscovery()),
        down,
    )
    with pytest.raises(WarmupError) as raised:
        await warm_up(auth)
    error = raised.value
    assert [r.issuer for r in error.failures] == [other_jwks_server.url, down.issuer]
    assert [r.ok for r in error.results] == [True, False, False]  # the good issuer is loaded anyway
    message = str(error)
    assert message.startswith("jwt_middleware key warm-up failed for 2 of 3 issuers: ")
    discovery = other_jwks_server.url + "/.well-known/openid-configuration"
    assert f"issuer {other_jwks_server.url!r}: {discovery}: HTTP 503 Service Unavailable" in message
    assert f"issuer {down.issuer!r}: {down.issuer}/jwks: ConnectError: All connection attempts failed" in message
    assert jwks_server.url not in message.replace(other_jwks_server.url, "")


async def test_lenient_warm_returns_the_failures_and_logs_a_warning(
    warm_up: Warm, key_policy: KeyPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jwt_middleware")
    down = down_issuer()
    (result,) = await warm_up(authenticator(key_policy, None, down), strict=False)
    assert (result.ok, result.keys, result.source) == (False, 0, f"{down.issuer}/jwks")
    assert result.error == "ConnectError: All connection attempts failed"
    summary = [r for r in caplog.records if r.getMessage().startswith("key warm-up:")]
    assert [r.levelno for r in summary] == [logging.WARNING]
    assert repr(down.issuer) in summary[0].getMessage()


async def test_warm_timeout_bounds_the_whole_warm_up(
    warm_up: Warm, jwks_server: JWKSServer, key_policy: KeyPolicy
) -> None:
    """A dripping issuer would hold start-up for fetch_timeout; ``timeout`` caps the whole warm-up."""
    jwks_server.behaviour.mode, jwks_server.behaviour.trickle_interval = "trickle-headers", 0.05
    auth = authenticator(
        dataclasses.replace(key_policy, fetch_timeout=1.5), None,
        Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)),
    )
    started = time.monotonic()
    (result,) = await warm_up(auth, strict=False, timeout=0.3)
    assert time.monotonic() - started < 1.2
    assert result.error == "not loaded within the warm-up timeout (0.3 s)"
    if warm_up is not awarm:  # awarm cancelled its fetch; a sync warm-up's thread ends it here,
        assert wait_until(lambda: auth.keys.attempts(jwks_server.url) == 1, timeout=5)  # not in a later test


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5", True])
async def test_warm_refuses_a_timeout_that_is_not_positive_seconds(warm_up: Warm, key_policy: KeyPolicy, timeout: Any) -> None:
    with pytest.raises(ConfigError, match="warm: timeout="):
        await warm_up(authenticator(key_policy, None, down_issuer()), timeout=timeout)


async def test_static_keys_need_no_warm_up(warm_up: Warm, key_policy: KeyPolicy, key: Key) -> None:
    static = Issuer("https://static.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    assert await warm_up(authenticator(key_policy, None, static)) == ()


# --- the ASGI lifespan --------------------------------------------------------------------------
class WarmingMiddleware:
    """What ``JWTMiddleware(app, auth, warm_keys=...)`` does with a lifespan scope (asgi.py's branch)."""

    def __init__(self, app: Any, auth: Authenticator, warm_keys: WarmKeys) -> None:
        self.app, self.auth, self.warm_keys = app, auth, check_warm_keys(warm_keys)
        self.http = JWTMiddleware(app, auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.warm_keys:
            await lifespan_with_warmup(
                self.app, self.auth, scope, receive, send, strict=self.warm_keys == "strict"
            )
            return
        await self.http(scope, receive, send)


def api(jwks_server: JWKSServer, startups: list[int]) -> Starlette:
    """A Starlette app whose own start-up notes how many key fetches had happened by then."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        startups.append(jwks_server.behaviour.hits())
        yield

    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.scope["jwt_middleware.identity"].subject)

    return Starlette(routes=[Route("/me", me)], lifespan=lifespan)


def remote(jwks_server: JWKSServer, policy: KeyPolicy) -> Authenticator:
    return authenticator(policy, None, Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)))


def get_me(port: int, token: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/me", headers={"authorization": f"Bearer {token}"}, timeout=10,
                     trust_env=False)


def test_lifespan_warms_the_keys_before_the_apps_own_start_up(
    jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key
) -> None:
    jwks_server.behaviour.jwks = public_jwks(key)
    startups: list[int] = []
    auth = remote(jwks_server, key_policy)
    with serve(WarmingMiddleware(api(jwks_server, startups), auth, "strict"), lifespan="on") as port:
        assert startups == [1]  # the app started after the fetch, and started once
        assert get_me(port, mint(key, issuer=jwks_server.url)).text == "user-1"
    assert jwks_server.behaviour.hits() == 1  # the request found the keys already there


def test_without_warm_keys_the_first_request_fetches(
    jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key
) -> None:
    """The control for the test above: warm_keys=False passes lifespan through untouched."""
    jwks_server.behaviour.jwks = public_jwks(key)
    startups: list[int] = []
    with serve(WarmingMiddleware(api(jwks_server, startups), remote(jwks_server, key_policy), False),
               lifespan="on") as port:
        assert startups == [0]
        assert get_me(port, mint(key, issuer=jwks_server.url)).status_code == 200
    assert jwks_server.behaviour.hits() == 1


async def plain_http_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that speaks only HTTP, as Django's ASGIHandler does: it raises on lifespan."""
    if scope["type"] != "http":
        raise ValueError(f"cannot handle {scope['type']}")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": scope["jwt_middleware.identity"].subject.encode()})


async def silent_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that returns from a lifespan scope without reading a message."""
    if scope["type"] == "http":
        await plain_http_app(scope, receive, send)


@pytest.mark.parametrize("app", [plain_http_app, silent_app], ids=["raises-on-lifespan", "returns-at-once"])
def test_an_app_that_does_not_speak_lifespan_still_starts_and_is_warmed(
    jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key, app: Any
) -> None:
    """uvicorn's lifespan="on" refuses to start an app that raises; the warm-up keeps its error."""
    jwks_server.behaviour.jwks = public_jwks(key)
    with serve(WarmingMiddleware(app, remote(jwks_server, key_policy), True), lifespan="on") as port:
        assert jwks_server.behaviour.hits() == 1
        response = get_me(port, mint(key, issuer=jwks_server.url))
        assert (response.status_code, response.text) == (200, "user-1")
    assert jwks_server.behaviour.hits() == 1


def test_a_lenient_warm_up_failure_still_starts_and_answers_503(
    jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key, caplog: pytest.LogCaptureFixture
) -> None:
    jwks_server.behaviour.mode = "503"
    startups: list[int] = []
    with serve(WarmingMiddleware(api(jwks_server, startups), remote(jwks_server, key_policy), True),
               lifespan="on") as port:
        assert startups == [1]
        response = get_me(port, mint(key, issuer=jwks_server.url))
        assert response.status_code == 503 and "retry-after" in response.headers
    assert any("jwks fetch failed" in r.getMessage() and "HTTP 503" in r.getMessage() for r in caplog.records)


async def test_a_strict_failure_answers_startup_failed_and_never_starts_the_app(key_policy: KeyPolicy) -> None:
    """The protocol as the server sees it, message by message."""
    down = down_issuer()
    started: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.append(scope["type"])

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[dict[str, Any]] = []
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: Any) -> None:
        outbox.append(dict(message))

    middleware = WarmingMiddleware(app, authenticator(key_policy, None, down), "strict")
    await asyncio.wait_for(middleware({"type": "lifespan"}, inbox.get, send), timeout=10)
    (failed,) = outbox
    assert failed["type"] == "lifespan.startup.failed"
    assert f"issuer {down.issuer!r}: {down.issuer}/jwks: ConnectError" in failed["message"]
    assert started == []


async def test_an_apps_own_start_up_failure_is_not_hidden(
    jwks_server: JWKSServer, key_policy: KeyPolicy, key: Key
) -> None:
    """The app speaks lifespan and fails: its startup.failed reaches the server, its error propagates."""
    jwks_server.behaviour.jwks = public_jwks(key)

    @asynccontextmanager
    async def broken(app: Starlette) -> Any:
        raise RuntimeError("database unreachable")
        yield

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    outbox: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        outbox.append(dict(message))

    middleware = WarmingMiddleware(Starlette(lifespan=broken), remote(jwks_server, key_policy), True)
    with pytest.raises(RuntimeError, match="database unreachable"):
        await asyncio.wait_for(middleware({"type": "lifespan"}, inbox.get, send), timeout=10)
    assert [m["type"] for m in outbox] == ["lifespan.startup.failed"]
    assert "database unreachable" in outbox[0]["message"]
    assert jwks_server.behaviour.hits() == 1


def test_a_strict_failure_keeps_uvicorn_from_starting(tmp_path: Path) -> None:
    """A real ``uvicorn`` command: exit status 3, the issuer, URL and cause in its log, no app start."""
    port = free_port()
    marker = tmp_path / "app-started"
    (tmp_path / "warm_app.py").write_text(textwrap.dedent(f"""
        from contextlib import asynccontextmanager
        from starlette.applications import Starlette
        from jwt_middleware import Authenticator, Config, Issuer, JWKSUrl, JWTMiddleware
        from jwt_middleware._lifespan import lifespan_with_warmup

        @asynccontextmanager
        async def lifespan(app):
            open({str(marker)!r}, "w").close()
            yield

        inner = Starlette(lifespan=lifespan)
        auth = Authenticator(Config(issuers=[Issuer("http://127.0.0.1:{port}", algorithms=["ES256"],
                                                    keys=JWKSUrl("http://127.0.0.1:{port}/jwks"))],
                                    audience="api"))
        http = JWTMiddleware(inner, auth)

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                await lifespan_with_warmup(inner, auth, scope, receive, send, strict=True)
                return
            await http(scope, receive, send)
    """))
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(tmp_path), "--port", "0", "--lifespan", "on", "warm_app:app"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 3, done.stderr
    assert (f"jwt_middleware key warm-up failed for 1 of 1 issuers: issuer 'http://127.0.0.1:{port}': "
            f"http://127.0.0.1:{port}/jwks: ConnectError: All connection attempts failed") in done.stderr
    assert "Application startup failed. Exiting." in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("value", ["yes", "lenient", 1, None])
def test_warm_keys_accepts_only_false_true_or_strict(value: Any) -> None:
    with pytest.raises(ConfigError, match="warm_keys: give False"):
        check_warm_keys(value)
    assert [check_warm_keys(v) for v in (False, True, "strict")] == [False, True, "strict"]
