"""Mixed traffic against a real uvicorn process while the issuer rotates its keys.

The server (``tests/load/app.py`` in its own interpreter) trusts a real HTTPS issuer
(``tests/support/jwks_server.py``) with a key set that lives about one second, so the set is
refetched all through the run. A background thread rotates the issuer's keys every
``TICK`` seconds: it publishes a new key next to the old ones, tokens are then minted with it,
and the oldest key is dropped. An async driver with bounded concurrency sends a mix of valid,
forged, expired, ``alg: none``, unknown-kid and retired-key tokens, one-time tokens used twice,
DPoP requests with fresh and replayed proofs, and DPoP-bound tokens sent as Bearer. Each answer
is compared with the outcome the driver computed when it built the request.

Expectations are kept unambiguous around a rotation: a key is "valid" only once it has been
published for ``SETTLE`` seconds (longer than the server's key set can be stale) and until
``SETTLE`` seconds before its scheduled removal; a key is "retired" only ``SETTLE`` seconds after
it left the set. Keys inside either transition window are not used.

``run_mixed`` is shared with ``benchmarks/load_mixed.py`` (the longer run).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import ssl
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trustme
from joserfc.jwk import Key

from jwt_middleware.testing import make_key, mint, public_jwks

from ..support.dpop_client import ES256Client
from ..support.jwks_server import JWKSServer
from .app import AppSettings, ServerProcess

ISSUER = "https://issuer.load.test"
TICK = 2.0  # seconds between rotations
KEY_LIFE = 4  # ticks a key stays published
#: seconds a key must be published (or retired) before its tokens are expected to pass (or fail).
#: The server's set lives 1 s (max-age=1, refresh-ahead 0.5 s): staleness stays well below this.
SETTLE = 2.5
KEY_POLICY = {
    "min_ttl": 1.0, "default_ttl": 2.0, "max_ttl": 5.0, "refresh_ahead": 0.5,
    "kid_miss_cooldown": 1.0, "fetch_timeout": 2.0, "failure_backoff": 0.5,
}
TOKEN_LIFETIME = 300  # seconds: no valid token expires during a run
RSS_GROWTH_LIMIT = 50 * 1024 * 1024


@dataclass
class KeyLife:
    key: Key
    published_at: float  # monotonic
    retire_at: float  # scheduled removal (monotonic); removal never happens earlier
    retired_at: float | None = None
    tokens: list[str] = field(default_factory=list)  # accepted tokens, replayed once the key is gone
    bound: list[str] = field(default_factory=list)  # DPoP-bound tokens


class Rotation:
    """The issuer's keys on a fixed schedule; a daemon thread publishes and retires them."""

    def __init__(self, server: JWKSServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        now = time.monotonic()
        first = KeyLife(make_key("ES256", kid="k0"), now - SETTLE, now + KEY_LIFE * TICK)
        self.lives: list[KeyLife] = [first]
        self.rotations = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rotation", daemon=True)
        self._publish(first.key)

    def _publish(self, *keys: Key) -> None:
        self.server.behaviour.jwks = public_jwks(*keys)

    def start(self) -> None:
        start = time.monotonic()
        with self.lock:  # the first key's life starts with the run
            self.lives[0].retire_at = start + KEY_LIFE * TICK
        self._start = start
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = 1
        while not self._stop.wait(max(0.0, self._start + tick * TICK - time.monotonic())):
            scheduled = self._start + tick * TICK
            key = make_key("ES256", kid=f"k{tick}")
            with self.lock:
                new = KeyLife(key, scheduled, scheduled + KEY_LIFE * TICK)
                self.lives.append(new)
                now = time.monotonic()
                retiring = [life for life in self.lives if life.retired_at is None and life.retire_at <= now]
                self._publish(*(life.key for life in self.lives if life.retired_at is None and life not in retiring))
                stamp = time.monotonic()
                new.published_at = stamp  # in the set no earlier than this
                for life in retiring:
                    life.retired_at = stamp  # gone from the set no earlier than this
                self.rotations += 1
            tick += 1

    def valid(self, now: float) -> list[KeyLife]:
        with self.lock:
            return [
                life for life in self.lives
                if life.retired_at is None and life.published_at + SETTLE <= now <= life.retire_at - SETTLE
            ]

    def retired(self, now: float) -> list[KeyLife]:
        with self.lock:
            return [
                life for life in self.lives
                if life.retired_at is not None and now >= life.retired_at + SETTLE and life.tokens
            ]


@dataclass
class Outcome:
    category: str
    expected: int
    status: int | None  # None: transport error
    latency: float
    detail: str = ""


@dataclass
class LoadReport:
    seconds: float
    requests: int
    by_category: Counter[str]
    wrong: list[Outcome]
    server_errors: int
    transport_errors: int
    latencies: list[float]
    rss_idle: int
    rss_start: int
    rss_end: int
    rss_series: list[int]
    server_cpu: float  # CPU seconds the server process used during the run
    jwks_fetches: int
    rotations: int
    server_log: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def summary(self) -> str:
        mib = 1024 * 1024
        lines = [
            f"requests={self.requests} in {self.seconds:.1f} s, rps={self.rps:.0f}, "
            f"p50={self.percentile(0.50) * 1000:.1f} ms, p99={self.percentile(0.99) * 1000:.1f} ms, "
            f"mean={statistics.fmean(self.latencies) * 1000 if self.latencies else 0:.1f} ms",
            f"wrong decisions={len(self.wrong)}, 5xx={self.server_errors}, transport errors={self.transport_errors}",
            f"server RSS: idle {self.rss_idle / mib:.1f} MiB, after warm-up {self.rss_start / mib:.1f} MiB, "
            f"end {self.rss_end / mib:.1f} MiB (growth {(self.rss_end - self.rss_start) / mib:+.1f} MiB)",
            "server RSS every 2 s (MiB): " + " ".join(f"{r / mib:.0f}" for r in self.rss_series),
            f"server CPU {self.server_cpu:.1f} s of {self.seconds:.1f} s (the rest of the time it waited on the driver)",
            f"key rotations={self.rotations}, JWKS fetches by the server={self.jwks_fetches}, "
            f"failed fetches={self.server_log.count('jwks fetch failed')}",
            "mix: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_category.items())),
        ]
        lines += [f"  WRONG {o.category}: expected {o.expected}, got {o.status} {o.detail}" for o in self.wrong[:10]]
        return "\n".join(lines)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def alg_none_token(kid: str | None) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "api", "sub": "mallory", "iat": now, "exp": now + 300}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


