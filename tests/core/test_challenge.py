"""Rendering refusals (RFC 6750 §3, RFC 9110 §10.2.3): headers, JSON body, quoting."""

from __future__ import annotations

import json

import pytest

from jwt_middleware import (
    DPoPBindingMismatch,
    DPoPRequired,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    RateLimited,
    Unavailable,
    UseDPoPNonce,
)
from jwt_middleware.challenge import render_challenge


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k == name]


def test_missing_token_gets_a_bare_challenge() -> None:
    """RFC 6750 §3.1: a request without credentials gets no error code."""
    status, headers, body = render_challenge(MissingToken("missing_token"))
    assert status == 401
    assert header(headers, "www-authenticate") == ['Bearer realm="api"']
    assert json.loads(body)["error"] == "unauthorized"


def test_invalid_request_is_400() -> None:
    status, headers, _ = render_challenge(InvalidRequest("multiple_tokens", "Send one access token"))
    assert status == 400
    assert header(headers, "www-authenticate") == [
        'Bearer realm="api", error="invalid_request", error_description="Send one access token"'
    ]


def test_invalid_token_is_401() -> None:
    status, headers, body = render_challenge(InvalidToken("bad_signature"))
    assert status == 401
    assert header(headers, "www-authenticate") == [
        'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'
    ]
    assert json.loads(body) == {"error": "invalid_token", "error_description": "The access token is invalid"}


def test_insufficient_scope_is_403_with_scope() -> None:
    refusal = InsufficientScope("insufficient_scope", params={"scope": "read write"})
    status, headers, _ = render_challenge(refusal, realm="orders")
    assert status == 403
    assert header(headers, "www-authenticate") == [
        'Bearer realm="orders", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="read write"'
    ]


@pytest.mark.parametrize(
    "refusal",
    [MissingToken("m"), InvalidRequest("r"), InvalidToken("t"), InsufficientScope("s"), Unavailable("u", retry_after=3),
     RateLimited("l", retry_after=1)],
    ids=lambda r: type(r).__name__,
)
def test_every_refusal_is_json_and_never_cached(refusal: InvalidToken) -> None:
    status, headers, body = render_challenge(refusal)
    assert header(headers, "cache-control") == ["no-store"]
    assert header(headers, "content-type") == ["application/json"]
    assert header(headers, "content-length") == [str(len(body))]
    document = json.loads(body)
    assert set(document) == {"error", "error_description"}
    assert status == refusal.status


def test_unavailable_is_503_with_retry_after_and_no_challenge() -> None:
    status, headers, body = render_challenge(Unavailable("keys_unavailable", retry_after=7))
    assert status == 503
    assert header(headers, "retry-after") == ["7"]
    assert header(headers, "www-authenticate") == []
    assert json.loads(body)["error"] == "temporarily_unavailable"


def test_strip_body_sends_headers_only() -> None:
    status, headers, body = render_challenge(InvalidToken("t"), strip_body=True)
    assert (status, body) == (401, b"")
    assert header(headers, "content-length") == ["0"]
    assert header(headers, "www-authenticate")


def test_auth_params_are_quoted_and_cannot_be_broken_out_of() -> None:
    """Quotes, backslashes, CR/LF and non-ASCII are dropped, never escaped into the header."""
    refusal = InvalidToken("t", 'bad" , error="none\\\r\nX-Injected: 1 é')
    _, headers, _ = render_challenge(refusal, realm='a"b\\c\r\nd')
    (value,) = header(headers, "www-authenticate")
    assert value == ('Bearer realm="abcd", error="invalid_token", '
                     'error_description="bad , error=noneX-Injected: 1 "')
    assert "\r" not in value and "\n" not in value


def test_dpop_refusal_offers_both_schemes_with_the_error_on_its_own() -> None:
    _, headers, _ = render_challenge(UseDPoPNonce("use_dpop_nonce", headers={"DPoP-Nonce": "n1"}),
                                     schemes=("Bearer", "DPoP"), dpop_algs="ES256")
    challenges = header(headers, "www-authenticate")
    assert challenges[0] == 'Bearer realm="api"'
    assert challenges[1].startswith('DPoP realm="api", error="use_dpop_nonce"')
    assert 'algs="ES256"' in challenges[1]
    assert header(headers, "dpop-nonce") == ["n1"]


def test_binding_mismatch_puts_invalid_token_on_the_dpop_challenge() -> None:
    """RFC 9449 §7.1 figure 20 (DPoP error="invalid_token", algs), with §7.2's Bearer beside it."""
    refusal = DPoPBindingMismatch("dpop_binding_mismatch", "The access token is bound to another key")
    status, headers, body = render_challenge(refusal, schemes=("Bearer", "DPoP"), dpop_algs="ES256 PS256")
    assert status == 401
    assert header(headers, "www-authenticate") == [
        'Bearer realm="api"',
        'DPoP realm="api", error="invalid_token", error_description="The access token is bound to another key", '
        'algs="ES256 PS256"',
    ]
    assert json.loads(body)["error"] == "invalid_token"
    assert isinstance(refusal, InvalidToken)


def test_a_refusal_for_one_scheme_only_offers_no_other_challenge() -> None:
    refusal = DPoPBindingMismatch("dpop_binding_mismatch")
    refusal.only_own_scheme = True
    _, headers, _ = render_challenge(refusal, schemes=("Bearer", "DPoP"), dpop_algs="ES256")
    assert header(headers, "www-authenticate") == [
        'DPoP realm="api", error="invalid_token", '
        'error_description="The access token is not bound to this DPoP key", algs="ES256"'
    ]
    _, headers, _ = render_challenge(DPoPRequired("dpop_required"), schemes=("Bearer", "DPoP"), dpop_algs="ES256")
    assert header(headers, "www-authenticate") == ['DPoP realm="api", algs="ES256"']
    assert InvalidToken.only_own_scheme is False  # one refusal's flag never leaks to its class
