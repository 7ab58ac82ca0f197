"""``crit`` and ``b64`` (RFC 7515 §4.1.11, RFC 7797): we implement no JWS extension, so any
``crit`` (unknown, empty, naming registered headers, malformed) and any ``b64`` is refused.
Tokens are signed by the real key: the extension header is the only problem."""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.crit_cases()


def test_baseline_without_crit_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make()))


def test_unregistered_non_critical_header_is_tolerated(harness: Harness) -> None:
    """Real IdPs send vendor headers; without ``crit`` they are ignorable (RFC 7515 §4)."""
    harness.assert_accepted(harness.bearer(corpus.make(header={"x-vendor": "v", "nonce": "n"})))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_critical_extension(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))
