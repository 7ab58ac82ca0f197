"""A Redis that dies, restarts, stalls or is stopped: StoreError within the store's timeout,
never a hang, and recovery on its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
import redis.asyncio
from redis.exceptions import RedisError

from jwt_middleware.errors import ConfigError, StoreError
from jwt_middleware.stores._redis_ops import DEFAULT_TIMEOUT
from jwt_middleware.stores.redis import AsyncRedisNonceStore, RedisNonceStore

from ..support.redis_server import RedisServer
from .conftest import client_options, unique_prefix

#: How long a failure may take to surface: a bound against a hang, not a timing benchmark
#: (the stores' default timeout is 0.25 s).
FAIL_FAST = 5 * DEFAULT_TIMEOUT


@pytest.fixture
def sync_store(server: RedisServer) -> Iterator[RedisNonceStore]:
    client = redis.Redis.from_url(server.url, **client_options(socket_timeout=0.1))
    yield RedisNonceStore(client, unique_prefix())
    client.close()


@pytest.fixture
async def async_store(server: RedisServer) -> AsyncIterator[AsyncRedisNonceStore]:
    client = redis.asyncio.Redis.from_url(server.url, **client_options(socket_timeout=0.1, asynchronous=True))
    yield AsyncRedisNonceStore(client, unique_prefix())
    await client.aclose()


def pause(server: RedisServer, ms: int) -> None:
    """Stall every write (as a long blocking command would); WRITE mode leaves CLIENT UNPAUSE usable."""
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("CLIENT", "PAUSE", str(ms), "WRITE")


def unpause(server: RedisServer) -> None:
    with redis.Redis.from_url(server.url) as admin:
        admin.execute_command("CLIENT", "UNPAUSE")


async def fails_fast(call: Callable[[], Awaitable[object]]) -> StoreError:
    """``call`` raises StoreError, and returns in less than FAIL_FAST."""
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await call()
    assert time.monotonic() - started < FAIL_FAST
    return caught.value


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
    client = redis.Redis.from_url(server.url, **client_options(socket_timeout=0.1))
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
        # socket_timeout 0.1 s, and no retry that would end past the 0.25 s timeout
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


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_sigstopped_redis_answers_store_error_within_the_timeout_then_recovers(
    server: RedisServer, sync_store: RedisNonceStore, async_store: AsyncRedisNonceStore, kind: str
) -> None:
    """SIGSTOP: the port still accepts and buffers, nothing answers; every call gives up in time."""

    async def consume(key: str) -> bool:
        if kind == "sync":
            return sync_store.consume(key, time.time() + 60)
        return await async_store.consume(key, time.time() + 60)

    async def ping() -> None:
        if kind == "sync":
            sync_store.ping()
        else:
            await async_store.ping()

    assert await consume("before") is True  # a pooled connection exists
    with server.stalled():
        for i in range(3):
            error = await fails_fast(lambda i=i: consume(f"stalled-{i}"))  # type: ignore[misc]
            assert isinstance(error.original, RedisError | OSError)
        await fails_fast(ping)
    assert await consume("after") is True
    assert await consume("after") is False
    await ping()


async def test_async_store_keeps_its_timeout_even_with_redis_py_default_client(server: RedisServer) -> None:
    """redis-py's defaults (5 s socket timeouts, 10 retries with backoff) would hold each request
    for the whole stall; asyncio.timeout around the call does not let them."""
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        store = AsyncRedisNonceStore(client, unique_prefix())
        assert await store.consume("before", time.time() + 60) is True
        with server.stalled():
            for i in range(3):
                await fails_fast(lambda i=i: store.consume(f"stalled-{i}", time.time() + 60))  # type: ignore[misc]
        assert await store.consume("after", time.time() + 60) is True
    finally:
        await client.aclose()


def test_blocking_store_refuses_a_client_with_redis_py_defaults() -> None:
    """A blocking call cannot be cut off, so a client that would wait 5 s, 11 times, is refused."""
    with pytest.raises(ConfigError, match=r"RedisNonceStore\.client: socket_timeout is 5"):
        RedisNonceStore(redis.Redis(port=1))
    with pytest.raises(ConfigError, match=r"RedisNonceStore\.client: it retries 10 times"):
        RedisNonceStore(redis.Redis(port=1, socket_timeout=0.1, socket_connect_timeout=0.1))
    with pytest.raises(ConfigError, match=r"RedisNonceStore\.client: socket_timeout is 0\.4"):
        RedisNonceStore(redis.Redis(port=1, **client_options(socket_timeout=0.4)), timeout=0.25)
    RedisNonceStore(redis.Redis(port=1, **client_options(socket_timeout=0.4)), timeout=1.0)  # fits: accepted


def connections(server: RedisServer) -> int:
    """Connections the server has accepted, this one included (a stalled server accepts them
    from its backlog once it continues)."""
    with redis.Redis.from_url(server.url) as admin:
        return int(admin.info("stats")["total_connections_received"])


@pytest.mark.parametrize(
    ("socket_timeout", "connect_timeout", "attempts"),
    [(0.12, 0.1, 1), (0.05, 0.05, 2)],
    ids=["retry-would-end-late", "retry-fits"],
)
def test_blocking_store_retries_only_when_the_retry_can_end_within_its_timeout(
    server: RedisServer, socket_timeout: float, connect_timeout: float, attempts: int
) -> None:
    """Counted on the server, not timed: a timed-out attempt is retried only if connect + read
    still fit in the 0.25 s timeout (0.05 + 0.1 s do; after 0.12 s, 0.22 s more would not)."""
    client = redis.Redis.from_url(server.url, **{**client_options(socket_timeout=socket_timeout),
                                                 "socket_connect_timeout": connect_timeout})
    try:
        store = RedisNonceStore(client, unique_prefix())
        assert store.consume("warm", time.time() + 60) is True
        before = connections(server)
        with server.stalled():
            for i in range(3):
                with pytest.raises(StoreError):
                    store.consume(f"stalled-{i}", time.time() + 60)
        # each attempt after a timeout opens a new connection; the first reuses the pooled one,
        # and the count taken afterwards adds its own: 3 calls x attempts, exactly
        assert connections(server) - before == 3 * attempts
    finally:
        client.close()
