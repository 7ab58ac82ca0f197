"""Time claims (RFC 7519 §4.1.4-4.1.6, NumericDate §2; RFC 8725 §3.10 lifetime).

Refused: expired, not yet valid, issued in the future, missing exp, exp before iat, absurd
lifetimes, and every value that is not a finite, non-negative JSON number (strings, booleans,
null, NaN/Infinity literals, 1e400, huge integers). Valid non-integer NumericDates PASS.
"""

from __future__ import annotations

from typing import Any

import pytest

from jwt_middleware.testing import FakeClock

from . import corpus
from .harness import Harness, params

CASES = corpus.time_cases()


def test_baseline_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make()))


@pytest.mark.parametrize(
    "changes", list(corpus.VALID_TIME_VARIANTS.values()), ids=list(corpus.VALID_TIME_VARIANTS)
)
def test_valid_numeric_dates_are_accepted(harness: Harness, changes: dict[str, Any]) -> None:
    harness.assert_accepted(harness.bearer(corpus.make(claims=changes)))


@pytest.mark.parametrize("fragment", list(corpus.VALID_TIME_RAW.values()), ids=list(corpus.VALID_TIME_RAW))
def test_valid_numeric_date_spellings_are_accepted(harness: Harness, fragment: str) -> None:
    token = corpus.make_raw(
        corpus.header_bytes(), corpus.splice(corpus.claims_bytes(exp=corpus.DROP), fragment)
    )
    harness.assert_accepted(harness.bearer(token))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_bad_time_claim(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


def test_token_expires_when_the_clock_passes_exp_plus_leeway(
    harness: Harness, attack_clock: FakeClock
) -> None:
    """The same token, accepted and then refused, with no sleeping: time is injected."""
    token = corpus.make()
    harness.assert_accepted(harness.bearer(token))
    harness.calls = 0
    attack_clock.advance(300 + corpus.LEEWAY)
    harness.assert_refused(harness.bearer(token))


def test_verified_token_cache_does_not_outlive_exp(harness: Harness, attack_clock: FakeClock) -> None:
    """A token first accepted (and cached) must still be refused after it expires."""
    token = corpus.make(claims={"exp": corpus.NOW + 60})
    for _ in range(3):
        harness.assert_accepted(harness.bearer(token))
        harness.calls = 0
    attack_clock.advance(60 + corpus.LEEWAY + 1)
    harness.assert_refused(harness.bearer(token))
