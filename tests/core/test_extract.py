"""Finding exactly one token (RFC 6750 §2): header, cookie, query; every ambiguity is refused."""

from __future__ import annotations

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, CookieSource, HeaderSource, InvalidRequest
from jwt_middleware.core.extract import Extractor, Token
from jwt_middleware.testing import FakeClock, mint

from ._support import (
    assert_invalid_request,
    bearer,
    decide,
    make_auth,
    refuse,
    request,
)


@pytest.fixture
def token(es256_key: Key, clock: FakeClock) -> str:
    return mint(es256_key, now=clock.now)


@pytest.fixture
def other_token(es256_key: Key, clock: FakeClock) -> str:
    return mint(es256_key, {"sub": "user-2"}, now=clock.now)


# --- the Authorization header -----------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(static_auth: Authenticator, token: str, scheme: str) -> None:
    identity = decide(static_auth, request(bearer(token, scheme)))
    assert identity is not None and identity.subject == "user-1"


def test_several_spaces_after_the_scheme_are_tolerated(static_auth: Authenticator, token: str) -> None:
    assert decide(static_auth, request([("authorization", f"Bearer   {token}")])) is not None


@pytest.mark.parametrize(
    "suffix",
    [" second.token.here", ",junk", ";junk", "\tjunk", " ", "\x00", "!", "==x", " Bearer x"],
    ids=["second-token", "comma-junk", "semicolon-junk", "tab-junk", "trailing-space", "nul",
         "bang", "padding-then-junk", "second-credentials"],
)
def test_rejects_token_followed_by_junk_or_second_token(
    static_auth: Authenticator, token: str, suffix: str
) -> None:
    rendered = refuse(static_auth, request([("authorization", f"Bearer {token}{suffix}")]))
    assert_invalid_request(rendered)


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    "])
def test_rejects_bearer_scheme_without_credentials(static_auth: Authenticator, value: str) -> None:
    assert_invalid_request(refuse(static_auth, request([("authorization", value)])))


@pytest.mark.parametrize("same", [True, False], ids=["identical", "different"])
def test_rejects_two_authorization_headers(
    static_auth: Authenticator, token: str, other_token: str, same: bool
) -> None:
    headers = [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token if same else other_token}")]
    rendered = refuse(static_auth, request(headers))
    assert_invalid_request(rendered)
    assert rendered.reason == "multiple_authorization_headers"


def test_rejects_bearer_header_next_to_basic_header(static_auth: Authenticator, token: str) -> None:
    headers = [("authorization", "Basic dXNlcjpwYXNz"), ("authorization", f"Bearer {token}")]
    assert_invalid_request(refuse(static_auth, request(headers)))


def test_basic_scheme_gets_bare_challenge(static_auth: Authenticator) -> None:
    """RFC 6750 §3.1: no Bearer credentials at all → 401 without an error code."""
    rendered = refuse(static_auth, request([("authorization", "Basic dXNlcjpwYXNz")]))
    assert rendered.status == 401
    assert rendered.challenge == 'Bearer realm="api"'
    assert "error=" not in rendered.challenge


def test_dpop_scheme_is_refused_when_dpop_is_off(static_auth: Authenticator, token: str) -> None:
    rendered = refuse(static_auth, request(bearer(token, "DPoP")))
    assert_invalid_request(rendered)
    assert rendered.reason == "dpop_not_enabled"


# --- cookies ----------------------------------------------------------------------------------
def test_cookie_source_with_default_name(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, sources=(CookieSource(),))
    identity = decide(auth, request([("cookie", f"theme=dark; __Host-access_token={token}; x=1")]))
    assert identity is not None and identity.subject == "user-1"


def test_cookie_source_with_configured_name(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, sources=(CookieSource("session_at"),))
    assert decide(auth, request([("cookie", f"session_at={token}")])) is not None
    # a cookie of another name is not a credential: the request is anonymous → bare 401
    rendered = refuse(auth, request([("cookie", f"__Host-access_token={token}")]))
    assert rendered.status == 401 and rendered.challenge == 'Bearer realm="api"'


def test_cookie_name_must_match_exactly(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, sources=(CookieSource("at"),))
    rendered = refuse(auth, request([("cookie", f"xat={token}; at_old={token}")]))
    assert rendered.status == 401 and rendered.refusal.reason == "missing_token"


def test_quoted_cookie_value_is_unquoted(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, sources=(CookieSource("at"),))
    assert decide(auth, request([("cookie", f'at="{token}"')])) is not None


def test_header_only_config_ignores_cookies(static_auth: Authenticator, token: str) -> None:
    rendered = refuse(static_auth, request([("cookie", f"__Host-access_token={token}")]))
    assert rendered.refusal.reason == "missing_token"


@pytest.mark.parametrize("order", ["header-first", "cookie-first"])
def test_same_token_in_header_and_cookie_is_accepted(
    es256_key: Key, clock: FakeClock, token: str, order: str
) -> None:
    sources = (HeaderSource(), CookieSource("at"))
    auth = make_auth(es256_key, clock, sources=sources if order == "header-first" else sources[::-1])
    identity = decide(auth, request([*bearer(token), ("cookie", f"at={token}")]))
    assert identity is not None


