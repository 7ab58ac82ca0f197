"""Signature bytes (RFC 7518 §3.3-3.4): ECDSA r||s with 0 < r, s < n (CVE-2022-21449
"psychic signatures" sent r = s = 0), no DER in place of the raw form, exact lengths, and
RSA/HMAC signatures that are empty, truncated, extended or moved to other claims."""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.signature_cases()


@pytest.mark.parametrize("issuer", [corpus.ISSUER, corpus.ISSUER_RS, corpus.ISSUER_HS])
def test_baseline_signature_is_accepted(harness: Harness, issuer: str) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(issuer)))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_forged_or_misencoded_signature(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


def test_rejects_psychic_signature_for_any_claims(harness: Harness) -> None:
    """r = s = 0 must fail for arbitrary claims, not just for one token (a verifier that skips
    the range check would accept all of these)."""
    for sub in ("admin", "root", "user-1"):
        token = corpus.with_signature(corpus.make(claims={"sub": sub}), bytes(64))
        harness.assert_refused(harness.bearer(token))
