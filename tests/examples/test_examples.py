"""Every example, started as its docstring says on a real server at 127.0.0.1, answers
valid, expired, forged and missing tokens over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwt_middleware.testing import make_key, mint

from ..support.redis_server import free_port
from ..support.server_process import server_process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ISSUER, AUDIENCE = "https://issuer.example", "example-api"
SERVERS = {
    "starlette": ["uvicorn", "examples.starlette_app:app"],
    "fastapi": ["uvicorn", "examples.fastapi_app:app"],
    "litestar": ["uvicorn", "examples.litestar_app:app"],
    "django-asgi": ["uvicorn", "examples.django_app:asgi_app"],
    "flask": ["gunicorn", "--threads", "2", "examples.flask_app:app"],
    "django": ["gunicorn", "--threads", "2", "examples.django_app:app"],
}


def command(argv: list[str], port: int) -> list[str]:
    tool = str(BIN / argv[0]) if (BIN / argv[0]).exists() else shutil.which(argv[0]) or argv[0]
    if argv[0] == "gunicorn":
        bind = ["--bind", f"127.0.0.1:{port}"]
    else:
        bind = ["--host", "127.0.0.1", "--port", str(port)]
    return [tool, *argv[1:], *bind]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    key = make_key("ES256", kid="example-test")
    path = tmp_path_factory.mktemp("keys") / "key.json"
    path.write_text(json.dumps(key.as_dict(private=True)))
    return path, key


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, key_file: tuple[Path, Any], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "JWT_EXAMPLE_KEY_FILE": str(key_file[0])}
    with server_process(command(SERVERS[request.param], port), port=port, log=tmp_path / "server.log", cwd=ROOT,
                        env=env, name=request.param, start_within=15) as base:
        yield base


def test_example_answers_valid_expired_forged_and_missing_tokens(
    server: str, key_file: tuple[Path, Any], request: pytest.FixtureRequest
) -> None:
    server_name = request.node.callspec.params["server"]
    key = key_file[1]
    valid = mint(key, {"scope": "read"}, issuer=ISSUER, audience=AUDIENCE)
    admin = mint(key, {"scope": "read admin"}, issuer=ISSUER, audience=AUDIENCE)
    expired = mint(key, issuer=ISSUER, audience=AUDIENCE, now=time.time() - 7200)
    forged = mint(make_key("ES256", kid="example-test"), issuer=ISSUER, audience=AUDIENCE)

    def get(path: str, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.get(server + path, headers=headers, timeout=10)

    assert get("/").status_code == 200
    me = get("/me", valid)
    assert me.status_code == 200 and me.json()["sub"] == "user-1"
    for token, reason in ((expired, "expired"), (forged, "signature")):
        refused = get("/me", token)
        assert refused.status_code == 401, reason
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert token not in refused.text
    missing = get("/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="api"'
    assert get("/admin", admin).status_code == 200
    assert get("/admin", valid).status_code == 403
    # Two Authorization headers (a WSGI server joins them into one environ value): 400.
    two = httpx.get(server + "/me", headers=[("authorization", f"Bearer {valid}"), ("authorization", f"Bearer {admin}")],
                    timeout=10)
    assert two.status_code == 400 and 'error="invalid_request"' in two.headers["www-authenticate"]
    if server_name == "fastapi":  # the public API document declares the bearer scheme
        document = get("/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
        assert get("/docs").status_code == 200
    # A non-ASCII path reaches the decision (no 500), anonymous or not.
    assert get("/caf%C3%A9/%E6%97%A5%E6%9C%AC").status_code == 401
    assert get("/caf%C3%A9/%E6%97%A5%E6%9C%AC", valid).status_code == 404
