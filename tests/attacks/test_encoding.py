"""Text encodings: base64url strictness (RFC 7515 §2, RFC 4648 §5 and §3.5) and JSON text
(RFC 8259 §8.1 UTF-8 only, no BOM; RFC 7493 I-JSON §2.1 no lone surrogates; no raw NUL).

Characters outside RFC 6750's b64token grammar make the Authorization header itself
malformed (400 invalid_request); a well-formed credential that decodes wrongly is an
invalid token (401 invalid_token).
"""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, params

CASES = corpus.encoding_cases()


def test_baseline_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.make()))


def test_valid_surrogate_pair_and_non_ascii_are_accepted(harness: Harness) -> None:
    """So the surrogate refusals are about LONE surrogates: a real emoji and UTF-8 text pass."""
    payload = corpus.splice(corpus.claims_bytes(), '"name":"J\\u00f6rg \\ud83d\\ude00","city":"Zürich"')
    harness.assert_accepted(harness.bearer(corpus.make_raw(corpus.header_bytes(), payload)))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_bad_encoding(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token.encode("utf-8")))


# CR/LF cannot be carried in a cookie, and a quoted cookie value is legal (RFC 6265 §4.1.1).
_COOKIE_CASES = [c for c in CASES if c.status == 400 and not set(c.token) & set('\r\n;"')]


@pytest.mark.parametrize("case", params(_COOKIE_CASES))
def test_rejects_bad_base64url_in_cookie_as_invalid_token(harness: Harness, case: corpus.Case) -> None:
    """In a cookie there is no b64token grammar to break: the same bytes are an invalid token."""
    harness.assert_refused(harness.request([("cookie", f"{corpus.COOKIE}={case.token}".encode())]))
