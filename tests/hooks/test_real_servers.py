"""The three hooks through real servers: uvicorn (ASGI, in a thread) and gunicorn (WSGI, its own
process, sync worker with threads), each parsing real HTTP off a socket."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jwt_middleware.testing import mint, public_jwks

from ..support.redis_server import free_port
from ..support.server_process import server_process
from ..support.uvicorn_server import serve
from ._support import ISSUER, KEY, MODES, Mode
from .served_app import starlette_app

ROOT = Path(__file__).resolve().parents[2]


def bearer(**claims: object) -> dict[str, str]:
    claims.setdefault("tenant", "acme")
    return {"authorization": f"Bearer {mint(KEY, dict(claims), issuer=ISSUER)}"}


def exercise(base: str) -> None:
    """The same requests and answers under every server."""
    with httpx.Client(base_url=base, timeout=10) as http:
        me = http.get("/me", headers=bearer(scope="read"))
        assert me.status_code == 200, me.text
        assert me.json()["user"] == {"name": "user-1", "tenant": "acme"}  # identity_loader
        tenant = http.get("/me", headers=bearer(tenant="other"))  # claims_validator
        assert tenant.status_code == 401
        assert tenant.json() == {"type": "about:blank", "status": 401, "code": "invalid_token", "path": "/me"}
        assert tenant.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')
        unknown = http.get("/me", headers=bearer(sub="ghost"))  # identity_loader: None
        assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_token"
        assert "known user" in unknown.headers["www-authenticate"]
        helper = http.get("/helper", headers=bearer(scope="read"))  # on_refusal, from the helper
        rule = http.get("/admin", headers=bearer(scope="read"))  # on_refusal, from the middleware
        assert helper.status_code == rule.status_code == 403
        assert helper.json() == {"type": "about:blank", "status": 403, "code": "insufficient_scope",
                                 "path": "/helper"}
        assert helper.headers.get_list("www-authenticate") == rule.headers.get_list("www-authenticate")


@pytest.mark.parametrize("mode", MODES)
def test_every_hook_under_uvicorn(mode: Mode) -> None:
    with serve(starlette_app(public_jwks(KEY), mode)) as port:
        exercise(f"http://127.0.0.1:{port}")


@pytest.fixture(params=MODES)
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "HOOKS_JWKS": json.dumps(public_jwks(KEY)), "HOOKS_MODE": request.param}
    argv = [sys.executable, "-m", "gunicorn", "--worker-class", "sync", "--workers", "1", "--threads", "2",
            "--log-level", "warning", "--bind", f"127.0.0.1:{port}", "tests.hooks.served_app:flask_app()"]
    with server_process(argv, port=port, log=tmp_path / "gunicorn.log", cwd=ROOT, env=env, probe="/open",
                        name="gunicorn") as base:
        yield base


def test_every_hook_under_gunicorn(gunicorn: str) -> None:
    exercise(gunicorn)
