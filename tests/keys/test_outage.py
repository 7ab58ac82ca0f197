"""An issuer that fails: the last good set keeps serving up to stale_if_error, then 503 + Retry-After."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from jwt_middleware import InvalidToken, KeyPolicy, Unavailable
from jwt_middleware.testing import FakeClock, make_key, public_jwks

from ..support.jwks_server import JWKSServer
from .conftest import Decide
from .helpers import asgi_app, await_until, bearer, remote_auth, token_for

_ENC_ONLY = {"keys": [public_jwks(make_key("ES256", kid="enc"))["keys"][0] | {"use": "enc"}]}
BAD_ANSWERS: dict[str, dict[str, Any]] = {
    "503": {"mode": "503"},
    "dropped-connection": {"mode": "drop"},
    "garbage": {"mode": "garbage"},
    "html-maintenance-page": {"mode": "html"},
    "json-not-an-object": {"mode": "not-object"},
    "huge-body": {"mode": "huge"},
    "redirect-to-attacker": {"mode": "redirect-other-host"},
    "empty-key-set": {"jwks": {"keys": []}},
    "only-encryption-keys": {"jwks": _ENC_ONLY},
}


@pytest.mark.parametrize("bad", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_bad_refetch_keeps_the_previous_good_set(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock, bad: dict[str, Any]
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    generation = auth.keys.generation
    behaviour.mode = bad.get("mode", "ok")
    behaviour.jwks = bad.get("jwks", behaviour.jwks)
    clock.advance(300)  # the set expired; the refetch gets the bad answer
    identity = await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert identity is not None and identity.subject == "user-1"
    assert behaviour.hits() == 2
    assert auth.keys.generation == generation  # nothing was wiped, so nothing was re-verified


async def test_issuer_down_at_start_answers_503_with_retry_after_and_recovers_by_itself(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks, behaviour.mode = public_jwks(key), "503"
    auth = remote_auth(jwks_server, key_policy, clock)
    headers = {"authorization": f"Bearer {token_for(jwks_server, key, clock)}"}
    transport = httpx.ASGITransport(app=asgi_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        first = await client.get("/", headers=headers)
        assert first.status_code == 503
        assert first.headers["retry-after"] == str(int(key_policy.failure_backoff))
        assert first.json()["error"] == "temporarily_unavailable"
        assert "invalid_token" not in first.headers.get("www-authenticate", "")
        clock.advance(2)
        second = await client.get("/", headers=headers)  # backing off: no new attempt
        assert (second.status_code, second.headers["retry-after"]) == (503, "3")
        assert behaviour.hits() == 1
        behaviour.mode = "ok"
        clock.advance(3)
        third = await client.get("/", headers=headers)
        assert (third.status_code, third.text) == (200, "user-1")
        assert behaviour.hits() == 2


async def test_issuer_down_after_warm_up_serves_stale_keys_until_the_bound_then_503(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    policy = dataclasses.replace(key_policy, stale_if_error=600.0, failure_backoff=5.0)
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)  # max-age=300
    auth = remote_auth(jwks_server, policy, clock)
    issuer = jwks_server.url

    async def passes() -> bool:
        identity = await decide(auth, bearer(token_for(jwks_server, key, clock)))
        return identity is not None

    assert await passes()
    behaviour.mode = "drop"
    clock.advance(300)  # expired; the blocking refetch fails; the stale set answers
    assert await passes()
    assert behaviour.hits() == 2
    clock.advance(1)  # backing off: served, no attempt
    assert await passes()
    assert behaviour.hits() == 2
    clock.advance(5)  # backoff over: served at once, the retry runs in the background
    attempts = auth.keys.attempts(issuer)
    assert await passes()
    assert await await_until(lambda: auth.keys.attempts(issuer) == attempts + 1)
    assert behaviour.hits() == 3
    clock.advance(600 - 6)  # 300 + 600: past expiry + stale_if_error
    with pytest.raises(Unavailable) as caught:
        await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert caught.value.status == 503 and caught.value.retry_after is not None
    behaviour.mode = "ok"
    clock.advance(policy.failure_backoff)
    assert await passes()


async def test_stale_keys_still_refuse_what_they_always_refused(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key, forged = make_key("ES256", kid="k1"), make_key("ES256", kid="k1")
    jwks_server.behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    jwks_server.behaviour.mode = "503"
    clock.advance(400)
    with pytest.raises(InvalidToken) as caught:
        await decide(auth, bearer(token_for(jwks_server, forged, clock)))
    assert caught.value.reason == "bad_signature"
