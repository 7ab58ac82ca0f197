"""A stopped (SIGSTOP) redis-server behind a one-time route: 503 with Retry-After within the
store's timeout when failing closed, 200 when failing open, and back to normal after SIGCONT."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, Rule, StaticKeys, WSGIJWTMiddleware
from jwt_middleware.stores.redis import AsyncRedisNonceStore, RedisNonceStore
from jwt_middleware.testing import mint, public_jwks

from ..support.redis_server import RedisServer
from .conftest import client_options, unique_prefix
from .test_redis_faults import FAIL_FAST

ISSUER = "https://issuer.test"


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def wsgi_ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


def authenticator(key: Key, store: Any, store_failure: str) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    config = Config(issuers=(issuer,), audience="api", rules=(Rule("/pay", one_time=True),),
                    store_failure=store_failure)  # type: ignore[arg-type]
    return Authenticator(config, nonce_store=store)


Send = Callable[[str], Any]


@pytest.fixture
def wsgi_send(server: RedisServer, es256_key: Key, request: pytest.FixtureRequest) -> Iterator[Send]:
    client = redis.Redis.from_url(server.url, **client_options(socket_timeout=0.1))
    auth = authenticator(es256_key, RedisNonceStore(client, unique_prefix()), request.param)
    http = httpx.Client(transport=httpx.WSGITransport(app=WSGIJWTMiddleware(wsgi_ok, auth)),
                        base_url="https://api.test")

    async def send(token: str) -> httpx.Response:
        return http.get("/pay", headers={"authorization": f"Bearer {token}"})

    yield send
    http.close()
    client.close()


async def run(send: Send, server: RedisServer, key: Key, during: int) -> None:
    """Warm up, stall Redis for three fresh tokens (each answered ``during``), then recover."""
    used = mint(key, issuer=ISSUER)
    assert (await send(used)).status_code == 200
    with server.stalled():
        for _ in range(3):
            started = time.monotonic()
            response = await send(mint(key, issuer=ISSUER))
            assert time.monotonic() - started < FAIL_FAST  # a bound, not a benchmark
            assert response.status_code == during
            if during == 503:
                assert response.headers["retry-after"].isdigit()
                assert "invalid_token" not in response.headers.get("www-authenticate", "")
    assert (await send(mint(key, issuer=ISSUER))).status_code == 200
    assert (await send(used)).status_code == 401  # replays are refused again


@pytest.mark.parametrize(("store_failure", "during"), [("closed", 503), ("open", 200)])
async def test_stalled_redis_under_asgi(server: RedisServer, es256_key: Key, store_failure: str, during: int) -> None:
    client = redis.asyncio.Redis.from_url(server.url, **client_options(socket_timeout=0.1, asynchronous=True))
    auth = authenticator(es256_key, AsyncRedisNonceStore(client, unique_prefix()), store_failure)
    app = JWTMiddleware(Starlette(routes=[Route("/pay", ok)]), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as http:

        async def send(token: str) -> httpx.Response:
            return await http.get("/pay", headers={"authorization": f"Bearer {token}"})

        await run(send, server, es256_key, during)
    await client.aclose()


@pytest.mark.parametrize(("wsgi_send", "during"), [("closed", 503), ("open", 200)], indirect=["wsgi_send"])
async def test_stalled_redis_under_wsgi(server: RedisServer, es256_key: Key, wsgi_send: Send, during: int) -> None:
    await run(wsgi_send, server, es256_key, during)
