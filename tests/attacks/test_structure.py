"""Compact JWS structure (RFC 7515 §7.1, §5.2; RFC 7519 §7.2; RFC 8725 §3.11 size limits).

Wrong segment counts, a JWE where a JWS is expected, oversize tokens, nesting deep enough to
exhaust a recursive parser, duplicate member names (RFC 7515 §4: a parser MUST reject them or
take the last; a verifier and a downstream parser that disagree is a bypass), and JSON
values that are not objects.
"""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.structure_cases()


def test_baseline_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make()))


def test_token_exactly_at_size_cap_is_accepted(harness: Harness) -> None:
    """So the oversize refusals are about size, not about padding members."""
    token = corpus._oversize("payload", corpus.MAX_TOKEN_BYTES)
    assert len(token) == corpus.MAX_TOKEN_BYTES
    harness.assert_accepted(harness.bearer(token))


@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"":', "}")], ids=["arrays", "objects"])
def test_nesting_at_the_depth_bound_is_accepted(harness: Harness, opener: str, closer: str) -> None:
    """32 levels, the outer object counted: the "one-past" cases below differ by one level."""
    token = corpus.make_raw(
        corpus.header_bytes(), corpus.splice(corpus.claims_bytes(), '"x":' + corpus.nested(31, opener, closer))
    )
    harness.assert_accepted(harness.bearer(token))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_malformed_structure(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


@pytest.mark.parametrize("case", params([c for c in CASES if "size-cap" in c.id or "deep" in c.id]))
def test_rejects_malformed_structure_in_cookie(harness: Harness, case: corpus.Case) -> None:
    harness.assert_refused(harness.cookie(case.token))
