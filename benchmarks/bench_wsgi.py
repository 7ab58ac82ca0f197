"""WSGI cost per request, in-process (app(environ, start_response), no server), ratios in one run.

Run: python benchmarks/bench_wsgi.py [--quick]

Rows:
  flask bare                 Flask app, no auth
  flask + ours repeat        Flask wrapped by WSGIJWTMiddleware, the same ES256 token every call
  flask + ours unique        a new token every call
  flask + flask-jwt-extended the same repeated token, @jwt_required() with the same ES256 key
  starlette bare / + ours    the ASGI adapter on a repeated token, for the WSGI/ASGI overhead ratio
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import asgi_caller, best_us, best_us_async, http_scope
from bench_asgi import AUD, ISS, ours, starlette_app
from flask import Flask
from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required

from jwt_middleware import Authenticator, Config, Issuer, StaticKeys, WSGIJWTMiddleware
from jwt_middleware.testing import make_key, mint, public_jwks

ROUNDS = 3


def flask_app() -> Flask:
    app = Flask("bench")

    @app.get("/me")
    def me() -> str:
        return "ok"

    return app


def flask_ours(key: Any) -> Flask:
    app = flask_app()
    auth = Authenticator(Config(issuers=[Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))], audience=AUD))
    app.wsgi_app = WSGIJWTMiddleware(app.wsgi_app, auth)  # type: ignore[method-assign]
    return app


def flask_extended(key: Any) -> Flask:
    app = Flask("bench-fje")
    app.config.update(
        JWT_ALGORITHM="ES256",
        JWT_DECODE_ALGORITHMS=["ES256"],
        JWT_PUBLIC_KEY=key.public_key,
        JWT_PRIVATE_KEY=key.private_key,
        JWT_TOKEN_LOCATION=["headers"],
        JWT_DECODE_AUDIENCE=AUD,
        JWT_DECODE_ISSUER=ISS,
        JWT_IDENTITY_CLAIM="sub",
    )
    JWTManager(app)

    @app.get("/me")
    @jwt_required()
    def me() -> str:
        return str(get_jwt_identity())

    return app


def environ(token: str | None) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/me", "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "https", "wsgi.input": None,
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }
    if token:
        env["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return env


def wsgi_caller(app: Any, environs: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def call(i: int) -> None:
        body = app(dict(environs[i % len(environs)]), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close:
            close()

    return call, statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_repeat, n_unique = (1000, 200) if args.quick else (3000, 1000)
    key = make_key("ES256")
    token = mint(key, issuer=ISS, audience=AUD, lifetime=3600)
    r: dict[str, float] = {}

    bare, _ = wsgi_caller(flask_app(), [environ(token)])
    r["flask bare"] = best_us(bare, n_repeat)
    repeat, statuses = wsgi_caller(flask_ours(key), [environ(token)])
    r["flask + ours repeat"] = best_us(repeat, n_repeat)
    assert set(statuses) == {"200 OK"}, set(statuses)
    unique_envs = [environ(mint(key, issuer=ISS, audience=AUD, lifetime=3600)) for _ in range(n_unique * ROUNDS)]
    unique, statuses = wsgi_caller(flask_ours(key), unique_envs)
    counter = iter(range(len(unique_envs)))
    r["flask + ours unique"] = best_us(lambda _i: unique(next(counter)), n_unique, rounds=ROUNDS)
    assert set(statuses) == {"200 OK"}, set(statuses)
    fje, statuses = wsgi_caller(flask_extended(key), [environ(token)])
    r["flask + flask-jwt-extended repeat"] = best_us(fje, n_repeat)
    assert set(statuses) == {"200 OK"}, set(statuses)

    scope = http_scope("/me", [(b"authorization", f"Bearer {token}".encode())])
    r["starlette bare"] = best_us_async(asgi_caller(starlette_app(), scope), n_repeat * 3)
    r["starlette + ours repeat"] = best_us_async(asgi_caller(ours("ES256", key), scope), n_repeat * 3)

    width = max(map(len, r))
    for name, us in r.items():
        print(f"{name:<{width}}  {us:9.2f} µs/request")
    wsgi_added = r["flask + ours repeat"] - r["flask bare"]
    asgi_added = r["starlette + ours repeat"] - r["starlette bare"]
    print()
    print(f"WSGI added cost / ASGI added cost (repeated token): {wsgi_added / asgi_added:5.2f}x  (target <= 1.3x)")
    print(f"flask + flask-jwt-extended / flask + ours (repeated token): "
          f"{r['flask + flask-jwt-extended repeat'] / r['flask + ours repeat']:5.2f}x  (target > 1: ours faster)")
    print(f"flask + ours repeat vs flask bare: {r['flask + ours repeat'] / r['flask bare']:5.2f}x")


if __name__ == "__main__":
    main()
