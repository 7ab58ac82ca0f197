"""SETReceiver over the real Redis revocation stores: a pushed SET revokes in every worker.

The receiver runs in uvicorn over real HTTP, its store is a ``RedisRevocationStore`` (called in
a worker thread, its follower a thread) or an ``AsyncRedisRevocationStore`` (started by the
app's lifespan, in uvicorn's own event loop, as an app would); a second store on the same
Redis and prefix stands for another worker process and must see the cut-off through Redis
alone. SETs are signed with joserfc's ``jws.serialize_compact``, not with our code.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio
from joserfc import jws
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.routing import Route

from jwt_middleware.keys.sources import StaticKeys
from jwt_middleware.revocation.caep import (
    RISC_ACCOUNT_DISABLED,
    SESSION_REVOKED_EVENT,
    SETReceiver,
    Transmitter,
)
from jwt_middleware.revocation.redis import AsyncRedisRevocationStore
from jwt_middleware.testing import public_jwks

from ..support.redis_server import RedisServer
from ..support.uvicorn_server import serve
from .conftest import HEARTBEAT, MAX_STALENESS, TIMEOUT, Worker, client_options, eventually, unique_prefix

IDP = "https://idp.example"
AUD = "https://api.example/caep"
MEDIA = "application/secevent+jwt"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def idp_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "idp-1", "use": "sig", "alg": "ES256"})


def transmitter(key: ECKey) -> Transmitter:
    return Transmitter(IDP, StaticKeys(public_jwks(key)), AUD, ["ES256"])


def signed_set(key: ECKey, event_type: str, subject: dict[str, Any], event_time: float, jti: str) -> str:
    claims = {
        "iss": IDP,
        "aud": AUD,
        "iat": int(time.time()),
        "jti": jti,
        "sub_id": subject,
        "events": {event_type: {"event_timestamp": event_time}},
    }
    header = {"alg": "ES256", "typ": "secevent+jwt", "kid": "idp-1"}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


def iss_sub(sub: str) -> dict[str, str]:
    return {"format": "iss_sub", "iss": IDP, "sub": sub}


def session(sid: str, sub: str) -> dict[str, Any]:
    return {"format": "complex", "session": {"format": "opaque", "id": sid}, "user": iss_sub(sub)}


async def push(url: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, content=token, headers={"content-type": MEDIA})


def refuses(worker: Worker, *, sub: str | None = None, sid: str | None = None, iat: float) -> bool:
    return worker.mirror.check(IDP, None, sub, sid, None, iat, time.time()) is not None


@pytest.mark.parametrize("other_kind", ["redis", "redis-async"])
async def test_a_set_pushed_to_a_sync_redis_receiver_reaches_another_worker(
    server: RedisServer, make_worker: Callable[..., Any], idp_key: ECKey, other_kind: str
) -> None:
    """The sync store is called through asyncio.to_thread; its cut-off reaches the other worker."""
    prefix = unique_prefix()
    receiving = await make_worker("redis", server.url, prefix)
    other = await make_worker(other_kind, server.url, prefix)
    await eventually(other.trusted, what="the other worker's first sync")
    event_time = time.time() - 30
    with serve(SETReceiver(receiving.store, [transmitter(idp_key)])) as port:
        url = f"http://127.0.0.1:{port}/"
        token = signed_set(idp_key, SESSION_REVOKED_EVENT, session("sid-r1", "rita"), event_time, "r-1")
        response = await push(url, token)
        assert response.status_code == 202, response.text
        # held in the receiving worker before the 202 was sent
        assert refuses(receiving, sid="sid-r1", iat=event_time - 1)
        await eventually(lambda: refuses(other, sid="sid-r1", iat=event_time - 1), what="the cut-off")
        assert not refuses(other, sid="sid-r1", iat=event_time + 1)  # minted after the event
        assert not refuses(other, sub="rita", sid="sid-r2", iat=event_time - 1)  # her other sessions

        token = signed_set(idp_key, RISC_ACCOUNT_DISABLED, session("sid-r2", "rita"), event_time, "r-2")
        assert (await push(url, token)).status_code == 202
        await eventually(lambda: refuses(other, sub="rita", sid="sid-r9", iat=event_time - 1), what="RISC")
    assert other.seen.keys() >= {"sid-r1", "rita"}


@pytest.mark.parametrize("other_kind", ["redis", "redis-async"])
async def test_a_set_pushed_to_an_async_redis_receiver_reaches_another_worker(
    server: RedisServer, make_worker: Callable[..., Any], idp_key: ECKey, other_kind: str
) -> None:
    """The async store is started in the app's lifespan, so it lives in the serving event loop."""
    prefix = unique_prefix()
    aclient = redis.asyncio.Redis.from_url(server.url, **client_options(asynchronous=True))
    store = AsyncRedisRevocationStore(
        aclient, prefix, timeout=TIMEOUT, heartbeat=HEARTBEAT, max_staleness=MAX_STALENESS
    )
    started: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.astart()
        started.append(True)
        try:
            yield
        finally:
            await store.aclose()
            await aclient.aclose()

    # Route, not Mount: a Mount answers POST /caep with a 307 to /caep/, which transmitters need not follow
    app = Starlette(routes=[Route("/caep", SETReceiver(store, [transmitter(idp_key)]))], lifespan=lifespan)
    other = await make_worker(other_kind, server.url, prefix)
    await eventually(other.trusted, what="the other worker's first sync")
    event_time = time.time() - 30
    with serve(app, lifespan="on") as port:
        assert started == [True]
        token = signed_set(idp_key, SESSION_REVOKED_EVENT, iss_sub("sam"), event_time, "a-1")
        response = await push(f"http://127.0.0.1:{port}/caep", token)
        assert response.status_code == 202, response.text
        assert store.mirror.check(IDP, None, "sam", None, None, event_time - 1, time.time()) is not None
        await eventually(lambda: refuses(other, sub="sam", iat=event_time - 1), what="the cut-off")
        assert not refuses(other, sub="sam", iat=event_time + 1)
        assert not refuses(other, sub="someone-else", iat=event_time - 1)


async def test_a_stalled_redis_is_a_503_and_the_redelivery_reaches_the_other_worker(
    server: RedisServer, make_worker: Callable[..., Any], idp_key: ECKey, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 8935: a 503 makes the transmitter retry; the SET was not remembered as applied."""
    prefix = unique_prefix()
    receiving = await make_worker("redis", server.url, prefix)
    other = await make_worker("redis-async", server.url, prefix)
    await eventually(other.trusted, what="the other worker's first sync")
    event_time = time.time() - 30
    token = signed_set(idp_key, SESSION_REVOKED_EVENT, iss_sub("stella"), event_time, "s-1")
    with serve(SETReceiver(receiving.store, [transmitter(idp_key)])) as port:
        url = f"http://127.0.0.1:{port}/"
        with server.stalled():
            response = await push(url, token)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert "err" not in response.json()
        await eventually(receiving.trusted, what="the receiving worker's resync")
        with caplog.at_level(logging.INFO, "jwt_middleware.revocation.caep"):
            response = await push(url, token)  # the transmitter's retry
        assert response.status_code == 202, response.text
        messages = [r.getMessage() for r in caplog.records]
        assert any("set applied" in m for m in messages), messages  # applied, not "re-delivered"
        await eventually(lambda: refuses(other, sub="stella", iat=event_time - 1), what="the cut-off")
