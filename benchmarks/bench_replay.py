"""Replay protection cost: DPoP requests, one-time jti checks (memory and Redis), memory per nonce.

Run: python benchmarks/bench_replay.py [--quick]   (starts its own redis-server on 127.0.0.1)

Rows (ES256 everywhere; ratios against baselines measured in this same run):
  floor/hand          hand-written verifier of one token (parse, ES256 verify, exp/aud/iss)
  floor/2x crypto     two raw ES256 signature verifies with `cryptography`
  dpop/memory         JWTMiddleware, repeated DPoP-bound token + a fresh proof per request
  one-time/memory     JWTMiddleware, a new one-time token per request, MemoryNonceStore
  one-time/redis      the same with AsyncRedisNonceStore (one SET NX PXAT round trip)
  consume/*           the store call alone
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from _harness import asgi_caller, best_us, best_us_async, http_scope  # noqa: E402
from bench_asgi import AUD, ISS, b64d, endpoint, hand_floor  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Route  # noqa: E402

from jwt_middleware import Authenticator, Config, DPoPSettings, Issuer, JWTMiddleware, Rule, StaticKeys  # noqa: E402
from jwt_middleware.stores import AsyncRedisNonceStore, MemoryNonceStore, RedisNonceStore  # noqa: E402
from jwt_middleware.testing import make_key, mint, public_jwks  # noqa: E402
from tests.support.dpop_client import ES256Client  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

ROUNDS = 3


def app_with(key: Any, store: Any = None, **config: Any) -> JWTMiddleware:
    auth = Authenticator(
        Config(
            issuers=[Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))],
            audience=AUD,
            **config,
        ),
        nonce_store=store,
    )
    return JWTMiddleware(Starlette(routes=[Route("/me", endpoint)]), auth)


def measure_unique(app: Any, header_sets: list[list[tuple[bytes, bytes]]]) -> float:
    callers = [asgi_caller(app, http_scope("/me", h)) for h in header_sets]
    n = len(callers) // ROUNDS
    cost = best_us_async(lambda i: callers[i](i), n, rounds=ROUNDS, fresh=True)
    statuses = {s for c in callers for s in c.statuses}  # type: ignore[attr-defined]
    assert statuses == {200}, statuses
    return cost


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 300 if args.quick else 1500
    key = make_key("ES256")
    r: dict[str, float] = {}

    tokens = [mint(key, issuer=ISS, audience=AUD, lifetime=3600) for _ in range(n)]
    floor = hand_floor(key.public_key)
    r["floor/hand ES256 verifier"] = best_us(lambda i: floor(tokens[i]), n)
    signed = []
    for t in tokens:
        h, p, s = t.split(".")
        sig = b64d(s)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        signed.append((f"{h}.{p}".encode(), der))
    algo = ECDSA(hashes.SHA256())

    def two_verifies(i: int) -> None:
        key.public_key.verify(signed[i][1], signed[i][0], algo)
        key.public_key.verify(signed[i - 1][1], signed[i - 1][0], algo)

    r["floor/2x raw ES256 verify"] = best_us(two_verifies, n)

    client = ES256Client()
    bound = mint(key, {"cnf": {"jkt": client.thumbprint()}}, issuer=ISS, audience=AUD, lifetime=3600)
    now = time.time()
    dpop_headers = [
        [
            (b"authorization", f"DPoP {bound}".encode()),
            (b"host", b"127.0.0.1"),
            (b"dpop", client.proof("GET", "https://127.0.0.1/me", bound, now).encode()),
        ]
        for _ in range(n * ROUNDS)
    ]
    r["dpop/memory repeated token, fresh proof"] = measure_unique(
        app_with(key, dpop=DPoPSettings(allowed_hosts=("127.0.0.1",))), dpop_headers
    )

    one_time = [
        [(b"authorization", f"Bearer {mint(key, issuer=ISS, audience=AUD, lifetime=3600)}".encode())]
        for _ in range(n * ROUNDS)
    ]
    rules = (Rule("/me", one_time=True),)
    r["one-time/memory unique tokens"] = measure_unique(
        app_with(key, MemoryNonceStore(), rules=rules), one_time
    )
    verified_only = [
        [(b"authorization", f"Bearer {mint(key, issuer=ISS, audience=AUD, lifetime=3600)}".encode())]
        for _ in range(n * ROUNDS)
    ]
    r["bearer unique tokens (no replay check)"] = measure_unique(app_with(key), verified_only)

    server = RedisServer().start()
    try:
        one_time_r = [
            [(b"authorization", f"Bearer {mint(key, issuer=ISS, audience=AUD, lifetime=3600)}".encode())]
            for _ in range(n * ROUNDS)
        ]
        store = AsyncRedisNonceStore(aioredis.Redis(port=server.port), prefix="bench:")
        sync_client = redis.Redis(port=server.port, socket_timeout=0.1, socket_connect_timeout=0.1, retry=None)
        before = _set_calls(sync_client)
        r["one-time/redis unique tokens"] = measure_unique(app_with(key, store, rules=rules), one_time_r)
        sets = _set_calls(sync_client) - before
        r["redis SET calls per one-time request"] = sets / len(one_time_r)

        mem = MemoryNonceStore()
        r["consume/memory"] = best_us(lambda i: mem.consume(f"k{i}", now + 600), 20000, rounds=3)
        sync_store = RedisNonceStore(sync_client, prefix="bench2:")
        r["consume/redis sync (1 round trip)"] = best_us(
            lambda i: sync_store.consume(f"s{i}{time.time()}", now + 600), 2000, rounds=3
        )
    finally:
        server.remove()

    r["memory store bytes per nonce"] = _bytes_per_nonce(50_000 if args.quick else 200_000)
    report(r)


def _set_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


def _bytes_per_nonce(count: int) -> float:
    store = MemoryNonceStore(maxsize=count + 1)
    now = time.time()
    keys = [f"jti:https://issuer:{i:022d}" for i in range(count)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for k in keys:
        store.consume(k, now + 600)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / count


def report(r: dict[str, float]) -> None:
    width = max(map(len, r))
    for name, value in r.items():
        unit = "" if "per" in name else " µs"
        print(f"{name:<{width}}  {value:9.2f}{unit}")
    floor = r["floor/hand ES256 verifier"]
    print()
    print(
        f"DPoP request (memory) vs hand floor of one ES256 token: {r['dpop/memory repeated token, fresh proof'] / floor:5.2f}x"
        "  (target <= 2.3x)"
    )
    print(
        f"DPoP request (memory) vs two raw ES256 verifies:       "
        f"{r['dpop/memory repeated token, fresh proof'] / r['floor/2x raw ES256 verify']:5.2f}x"
    )
    base = r["bearer unique tokens (no replay check)"]
    print(
        f"one-time check added, memory store: {r['one-time/memory unique tokens'] - base:7.2f} µs per request"
    )
    print(
        f"one-time check added, redis store:  {r['one-time/redis unique tokens'] - base:7.2f} µs per request"
        f"  ({r['redis SET calls per one-time request']:.2f} round trips per request; target 1)"
    )
    print(
        f"memory per 1M remembered nonces (memory store): {r['memory store bytes per nonce'] * 1e6 / 2**20:7.1f} MiB"
    )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
