"""Finding the token (RFC 6750 §2, §2.1 b64token, §2.3, §3.1): exactly one credential, cleanly.

Request-shape problems (junk or a second token after the credential, two Authorization
headers, a header token and a different cookie token, a token in the URL, an empty
credential) are 400 invalid_request; a well-formed credential that is not a valid token is
401 invalid_token; no credential at all is a bare 401 challenge without an error code.
"""

from __future__ import annotations

import pytest

from . import corpus
from .harness import Harness, HeaderValue

TOKEN = corpus.make()
OTHER = corpus.make(claims={"sub": "user-2"})


def test_baseline_bearer_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(TOKEN))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_baseline_scheme_is_case_insensitive(harness: Harness, scheme: str) -> None:
    harness.assert_accepted(harness.request([("authorization", f"{scheme} {TOKEN}")]))


def test_baseline_cookie_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.cookie(TOKEN))


def test_baseline_same_token_in_header_and_cookie_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(
        harness.request([("authorization", f"Bearer {TOKEN}"), ("cookie", f"{corpus.COOKIE}={TOKEN}")])
    )


JUNK_AFTER_TOKEN = {
    "space-junk": (f"{TOKEN} junk", 400),
    "space-second-token": (f"{TOKEN} {OTHER}", 400),
    "comma-second-credential": (f"{TOKEN}, Bearer {OTHER}", 400),
    "comma-junk": (f"{TOKEN},junk", 400),
    "semicolon-junk": (f"{TOKEN};junk", 400),
    "tab-junk": (f"{TOKEN}\tjunk", 400),
    "nul-junk": (f"{TOKEN}\x00junk", 400),
    "trailing-space": (f"{TOKEN} ", 400),
    "equals-then-junk": (f"{TOKEN}==junk", 400),
    "bang-junk": (f"{TOKEN}!", 400),
    "dot-junk-fourth-segment": (f"{TOKEN}.junk", 401),
    "junk-glued-to-signature": (f"{TOKEN}AAAA", 401),
    "padding-glued-to-signature": (f"{TOKEN}=", 401),
}


@pytest.mark.parametrize(
    ("credentials", "status"), list(JUNK_AFTER_TOKEN.values()), ids=list(JUNK_AFTER_TOKEN)
)
def test_rejects_valid_token_followed_by_junk(harness: Harness, credentials: str, status: int) -> None:
    reply = harness.request([("authorization", f"Bearer {credentials}".encode())])
    harness.assert_refused(reply, status, "invalid_request" if status == 400 else "invalid_token")


TWO_TOKENS: dict[str, list[tuple[str, HeaderValue]]] = {
    "header-and-different-cookie": [
        ("authorization", f"Bearer {TOKEN}"),
        ("cookie", f"{corpus.COOKIE}={OTHER}"),
    ],
    "two-authorization-headers": [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {OTHER}")],
    "two-identical-authorization-headers": [
        ("authorization", f"Bearer {TOKEN}"),
        ("authorization", f"Bearer {TOKEN}"),
    ],
    "authorization-bearer-and-basic": [("authorization", f"Bearer {TOKEN}"), ("authorization", "Basic dTpw")],
    "two-cookies-in-one-header": [("cookie", f"{corpus.COOKIE}={TOKEN}; {corpus.COOKIE}={OTHER}")],
    "two-cookie-headers": [("cookie", f"{corpus.COOKIE}={TOKEN}"), ("cookie", f"{corpus.COOKIE}={OTHER}")],
}


@pytest.mark.parametrize("headers", list(TWO_TOKENS.values()), ids=list(TWO_TOKENS))
def test_rejects_two_tokens_in_one_request(harness: Harness, headers: list[tuple[str, HeaderValue]]) -> None:
    harness.assert_refused(harness.request(headers), 400, "invalid_request")


@pytest.mark.parametrize("with_header", [False, True], ids=["query-only", "query-and-header"])
def test_rejects_token_in_query_string(harness: Harness, with_header: bool) -> None:
    """RFC 6750 §2.3 / RFC 9700 §4.3.2: URL tokens leak into logs and Referer; off by default."""
    headers = [("authorization", f"Bearer {TOKEN}")] if with_header else []
    harness.assert_refused(harness.request(headers, query=f"access_token={TOKEN}"), 400, "invalid_request")


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Bearer ", "Bearer    ", "bearer"],
    ids=["bare-scheme", "scheme-space", "scheme-spaces", "lower-bare-scheme"],
)
def test_rejects_empty_bearer_credential(harness: Harness, value: str) -> None:
    harness.assert_refused(harness.request([("authorization", value)]), 400, "invalid_request")


@pytest.mark.parametrize(
    "headers",
    [[], [("authorization", "Basic dXNlcjpwYXNz")], [("cookie", "session=abc")], [("x-access-token", TOKEN)]],
    ids=["nothing", "basic-scheme", "other-cookie", "custom-header"],
)
def test_request_without_a_bearer_token_gets_a_bare_challenge(
    harness: Harness, headers: list[tuple[str, HeaderValue]]
) -> None:
    """RFC 6750 §3.1: no credentials, no error code; the app still never runs."""
    harness.assert_refused(harness.request(headers), 401, None)


def test_rejects_oversize_authorization_header(harness: Harness) -> None:
    harness.assert_refused(harness.bearer("a" * 100_000), 401, "invalid_token")


def test_rejects_many_space_separated_tokens(harness: Harness) -> None:
    harness.assert_refused(harness.bearer(" ".join([TOKEN] * 20)), 400, "invalid_request")


def test_rejects_valid_token_in_second_cookie_with_invalid_first(harness: Harness) -> None:
    """Two values for one cookie name are ambiguous even if one of them is valid."""
    reply = harness.request([("cookie", f"{corpus.COOKIE}=garbage; {corpus.COOKIE}={TOKEN}")])
    harness.assert_refused(reply, 400, "invalid_request")
