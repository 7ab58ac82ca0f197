"""Unknown and retired kids against a real HTTPS issuer: how long genuine tokens are refused.

Each scenario changes the issuer's published set the way an IdP does (rotate, retire, stage then
promote, a forged token naming the next kid first, a retired kid published again) and measures,
in seconds of the fake clock, how long tokens signed with the issuer's genuine new key are
refused. The target is at most one ``kid_miss_cooldown``; where no other kid spent the kid-miss
budget just before, it is zero.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import pytest
from joserfc.jwk import ECKey, Key, RSAKey

from jwt_middleware import Authenticator, InvalidToken, KeyPolicy
from jwt_middleware.testing import FakeClock, make_key, public_jwks

from ..support.jwks_server import JWKSServer
from .conftest import Decide
from .helpers import bearer, remote_auth, token_for

TTL = 300  # the test issuer's Cache-Control max-age


async def accepted(decide: Decide, auth: Authenticator, server: JWKSServer, key: Key, clock: FakeClock) -> bool:
    """Whether a fresh token signed with ``key`` passes now (a refusal for its kid is False)."""
    try:
        return await decide(auth, bearer(token_for(server, key, clock))) is not None
    except InvalidToken as refusal:
        assert refusal.reason in ("unknown_kid", "unknown_kid_throttled"), refusal.reason
        return False


async def refused_for(
    decide: Decide, auth: Authenticator, server: JWKSServer, key: Key, clock: FakeClock,
    *, forged: Key | None = None,
) -> float:
    """Clock seconds from now until a genuine token signed with ``key`` passes (1 s steps, bounded).

    ``forged``: an attacker's key under the same kid, whose token is sent before each genuine one.
    """
    start = clock.now
    while clock.now - start <= 2 * TTL:
        if forged is not None:
            with pytest.raises(InvalidToken):
                await decide(auth, bearer(token_for(server, forged, clock)))
        if await accepted(decide, auth, server, key, clock):
            return clock.now - start
        clock.advance(1)
    return math.inf


@pytest.mark.parametrize("stray_kid_first", [False, True], ids=["clean", "after-a-stray-kid"])
async def test_rotation_new_kid_is_refused_at_most_one_cooldown(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock, stray_kid_first: bool
) -> None:
    old, new = make_key("ES256", kid="old"), make_key("ES256", kid="new")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(old)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await accepted(decide, auth, jwks_server, old, clock)
    clock.advance(10)
    if stray_kid_first:  # the worst case: another unknown kid spent the budget just before
        assert not await accepted(decide, auth, jwks_server, make_key("ES256", kid="stray"), clock)
    behaviour.jwks = public_jwks(old, new)  # published and used at once
    refused = await refused_for(decide, auth, jwks_server, new, clock)
    assert refused <= key_policy.kid_miss_cooldown
    if not stray_kid_first:
        assert refused == 0
    assert behaviour.hits() == 2 + stray_kid_first


async def test_retired_kid_spends_no_fetch_and_the_next_new_kid_passes_at_once(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    old, new, newer = (make_key("ES256", kid=k) for k in ("old", "new", "newer"))
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(old, new)
    auth = remote_auth(jwks_server, key_policy, clock)
    old_token = token_for(jwks_server, old, clock, lifetime=3600)  # outlives the old key
    assert await decide(auth, bearer(old_token))
    behaviour.jwks = public_jwks(new)  # old is retired
    clock.advance(TTL)
    assert await accepted(decide, auth, jwks_server, new, clock)  # the refresh that drops it
    assert behaviour.hits() == 2
    for _ in range(5):  # its tokens keep coming
        with pytest.raises(InvalidToken) as caught:
            await decide(auth, bearer(old_token))
        assert caught.value.reason == "unknown_kid"
        clock.advance(1)
    behaviour.jwks = public_jwks(new, newer)  # the issuer rotates again right after
    assert await refused_for(decide, auth, jwks_server, newer, clock) == 0  # was 25 s: throttled
    assert behaviour.hits() == 3  # the retired kid cost no fetch; the new one, one


@pytest.mark.parametrize("promoted", ["before-we-saw-it", "after-a-refresh"])
async def test_staged_then_promoted_kid_is_never_refused(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock, promoted: str
) -> None:
    current, staged = make_key("ES256", kid="current"), make_key("ES256", kid="staged")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(current)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await accepted(decide, auth, jwks_server, current, clock)
    behaviour.jwks = public_jwks(current, staged)  # published ahead, not used yet
    clock.advance(10 if promoted == "before-we-saw-it" else TTL)
    assert await accepted(decide, auth, jwks_server, current, clock)
    assert await refused_for(decide, auth, jwks_server, staged, clock) == 0  # promoted
    assert behaviour.hits() == 2
    behaviour.jwks = public_jwks(staged)  # the old key is retired
    clock.advance(TTL)
    assert await refused_for(decide, auth, jwks_server, staged, clock) == 0
    assert not await accepted(decide, auth, jwks_server, current, clock)
    assert behaviour.hits() == 3


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "every-second"])
async def test_forged_token_naming_the_next_kid_first_delays_it_at_most_one_cooldown(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock, persistent: bool
) -> None:
    """The negative entry a forged kid leaves lapses on its own clock, not at the set's expiry."""
    current, upcoming = make_key("ES256", kid="current"), make_key("ES256", kid="next")
    forged = make_key("ES256", kid="next")  # the attacker's key, under the kid the IdP will publish
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(current)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await accepted(decide, auth, jwks_server, current, clock)
    clock.advance(10)
    with pytest.raises(InvalidToken) as caught:
        await decide(auth, bearer(token_for(jwks_server, forged, clock)))
    assert caught.value.reason == "unknown_kid"
    clock.advance(1)
    behaviour.jwks = public_jwks(current, upcoming)  # published and used
    refused = await refused_for(decide, auth, jwks_server, upcoming, clock, forged=forged if persistent else None)
    assert refused <= key_policy.kid_miss_cooldown
    assert behaviour.hits() <= 4  # one fetch per cooldown at most, whatever the attacker sends


