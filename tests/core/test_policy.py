"""Which rule covers a request: public, optional, required (default), methods, prefixes, preflight."""

from __future__ import annotations

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, ConfigError, MissingToken, Rule
from jwt_middleware.core.policy import PREFLIGHT, Matcher
from jwt_middleware.testing import FakeClock, make_key, mint

from ._support import NOW, assert_invalid_token, bearer, decide, make_auth, refuse, request

RULES = (
    Rule("/health", access="public"),
    Rule("/docs/*", access="public"),
    Rule("/feed", access="optional"),
    Rule("/articles/*", access="public", methods=("GET", "HEAD")),
    Rule("/admin/*", scopes=("admin",)),
)


@pytest.fixture
def auth(es256_key: Key, clock: FakeClock) -> Authenticator:
    return make_auth(es256_key, clock, rules=RULES)


@pytest.fixture
def token(es256_key: Key) -> str:
    return mint(es256_key, {"scope": "read admin"}, now=NOW)


@pytest.fixture
def forged() -> str:
    return mint(make_key("ES256", kid="es-1"), now=NOW)


# --- required (the default) ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/resource", "/healthz", "/health/", "/feedx", "/documents"])
def test_unmatched_routes_require_a_token(auth: Authenticator, path: str) -> None:
    rendered = refuse(auth, request(path=path))
    assert rendered.status == 401 and isinstance(rendered.refusal, MissingToken)
    assert rendered.challenge == 'Bearer realm="api"'


def test_default_access_public_protects_only_ruled_routes(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, default_access="public", rules=(Rule("/private/*"),))
    assert decide(auth, request(path="/anything")) is None
    assert refuse(auth, request(path="/private/x")).status == 401
    assert refuse(auth, request(path="/private")).status == 401


# --- public ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/health", "/docs/", "/docs", "/docs/a/b"])
def test_public_routes_pass_without_a_token(auth: Authenticator, path: str) -> None:
    assert decide(auth, request(path=path)) is None


def test_public_route_never_looks_at_the_token(auth: Authenticator, forged: str) -> None:
    """A public route attaches no identity, even for a token that would verify."""
    assert decide(auth, request(bearer(forged), path="/health")) is None


# --- optional ------------------------------------------------------------------------------------------
def test_optional_route_without_token_is_anonymous(auth: Authenticator) -> None:
    assert decide(auth, request(path="/feed")) is None


def test_optional_route_attaches_a_valid_token(auth: Authenticator, token: str) -> None:
    identity = decide(auth, request(bearer(token), path="/feed"))
    assert identity is not None and identity.subject == "user-1"


def test_optional_route_still_refuses_a_forged_token(auth: Authenticator, forged: str) -> None:
    rendered = refuse(auth, request(bearer(forged), path="/feed"))
    assert_invalid_token(rendered)
    assert rendered.reason == "bad_signature"


def test_optional_route_still_refuses_an_expired_token(auth: Authenticator, es256_key: Key) -> None:
    assert refuse(auth, request(bearer(mint(es256_key, now=NOW - 3600)), path="/feed")).reason == "token_expired"


def test_optional_route_still_refuses_two_tokens(auth: Authenticator, token: str) -> None:
    assert refuse(auth, request([*bearer(token), *bearer(token)], path="/feed")).status == 400


# --- methods and prefixes -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_rule_applies_to_its_methods(auth: Authenticator, method: str) -> None:
    assert decide(auth, request(path="/articles/1", method=method)) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_fall_through_to_required(auth: Authenticator, method: str) -> None:
    assert refuse(auth, request(path="/articles/1", method=method)).status == 401


def test_methods_are_normalised_to_upper_case() -> None:
    assert Rule("/x", access="public", methods=("get",)).methods == ("GET",)


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/users", "/admin/a/b/c"])
def test_prefix_rule_covers_the_prefix_and_below(auth: Authenticator, path: str, es256_key: Key) -> None:
    weak = mint(es256_key, {"scope": "read"}, now=NOW)
    rendered = refuse(auth, request(bearer(weak), path=path))
    assert rendered.status == 403
    assert rendered.challenge == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="admin"'
    )


@pytest.mark.parametrize("path", ["/administrator", "/admins", "/xadmin/", "//admin/users"])
def test_prefix_rule_does_not_cover_lookalike_paths(path: str) -> None:
    matcher = Matcher(RULES)
    assert matcher.match(request(path=path)).scopes == ()


def test_first_matching_rule_wins() -> None:
    matcher = Matcher((Rule("/a/public", access="public"), Rule("/a/*"), Rule("/a/public", access="optional")))
    assert matcher.match(request(path="/a/public")).access == "public"
    assert matcher.match(request(path="/a/other")).access == "required"


# --- CORS preflight ------------------------------------------------------------------------------------
PREFLIGHT_HEADERS = [("origin", "https://app.example"), ("access-control-request-method", "DELETE")]


def test_cors_preflight_passes_without_a_token(auth: Authenticator) -> None:
    view = request(PREFLIGHT_HEADERS, path="/admin/users", method="OPTIONS")
    assert Matcher(RULES).match(view) is PREFLIGHT
    assert decide(auth, view) is None


@pytest.mark.parametrize(
    ("method", "headers"),
    [("OPTIONS", [("origin", "https://app.example")]),
     ("OPTIONS", [("access-control-request-method", "GET")]),
     ("OPTIONS", []),
     ("DELETE", PREFLIGHT_HEADERS),
     ("GET", PREFLIGHT_HEADERS)],
    ids=["options-origin-only", "options-acrm-only", "bare-options", "delete-dressed-as-preflight",
         "get-dressed-as-preflight"],
)
def test_rejects_requests_dressed_as_preflight(auth: Authenticator, method: str, headers: list[tuple[str, str]]) -> None:
    assert refuse(auth, request(headers, path="/admin/users", method=method)).status == 401


# --- rule validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"path": "admin"}, "Rule.path"), ({"path": "/a*/b"}, "Rule.path"), ({"path": "/x", "access": "open"},
     "Rule.access"), ({"path": "/x", "access": "public", "scopes": ("a",)}, "Rule.scopes")],
)
def test_rule_config_errors_name_the_option(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        Rule(**kwargs)  # type: ignore[arg-type]
