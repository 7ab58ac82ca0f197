"""One contract for every nonce store: memory, Redis and async Redis answer alike (limits' all_storage)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from jwt_middleware.stores.redis import RedisNonceStore
from jwt_middleware.testing import FakeClock

from ..support.redis_server import RedisServer
from .conftest import ROOMY_TIMEOUT, Backend, client_options, unique_prefix

ROOT = Path(__file__).resolve().parents[2]


async def test_second_use_of_a_value_is_a_replay(store: Backend) -> None:
    until = store.now() + 60
    assert await store.consume("jti-1", until) is True
    assert await store.consume("jti-1", until) is False
    assert await store.consume("jti-1", until + 3600) is False  # a later `until` does not reopen it


async def test_values_are_independent(store: Backend) -> None:
    until = store.now() + 60
    assert await store.consume("a", until) is True
    assert await store.consume("b", until) is True
    assert await store.consume("a", until) is False
    assert await store.consume("A", until) is True


async def test_value_is_remembered_until_its_until_then_forgotten(store: Backend) -> None:
    until = store.now() + 1.2
    assert await store.consume("k", until) is True
    await store.wait_until(until - 0.3)
    assert await store.consume("k", until) is False
    assert await store.first_use_after("k", until) is True


async def test_value_whose_window_already_closed_is_still_remembered(store: Backend) -> None:
    """A caller that passes a past `until` must not get an unlimited number of first uses."""
    until = store.now() - 5
    assert await store.consume("late", until) is True
    assert await store.consume("late", until) is False


@pytest.mark.parametrize("until", [math.nan, math.inf, -math.inf])
async def test_non_finite_until_is_refused_before_any_io(store: Backend, until: float) -> None:
    with pytest.raises(ValueError):
        await store.consume("nan", until)
    assert await store.consume("nan", store.now() + 60) is True  # nothing was stored


async def test_long_keys_work_and_stay_distinct(store: Backend) -> None:
    until = store.now() + 60
    keys = ["x" * 5000, "x" * 4999 + "y", "x" * 201, "x" * 200, "x" * 199]
    assert [await store.consume(k, until) for k in keys] == [True] * len(keys)
    assert [await store.consume(k, until) for k in keys] == [False] * len(keys)


async def test_keys_with_odd_bytes_work_and_stay_distinct(store: Backend) -> None:
    until = store.now() + 60
    keys = ["a b", "a\x00b", "a\x01b", "a\nb", "a\rb", "aéb", "a\u202eb", "a\ud800b", "a😀b", "ab", "", " "]
    assert [await store.consume(k, until) for k in keys] == [True] * len(keys)
    assert [await store.consume(k, until) for k in keys] == [False] * len(keys)


async def test_key_shaped_like_a_digest_does_not_collide_with_the_hashed_key(store: Backend) -> None:
    """A client choosing jti = "h:" + sha256(other) must not burn (or free) the other key."""
    until = store.now() + 60
    long_key = "L" * 500
    lookalike = "h:" + hashlib.sha256(long_key.encode()).hexdigest()
    assert await store.consume(lookalike, until) is True
    assert await store.consume(long_key, until) is True
    assert await store.consume(long_key, until) is False


async def test_ping_returns_when_ready(store: Backend) -> None:
    await store.ping()  # returns, raises nothing


async def test_fifty_threads_racing_one_value_get_one_first_use(store: Backend) -> None:
    if store.sync is None:
        pytest.skip("async-only store: covered by the asyncio task race")
    sync_store = store.sync
    until = store.now() + 60
    barrier = threading.Barrier(50)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(timeout=10)
        fresh = sync_store.consume("raced", until)
        with lock:
            results.append(fresh)

    threads = [threading.Thread(target=race) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 50
    assert results.count(True) == 1


async def test_fifty_tasks_racing_one_value_get_one_first_use(store: Backend) -> None:
    if not store.loop_safe:
        pytest.skip("a blocking store is not called from the event loop (Authenticator.check_driver)")
    until = store.now() + 60
    results = await asyncio.gather(*(store.consume("raced", until) for _ in range(50)))
    assert results.count(True) == 1


_WORKER = """
import sys, time
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from jwt_middleware.stores.redis import RedisNonceStore

url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
store = RedisNonceStore(client, prefix, timeout=3)
store.ping()
print("ready", flush=True)
sys.stdin.readline()
until = time.time() + 60
print(" ".join(str(i) for i in range(count) if store.consume(f"jti-{i}", until)), flush=True)
"""


def test_two_processes_consume_each_value_exactly_once(redis_server: RedisServer) -> None:
    """Two OS processes (two app workers) race over the same 200 values on one redis-server."""
    count, prefix = 200, unique_prefix()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_server.url, prefix, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:  # both connected before either starts: they really race
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    won = [[int(i) for i in out.split()] for out in outputs]
    assert all(worker.returncode == 0 for worker in workers)
    assert not set(won[0]) & set(won[1])
    assert sorted(won[0] + won[1]) == list(range(count))


def test_redis_expiry_is_the_time_left_on_the_store_clock_rounded_up(redis_server: RedisServer) -> None:
    """PX = until - clock(), in ms rounded up: the window as the app measures it, not Redis's clock."""
    client = redis.Redis.from_url(redis_server.url, **client_options())
    try:
        prefix = unique_prefix()
        clock = FakeClock(1_000_000_000.0)  # an app clock far from Redis's own: it does not matter
        store = RedisNonceStore(client, prefix, clock=clock, timeout=ROOMY_TIMEOUT)
        assert store.consume("rel", clock.now + 100.0004) is True
        left = client.pttl(prefix + "rel")
        assert 100_001 - 5_000 < left <= 100_001  # counted from arrival: never more than asked
    finally:
        client.close()