async def test_retired_kid_published_again_is_believed_within_one_cooldown(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    """A rollback (or an endpoint behind a lagging cache) must not cost genuine tokens a whole TTL."""
    first, second = make_key("ES256", kid="first"), make_key("ES256", kid="second")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(first, second)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await accepted(decide, auth, jwks_server, first, clock)
    behaviour.jwks = public_jwks(second)
    clock.advance(TTL)
    assert await accepted(decide, auth, jwks_server, second, clock)  # first is retired
    behaviour.jwks = public_jwks(first, second)  # and comes back
    clock.advance(1)
    assert await refused_for(decide, auth, jwks_server, first, clock) <= key_policy.kid_miss_cooldown
    assert behaviour.hits() == 3


# --- a published key that can never verify: skipped, with a warning naming it ------------------------
def _weak_rsa(kid: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key it is asked to make
        return dict(RSAKey.generate_key(1024, {"kid": kid, "alg": "RS256"}, auto_kid=False).as_dict(private=False))


@pytest.mark.filterwarnings("ignore:Key size should be")
async def test_published_weak_keys_are_skipped_with_one_warning_naming_issuer_and_kid(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = make_key("ES256", kid="good")
    weak: dict[str, Any] = _weak_rsa("weak")
    k1: dict[str, Any] = dict(ECKey.generate_key("secp256k1", {"kid": "k1"}).as_dict(private=False))
    behaviour = jwks_server.behaviour
    behaviour.jwks = {"keys": [weak, good.as_dict(private=False), k1]}
    auth = remote_auth(jwks_server, key_policy, clock, algorithms=("ES256", "RS256"))
    with caplog.at_level(logging.WARNING, logger="jwt_middleware.keys"):
        assert await accepted(decide, auth, jwks_server, good, clock)  # one bad key never takes it down
        clock.advance(TTL)
        assert await accepted(decide, auth, jwks_server, good, clock)  # refetched: the same set
    assert behaviour.hits() == 2
    warned = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    prefix = f"jwks key skipped for issuer {jwks_server.url!r}: "
    assert warned == [  # once per change of the set, not per refresh
        prefix + "kid 'weak': its RSA modulus has 1024 bits, under 2048 (RFC 7518 §3.3)",
        prefix + "kid 'k1': EC curve 'secp256k1' is not accepted (P-256, P-384 or P-521)",
    ]
    for material in (weak["n"], k1["x"], k1["y"]):
        assert material not in caplog.text
