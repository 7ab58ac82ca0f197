"""WSGI cost per request, in-process (app(environ, start_response), no server), ratios in one run.

Run: python benchmarks/bench_wsgi.py [--quick]   (best of 5 rounds x 3000 calls per row; --quick: 3 x 1000)

Rows:
  flask bare                 Flask app, no auth
  flask + ours repeat        Flask wrapped by WSGIJWTMiddleware, the same ES256 token every call
  flask + ours unique        a new token every call
  flask + flask-jwt-extended the same repeated token, @jwt_required() with the same ES256 key
  wsgi callable bare / + ours  WSGIJWTMiddleware around a three-line WSGI callable (the adapter without Flask)
  starlette bare / + ours    the ASGI adapter on a repeated token, for the WSGI/ASGI overhead ratio
  fastapi bare / + ours      the ASGI adapter around a framework as heavy as Flask (like-for-like ratio)

Why two ratios: the adapter's added cost grows with the app around it (Flask's ~40 µs per request
evict our code from the CPU caches; bare Starlette's ~6 µs do not), so "Flask vs bare Starlette"
mixes the adapter with the app's weight. The like-for-like rows separate the two.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import asgi_caller, http_scope
from bench_asgi import AUD, ISS, ours, starlette_app
from flask import Flask
from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, StaticKeys, WSGIJWTMiddleware
from jwt_middleware.testing import make_key, mint, public_jwks

ROUNDS = 5
#: what a curl-like client sends besides the token; the ASGI scope carries the same headers
COMMON_HEADERS = (("host", "api.bench"), ("user-agent", "curl/8.5.0"), ("accept", "*/*"), ("accept-encoding", "gzip, br"))
N = 3000


def fastapi_app() -> Any:
    """An ASGI framework about as heavy per request as Flask (~35 µs bare)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/me")
    async def me() -> str:
        return "ok"

    return app


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
    for name, value in COMMON_HEADERS:
        env["HTTP_" + name.upper().replace("-", "_")] = value
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


Row = tuple[str, Callable[[int], Any], bool, int]  # name, call, is_async, calls per round


def interleaved(rows: list[Row], rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` µs per call, the rows taking turns inside every round.

    Why interleaved: the ratios subtract two ~60 µs Flask figures; timing every row in every
    round spreads machine drift (other processes, CPU clocks) over all rows alike.
    """

    async def run() -> dict[str, float]:
        best = dict.fromkeys((name for name, *_ in rows), float("inf"))
        for r in range(rounds):
            for name, call, is_async, n in rows:
                offset = r * n
                start = time.perf_counter()
                if is_async:
                    for i in range(offset, offset + n):
                        await call(i)
                else:
                    for i in range(offset, offset + n):
                        call(i)
                best[name] = min(best[name], (time.perf_counter() - start) / n * 1e6)
        return best

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds = (1000, 3) if args.quick else (N, ROUNDS)
    key = make_key("ES256")
    token = mint(key, issuer=ISS, audience=AUD, lifetime=3600)

    def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    auth = Authenticator(Config(issuers=[Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))], audience=AUD))
    unique_envs = [environ(mint(key, issuer=ISS, audience=AUD, lifetime=3600)) for _ in range(n * rounds)]
    callers = {
        "flask bare": wsgi_caller(flask_app(), [environ(token)]),
        "flask + ours repeat": wsgi_caller(flask_ours(key), [environ(token)]),
        "flask + ours unique": wsgi_caller(flask_ours(key), unique_envs),
        "flask + flask-jwt-extended repeat": wsgi_caller(flask_extended(key), [environ(token)]),
        "wsgi callable bare": wsgi_caller(bare_wsgi, [environ(token)]),
        "wsgi callable + ours repeat": wsgi_caller(WSGIJWTMiddleware(bare_wsgi, auth), [environ(token)]),
    }
    rows: list[Row] = [(name, call, False, n) for name, (call, _) in callers.items()]
    raw = [(k.encode(), v.encode()) for k, v in COMMON_HEADERS]
    scope = http_scope("/me", [*raw, (b"authorization", f"Bearer {token}".encode())])
    bare_asgi, ours_asgi = asgi_caller(starlette_app(), scope), asgi_caller(ours("ES256", key), scope)
    bare_fastapi, ours_fastapi = asgi_caller(fastapi_app(), scope), asgi_caller(JWTMiddleware(fastapi_app(), auth), scope)
    rows += [("starlette bare", bare_asgi, True, n), ("starlette + ours repeat", ours_asgi, True, n),
             ("fastapi bare", bare_fastapi, True, n), ("fastapi + ours repeat", ours_fastapi, True, n)]
    r = interleaved(rows, rounds)
    for name, (_, statuses) in callers.items():
        assert set(statuses) == {"200 OK"}, (name, set(statuses))
    for call in (bare_asgi, ours_asgi, bare_fastapi, ours_fastapi):
        assert set(call.statuses) == {200}, set(call.statuses)  # type: ignore[attr-defined]

    width = max(map(len, r))
    print(f"best of {rounds} rounds x {n} calls per row, rows interleaved within each round")
    for name, us in r.items():
        print(f"{name:<{width}}  {us:9.2f} µs/request")
    wsgi_added = r["flask + ours repeat"] - r["flask bare"]
    adapter_added = r["wsgi callable + ours repeat"] - r["wsgi callable bare"]
    asgi_added = r["starlette + ours repeat"] - r["starlette bare"]
    fastapi_added = r["fastapi + ours repeat"] - r["fastapi bare"]
    print()
    print(f"added cost, repeated token: flask {wsgi_added:.2f} µs, bare WSGI callable {adapter_added:.2f} µs, "
          f"starlette {asgi_added:.2f} µs, fastapi {fastapi_added:.2f} µs")
    print(f"(flask + ours - flask bare) / (starlette + ours - starlette bare): {wsgi_added / asgi_added:5.2f}x  "
          "(target <= 1.3x)")
    print(f"like for like, adapter around a framework of similar weight: (flask) / (fastapi): "
          f"{wsgi_added / fastapi_added:5.2f}x")
    print(f"like for like, adapter around a bare callable: (wsgi callable) / (starlette): {adapter_added / asgi_added:5.2f}x")
    print(f"flask + flask-jwt-extended / flask + ours (repeated token): "
          f"{r['flask + flask-jwt-extended repeat'] / r['flask + ours repeat']:5.2f}x  (target > 1: ours faster)")
    print(f"flask + ours repeat vs flask bare: {r['flask + ours repeat'] / r['flask bare']:5.2f}x")


if __name__ == "__main__":
    main()
