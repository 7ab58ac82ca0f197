"""One ``store`` fixture over every nonce store backend, so each contract test runs once per backend."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwt_middleware.stores import NonceStore
from jwt_middleware.stores.memory import MemoryNonceStore
from jwt_middleware.stores.redis import AsyncRedisNonceStore, RedisNonceStore
from jwt_middleware.testing import FakeClock

# own_server/server: a module's own redis-server (it stops, restarts or stalls it); ``x as x`` marks
# them re-exported, so pytest finds the fixtures here and ruff keeps the imports
from ..support.redis_server import RedisServer
from ..support.redis_server import own_server as own_server
from ..support.redis_server import server as server

BACKENDS = ["memory", "redis", "redis-async"]


#: Store timeout (seconds) of the contract fixtures: room for a busy test machine; the fault
#: tests use the default 0.25 s with 0.1 s socket timeouts, as the docstring recommends.
ROOMY_TIMEOUT = 1.0


def client_options(socket_timeout: float = 0.4, *, asynchronous: bool = False, retries: int = 0) -> dict[str, Any]:
    """Client settings shaped as the RedisNonceStore docstring recommends (the store retries itself)."""
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": AsyncRetry(NoBackoff(), retries) if asynchronous else Retry(NoBackoff(), retries),
    }


def unique_prefix() -> str:
    return f"jwtmw:test:{uuid.uuid4().hex}:"


@dataclass
class Backend:
    """One store behind an awaitable face, with the means to move its time forward."""

    name: str
    consume: Callable[[str, float], Awaitable[bool]]
    ping: Callable[[], Awaitable[None]]
    #: the store's own time (a FakeClock for memory, the real clock for Redis)
    now: Callable[[], float]
    #: move time to at least ``t``: the fake clock jumps, real time is waited for
    wait_until: Callable[[float], Awaitable[None]]
    #: the store itself when it has a sync face (thread tests), else None
    sync: NonceStore | None
    #: True when concurrent asyncio tasks may call it (memory inline, or redis.asyncio)
    loop_safe: bool
    #: how long (real seconds) an expiry may lag behind ``until``: 0 with a fake clock
    expiry_grace: float = 0.0

    async def first_use_after(self, key: str, until: float) -> bool:
        """Once time reached ``until``, is ``key`` a first use again? Polled for at most expiry_grace."""
        await self.wait_until(until)
        deadline = time.monotonic() + self.expiry_grace
        while not await self.consume(key, until + 60):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def memory_backend(clock: FakeClock) -> Backend:
    store = MemoryNonceStore(maxsize=10_000, clock=clock)

    async def consume(key: str, until: float) -> bool:
        return store.consume(key, until)

    async def ping() -> None:
        store.ping()

    async def wait_until(t: float) -> None:
        clock.now = max(clock.now, t)

    return Backend("memory", consume, ping, now=clock, wait_until=wait_until, sync=store, loop_safe=True)


async def real_wait_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def redis_backend(client: redis.Redis) -> Backend:
    store = RedisNonceStore(client, unique_prefix(), timeout=ROOMY_TIMEOUT)

    async def consume(key: str, until: float) -> bool:
        return store.consume(key, until)

    async def ping() -> None:
        store.ping()

    return Backend(
        "redis",
        consume,
        ping,
        now=time.time,
        wait_until=real_wait_until,
        sync=store,
        loop_safe=False,
        expiry_grace=2.0,
    )


def async_redis_backend(client: redis.asyncio.Redis) -> Backend:
    store = AsyncRedisNonceStore(client, unique_prefix(), timeout=ROOMY_TIMEOUT)
    return Backend(
        "redis-async",
        store.consume,
        store.ping,
        now=time.time,
        wait_until=real_wait_until,
        sync=None,
        loop_safe=True,
        expiry_grace=2.0,
    )


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Backend]:
    """A fresh, empty nonce store (own prefix on the shared redis-server) for each backend."""
    if request.param == "memory":
        yield memory_backend(clock)
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    if request.param == "redis":
        client = redis.Redis.from_url(redis_server.url, **client_options())
        yield redis_backend(client)
        client.close()
    else:
        aclient = redis.asyncio.Redis.from_url(redis_server.url, **client_options(asynchronous=True))
        yield async_redis_backend(aclient)
        await aclient.aclose()
