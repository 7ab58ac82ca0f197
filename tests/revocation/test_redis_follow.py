"""Redis stores across workers: each sees the others' revocations; holes in the sequence, garbage
and lost messages lead to a full resync; a worker cut off from Redis, a Redis killed, restarted
empty or stalled makes the mirror untrusted, then it resyncs; nothing revoked is ever readmitted."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import redis

from jwt_middleware.errors import StoreError
from jwt_middleware.revocation._redis_ops import TRIM_GRACE

from ..support.redis_server import RedisServer
from ..support.tcp_proxy import LoopbackProxy
from .conftest import ISSUER, MAX_STALENESS, Worker, eventually, unique_prefix

KINDS = ["redis", "redis-async"]
#: How long the mirror may take to stop being trusted once Redis is gone: its bound, plus room.
UNTRUSTED_WITHIN = MAX_STALENESS + 3.0
MakeWorker = Callable[..., Any]


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


async def synced_pair(
    make_worker: MakeWorker, kind: str, url: str, admin_url: str, prefix: str
) -> tuple[Worker, Worker]:
    """A ``kind`` worker on ``url`` and a sync admin on ``admin_url`` under ``prefix``, both synced."""
    worker = await make_worker(kind, url, prefix)
    admin = await make_worker("redis", admin_url, prefix)
    await eventually(lambda: worker.trusted() and admin.trusted(), what="first sync")
    return worker, admin


@pytest.mark.parametrize(("first", "second"), [("redis", "redis"), ("redis-async", "redis-async"),
                                               ("redis", "redis-async")])
async def test_two_workers_see_each_others_revocations_of_every_kind(
    redis_server: RedisServer, make_worker: MakeWorker, first: str, second: str
) -> None:
    prefix = unique_prefix()
    one = await make_worker(first, redis_server.url, prefix)
    two = await make_worker(second, redis_server.url, prefix)
    await eventually(lambda: one.trusted() and two.trusted(), what="first sync")
    now = time.time()
    for kind in ("token", "subject", "session", "client"):
        for source, sink in ((one, two), (two, one)):
            value = f"{kind}-from-{source.kind}-{id(source)}"
            await source.revoke(kind, value, now + 600 if kind == "token" else now)
            await eventually(partial(sink.knows, kind, value), what=f"{kind} revocation seen")
            assert value in sink.seen  # the follower's listener heard it: verified-cache entries can go


@dataclass
class Sample:
    at: float
    staleness: float
    trusted: bool
    known: dict[str, bool]


class Sampler:
    """Checks ``worker``'s mirror every 5 ms from a task, as a stream of requests would."""

    def __init__(self, worker: Worker, watched: list[tuple[str, str]]) -> None:
        self.worker = worker
        self.watched = watched
        self.samples: list[Sample] = []
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        mirror = self.worker.mirror
        while not self._stop.is_set():
            now = time.time()
            staleness, trusted = mirror.staleness(now), mirror.trusted(now)
            known = {value: self.worker.knows(kind, value) for kind, value in self.watched}  # read last
            self.samples.append(Sample(now, staleness, trusted, known))
            await asyncio.sleep(0.005)

    async def stop(self) -> list[Sample]:
        self._stop.set()
        await self._task
        return self.samples


def assert_never_readmitted(samples: list[Sample], always: list[str], later: list[str], committed: float) -> None:
    """``always`` refused in every sample; ``later`` (committed at ``committed``) refused by every
    sample whose mirror was confirmed current at or after that, and by every trusted one past the bound."""
    assert samples
    for sample in samples:
        for value in always:
            assert sample.known[value], f"{value} readmitted at {sample.at}"
        current_since = sample.at - sample.staleness
        for value in later:
            if sample.trusted and current_since >= committed:
                assert sample.known[value], f"{value} readmitted by a mirror confirmed current after it"
            if sample.at > committed + MAX_STALENESS:
                assert sample.known[value] or not sample.trusted, f"{value} admitted past the staleness bound"


