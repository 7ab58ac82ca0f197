"""Fixtures for the revocation state tests: a redis-server of this folder's own, store factories
(sync thread follower, asyncio task follower) behind one awaitable face, unique key prefixes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwt_middleware.revocation import Revocation, RevocationMirror, RevokedToken
from jwt_middleware.revocation.redis import AsyncRedisRevocationStore, RedisRevocationStore

# own_server/server: a module's own redis-server (it stops, restarts or stalls it); ``x as x`` marks
# them re-exported, so pytest finds the fixtures here and ruff keeps the imports
from ..support.redis_server import own_server as own_server
from ..support.redis_server import server as server

ISSUER = "https://issuer.test"
#: Store timing of these tests: a fast heartbeat so outages show quickly, and a staleness bound
#: with room for a busy 2-core machine (the defaults are 0.25 s and 1.0 s).
HEARTBEAT = 0.1
MAX_STALENESS = 1.0
TIMEOUT = 0.5
#: Generous bound for "eventually" (seconds): against a hang, not a benchmark.
EVENTUALLY = 5.0


def unique_prefix() -> str:
    return "{jwtmw-test:" + uuid.uuid4().hex + "}"


def client_options(*, asynchronous: bool = False, socket_timeout: float = 0.2) -> dict[str, Any]:
    """Settings as the store docstrings recommend: short socket timeouts, no retries of the client's."""
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": AsyncRetry(NoBackoff(), 0) if asynchronous else Retry(NoBackoff(), 0),
    }


@dataclass
class Worker:
    """One store (one "worker"), sync or async, behind an awaitable face."""

    kind: str
    store: RedisRevocationStore | AsyncRedisRevocationStore
    close_client: Callable[[], Any]
    #: monotonic time at which each changed value reached this worker's mirror (via listeners)
    seen: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store.mirror.add_listener(self.heard)

    def heard(self, change: Revocation) -> None:
        value = change.jti if isinstance(change, RevokedToken) else change.value
        self.seen.setdefault(value, time.monotonic())

    @property
    def mirror(self) -> RevocationMirror:
        return self.store.mirror

    async def revoke(self, kind: str, value: str, time_: float, issuer: str = ISSUER) -> None:
        method = getattr(self.store, f"revoke_{kind}")
        result = method(issuer, value, time_)
        if asyncio.iscoroutine(result):
            await result

    async def start(self) -> None:
        if isinstance(self.store, AsyncRedisRevocationStore):
            await self.store.astart()
        else:
            await asyncio.to_thread(self.store.start)

    async def close(self) -> None:
        if isinstance(self.store, AsyncRedisRevocationStore):
            await self.store.aclose()
        else:
            await asyncio.to_thread(self.store.close)
        result = self.close_client()
        if asyncio.iscoroutine(result):
            await result

    def trusted(self) -> bool:
        return self.mirror.trusted(time.time())

    def knows(self, kind: str, value: str, issuer: str = ISSUER) -> bool:
        """Whether the mirror refuses a token of ``value`` issued long ago (or the jti itself)."""
        mirror, now = self.mirror, time.time()
        if kind == "token":
            return mirror.check(issuer, value, None, None, None, 0.0, now) is not None
        args: dict[str, str | None] = {"subject": None, "session": None, "client": None}
        args[kind] = value
        return mirror.check(issuer, None, args["subject"], args["session"], args["client"], 0.0, now) is not None

    def knows_all(self, pairs: list[tuple[str, str]]) -> bool:
        return all(self.knows(kind, value) for kind, value in pairs)


async def eventually(condition: Callable[[], bool], within: float = EVENTUALLY, what: str = "condition") -> float:
    """Poll ``condition`` every 10 ms; returns the seconds it took, fails after ``within``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"{what} did not hold within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
async def make_worker() -> AsyncIterator[Callable[..., Any]]:
    """``await make_worker(kind, url, prefix, **store_options)``: a started store, closed at the end."""
    workers: list[Worker] = []

    async def make(kind: str, url: str, prefix: str, *, start: bool = True, **options: Any) -> Worker:
        options = {"timeout": TIMEOUT, "heartbeat": HEARTBEAT, "max_staleness": MAX_STALENESS, **options}
        worker: Worker
        if kind == "redis":
            client = redis.Redis.from_url(url, **client_options())
            worker = Worker(kind, RedisRevocationStore(client, prefix, **options), client.close)
        else:
            aclient = redis.asyncio.Redis.from_url(url, **client_options(asynchronous=True))
            worker = Worker(kind, AsyncRedisRevocationStore(aclient, prefix, **options), aclient.aclose)
        workers.append(worker)
        if start:
            await worker.start()
        return worker

    yield make
    for worker in workers:
        await worker.close()
