"""Backends failing under steady traffic, end to end: a real uvicorn process, a real redis-server,
a real HTTPS issuer.

Redis (the nonce store): while it is down a one-time route answers 503 with ``Retry-After`` when
the config fails closed (never 200, never 500, never a replay let through), routes without
one-time use keep answering 200, and once Redis is back on the same port the route recovers
by itself. With ``store_failure="open"`` the route answers 200 while Redis is down: that is the
documented trade-off, and it reopens the replay window (a token used during the outage is
accepted again), which the test shows. DPoP requests need the store for their proof's ``jti``
on every route, so they follow the one-time route: 503 when closed, 200 when open.

Issuer (the key source): down at start (503 until it returns, then 200 by itself), down after
warm-up (the last good keys keep serving), slow (no request waits past ``fetch_timeout`` plus a
margin, whether keys are cold or stale).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from joserfc.jwk import Key

from jwt_middleware.testing import make_key, mint, public_jwks

from ..support.dpop_client import ES256Client
from ..support.jwks_server import JWKSServer
from ..support.redis_server import RedisServer
from .app import AppSettings, ServerProcess

ISSUER = "https://issuer.faults.test"
PAUSE = 0.02  # seconds between two probes of one loop
FETCH_TIMEOUT = 1.0  # seconds (KeyPolicy.fetch_timeout of the issuer-fault servers)
#: how much longer than fetch_timeout a request may take (scheduling, TLS, the response itself)
MARGIN = 0.75


@dataclass
class Sample:
    phase: str
    kind: str
    sent: float
    latency: float
    status: int
    retry_after: str | None
    token: str = ""


class Probe:
    """Steady traffic against one server; each answer is tagged with the phase it was sent in."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.samples: list[Sample] = []
        self.phase = "start"

    async def get(
        self, client: httpx.AsyncClient, kind: str, path: str, token: str, headers: dict[str, str] | None = None
    ) -> Sample:
        phase, sent = self.phase, time.monotonic()
        response = await client.get(path, headers=headers or {"authorization": f"Bearer {token}"})
        sample = Sample(phase, kind, sent, time.monotonic() - sent, response.status_code,
                        response.headers.get("retry-after"), token)
        self.samples.append(sample)
        return sample

    def of(self, phase: str, kind: str | None = None) -> list[Sample]:
        return [s for s in self.samples if s.phase == phase and (kind is None or s.kind == kind)]


async def one_time_loop(probe: Probe, key: Key, stop: asyncio.Event) -> None:
    """Each round: a fresh one-time token, a replay of one accepted in this phase, /me with a
    Bearer token, and /me with a DPoP-bound token and a fresh proof (whose jti needs the store)."""
    reusable = mint(key, issuer=ISSUER, lifetime=300)
    holder = ES256Client()
    bound = mint(key, {"cnf": {"jkt": holder.thumbprint()}}, issuer=ISSUER, lifetime=300)
    me = f"{probe.server.base_url}/me"
    accepted: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=probe.server.base_url, timeout=10.0) as client:
        while not stop.is_set():
            fresh = await probe.get(client, "fresh", "/once", mint(key, issuer=ISSUER, lifetime=300))
            if fresh.status == 200:
                accepted.setdefault(fresh.phase, []).append(fresh.token)
            used = accepted.get(probe.phase)
            if used:
                await probe.get(client, "replay", "/once", used[-1])
            await probe.get(client, "me", "/me", reusable)
            proof = holder.proof("GET", me, bound, time.time())
            await probe.get(client, "dpop", "/me", bound, {"authorization": f"DPoP {bound}", "dpop": proof})
            await asyncio.sleep(PAUSE)


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> Key:
    return make_key("ES256", kid="faults-1")


