"""A Redis that dies, restarts or stalls: StoreError quickly, never a hang, and recovery on its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio
from redis.exceptions import RedisError

from jwt_middleware.errors import StoreError
from jwt_middleware.stores.redis import AsyncRedisNonceStore, RedisNonceStore

from ..support.redis_server import RedisServer
from .conftest import client_options, unique_prefix

#: Budget for a failure to surface, with the recommended client settings (0.5 s timeouts).
FAIL_FAST = 1.0


@pytest.fixture(scope="module")
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this module's own: these tests stop and pause it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(own_server: RedisServer) -> RedisServer:
    if own_server.process is None:  # a failed test may have left it stopped
        own_server.start()
    return own_server


@pytest.fixture
def sync_store(server: RedisServer) -> Iterator[RedisNonceStore]:
    client = redis.Redis.from_url(server.url, **client_options(socket_timeout=0.3))
    yield RedisNonceStore(client, unique_prefix())
    client.close()


@pytest.fixture
async def async_store(server: RedisServer) -> AsyncIterator[AsyncRedisNonceStore]:
    client = redis.asyncio.Redis.from_url(server.url, **client_options(socket_timeout=0.3))
    yield AsyncRedisNonceStore(client, unique_prefix())
    await client.aclose()


def pause(server: RedisServer, ms: int) -> None:
    """Stall every write (as a long blocking command would); WRITE mode leaves CLIENT UNPAUSE usable."""
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("CLIENT", "PAUSE", str(ms), "WRITE")


def unpause(server: RedisServer) -> None:
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("CLIENT", "UNPAUSE")


def test_stopped_redis_raises_store_error_fast_and_restart_is_picked_up(
    server: RedisServer, sync_store: RedisNonceStore
) -> None:
    until = time.time() + 60
    assert sync_store.consume("before", until) is True  # a pooled connection now exists
    server.stop()
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        sync_store.consume("during", until)
    assert time.monotonic() - started < FAIL_FAST
    assert isinstance(caught.value.original, RedisError | OSError)
    with pytest.raises(StoreError):
        sync_store.ping()
    server.start()  # same port, empty data: the same client must work again by itself
    assert sync_store.consume("after", until) is True
    assert sync_store.consume("after", until) is False
    sync_store.ping()


async def test_stopped_redis_raises_store_error_fast_and_restart_is_picked_up_async(
    server: RedisServer, async_store: AsyncRedisNonceStore
) -> None:
    until = time.time() + 60
    assert await async_store.consume("before", until) is True
    server.stop()
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await async_store.consume("during", until)
    assert time.monotonic() - started < FAIL_FAST
    assert isinstance(caught.value.original, RedisError | OSError)
    with pytest.raises(StoreError):
        await async_store.ping()
    server.start()
    assert await async_store.consume("after", until) is True
    assert await async_store.consume("after", until) is False
    await async_store.ping()


def test_redis_never_reachable_raises_store_error(server: RedisServer) -> None:
    """A store built while Redis is down fails per call, and works once Redis comes up."""
    server.stop()
    client = redis.Redis.from_url(server.url, **client_options())
    try:
        store = RedisNonceStore(client, unique_prefix())
        with pytest.raises(StoreError):
            store.consume("k", time.time() + 60)
        server.start()
        assert store.consume("k", time.time() + 60) is True
    finally:
        client.close()


def test_stalled_redis_raises_store_error_not_a_hang(
    server: RedisServer, sync_store: RedisNonceStore
) -> None:
    sync_store.ping()
    pause(server, 1500)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            sync_store.consume("stalled", time.time() + 60)
        # socket_timeout 0.3 s, and the one retry may time out again: well under the 1.5 s stall
        assert time.monotonic() - started < FAIL_FAST
        assert isinstance(caught.value.original, RedisError | OSError)
    finally:
        unpause(server)
    assert sync_store.consume("after-stall", time.time() + 60) is True


async def test_stalled_redis_raises_store_error_not_a_hang_async(
    server: RedisServer, async_store: AsyncRedisNonceStore
) -> None:
    await async_store.ping()
    pause(server, 1500)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            await async_store.consume("stalled", time.time() + 60)
        assert time.monotonic() - started < FAIL_FAST
    finally:
        unpause(server)
    assert await async_store.consume("after-stall", time.time() + 60) is True


def test_full_redis_refuses_and_the_refusal_is_a_store_error(
    server: RedisServer, sync_store: RedisNonceStore
) -> None:
    """Under ``maxmemory-policy noeviction`` a full Redis refuses writes (OOM): 503, not an eviction."""
    with redis.Redis.from_url(server.url) as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
        try:
            with pytest.raises(StoreError) as caught:
                sync_store.consume("oom", time.time() + 60)
            assert isinstance(caught.value.original, RedisError)
        finally:
            admin.config_set("maxmemory", "0")
    assert sync_store.consume("oom", time.time() + 60) is True
