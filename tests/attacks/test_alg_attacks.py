"""alg attacks (RFC 8725 §2.1, §3.1): ``none`` in every casing, substituted and foreign algorithms.

The ``alg`` header is attacker-controlled; only the algorithm pinned to the issuer's key may
verify, and ``none`` never does (CVE-2015-9235 and its many re-discoveries).
"""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.alg_cases()


@pytest.mark.parametrize("issuer", [corpus.ISSUER, corpus.ISSUER_B, corpus.ISSUER_RS, corpus.ISSUER_HS])
def test_baseline_token_of_each_issuer_is_accepted(harness: Harness, issuer: str) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(issuer)))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_algorithm_attack(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


@pytest.mark.parametrize("casing", corpus.NONE_CASINGS)
def test_rejects_alg_none_in_cookie(harness: Harness, casing: str) -> None:
    token = corpus.unsigned({**corpus.baseline_header(), "alg": casing}, corpus.baseline_claims())
    harness.assert_refused(harness.cookie(token))


@pytest.mark.parametrize("casing", corpus.NONE_CASINGS)
def test_rejects_alg_none_with_hmac_of_empty_key(harness: Harness, casing: str) -> None:
    """Some verifiers map ``none`` to an HMAC with an empty key; the MAC must not help."""
    token = corpus.hmac_token(b"", header={"alg": "HS256"})
    head = {**corpus.baseline_header(), "alg": casing}
    forged = corpus.unsigned(head, corpus.baseline_claims(), token.split(".")[2])
    harness.assert_refused(harness.bearer(forged))
