"""Two uvicorn processes, one redis-server: a one-time token or a DPoP proof is accepted once overall.

Each server is its own Python interpreter (``tests/load/app.py`` under ``uvicorn --factory``),
with the same configuration: keys from one JWKS file, ``AsyncRedisNonceStore`` on one shared
Redis, and one public origin for DPoP ``htu`` (as behind a load balancer). The same credential
is sent to both at once, alternating between the ports. The control run gives each process its
own ``MemoryNonceStore``: then each process accepts the credential once, which is the replay a
shared store closes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware.testing import make_key, mint, public_jwks

from ..support.dpop_client import ES256Client
from ..support.redis_server import RedisServer
from .app import AppSettings, ServerProcess

ISSUER = "https://issuer.multiprocess.test"
PUBLIC_ORIGIN = "http://api.multiprocess.test"
Pair = tuple[str, list[ServerProcess]]  # (store kind, the two servers)
SENDS = 20  # requests per credential, alternating between the two processes
ROUNDS = 5  # credentials per test, each raced on its own


@pytest.fixture(scope="module")
def signing_key() -> Key:
    return make_key("ES256", kid="mp-1")


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture(scope="module", params=["redis", "memory"])
def servers(
    request: pytest.FixtureRequest, signing_key: Key, shared_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two server processes with one configuration; started together, always stopped."""
    jwks = Path(tmp_path_factory.mktemp("keys")) / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(signing_key)))
    store = request.param
    settings = AppSettings(
        issuer=ISSUER,
        jwks_file=str(jwks),
        redis_port=shared_redis.port if store == "redis" else None,
        external_base_url=PUBLIC_ORIGIN,
    )
    pair = [ServerProcess(settings), ServerProcess(settings)]
    try:
        for server in pair:
            server.spawn()
        started = time.monotonic()
        for server in pair:
            server.wait_ready(timeout=max(1.0, 15.0 - (time.monotonic() - started)))
        yield store, pair
    finally:
        for server in pair:
            server.stop()


async def race(pair: list[ServerProcess], path: str, headers: dict[str, str]) -> list[tuple[int, int]]:
    """Send one credential ``SENDS`` times at once, alternating ports; (server index, status) each."""
    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=10.0) for s in pair]
    try:
        # open the connections first, so the credential's requests arrive together
        await asyncio.gather(*(clients[i % 2].get("/health") for i in range(SENDS)))
        responses = await asyncio.gather(
            *(clients[i % 2].get(path, headers=headers) for i in range(SENDS))
        )
    finally:
        for client in clients:
            await client.aclose()
    return [(i % 2, r.status_code) for i, r in enumerate(responses)]


def expected_accepts(store: str) -> int:
    """Shared Redis: once overall. One memory store per process: once per process."""
    return 1 if store == "redis" else 2


async def test_one_time_token_raced_across_two_processes(servers: Pair, signing_key: Key) -> None:
    store, pair = servers
    for _ in range(ROUNDS):
        token = mint(signing_key, issuer=ISSUER, lifetime=120)
        outcomes = await race(pair, "/once", {"authorization": f"Bearer {token}"})
        accepted = [server for server, status in outcomes if status == 200]
        assert sorted(status for _, status in outcomes if status != 200) == [401] * (SENDS - len(accepted))
        assert len(accepted) == expected_accepts(store), outcomes
        if store == "memory":
            assert sorted(accepted) == [0, 1]  # each process let it through once


async def test_dpop_proof_raced_across_two_processes(servers: Pair, signing_key: Key) -> None:
    store, pair = servers
    client_key = ES256Client()
    token = mint(signing_key, {"cnf": {"jkt": client_key.thumbprint()}}, issuer=ISSUER, lifetime=120)
    for _ in range(ROUNDS):
        proof = client_key.proof("GET", f"{PUBLIC_ORIGIN}/me", token, time.time())
        outcomes = await race(pair, "/me", {"authorization": f"DPoP {token}", "dpop": proof})
        accepted = [server for server, status in outcomes if status == 200]
        assert sorted(status for _, status in outcomes if status != 200) == [401] * (SENDS - len(accepted))
        assert len(accepted) == expected_accepts(store), outcomes


async def test_each_process_accepts_fresh_credentials(servers: Pair, signing_key: Key) -> None:
    """Both processes are live and verify on their own: the races above are not one server's."""
    _, pair = servers
    for server in pair:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
            token = mint(signing_key, issuer=ISSUER, lifetime=120)
            assert (await client.get("/once", headers={"authorization": f"Bearer {token}"})).status_code == 200
            assert (await client.get("/once", headers={"authorization": f"Bearer {token}"})).status_code == 401
