"""Token type confusion (RFC 8725 §3.11, RFC 9068 §2.1, RFC 9449 §4.2, OIDC back-channel logout).

Refresh tokens (Keycloak ``typ: Refresh``), ID tokens (``typ: ID``, Cognito ``token_use``),
DPoP proofs (``dpop+jwt``), logout and security-event tokens are signed by the same issuer
keys but are never access tokens. An issuer that requires ``at+jwt`` refuses anything else.
"""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.typ_cases()


def test_baseline_plain_jwt_is_accepted_where_no_typ_is_required(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(corpus.ISSUER_RS)))


def test_baseline_without_typ_is_accepted_where_no_typ_is_required(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(corpus.ISSUER_RS, header={"typ": corpus.DROP})))


@pytest.mark.parametrize("typ", corpus.VALID_TYP_VARIANTS)
def test_at_jwt_spellings_are_accepted(harness: Harness, typ: str) -> None:
    """RFC 7515 §4.1.9: media types compare case-insensitively, ``application/`` may be omitted."""
    harness.assert_accepted(harness.bearer(corpus.make(header={"typ": typ})))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_token_of_another_type(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))