class Driver:
    """Builds each request with its expected status, sends it, and records the outcome."""

    #: category → weight; a category that cannot be built right now falls back to "valid"
    MIX: dict[str, int] = {
        "valid": 30, "valid_repeat": 15, "forged": 7, "expired": 7, "alg_none": 4, "unknown_kid": 4,
        "retired": 8, "one_time": 10, "one_time_burst": 2, "dpop": 10, "dpop_as_bearer": 3,
    }

    def __init__(self, rotation: Rotation, base_url: str) -> None:
        self.rotation = rotation
        self.base_url = base_url
        self.attacker = make_key("ES256", kid="attacker")
        self.dpop = ES256Client()
        self.jkt = self.dpop.thumbprint()
        self.outcomes: list[Outcome] = []
        self.rng = random.Random(1234)
        self._names = list(self.MIX)
        self._weights = list(self.MIX.values())

    async def send(
        self, client: httpx.AsyncClient, category: str, expected: int, path: str, headers: dict[str, str],
        detail: str = "",
    ) -> int | None:
        started = time.perf_counter()
        try:
            response = await client.get(path, headers=headers)
            status: int | None = response.status_code
            if status == 503 or (status is not None and status >= 500):
                detail += f" body={response.text[:120]!r}"
        except httpx.HTTPError as exc:
            status, detail = None, f"{detail} {type(exc).__name__}"
        self.outcomes.append(Outcome(category, expected, status, time.perf_counter() - started, detail))
        return status

    def _token(self, life: KeyLife, claims: dict[str, Any] | None = None, **options: Any) -> str:
        return mint(life.key, claims, issuer=ISSUER, audience="api", lifetime=TOKEN_LIFETIME, **options)

    async def one(self, client: httpx.AsyncClient) -> None:
        category = self.rng.choices(self._names, self._weights)[0]
        now = time.monotonic()
        valid = self.rotation.valid(now)
        if not valid:  # between two settled keys (should not happen with the schedule): no expectation
            return
        life = self.rng.choice(valid)
        ages = f"key={life.key.kid} age={now - life.published_at:.2f}s left={life.retire_at - now:.2f}s"
        bearer = "Bearer {}".format
        if category == "valid_repeat" and life.tokens:
            await self.send(client, category, 200, "/me", {"authorization": bearer(self.rng.choice(life.tokens))}, ages)
        elif category in ("valid", "valid_repeat"):
            token = self._token(life)
            if await self.send(client, "valid", 200, "/me", {"authorization": bearer(token)}, ages) == 200:
                if len(life.tokens) < 64:
                    life.tokens.append(token)
        elif category == "forged":
            forged = mint(self.attacker, issuer=ISSUER, kid=life.key.kid, lifetime=TOKEN_LIFETIME)
            await self.send(client, category, 401, "/me", {"authorization": bearer(forged)}, ages)
        elif category == "expired":
            expired = self._token(life, now=time.time() - 400)  # exp 100 s ago, past the 30 s leeway
            await self.send(client, category, 401, "/me", {"authorization": bearer(expired)}, ages)
        elif category == "alg_none":
            await self.send(client, category, 401, "/me", {"authorization": bearer(alg_none_token(life.key.kid))}, ages)
        elif category == "unknown_kid":
            stray = mint(self.attacker, issuer=ISSUER, kid=f"stray-{self.rng.randrange(1 << 30)}")
            await self.send(client, category, 401, "/me", {"authorization": bearer(stray)}, ages)
        elif category == "retired":
            await self._retired(client, now)
        elif category == "one_time":
            token = self._token(life)
            await self.send(client, category, 200, "/once", {"authorization": bearer(token)}, ages)
            await self.send(client, "one_time_replay", 401, "/once", {"authorization": bearer(token)}, ages)
        elif category == "one_time_burst":
            await self._burst(client, life, ages)
        elif category == "dpop":
            await self._dpop(client, life, ages)
        elif category == "dpop_as_bearer":
            token = self._token(life, {"cnf": {"jkt": self.jkt}})
            await self.send(client, category, 401, "/me", {"authorization": bearer(token)}, ages)

    async def _retired(self, client: httpx.AsyncClient, now: float) -> None:
        gone = self.rotation.retired(now)
        if not gone:
            return
        life = self.rng.choice(gone)
        detail = f"key={life.key.kid} retired {now - (life.retired_at or 0):.2f}s ago"
        token = self.rng.choice(life.tokens)  # accepted while its key was published
        await self.send(client, "retired", 401, "/me", {"authorization": f"Bearer {token}"}, detail)

    async def _burst(self, client: httpx.AsyncClient, life: KeyLife, ages: str) -> None:
        """The same one-time token four times at once: exactly one 200."""
        token = self._token(life)
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(client.get("/once", headers={"authorization": f"Bearer {token}"}) for _ in range(4)),
            return_exceptions=True,
        )
        latency = time.perf_counter() - started
        statuses = [r.status_code if isinstance(r, httpx.Response) else None for r in responses]
        errors = [type(r).__name__ for r in responses if not isinstance(r, httpx.Response)]
        first = statuses.index(200) if 200 in statuses else 0  # the one use expected to pass
        for index, status in enumerate(statuses):
            expected = 200 if index == first else 401
            detail = f"{ages} all={statuses} {' '.join(errors)}"
            self.outcomes.append(Outcome("one_time_burst", expected, status, latency, detail))

    async def _dpop(self, client: httpx.AsyncClient, life: KeyLife, ages: str) -> None:
        if len(life.bound) < 16:
            life.bound.append(self._token(life, {"cnf": {"jkt": self.jkt}}))
        token = self.rng.choice(life.bound)
        proof = self.dpop.proof("GET", f"{self.base_url}/me", token, time.time())
        headers = {"authorization": f"DPoP {token}", "dpop": proof}
        await self.send(client, "dpop", 200, "/me", headers, ages)
        await self.send(client, "dpop_replay", 401, "/me", headers, ages)

    async def worker(self, deadline: float, budget: list[int]) -> None:
        # Why a client per worker: httpcore scans its whole pool on every request, so one
        # client with 32+ connections spent most of the driver's CPU on pool bookkeeping.
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=10.0) as client:
            while time.monotonic() < deadline and budget[0] > 0:
                budget[0] -= 1
                await self.one(client)