@pytest.fixture(scope="module")
def jwks_file(signing_key: Key, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("keys")) / "jwks.json"
    path.write_text(json.dumps(public_jwks(signing_key)))
    return str(path)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a port that stays the same across its restart."""
    server = RedisServer().start()
    yield server
    server.remove()


def start_all(*servers: ServerProcess) -> None:
    for server in servers:
        server.spawn()
    started = time.monotonic()
    for server in servers:
        server.wait_ready(timeout=max(1.0, 15.0 - (time.monotonic() - started)))


async def test_redis_outage_fails_closed_or_open_and_recovers_by_itself(
    own_redis: RedisServer, jwks_file: str, signing_key: Key
) -> None:
    def settings(store_failure: str) -> AppSettings:
        return AppSettings(issuer=ISSUER, jwks_file=jwks_file, redis_port=own_redis.port,
                           store_failure=store_failure)

    closed, opened = ServerProcess(settings("closed")), ServerProcess(settings("open"))
    with closed, opened:
        start_all(closed, opened)
        probes = [Probe(closed), Probe(opened)]
        stop = asyncio.Event()
        loops = [asyncio.create_task(one_time_loop(p, signing_key, stop)) for p in probes]

        def enter(phase: str) -> None:
            for probe in probes:
                probe.phase = phase

        enter("up")
        await asyncio.sleep(1.0)
        enter("stopping")
        await asyncio.to_thread(own_redis.stop)
        enter("down")
        await asyncio.sleep(2.0)
        enter("restarting")
        await asyncio.to_thread(own_redis.start)  # same port, same folder
        enter("back")
        await asyncio.sleep(2.5)
        stop.set()
        await asyncio.gather(*loops)
        # Not asserted, reported: a Redis restarted without persistence (this helper runs with
        # --save "" --appendonly no) has forgotten what was consumed before it went down.
        before = probes[0].of("up", "fresh")[0].token  # accepted: asserted below
        async with httpx.AsyncClient(base_url=closed.base_url, timeout=10.0) as client:
            again = await client.get("/once", headers={"authorization": f"Bearer {before}"})
        print(f"\nreplay, after the restart, of a token used before the outage: {again.status_code}"
              " (Redis without persistence forgets consumed values; see benchmarks/LOAD.md)")

    closed_probe, open_probe = probes
    everything = closed_probe.samples + open_probe.samples
    assert all(s.status < 500 or s.status == 503 for s in everything), "a 5xx other than 503"
    for probe in probes:
        assert {s.status for s in probe.of("up", "fresh")} == {200}
        assert {s.status for s in probe.of("up", "replay")} == {401}
        assert {s.status for s in probe.samples if s.kind == "me"} == {200}  # never needed Redis
        assert {s.status for s in probe.of("up", "dpop")} == {200}
        assert probe.of("back", "dpop")[-1].status == 200

    # fail closed: every one-time request during the outage is a 503 with Retry-After
    down = closed_probe.of("down", "fresh")
    assert len(down) >= 10
    assert {s.status for s in down} == {503}
    assert all(s.retry_after and s.retry_after.isdigit() for s in down)
    assert not [s for s in closed_probe.samples if s.kind == "replay" and s.status == 200]
    dpop_down = closed_probe.of("down", "dpop")  # a proof's jti cannot be recorded either
    assert dpop_down and {s.status for s in dpop_down} == {503}
    # no request waited on the dead Redis for long (0.5 s timeouts, one retry)
    print(f"\nclosed: {len(down)} requests during the outage, all 503, slowest {max(s.latency for s in down):.3f} s")

    # recovery without restarting the app: 200 again, and replays refused again
    back = closed_probe.of("back", "fresh")
    assert any(s.status == 200 for s in back), "the one-time route did not recover"
    first_ok = next(i for i, s in enumerate(back) if s.status == 200)
    assert {s.status for s in back[first_ok:]} == {200}
    assert {s.status for s in back[:first_ok]} <= {503}
    assert {s.status for s in closed_probe.of("back", "replay")} == {401}
    recovered_after = back[first_ok].sent - back[0].sent
    print(f"closed: first 200 {recovered_after:.3f} s after Redis was back ({first_ok} 503s before it)")

    # fail open: the route keeps answering, and a token used during the outage is accepted again
    open_down = open_probe.of("down", "fresh")
    assert len(open_down) >= 10 and {s.status for s in open_down} == {200}
    assert {s.status for s in open_probe.of("down", "dpop")} == {200}
    replays = open_probe.of("down", "replay")
    assert replays and {s.status for s in replays} == {200}  # the replay window "open" reopens
    assert {s.status for s in open_probe.of("back", "replay")} == {401}


# --- the issuer -------------------------------------------------------------------------------


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def issuer_server(jwks_server: JWKSServer, ca_file: str) -> ServerProcess:
    jwks_server.behaviour.cache_control = "max-age=1"  # the set expires every second
    policy = {"min_ttl": 1.0, "default_ttl": 1.0, "max_ttl": 5.0, "refresh_ahead": 0.5,
              "fetch_timeout": FETCH_TIMEOUT, "failure_backoff": 0.5, "kid_miss_cooldown": 1.0}
    return ServerProcess(AppSettings(issuer=ISSUER, jwks_url=jwks_server.jwks_url, ca_file=ca_file, key_policy=policy))


async def steady(
    probe: Probe, key: Key, seconds: float, until: Callable[[Sample], bool] | None = None
) -> None:
    """GET /me for ``seconds`` (or until ``until(sample)``), one request at a time.

    Each request carries a fresh token: a repeated one would be answered from the verified-token
    cache without looking at the key set at all.
    """
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=probe.server.base_url, timeout=10.0) as client:
        while time.monotonic() < deadline:
            sample = await probe.get(client, "me", "/me", mint(key, issuer=ISSUER, lifetime=300))
            if until is not None and until(sample):
                return
            await asyncio.sleep(PAUSE)


def slowest(samples: list[Sample]) -> float:
    return max(s.latency for s in samples)


async def test_issuer_slow_then_down_at_start_answers_503_then_recovers_by_itself(
    jwks_server: JWKSServer, ca_file: str, signing_key: Key
) -> None:
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(signing_key)
    behaviour.delay = 3 * FETCH_TIMEOUT  # slow and cold: no keys yet, none in time
    with issuer_server(jwks_server, ca_file) as server:
        server.start()
        probe = Probe(server)
        probe.phase = "cold-slow"
        await steady(probe, signing_key, 2.5)
        behaviour.delay, behaviour.mode = 0.0, "503"
        probe.phase = "cold-down"
        await steady(probe, signing_key, 1.5)
        behaviour.mode = "ok"
        probe.phase = "back"
        await steady(probe, signing_key, 6.0, until=lambda s: s.status == 200)
        probe.phase = "after"
        await steady(probe, signing_key, 1.0)

    cold_slow, cold_down = probe.of("cold-slow"), probe.of("cold-down")
    print(f"\ncold and slow: {len(cold_slow)} requests, slowest {slowest(cold_slow):.3f} s; "
          f"cold and down: {len(cold_down)} requests; issuer hits {behaviour.hits('/jwks')}")
    assert {s.status for s in cold_slow} == {503} and {s.status for s in cold_down} == {503}
    assert all(s.retry_after and s.retry_after.isdigit() for s in cold_slow + cold_down)
    assert slowest(cold_slow) < FETCH_TIMEOUT + MARGIN
    back = probe.of("back")
    assert back[-1].status == 200, "no 200 within 6 s of the issuer's return"
    assert {s.status for s in back[:-1]} <= {503}
    print(f"issuer back: first 200 after {back[-1].sent - back[0].sent:.3f} s")
    assert {s.status for s in probe.of("after")} == {200}


async def test_issuer_down_or_slow_after_warm_up_keeps_serving_stale_keys_without_waiting(
    jwks_server: JWKSServer, ca_file: str, signing_key: Key
) -> None:
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(signing_key)
    with issuer_server(jwks_server, ca_file) as server:
        server.start()
        probe = Probe(server)
        probe.phase = "warm"
        await steady(probe, signing_key, 1.0)
        hits = behaviour.hits("/jwks")
        # slow first: the set expires while healthy, so a request meets a fetch that hangs
        for phase, change in (("slow", {"delay": 3 * FETCH_TIMEOUT}), ("down-503", {"mode": "503", "delay": 0.0}),
                              ("down-drop", {"mode": "drop"})):
            for name, value in change.items():
                setattr(behaviour, name, value)
            probe.phase = phase
            await steady(probe, signing_key, 2.5)  # the 1 s set expires twice over
        tried = behaviour.hits("/jwks") - hits

    for phase in ("warm", "slow", "down-503", "down-drop"):
        samples = probe.of(phase)
        assert len(samples) >= 5 and {s.status for s in samples} == {200}, phase
        print(f"\n{phase}: {len(samples)} requests, all 200, slowest {slowest(samples):.3f} s", end="")
    assert tried >= 3  # the server kept trying to refresh during the faults
    assert slowest(probe.of("slow")) < FETCH_TIMEOUT + MARGIN


async def test_token_verified_before_its_key_was_retired_is_refused_once_the_set_expires(
    jwks_server: JWKSServer, ca_file: str
) -> None:
    old, new = make_key("ES256", kid="old"), make_key("ES256", kid="new")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(old)
    token = mint(old, issuer=ISSUER, lifetime=300)
    with issuer_server(jwks_server, ca_file) as server:
        server.start()
        probe = Probe(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
            for _ in range(3):  # verified, then answered from the verified-token cache
                assert (await probe.get(client, "me", "/me", token)).status == 200
            fetches = behaviour.hits("/jwks")
            behaviour.jwks = public_jwks(new)  # the issuer retires the key (say it leaked)
            probe.phase = "retired"
            deadline = time.monotonic() + 4.0  # the set lives 1 s; refresh-ahead at 0.5 s
            while time.monotonic() < deadline:
                await probe.get(client, "me", "/me", token)
                await asyncio.sleep(0.05)
    print(f"\nafter retirement: {sorted({s.status for s in probe.of('retired')})}, "
          f"JWKS fetches meanwhile: {behaviour.hits('/jwks') - fetches}")
    assert probe.of("retired")[-1].status == 401
