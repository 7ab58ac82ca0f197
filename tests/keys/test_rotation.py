"""Key rotation and issuer isolation, through the Authenticator against real HTTPS issuers."""

from __future__ import annotations

import asyncio

import pytest

from jwt_middleware import Authenticator, Config, InvalidToken, Issuer, JWKSUrl, KeyPolicy, StaticKeys
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ..support.jwks_server import JWKSServer
from .conftest import Decide
from .helpers import bearer, remote_auth, token_for


async def test_rotation_new_kid_fetches_once_and_retired_kid_is_refused_even_if_cached(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    old, new = make_key("ES256", kid="old"), make_key("ES256", kid="new")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(old)
    auth = remote_auth(jwks_server, key_policy, clock)
    old_token = token_for(jwks_server, old, clock)  # lives an hour
    assert await decide(auth, bearer(old_token))
    assert behaviour.hits() == 1

    behaviour.jwks = public_jwks(old, new)  # the IdP publishes its next key and starts using it
    clock.advance(1)
    assert await decide(auth, bearer(token_for(jwks_server, new, clock)))
    assert behaviour.hits() == 2  # one kid-miss fetch
    assert await decide(auth, bearer(old_token))  # still good, answered from the verified cache
    assert behaviour.hits() == 2

    behaviour.jwks = public_jwks(new)  # the old key is retired
    clock.advance(300)  # the set expires and is refetched
    assert await decide(auth, bearer(token_for(jwks_server, new, clock)))
    assert behaviour.hits() == 3
    with pytest.raises(InvalidToken) as caught:  # the cached verification went with the old key
        await decide(auth, bearer(old_token))
    assert caught.value.reason == "unknown_kid"
    with pytest.raises(InvalidToken):
        await decide(auth, bearer(token_for(jwks_server, old, clock)))
    assert behaviour.hits() <= 4


async def test_rotation_under_load_every_request_with_the_new_kid_waits_for_one_fetch(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    old, new = make_key("ES256", kid="old"), make_key("ES256", kid="new")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(old)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await auth.aauthenticate(bearer(token_for(jwks_server, old, clock)))
    behaviour.jwks, behaviour.delay = public_jwks(old, new), 0.2
    clock.advance(1)
    tokens = [token_for(jwks_server, new, clock) for _ in range(30)]
    results = await asyncio.gather(*(auth.aauthenticate(bearer(t)) for t in tokens), return_exceptions=True)
    assert [type(r).__name__ for r in results if not hasattr(r, "subject")] == []
    assert behaviour.hits() == 2


async def test_kid_known_only_to_issuer_b_never_verifies_a_token_claiming_issuer_a(
    decide: Decide,
    jwks_server: JWKSServer,
    other_jwks_server: JWKSServer,
    key_policy: KeyPolicy,
    clock: FakeClock,
) -> None:
    a_key, b_key = make_key("ES256", kid="a-1"), make_key("ES256", kid="b-only")
    b_same_kid = make_key("ES256", kid="a-1")
    jwks_server.behaviour.jwks = public_jwks(a_key)
    other_jwks_server.behaviour.jwks = public_jwks(b_key, b_same_kid)
    a, b = jwks_server.url, other_jwks_server.url
    issuers = (Issuer(a, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)),
               Issuer(b, algorithms=("ES256",), keys=JWKSUrl(other_jwks_server.jwks_url)))
    auth = Authenticator(Config(issuers=issuers, audience="api", clock=clock, keys=key_policy))
    assert await decide(auth, bearer(mint(b_key, issuer=b, now=clock.now)))
    assert await decide(auth, bearer(mint(a_key, issuer=a, now=clock.now)))

    with pytest.raises(InvalidToken) as caught:  # B's kid, B's key, but iss says A
        await decide(auth, bearer(mint(b_key, issuer=a, now=clock.now)))
    assert caught.value.reason == "unknown_kid"
    with pytest.raises(InvalidToken) as caught:  # a kid A also uses, signed with B's key of that name
        await decide(auth, bearer(mint(b_same_kid, issuer=a, now=clock.now)))
    assert caught.value.reason == "bad_signature"
    assert other_jwks_server.behaviour.hits() == 1  # A's lookups never touched B


async def test_remote_kid_never_verifies_a_token_claiming_a_static_issuer(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    static_key, remote_key = make_key("ES256", kid="s-1"), make_key("ES256", kid="r-1")
    jwks_server.behaviour.jwks = public_jwks(remote_key)
    static = "https://static.test"
    issuers = (Issuer(static, algorithms=("ES256",), keys=StaticKeys(public_jwks(static_key))),
               Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url)))
    auth = Authenticator(Config(issuers=issuers, audience="api", clock=clock, keys=key_policy))
    assert await decide(auth, bearer(mint(remote_key, issuer=jwks_server.url, now=clock.now)))
    assert await decide(auth, bearer(mint(static_key, issuer=static, now=clock.now)))
    with pytest.raises(InvalidToken) as caught:
        await decide(auth, bearer(mint(remote_key, issuer=static, now=clock.now)))
    assert caught.value.reason == "unknown_kid"
    assert jwks_server.behaviour.hits() == 1  # a static issuer never fetches


async def test_token_alg_other_than_the_keys_pin_is_refused_end_to_end(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    es256, es384 = make_key("ES256", kid="k"), make_key("ES384", kid="k")
    jwks_server.behaviour.jwks = public_jwks(es256)
    auth = remote_auth(jwks_server, key_policy, clock, algorithms=("ES256", "ES384"))
    assert await decide(auth, bearer(token_for(jwks_server, es256, clock)))
    with pytest.raises(InvalidToken) as caught:  # same kid, the issuer allows ES384, the key is ES256
        await decide(auth, bearer(token_for(jwks_server, es384, clock)))
    assert caught.value.reason == "alg_mismatch"
    with pytest.raises(InvalidToken) as caught:  # HS256 "signed" with the public key: never reaches a key
        await decide(auth, bearer(token_for(jwks_server, make_key("HS256"), clock, kid="k")))
    assert caught.value.reason == "alg_not_allowed"
    assert jwks_server.behaviour.hits() == 1


async def test_require_kid_refuses_a_kidless_token_end_to_end(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k")
    jwks_server.behaviour.jwks = public_jwks(key)
    lax = remote_auth(jwks_server, key_policy, clock)
    strict = remote_auth(jwks_server, key_policy, clock, require_kid=True)
    assert await decide(lax, bearer(token_for(jwks_server, key, clock, kid=False)))
    with pytest.raises(InvalidToken) as caught:
        await decide(strict, bearer(token_for(jwks_server, key, clock, kid=False)))
    assert caught.value.reason == "kid_required"


async def test_cached_token_whose_key_was_retired_is_refused_without_other_traffic(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    """Only this token is sent: its cache entry must still lapse with the key set's freshness."""
    key = make_key("ES256", kid="only")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    token = token_for(jwks_server, key, clock)
    assert await decide(auth, bearer(token))
    behaviour.jwks = public_jwks(make_key("ES256", kid="successor"))  # the key is retired
    clock.advance(300)  # the set (max-age=300) reaches expiry; no other request came in between
    with pytest.raises(InvalidToken):
        await decide(auth, bearer(token))
    assert behaviour.hits() == 2


async def test_token_verified_during_the_cold_fetch_is_served_from_the_cache_next_time(
    jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k")
    jwks_server.behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    token = token_for(jwks_server, key, clock)
    first = await auth.aauthenticate(bearer(token))  # fetches the set, then verifies
    assert await auth.aauthenticate(bearer(token)) is first  # the cached Identity, not a re-verification
