"""Load on the key cache: kid storms, single-flight fetches, refresh-ahead that nobody waits for."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jwt_middleware import Identity, InvalidToken, KeyPolicy, Refusal
from jwt_middleware.testing import FakeClock, make_key, public_jwks

from ..support.jwks_server import JWKSServer
from .helpers import await_until, bearer, remote_auth, token_for, wait_until


async def test_kid_storm_of_200_random_kids_costs_the_issuer_at_most_one_fetch_per_cooldown(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key, attacker = make_key("ES256", kid="k1"), make_key("ES256")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await auth.aauthenticate(bearer(token_for(jwks_server, key, clock)))
    assert behaviour.hits() == 1

    def storm() -> list[str]:
        return [token_for(jwks_server, attacker, clock, kid=os.urandom(8).hex()) for _ in range(100)]

    results = await asyncio.gather(*(auth.aauthenticate(bearer(t)) for t in storm()), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert behaviour.hits() == 2  # one kid-miss fetch for the whole burst
    for token in storm():  # the burst goes on, one by one, inside the cooldown
        with pytest.raises(InvalidToken):
            await auth.aauthenticate(bearer(token))
    assert behaviour.hits() == 2
    assert await auth.aauthenticate(bearer(token_for(jwks_server, key, clock)))  # real users unaffected
    clock.advance(key_policy.kid_miss_cooldown)
    for token in storm()[:50]:
        with pytest.raises(InvalidToken):
            await auth.aauthenticate(bearer(token))
    assert behaviour.hits() == 3  # one more per cooldown, no more


async def test_50_concurrent_requests_on_a_cold_cache_cause_one_fetch(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks, behaviour.delay = public_jwks(key), 0.2
    auth = remote_auth(jwks_server, key_policy, clock)
    tokens = [token_for(jwks_server, key, clock) for _ in range(50)]
    results = await asyncio.gather(*(auth.aauthenticate(bearer(t)) for t in tokens))
    assert all(isinstance(r, Identity) for r in results)
    assert behaviour.hits() == 1


def test_20_threads_on_a_cold_cache_cause_one_fetch(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks, behaviour.delay = public_jwks(key), 0.2
    auth = remote_auth(jwks_server, key_policy, clock)
    tokens = [token_for(jwks_server, key, clock) for _ in range(20)]
    start = threading.Barrier(20)

    def one(token: str) -> Identity | None:
        start.wait(timeout=5)
        return auth.authenticate(bearer(token))

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, tokens))
    assert all(isinstance(r, Identity) for r in results)
    assert behaviour.hits() == 1


async def test_cold_issuer_down_fails_50_concurrent_requests_with_one_attempt(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks, behaviour.mode, behaviour.delay = public_jwks(key), "503", 0.2
    auth = remote_auth(jwks_server, key_policy, clock)
    tokens = [token_for(jwks_server, key, clock) for _ in range(50)]
    results = await asyncio.gather(*(auth.aauthenticate(bearer(t)) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, Refusal) and r.status == 503 for r in results)
    assert behaviour.hits() == 1


async def test_requests_in_the_refresh_ahead_window_do_not_wait_for_the_refresh(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)  # max-age=300, refresh_ahead=30
    auth = remote_auth(jwks_server, key_policy, clock)
    issuer = jwks_server.url
    assert await auth.aauthenticate(bearer(token_for(jwks_server, key, clock)))
    behaviour.delay = 1.0
    clock.advance(280)
    started = time.monotonic()
    for _ in range(5):
        assert await auth.aauthenticate(bearer(token_for(jwks_server, key, clock)))
    assert time.monotonic() - started < 0.5  # nobody waited for the 1 s fetch
    assert await await_until(lambda: auth.keys.attempts(issuer) == 2)  # it did happen, once
    assert behaviour.hits() == 2
    clock.advance(25)  # past the old expiry: the refreshed set answers, no fetch
    started = time.monotonic()
    assert await auth.aauthenticate(bearer(token_for(jwks_server, key, clock)))
    assert time.monotonic() - started < 0.5
    assert behaviour.hits() == 2


def test_sync_requests_in_the_refresh_ahead_window_do_not_wait_for_the_refresh(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    issuer = jwks_server.url
    assert auth.authenticate(bearer(token_for(jwks_server, key, clock)))
    behaviour.delay = 1.0
    clock.advance(280)
    started = time.monotonic()
    for _ in range(5):
        assert auth.authenticate(bearer(token_for(jwks_server, key, clock)))
    assert time.monotonic() - started < 0.5
    assert wait_until(lambda: auth.keys.attempts(issuer) == 2)
    assert behaviour.hits() == 2


def test_kid_storm_from_20_threads_costs_the_issuer_at_most_two_fetches(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key, attacker = make_key("ES256", kid="k1"), make_key("ES256")
    behaviour = jwks_server.behaviour
    behaviour.jwks, behaviour.delay = public_jwks(key), 0.05
    auth = remote_auth(jwks_server, key_policy, clock)
    assert auth.authenticate(bearer(token_for(jwks_server, key, clock)))
    tokens = [token_for(jwks_server, attacker, clock, kid=os.urandom(8).hex()) for _ in range(200)]
    start = threading.Barrier(20)

    def burst(chunk: list[str]) -> list[str]:
        start.wait(timeout=5)
        reasons = []
        for token in chunk:
            try:
                auth.authenticate(bearer(token))
            except InvalidToken as refusal:
                reasons.append(refusal.reason)
        return reasons

    with ThreadPoolExecutor(max_workers=20) as pool:
        refused = [r for reasons in pool.map(burst, [tokens[i::20] for i in range(20)]) for r in reasons]
    assert len(refused) == 200
    assert set(refused) <= {"unknown_kid", "unknown_kid_throttled"}
    assert behaviour.hits() - 1 in (1, 2)
