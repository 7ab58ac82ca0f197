"""A token already in the verified-token cache is refused wherever its first use would be.

The cache files a ``Bearer`` token under its raw Authorization bytes and the core looks it up
before decoding anything (the hot path). Each test first gets the token accepted, so it sits in
the cache, and then sends it in a request that must still be refused.
"""

from __future__ import annotations

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, CookieSource, HeaderSource, Rule
from jwt_middleware.testing import FakeClock, mint

from ._support import ISSUER, assert_invalid_request, bearer, decide, make_auth, refuse, request


@pytest.fixture
def token(es256_key: Key, clock: FakeClock) -> str:
    return mint(es256_key, {"sub": "alice", "scope": "read", "jti": "j-1"}, issuer=ISSUER, now=clock.now)


def warm(auth: Authenticator, token: str, path: str = "/resource") -> None:
    identity = decide(auth, request(bearer(token), path=path))
    assert identity is not None and identity.subject == "alice"


def test_cached_token_in_a_second_authorization_header_is_refused(es256_key: Key, clock: FakeClock,
                                                                  token: str) -> None:
    auth = make_auth(es256_key, clock)
    warm(auth, token)
    rendered = refuse(auth, request([*bearer(token), *bearer(token)]))
    assert_invalid_request(rendered)
    assert rendered.reason == "multiple_authorization_headers"


@pytest.mark.parametrize("query", [b"access_token=x", b"a=1&access_token=", b"access%5Ftoken=x"])
def test_cached_token_with_a_token_in_the_url_is_refused(es256_key: Key, clock: FakeClock, token: str,
                                                        query: bytes) -> None:
    auth = make_auth(es256_key, clock)
    warm(auth, token)
    rendered = refuse(auth, request(bearer(token), query=query))
    assert_invalid_request(rendered)
    assert rendered.reason == "token_in_query"


def test_cached_token_without_the_route_scope_is_refused(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, rules=(Rule("/admin", scopes=("admin",)),))
    warm(auth, token)
    rendered = refuse(auth, request(bearer(token), path="/admin"))
    assert (rendered.status, rendered.reason) == (403, "insufficient_scope")


def test_cached_token_is_still_one_time_on_a_one_time_route(es256_key: Key, clock: FakeClock,
                                                           token: str) -> None:
    auth = make_auth(es256_key, clock, rules=(Rule("/pay", one_time=True),))
    warm(auth, token)  # cached by a request to an ordinary route
    assert decide(auth, request(bearer(token), path="/pay")) is not None
    rendered = refuse(auth, request(bearer(token), path="/pay"))
    assert (rendered.status, rendered.reason) == (401, "token_replayed")
    assert decide(auth, request(bearer(token))) is not None  # ordinary routes still take it


def test_cached_token_expires_without_a_new_verification(es256_key: Key, clock: FakeClock, token: str) -> None:
    auth = make_auth(es256_key, clock, leeway=0)
    warm(auth, token)
    clock.advance(3600)
    assert refuse(auth, request(bearer(token))).reason == "token_expired"


def test_bound_token_as_bearer_is_refused_each_time(es256_key: Key, clock: FakeClock) -> None:
    """A DPoP-bound token (cnf.jkt) filed in the cache is never taken as a plain bearer token."""
    bound = mint(es256_key, {"sub": "alice", "cnf": {"jkt": "0" * 43}}, issuer=ISSUER, now=clock.now)
    auth = make_auth(es256_key, clock)
    first = refuse(auth, request(bearer(bound)))
    second = refuse(auth, request(bearer(bound)))
    assert first.status == second.status == 401
    assert first.reason == second.reason


def test_cached_header_token_and_another_cookie_token_are_refused(es256_key: Key, clock: FakeClock,
                                                                 token: str) -> None:
    auth = make_auth(es256_key, clock, sources=(HeaderSource(), CookieSource("at")))
    warm(auth, token)
    other = mint(es256_key, {"sub": "mallory"}, issuer=ISSUER, now=clock.now)
    rendered = refuse(auth, request([*bearer(token), ("cookie", f"at={other}")]))
    assert_invalid_request(rendered)
    assert rendered.reason == "multiple_tokens"


def test_cached_token_spelled_differently_gets_the_same_decision(es256_key: Key, clock: FakeClock,
                                                                token: str) -> None:
    auth = make_auth(es256_key, clock)
    warm(auth, token)
    for header in (f"bearer {token}", f"BEARER {token}", f"Bearer  {token}"):
        identity = decide(auth, request([("authorization", header)]))
        assert identity is not None and identity.subject == "alice"
    assert refuse(auth, request([("authorization", f"Bearer {token} junk")])).status == 400
