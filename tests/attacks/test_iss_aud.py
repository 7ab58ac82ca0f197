"""Issuer and audience (RFC 7519 §4.1.1 exact match, §4.1.3; RFC 9068 §4; RFC 8725 §3.8, §3.9).

``iss`` selects the trusted issuer by exact string comparison: no case folding, no trailing
slash, no type coercion. ``aud`` must be a string or an array of strings naming this API.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.issuer_audience_cases()


@pytest.mark.parametrize(
    "aud",
    ["api", ["api"], ["other", "api"], ["api", "other"]],
    ids=["string", "list-one", "list-ours-last", "list-ours-first"],
)
def test_baseline_audience_forms_are_accepted(harness: Harness, aud: Any) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(claims={"aud": aud})))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_wrong_issuer_or_audience(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))