async def drive(
    driver: Driver, seconds: float, max_requests: int, concurrency: int,
    every: Callable[[], None] | None = None, interval: float = 2.0,
) -> float:
    """Run ``concurrency`` workers until ``seconds`` pass or ``max_requests`` are built, calling
    ``every()`` each ``interval`` seconds meanwhile; return the time taken."""
    started = time.monotonic()
    budget = [max_requests]
    workers = [asyncio.create_task(driver.worker(started + seconds, budget)) for _ in range(concurrency)]

    async def sample() -> None:
        while every is not None:
            await asyncio.sleep(interval)
            every()

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*workers)
    sampler.cancel()
    return time.monotonic() - started


def start_issuer(ca: trustme.CA) -> JWKSServer:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    server = JWKSServer(server_tls).start()
    server.behaviour.cache_control = "max-age=1"
    return server


def run_mixed(ca: trustme.CA, seconds: float, *, max_requests: int = 200_000, concurrency: int = 32) -> LoadReport:
    """Serve the app in a uvicorn process, rotate keys, drive the mix; always stops what it started."""
    issuer = start_issuer(ca)
    with tempfile.TemporaryDirectory(prefix="jwtmw-load-") as folder:
        ca_file = os.path.join(folder, "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        rotation = Rotation(issuer)
        settings = AppSettings(issuer=ISSUER, jwks_url=issuer.jwks_url, ca_file=ca_file, key_policy=KEY_POLICY)
        server = ServerProcess(settings)
        try:
            server.start()
            rss_idle, cpu_before = server.rss_bytes(), server.cpu_seconds()
            rotation.start()
            driver = Driver(rotation, server.base_url)
            rss_series: list[int] = []  # every 2 s of the run
            elapsed = asyncio.run(
                drive(driver, seconds, max_requests, concurrency, every=lambda: rss_series.append(server.rss_bytes()))
            )
            rss_end, cpu_used = server.rss_bytes(), server.cpu_seconds() - cpu_before
        finally:
            rotation.stop()
            server.stop()
            issuer.stop()
    outcomes = driver.outcomes
    return LoadReport(
        seconds=elapsed,
        requests=len(outcomes),
        by_category=Counter(o.category for o in outcomes),
        wrong=[o for o in outcomes if o.status != o.expected],
        server_errors=sum(1 for o in outcomes if o.status is not None and o.status >= 500),
        transport_errors=sum(1 for o in outcomes if o.status is None),
        latencies=[o.latency for o in outcomes],
        rss_idle=rss_idle,
        rss_start=rss_series[0] if rss_series else rss_idle,  # after 2 s of load
        rss_end=rss_end,
        rss_series=rss_series,
        server_cpu=cpu_used,
        jwks_fetches=issuer.behaviour.hits("/jwks"),
        rotations=rotation.rotations,
        server_log=server.log(),
    )


def test_mixed_traffic_during_key_rotation_makes_no_wrong_decision_and_keeps_memory_flat(ca: trustme.CA) -> None:
    report = run_mixed(ca, seconds=13.0, max_requests=40_000, concurrency=32)
    print("\n" + report.summary())
    assert report.requests > 500
    assert report.wrong == []
    assert report.server_errors == 0 and report.transport_errors == 0
    assert "internal error" not in report.server_log, report.server_log[-2000:]
    # the run really exercised what it claims to: rotations, refetches, retired keys, replays
    assert report.rotations >= 5 and report.jwks_fetches >= 8
    for category in ("retired", "one_time_replay", "dpop_replay", "forged", "one_time_burst"):
        assert report.by_category[category] > 0, category
    assert report.rss_end - report.rss_start < RSS_GROWTH_LIMIT