@pytest.mark.parametrize("kind", KINDS)
async def test_worker_cut_off_from_redis_stops_being_trusted_then_resyncs_revocations_made_meanwhile(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    with LoopbackProxy(server.port) as link:
        worker, admin = await synced_pair(make_worker, kind, link.url, server.url, unique_prefix())
        await admin.revoke("subject", "before", time.time())
        await eventually(lambda: worker.knows("subject", "before"))
        sampler = Sampler(worker, [("subject", "before"), ("subject", "during"), ("token", "jti-during")])
        link.cut()
        took = await eventually(lambda: not worker.trusted(), within=UNTRUSTED_WITHIN, what="untrusted")
        print(f"\n{kind}: untrusted {took:.2f} s after the link was cut (bound {MAX_STALENESS} s)")
        await admin.revoke("subject", "during", time.time())  # by another client, while disconnected
        await admin.revoke("token", "jti-during", time.time() + 600)
        committed = time.time()
        await asyncio.sleep(0.5)
        assert not worker.knows("subject", "during") and not worker.trusted()
        link.restore()
        await eventually(lambda: worker.trusted() and worker.knows("subject", "during")
                         and worker.knows("token", "jti-during"), what="resync after reconnect")
        await asyncio.sleep(0.2)
        samples = await sampler.stop()
    assert any(not sample.trusted for sample in samples)
    assert samples[-1].trusted and all(samples[-1].known.values())
    assert_never_readmitted(samples, ["before"], ["during", "jti-during"], committed)


@pytest.mark.parametrize("kind", KINDS)
async def test_redis_killed_and_restarted_empty_gets_every_entry_back_and_nothing_is_readmitted(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    prefix = unique_prefix()
    worker, admin = await synced_pair(make_worker, kind, server.url, server.url, prefix)
    await admin.revoke("subject", "before", time.time())
    await admin.revoke("token", "jti-before", time.time() + 600)
    await eventually(lambda: worker.knows("subject", "before") and worker.knows("token", "jti-before"))
    sampler = Sampler(worker, [("subject", "before"), ("token", "jti-before")])
    server.stop()
    took = await eventually(lambda: not worker.trusted(), within=UNTRUSTED_WITHIN, what="untrusted")
    print(f"\n{kind}: untrusted {took:.2f} s after redis-server was killed")
    with pytest.raises(StoreError):  # made while Redis is gone: fails, yet holds where it was made
        await admin.revoke("session", "while-down", time.time())
    assert admin.knows("session", "while-down")
    server.start()  # same port, no data: Redis lost everything
    await eventually(lambda: worker.trusted() and worker.knows("session", "while-down"), within=10,
                     what="resync and restore after restart")
    samples = await sampler.stop()
    assert_never_readmitted(samples, ["before", "jti-before"], [], 0.0)
    fresh = await make_worker("redis", server.url, prefix)  # a worker started now knows only Redis
    await eventually(lambda: fresh.trusted() and fresh.knows("subject", "before")
                     and fresh.knows("token", "jti-before") and fresh.knows("session", "while-down"),
                     what="entries restored to Redis")


@pytest.mark.parametrize("kind", KINDS)
async def test_stalled_redis_makes_the_mirror_untrusted_and_it_recovers(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    worker = await make_worker(kind, server.url, unique_prefix())
    await eventually(worker.trusted, what="first sync")
    with server.stalled(at_most=15):
        took = await eventually(lambda: not worker.trusted(), within=UNTRUSTED_WITHIN, what="untrusted")
        print(f"\n{kind}: untrusted {took:.2f} s after redis-server was stalled")
        assert worker.mirror.staleness(time.time()) > MAX_STALENESS
    await eventually(worker.trusted, what="trusted again")


@pytest.mark.parametrize("kind", KINDS)
async def test_start_with_redis_unreachable_returns_untrusted_and_syncs_once_it_is_back(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    with LoopbackProxy(server.port) as link:
        link.cut()
        started = time.monotonic()
        worker = await make_worker(kind, link.url, unique_prefix())
        assert time.monotonic() - started < 3.0
        assert not worker.trusted()
        link.restore()
        await eventually(worker.trusted, what="first sync after Redis came back")


@pytest.mark.parametrize("kind", KINDS)
async def test_wall_clock_stepped_back_during_an_outage_does_not_keep_the_mirror_trusted(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    with LoopbackProxy(server.port) as link:
        worker = await make_worker(kind, link.url, unique_prefix(), clock=clock)
        await eventually(lambda: worker.mirror.trusted(clock()), what="first sync")
        link.cut()
        offset[0] = -3600.0  # an hour back: the last confirmation now looks an hour ahead
        await eventually(lambda: not worker.mirror.trusted(clock()), within=UNTRUSTED_WITHIN, what="untrusted")
        link.restore()
        await eventually(lambda: worker.mirror.trusted(clock()), what="trusted again")


@pytest.mark.parametrize("announce", ["gap", "garbage", "resync-marker"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_hole_in_the_sequence_or_a_strange_message_triggers_a_full_resync(
    server: RedisServer, make_worker: MakeWorker, kind: str, announce: str
) -> None:
    # Heartbeats 3 s apart: a heartbeat finds a lost message only at the second one after it,
    # so learning the lost entry within 1 s can only come from the message's own resync.
    prefix = unique_prefix()
    worker = await make_worker(kind, server.url, prefix, heartbeat=3.0, max_staleness=10.0)
    await eventually(worker.trusted, what="first sync")
    with redis.Redis.from_url(server.url) as raw:
        raw.hset(f"{prefix}:cutoffs", compact(["subject", ISSUER, "lost"]), repr(time.time()))
        raw.incr(f"{prefix}:seq")  # a change whose message never went out
        seq = raw.incr(f"{prefix}:seq")
        body = {"gap": compact(["subject", ISSUER, "announced", time.time()]), "garbage": "[[[", "resync-marker": "*"}
        raw.publish(f"{prefix}:changes", f"{seq} {body[announce]}")
    took = await eventually(lambda: worker.knows("subject", "lost"), within=1.0, what="resync")
    print(f"\n{kind} {announce}: lost entry learned by resync in {took * 1000:.0f} ms")
    if announce == "gap":
        assert worker.knows("subject", "announced")  # the message itself applied too


@pytest.mark.parametrize("kind", KINDS)
async def test_a_lost_message_is_found_by_the_heartbeat(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    prefix = unique_prefix()
    worker = await make_worker(kind, server.url, prefix)
    await eventually(worker.trusted, what="first sync")
    with redis.Redis.from_url(server.url) as raw:
        raw.hset(f"{prefix}:cutoffs", compact(["client", ISSUER, "silent"]), repr(time.time()))
        raw.incr(f"{prefix}:seq")  # no message at all: only the number moved
    await eventually(lambda: worker.knows("client", "silent"), what="heartbeat resync")
    await eventually(worker.trusted, what="trusted")


@pytest.mark.parametrize("kind", KINDS)
async def test_expired_token_entries_are_forgotten_by_every_mirror_and_trimmed_in_redis(
    server: RedisServer, make_worker: MakeWorker, kind: str
) -> None:
    prefix = unique_prefix()
    worker, admin = await synced_pair(make_worker, kind, server.url, server.url, prefix)
    now = time.time()
    await admin.revoke("token", "short", now + 0.5)
    await admin.revoke("token", "long", now + 600)
    await eventually(lambda: worker.knows("token", "short") and worker.knows("token", "long"))
    await asyncio.sleep(0.6)
    assert not worker.knows("token", "short") and worker.knows("token", "long")
    await eventually(lambda: len(worker.mirror) == 1, what="forgotten on a heartbeat")
    await admin.revoke("token", "ancient", time.time() - TRIM_GRACE - 10)  # the write trims
    with redis.Redis.from_url(server.url, decode_responses=True) as raw:
        members = [json.loads(member)[1] for member in raw.zrange(f"{prefix}:tokens", 0, -1)]
    assert sorted(members) == ["long", "short"]  # "short" is kept for the grace, "ancient" is gone


async def test_large_state_is_read_in_pages_on_resync(server: RedisServer, make_worker: MakeWorker) -> None:
    prefix = unique_prefix()
    until = time.time() + 600
    with redis.Redis.from_url(server.url) as raw:
        pipe = raw.pipeline(transaction=False)
        for index in range(2500):
            pipe.zadd(f"{prefix}:tokens", {compact([ISSUER, f"jti-{index}"]): until})
            pipe.hset(f"{prefix}:cutoffs", compact(["subject", ISSUER, f"user-{index}"]), repr(until - 600))
        pipe.execute()
    for kind in KINDS:
        worker = await make_worker(kind, server.url, prefix)
        await eventually(worker.trusted, what="first sync")
        assert len(worker.mirror) == 5000
        assert worker.knows("token", "jti-2499") and worker.knows("subject", "user-0")
