"""The servers of the matrix: every app under a real uvicorn (h11) or gunicorn (sync), each its own process.

All start at once (so their imports overlap on the two cores) and stay up for the module.
Separate processes because each framework then has its own settings (Django) and the servers
parse the request line themselves, exactly as deployed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.support.raw_http import send

from ..support.redis_server import free_port
from ..support.server_process import stop_process
from .matrix import MODES, PREFIX

__all__ = ["SERVERS", "Running", "ServerSpec", "serve_all"]

ROOT: Final = Path(__file__).resolve().parents[2]
_START_TIMEOUT: Final = 60.0  # seconds for all servers together (ten framework imports on two cores)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One app on one server: how to start it and where the client puts the app's paths."""

    name: str
    argv: tuple[str, ...]
    #: what the client puts before every path (the mount point the server or app strips)
    prefix: str = ""
    env: dict[str, str] = field(default_factory=dict)
    websocket: bool = False


def _uvicorn(factory: str, *extra: str, http: str = "h11") -> tuple[str, ...]:
    return ("uvicorn", "--factory", f"tests.differential.{factory}", "--http", http,
            "--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log", "--log-level", "warning", *extra)


def _gunicorn(factory: str) -> tuple[str, ...]:
    return ("gunicorn", "--worker-class", "sync", "--workers", "1", "--preload", "--log-level", "warning",
            f"tests.differential.apps:{factory}()")


SERVERS: Final = (
    ServerSpec("starlette", _uvicorn("apps:starlette"), websocket=True),
    ServerSpec("fastapi", _uvicorn("fastapi_app:build"), websocket=True),
    ServerSpec("litestar", _uvicorn("litestar_app:build"), websocket=True),
    ServerSpec("django-asgi", _uvicorn("apps:django_asgi")),
    ServerSpec("flask", _gunicorn("flask")),
    ServerSpec("django-wsgi", _gunicorn("django_wsgi")),
    ServerSpec("django-wsgi-wrapped", _gunicorn("django_wsgi_wrapped")),
    # behind a proxy that strips PREFIX: uvicorn puts it in root_path (and in front of path)
    ServerSpec("starlette-root-path", _uvicorn("apps:starlette", "--root-path", PREFIX), websocket=True),
    ServerSpec("starlette-mount", _uvicorn("apps:starlette_mounted"), prefix=PREFIX, websocket=True),
    ServerSpec("flask-script-name", _gunicorn("flask"), prefix=PREFIX, env={"SCRIPT_NAME": PREFIX}),
    ServerSpec("django-wsgi-script-name", _gunicorn("django_wsgi"), prefix=PREFIX, env={"SCRIPT_NAME": PREFIX}),
    ServerSpec("django-wsgi-wrapped-script-name", _gunicorn("django_wsgi_wrapped"), prefix=PREFIX,
               env={"SCRIPT_NAME": PREFIX}),
    # httptools parses the request line in C: it may refuse or read targets differently from h11
    *(
        (ServerSpec("starlette-httptools", _uvicorn("apps:starlette", http="httptools"), websocket=True),
         ServerSpec("django-asgi-httptools", _uvicorn("apps:django_asgi", http="httptools")))
        if importlib.util.find_spec("httptools") else ()
    ),
)


@dataclass(frozen=True, slots=True)
class Running:
    """A started server: its port, or why it did not start (with the tail of its log)."""

    spec: ServerSpec
    port: int
    error: str | None = None


@contextmanager
def serve_all(jwks: dict[str, object], runs: Path, logs: Path) -> Iterator[dict[str, Running]]:
    """Start every server, wait (bounded) until each answers, stop them all on exit."""
    env = {**os.environ, "DIFF_JWKS": json.dumps(jwks), "DIFF_RUNS": str(runs)}
    started: list[tuple[ServerSpec, int, subprocess.Popen[bytes], Path]] = []
    try:
        for spec in SERVERS:
            port, log = free_port(), logs / f"{spec.name}.log"
            started.append((spec, port, _start(spec, port, {**env, **spec.env}, log), log))
        deadline = time.monotonic() + _START_TIMEOUT
        yield {spec.name: _wait(spec, port, process, log, deadline) for spec, port, process, log in started}
    finally:
        for *_, process, _log in started:
            stop_process(process)


def _start(spec: ServerSpec, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    tool, *args = spec.argv
    bind = ["--bind", f"127.0.0.1:{port}"] if tool == "gunicorn" else ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:  # a file, not a pipe: a chatty server never blocks on a full pipe
        return subprocess.Popen([sys.executable, "-m", tool, *args, *bind], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)


def _wait(spec: ServerSpec, port: int, process: subprocess.Popen[bytes], log: Path, deadline: float) -> Running:
    """Ready once one request is answered (any status: the answer is the app's, through the middleware)."""
    while True:
        if process.poll() is not None:
            return Running(spec, port, f"{spec.name} exited {process.returncode}: {_tail(log)}")
        try:
            if send(port, "GET", spec.prefix + "/public", {"x-matrix-mode": MODES[0].name}).status:
                return Running(spec, port)
        except OSError:
            pass
        if time.monotonic() > deadline:
            return Running(spec, port, f"{spec.name} did not answer within {_START_TIMEOUT:.0f} s: {_tail(log)}")
        time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]