def test_source_order_decides_the_scheme(es256_key: Key, clock: FakeClock, token: str) -> None:
    view = request([*bearer(token), ("cookie", f"at={token}")])
    first = Extractor((CookieSource("at"), HeaderSource())).extract(view)
    assert first == Token(token, "cookie")
    assert Extractor((HeaderSource(), CookieSource("at"))).extract(view)[:2] == Token(token, "bearer")[:2]


def test_rejects_different_tokens_in_header_and_cookie(
    es256_key: Key, clock: FakeClock, token: str, other_token: str
) -> None:
    auth = make_auth(es256_key, clock, sources=(HeaderSource(), CookieSource("at")))
    rendered = refuse(auth, request([*bearer(token), ("cookie", f"at={other_token}")]))
    assert_invalid_request(rendered)
    assert rendered.reason == "multiple_tokens"


def test_rejects_two_different_cookies_of_the_same_name(
    es256_key: Key, clock: FakeClock, token: str, other_token: str
) -> None:
    auth = make_auth(es256_key, clock, sources=(CookieSource("at"),))
    assert_invalid_request(refuse(auth, request([("cookie", f"at={token}; at={other_token}")])))
    # split across two Cookie headers (HTTP/2 sends one per cookie) changes nothing
    assert_invalid_request(refuse(auth, request([("cookie", f"at={token}"), ("cookie", f"at={other_token}")])))


# --- the query string ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken", "%61ccess_token"])
def test_rejects_token_in_query_by_default(static_auth: Authenticator, token: str, name: str) -> None:
    """RFC 6750 §2.3 / §5.3: URLs end up in logs and Referer headers."""
    rendered = refuse(static_auth, request(query=f"{name}={token}".encode()))
    assert_invalid_request(rendered)
    assert rendered.reason == "token_in_query"


def test_rejects_query_token_even_next_to_a_valid_header(static_auth: Authenticator, token: str) -> None:
    assert_invalid_request(refuse(static_auth, request(bearer(token), query=f"access_token={token}".encode())))


def test_other_parameters_mentioning_access_token_are_not_tokens(static_auth: Authenticator, token: str) -> None:
    view = request(bearer(token), query=b"my_access_token=1&next=access_token%3Dx")
    assert decide(static_auth, view) is not None


def test_query_token_accepted_only_with_allow_query_token(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, allow_query_token=True)
    identity = decide(auth, request(query=f"page=2&access_token={token}".encode()))
    assert identity is not None and identity.subject == "user-1"


def test_rejects_two_different_query_tokens(
    es256_key: Key, clock: FakeClock, token: str, other_token: str
) -> None:
    auth = make_auth(es256_key, clock, allow_query_token=True)
    assert_invalid_request(refuse(auth, request(query=f"access_token={token}&access_token={other_token}".encode())))


def test_rejects_query_token_different_from_header_token(
    es256_key: Key, clock: FakeClock, token: str, other_token: str
) -> None:
    auth = make_auth(es256_key, clock, allow_query_token=True)
    assert_invalid_request(refuse(auth, request(bearer(token), query=f"access_token={other_token}".encode())))


def test_extractor_raises_invalid_request_directly() -> None:
    view = request([("authorization", "Bearer a"), ("authorization", "Bearer a")])
    with pytest.raises(InvalidRequest):
        Extractor((HeaderSource(),)).extract(view)
    assert Extractor((HeaderSource(),)).extract(request()) is None


def test_comma_joined_credentials_naming_bearer_are_two_credentials() -> None:
    """WSGI servers join repeated Authorization headers with ',' (RFC 9110 §5.3)."""
    from jwt_middleware import InvalidRequest, RequestView
    from jwt_middleware.config import HeaderSource
    from jwt_middleware.core.extract import Extractor

    extractor = Extractor((HeaderSource(),))
    for value in (b"Bearer a.b.c, Bearer a.b.c", b"Basic Zm9v, Bearer a.b.c", b"DPoP x, DPoP y"):
        with pytest.raises(InvalidRequest) as caught:
            extractor.extract(RequestView("GET", "/", [(b"authorization", value)]))
        assert caught.value.reason == "multiple_authorization_headers"
    assert extractor.extract(RequestView("GET", "/", [(b"authorization", b"Basic Zm9v, Negotiate abc")])) is None
    # A comma inside one credential is not two headers: it fails the b64token grammar, which the
    # pipeline checks before parsing (400 malformed_authorization).
    from jwt_middleware.core.extract import check_credentials_syntax

    token = extractor.extract(RequestView("GET", "/", [(b"authorization", b"Bearer a,b")]))
    assert token is not None
    with pytest.raises(InvalidRequest) as caught:
        check_credentials_syntax(token)
    assert caught.value.reason == "malformed_authorization"
