"""Redis one-time use stays exact when the app's clock is not Redis's, and when a reply is lost.

- The expiry is the window left on the app's clock (``PX``), so an app clock 120 s behind
  Redis's (which an absolute ``PXAT`` would read as long past) still remembers the token for
  its whole life.
- Each call sends a random value with ``SET NX GET`` and retries with the same value: a reply
  lost after Redis stored the value is still a first use, and only a real second use is refused.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
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
from jwt_middleware.testing import FakeClock, mint, public_jwks

from ..support.redis_server import RedisServer
from ..support.tcp_proxy import ReplyLosingProxy
from .conftest import ROOMY_TIMEOUT, client_options, unique_prefix

ISSUER = "https://issuer.test"
#: Redis's nil reply (RESP2, RESP3): what SET NX GET answers when it stored the value.
NIL_REPLIES = ([b"$-1\r\n"], [b"_\r\n"])
SKEW = 120.0  # seconds the app's clock runs behind Redis's


def authenticator(key: Key, clock: FakeClock, store: Any) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    config = Config(issuers=(issuer,), audience="api", rules=(Rule("/pay", one_time=True),), clock=clock)
    return Authenticator(config, nonce_store=store)


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def wsgi_ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def behind() -> FakeClock:
    """The app's clock, SKEW seconds behind the real time redis-server keeps."""
    return FakeClock(time.time() - SKEW)


@pytest.mark.parametrize("driver", ["asgi", "wsgi"])
async def test_app_clock_behind_redis_accepts_a_one_time_token_exactly_once(
    redis_server: RedisServer, es256_key: Key, behind: FakeClock, driver: str
) -> None:
    """With PXAT each use was stored already expired (until < Redis's now): 200 every time."""
    prefix = unique_prefix()
    token = mint(es256_key, issuer=ISSUER, now=behind.now, lifetime=60)  # +30 s leeway: 90 s < SKEW
    headers = {"authorization": f"Bearer {token}"}
    statuses: list[int] = []
    if driver == "asgi":
        aclient = redis.asyncio.Redis.from_url(redis_server.url, **client_options(asynchronous=True))
        store: Any = AsyncRedisNonceStore(aclient, prefix, clock=behind, timeout=ROOMY_TIMEOUT)
        app = JWTMiddleware(Starlette(routes=[Route("/pay", ok)]), authenticator(es256_key, behind, store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as client:
            for _ in range(5):  # at 0, 20, 40, 60 and 80 s of the token's life (exp + leeway: 90 s)
                statuses.append((await client.get("/pay", headers=headers)).status_code)
                behind.advance(20)
        await aclient.aclose()
    else:
        sclient = redis.Redis.from_url(redis_server.url, **client_options())
        store = RedisNonceStore(sclient, prefix, clock=behind, timeout=ROOMY_TIMEOUT)
        wsgi = WSGIJWTMiddleware(wsgi_ok, authenticator(es256_key, behind, store))
        with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url="https://api.test") as client:
            for _ in range(5):
                statuses.append(client.get("/pay", headers=headers).status_code)
                behind.advance(20)
        sclient.close()
    assert statuses == [200, 401, 401, 401, 401]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_value_outlives_the_window_measured_on_the_app_clock(
    redis_server: RedisServer, behind: FakeClock, kind: str
) -> None:
    """Redis keeps the key at least as long as the app has left on its own clock (90 s here)."""
    prefix, until = unique_prefix(), behind.now + 90.0
    with redis.Redis.from_url(redis_server.url) as admin:
        if kind == "sync":
            sclient = redis.Redis.from_url(redis_server.url, **client_options())
            assert RedisNonceStore(sclient, prefix, clock=behind, timeout=ROOMY_TIMEOUT).consume("k", until)
            sclient.close()
        else:
            aclient = redis.asyncio.Redis.from_url(redis_server.url, **client_options(asynchronous=True))
            store = AsyncRedisNonceStore(aclient, prefix, clock=behind, timeout=ROOMY_TIMEOUT)
            assert await store.consume("k", until)
            await aclient.aclose()
        left = admin.pttl(prefix + "k")
    assert 85_000 < left <= 90_000


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[ReplyLosingProxy]:
    with ReplyLosingProxy(redis_server.port) as running:
        yield running


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as client:
        yield client


def test_lost_reply_to_a_first_use_is_a_first_use_and_a_real_second_use_is_refused(
    proxy: ReplyLosingProxy, admin: redis.Redis
) -> None:
    client = redis.Redis.from_url(proxy.url, **client_options(socket_timeout=0.1))
    try:
        prefix, until = unique_prefix(), time.time() + 60
        store = RedisNonceStore(client, prefix)
        client.ping()  # the pooled connection is idle: the next reply is the one to our SET
        proxy.lose_next_reply()
        assert store.consume("lost", until) is True  # not a false replay
        assert proxy.lost in NIL_REPLIES  # Redis did store it and said so; the client never heard
        assert admin.exists(prefix + "lost") == 1
        assert store.consume("lost", until) is False  # a real second use, with its own value
        assert RedisNonceStore(client, prefix).consume("lost", until) is False  # any other store alike
    finally:
        client.close()


@pytest.fixture
async def lossy_async_client(proxy: ReplyLosingProxy, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    client = redis.asyncio.Redis.from_url(
        proxy.url, **client_options(socket_timeout=0.1, asynchronous=True, retries=request.param)
    )
    yield client
    await client.aclose()


@pytest.mark.parametrize("lossy_async_client", [0, 1], ids=["store-retries", "client-retries-too"], indirect=True)
async def test_lost_reply_to_a_first_use_is_a_first_use_async(
    proxy: ReplyLosingProxy, admin: redis.Redis, lossy_async_client: Any
) -> None:
    """Whichever retries (the store, or redis-py inside it), the same value goes again."""
    prefix, until = unique_prefix(), time.time() + 60
    store = AsyncRedisNonceStore(lossy_async_client, prefix)
    await lossy_async_client.ping()
    proxy.lose_next_reply()
    assert await store.consume("lost", until) is True
    assert proxy.lost in NIL_REPLIES
    assert admin.exists(prefix + "lost") == 1
    assert await store.consume("lost", until) is False


def test_store_on_a_key_held_by_another_value_is_a_replay(admin: redis.Redis, redis_server: RedisServer) -> None:
    """Whatever value is there (a value from an older version of this store, "1"), it is a replay."""
    prefix = unique_prefix()
    admin.set(prefix + "old", "1", px=60_000)
    client = redis.Redis.from_url(redis_server.url, **client_options())
    try:
        assert RedisNonceStore(client, prefix, timeout=ROOMY_TIMEOUT).consume("old", time.time() + 60) is False
    finally:
        client.close()
