"""Several trusted issuers (RFC 8725 §3.8): the token's ``iss`` picks the issuer, and only that
issuer's keys may verify it. Issuers A and B both publish a key with kid ``es-1``; a token
claiming A must never verify with B's key, whatever the kid says."""

from __future__ import annotations

import pytest

from . import corpus
from .corpus import ISSUER, ISSUER_B, ISSUER_HS, ISSUER_RS
from .harness import Harness


@pytest.mark.parametrize("issuer", [ISSUER, ISSUER_B])
def test_baseline_each_issuer_with_its_own_key_is_accepted(harness: Harness, issuer: str) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(issuer)))


def test_rejects_token_claiming_A_signed_by_B_key_with_shared_kid(harness: Harness) -> None:
    harness.assert_refused(harness.bearer(corpus.make(ISSUER, key=corpus.keys().es_b)))


def test_rejects_token_claiming_B_signed_by_A_key_with_shared_kid(harness: Harness) -> None:
    harness.assert_refused(harness.bearer(corpus.make(ISSUER_B, key=corpus.keys().es)))


def test_rejects_token_claiming_A_signed_by_B_key_without_kid(harness: Harness) -> None:
    harness.assert_refused(
        harness.bearer(corpus.make(ISSUER, header={"kid": corpus.DROP}, key=corpus.keys().es_b))
    )


def test_rejects_token_claiming_A_with_kid_and_alg_of_rs_issuer(harness: Harness) -> None:
    token = corpus.make(ISSUER, header={"alg": "RS256", "kid": "rs-1"}, key=corpus.keys().rs, alg="RS256")
    harness.assert_refused(harness.bearer(token))


def test_rejects_token_claiming_rs_issuer_signed_by_A_key(harness: Harness) -> None:
    token = corpus.make(ISSUER_RS, header={"alg": "ES256", "kid": "es-1"}, key=corpus.keys().es, alg="ES256")
    harness.assert_refused(harness.bearer(token))


def test_rejects_token_claiming_hs_issuer_signed_by_A_key(harness: Harness) -> None:
    token = corpus.make(ISSUER_HS, header={"alg": "ES256", "kid": "es-1"}, key=corpus.keys().es, alg="ES256")
    harness.assert_refused(harness.bearer(token))


def test_rejects_token_claiming_A_macd_with_hs_issuer_secret(harness: Harness) -> None:
    harness.assert_refused(
        harness.bearer(corpus.hmac_token(corpus.hs_secret(), issuer=ISSUER, header={"kid": "hs-1"}))
    )


def test_rejects_verified_token_of_B_replayed_with_iss_rewritten_to_A(harness: Harness) -> None:
    """Take a valid B token and rewrite ``iss`` to A, keeping B's signature."""
    valid_b = corpus.make(ISSUER_B)
    rewritten = corpus.with_signature(
        corpus.make(ISSUER, key=corpus.keys().attacker_es), corpus.signature_of(valid_b)
    )
    harness.assert_accepted(harness.bearer(valid_b))
    harness.calls = 0
    harness.assert_refused(harness.bearer(rewritten))


def test_accepting_B_does_not_make_A_accept_B_key(harness: Harness) -> None:
    """Verified-token and key caches are per issuer: warming B changes nothing for A."""
    for _ in range(2):
        harness.assert_accepted(harness.bearer(corpus.make(ISSUER_B)))
        harness.calls = 0
    harness.assert_refused(harness.bearer(corpus.make(ISSUER, key=corpus.keys().es_b)))


def test_rejects_iss_of_B_with_aud_and_typ_of_A_signed_by_A(harness: Harness) -> None:
    harness.assert_refused(harness.bearer(corpus.make(ISSUER, claims={"iss": ISSUER_B})))
