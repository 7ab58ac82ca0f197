"""Header injection: hostile ``kid`` values and keys carried or named by the token itself.

- kid injection (path traversal to /dev/null, SQL, quotes, control characters, NUL, wrong
  types, oversize): every token here is signed by the REAL key, so only the kid is wrong.
- ``jwk`` (CVE-2018-0114), ``jku``, ``x5u``, ``x5c`` pointing at the attacker: RFC 8725 §3.10
  says keys come from configuration only; these are signed by the attacker's key, and stay
  refused with ``Issuer.allow_key_headers`` on (the members are then tolerated, never read).
- The same members in a token signed by the REAL key: refused by default (an issuer sending
  them is confused, or the token is not what it seems), accepted with ``allow_key_headers``.
"""

from __future__ import annotations

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, JWKSUrl, KeyPolicy, SharedSecret, StaticKeys
from jwt_middleware.testing import FakeClock, public_jwks, sign_raw

from ..support.jwks_server import JWKSServer
from . import corpus
from .harness import Harness, params

KID_CASES = corpus.kid_cases()
HEADER_KEY_CASES = corpus.header_key_cases()


def test_baseline_with_kid_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make()))


def test_baseline_without_kid_is_accepted_when_one_key_fits(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(header={"kid": corpus.DROP})))


@pytest.mark.parametrize("case", params(KID_CASES))
def test_rejects_kid_injection(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


@pytest.mark.parametrize("case", params(HEADER_KEY_CASES))
def test_rejects_key_carried_or_named_by_token(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


def _allowing(clock: FakeClock) -> Harness:
    """The corpus trust set with ``allow_key_headers`` on for every issuer."""
    k = corpus.keys()
    issuers = (
        Issuer(corpus.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(k.es)), typ=("at+jwt",),
               allow_key_headers=True),
        Issuer(corpus.ISSUER_B, algorithms=("ES256",), keys=StaticKeys(public_jwks(k.es_b)), typ=("at+jwt",),
               allow_key_headers=True),
        Issuer(corpus.ISSUER_RS, algorithms=("RS256",), keys=StaticKeys(public_jwks(k.rs)), allow_key_headers=True),
        Issuer(corpus.ISSUER_HS, algorithms=("HS256",), keys=SharedSecret(corpus.hs_secret(), kid="hs-1"),
               allow_key_headers=True),
    )
    return Harness(Authenticator(corpus.make_config(clock, issuers=issuers)))


@pytest.mark.parametrize("case", params(HEADER_KEY_CASES))
def test_key_carried_or_named_by_token_is_never_used_even_when_allowed(
    attack_clock: FakeClock, case: corpus.Case
) -> None:
    harness = _allowing(attack_clock)
    harness.assert_accepted(harness.bearer(corpus.make()))
    harness.calls = 0
    harness.assert_case(case, harness.bearer(case.token))


REAL_KEY_HEADERS = corpus.real_key_header_cases()


@pytest.mark.parametrize("case", params(REAL_KEY_HEADERS))
def test_rejects_key_bearing_header_signed_by_the_real_key(harness: Harness, case: corpus.Case) -> None:
    """RFC 8725 §3.10: the signature verifies with our key, the token is refused all the same."""
    harness.assert_case(case, harness.bearer(case.token))


@pytest.mark.parametrize("case", params(REAL_KEY_HEADERS))
def test_allow_key_headers_accepts_them_signed_by_the_real_key(attack_clock: FakeClock, case: corpus.Case) -> None:
    harness = _allowing(attack_clock)
    harness.assert_accepted(harness.bearer(case.token))


@pytest.fixture
def remote_issuer(jwks_server: JWKSServer, key_policy: KeyPolicy) -> tuple[JWKSServer, Harness, Key]:
    """An issuer whose keys come from a real HTTPS JWKS endpoint on 127.0.0.1; the same server
    also answers (404) on the attacker's path, so any fetch of it would be counted."""
    k = corpus.keys()
    jwks_server.behaviour.jwks = public_jwks(k.es)
    issuer = Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url))
    config = Config(issuers=(issuer,), audience=corpus.AUDIENCE, keys=key_policy, clock=FakeClock(corpus.NOW))
    return jwks_server, Harness(Authenticator(config)), k.attacker_es


@pytest.mark.parametrize("member", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["es-1", "attacker-1"])
def test_jku_and_x5u_are_never_fetched(
    remote_issuer: tuple[JWKSServer, Harness, Key], member: str, kid: str
) -> None:
    """The URL in the token is never requested, even on the issuer's own origin."""
    server, harness, attacker = remote_issuer
    claims = {**corpus.baseline_claims(), "iss": server.url}
    baseline = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"}, claims, corpus.keys().es, "ES256")
    harness.assert_accepted(harness.bearer(baseline))
    harness.calls = 0
    head = {"alg": "ES256", "typ": "at+jwt", "kid": kid, member: server.url + "/attacker-keys"}
    harness.assert_refused(harness.bearer(sign_raw(head, claims, attacker, "ES256")))
    assert server.behaviour.hits("/attacker-keys") == 0
    assert set(server.behaviour.requests) <= {"/jwks"}
