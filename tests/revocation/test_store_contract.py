"""One contract over every revocation store (memory, Redis sync, Redis async): each kind, at once
in the revoking process, cut-offs only forward, listeners; plus each store's own guards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from jwt_middleware.errors import ConfigError, StoreError, StoreFull
from jwt_middleware.revocation import (
    CLIENT_REVOKED,
    SESSION_REVOKED,
    SUBJECT_REVOKED,
    TOKEN_REVOKED,
    AsyncRevocationStore,
    CutOff,
    MemoryRevocationStore,
    Revocation,
    RevocationStore,
    RevokedToken,
)
from jwt_middleware.revocation.redis import AsyncRedisRevocationStore, RedisRevocationStore
from jwt_middleware.testing import FakeClock

from ..support.redis_server import RedisServer
from .conftest import ISSUER, Worker, client_options, eventually, unique_prefix

REASONS = {"token": TOKEN_REVOKED, "subject": SUBJECT_REVOKED, "session": SESSION_REVOKED, "client": CLIENT_REVOKED}


class MemoryWorker(Worker):
    async def start(self) -> None:
        self.store.start()  # type: ignore[union-attr]

    async def close(self) -> None:
        self.store.close()  # type: ignore[union-attr]


@pytest.fixture(params=["memory", "redis", "redis-async"])
async def worker(
    request: pytest.FixtureRequest, make_worker: Callable[..., Any], clock: FakeClock
) -> AsyncIterator[Worker]:
    if request.param == "memory":
        store = MemoryRevocationStore(clock=time.time)
        memory = MemoryWorker("memory", store, lambda: None)  # type: ignore[arg-type]
        yield memory
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    worker = await make_worker(request.param, redis_server.url, unique_prefix())
    await eventually(worker.trusted, what="first sync")
    yield worker


@pytest.mark.parametrize("kind", ["token", "subject", "session", "client"])
async def test_each_kind_is_refused_at_once_in_the_revoking_process(worker: Worker, kind: str) -> None:
    now = time.time()
    assert not worker.knows(kind, "victim")
    await worker.revoke(kind, "victim", now + 600 if kind == "token" else now)
    # no wait: the revoking process's own mirror holds it when the call returns
    assert worker.knows(kind, "victim")
    assert not worker.knows(kind, "bystander")
    args: dict[str, str | None] = {"token": None, "subject": None, "session": None, "client": None}
    args[kind] = "victim"
    reason = worker.mirror.check(ISSUER, args["token"], args["subject"], args["session"], args["client"], None, now)
    assert reason == REASONS[kind]


async def test_cut_off_only_moves_forward_through_the_store(worker: Worker) -> None:
    now = time.time()
    await worker.revoke("subject", "alice", now)
    await worker.revoke("subject", "alice", now - 1000)  # an earlier cut-off never re-admits
    assert worker.mirror.check(ISSUER, None, "alice", None, None, now - 500, now) == SUBJECT_REVOKED
    assert worker.mirror.check(ISSUER, None, "alice", None, None, now + 1, now) is None


async def test_listener_hears_a_local_revocation_once(worker: Worker) -> None:
    heard: list[Revocation] = []
    worker.mirror.add_listener(heard.append)
    now = time.time()
    await worker.revoke("session", "session-9", now)
    await worker.revoke("token", "jti-9", now + 60)
    await asyncio.sleep(0.3)  # the Redis stores' own echoes arrive meanwhile and change nothing
    await eventually(lambda: len(heard) >= 2)
    assert heard == [CutOff("session", ISSUER, "session-9", now), RevokedToken(ISSUER, "jti-9", now + 60)]


def test_stores_satisfy_their_protocols() -> None:
    sync_client = redis.Redis.from_url("redis://127.0.0.1:1/0", **client_options())
    async_client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", **client_options(asynchronous=True))
    assert isinstance(MemoryRevocationStore(), RevocationStore)
    assert isinstance(RedisRevocationStore(sync_client), RevocationStore)
    assert isinstance(AsyncRedisRevocationStore(async_client), AsyncRevocationStore)


def test_memory_store_full_of_live_entries_refuses_instead_of_evicting(clock: FakeClock) -> None:
    store = MemoryRevocationStore(maxsize=3, clock=clock)
    store.revoke_token(ISSUER, "a", clock.now + 10)
    store.revoke_token(ISSUER, "b", clock.now + 100)
    store.revoke_subject(ISSUER, "alice", clock.now)
    with pytest.raises(StoreFull):
        store.revoke_token(ISSUER, "c", clock.now + 100)
    assert store.mirror.check(ISSUER, "c", None, None, None, None, clock.now) is None  # not half-done
    store.revoke_token(ISSUER, "b", clock.now + 200)  # moving a held entry needs no room
    store.revoke_subject(ISSUER, "alice", clock.now + 1)
    for jti in ("a", "b"):  # nothing live was evicted
        assert store.mirror.check(ISSUER, jti, None, None, None, None, clock.now) == TOKEN_REVOKED
    clock.now += 11  # "a" expired: its room is reused
    store.revoke_token(ISSUER, "c", clock.now + 100)
    assert store.mirror.check(ISSUER, "c", None, None, None, None, clock.now) == TOKEN_REVOKED
    assert store.mirror.check(ISSUER, "b", None, None, None, None, clock.now) == TOKEN_REVOKED


@pytest.mark.parametrize("maxsize", [0, -1, True, 1.5])
def test_memory_store_maxsize_must_be_a_positive_count(maxsize: Any) -> None:
    with pytest.raises(ConfigError, match=r"MemoryRevocationStore\.maxsize"):
        MemoryRevocationStore(maxsize=maxsize)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"prefix": "jwtmw:revocation"}, "prefix: .*hash tag"),
        ({"prefix": "{}"}, "prefix"),
        ({"heartbeat": 0}, "heartbeat"),
        ({"heartbeat": 10}, "heartbeat"),
        ({"max_staleness": 0.3}, r"max_staleness: use more than heartbeat \+ timeout \(0.5 s\)"),
        ({"max_staleness": True}, "max_staleness"),
        ({"timeout": 0}, "timeout"),
    ],
)
@pytest.mark.parametrize("asynchronous", [False, True])
def test_redis_store_options_are_checked_at_construction(options: dict[str, Any], match: str, asynchronous: bool) -> None:
    with pytest.raises(ConfigError, match=match):
        if asynchronous:
            AsyncRedisRevocationStore(redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0"), **options)
        else:
            RedisRevocationStore(redis.Redis.from_url("redis://127.0.0.1:1/0", **client_options()), **options)


def test_sync_redis_store_refuses_a_client_that_could_hang() -> None:
    with pytest.raises(ConfigError, match=r"RedisRevocationStore\.client: socket_timeout"):
        RedisRevocationStore(redis.Redis.from_url("redis://127.0.0.1:1/0"))


def test_revoke_with_redis_down_raises_store_error_but_holds_locally() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", **client_options())  # nothing listens there
    store = RedisRevocationStore(client, unique_prefix())
    started = time.monotonic()
    with pytest.raises(StoreError):
        store.revoke_subject(ISSUER, "alice", time.time())
    assert time.monotonic() - started < 2.0
    assert store.mirror.check(ISSUER, None, "alice", None, None, None, time.time()) == SUBJECT_REVOKED


async def test_async_revoke_with_redis_down_raises_store_error_but_holds_locally() -> None:
    client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", **client_options(asynchronous=True))
    store = AsyncRedisRevocationStore(client, unique_prefix())
    with pytest.raises(StoreError):
        await store.revoke_client(ISSUER, "app-1", time.time())
    assert store.mirror.check(ISSUER, None, None, None, "app-1", None, time.time()) == CLIENT_REVOKED
    await client.aclose()
