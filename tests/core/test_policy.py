"""Which rule covers a request: public, optional, required (default), methods, patterns, preflight."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import Key

from jwt_middleware import Authenticator, ConfigError, MissingToken, RequestView, Rule
from jwt_middleware.config import PARAM_CONVERTORS, pattern_segments
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
@pytest.mark.parametrize("path", ["/", "/resource", "/healthz", "/health/x", "/feedx", "/documents"])
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
@pytest.mark.parametrize("path", ["/health", "/health/", "/docs/", "/docs", "/docs/a/b"])
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


# --- methods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_rule_applies_to_its_methods(auth: Authenticator, method: str) -> None:
    assert decide(auth, request(path="/articles/1", method=method)) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_fall_through_to_required(auth: Authenticator, method: str) -> None:
    assert refuse(auth, request(path="/articles/1", method=method)).status == 401


def test_methods_are_normalised_to_upper_case_and_get_brings_head() -> None:
    assert Rule("/x", access="public", methods=("get",)).methods == ("GET", "HEAD")
    assert Rule("/x", methods=["post", "POST"]).methods == ("POST",)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["delete", "Delete", "DELETE"])
def test_a_method_rule_covers_the_method_in_any_case(method: str) -> None:
    """uvicorn with h11 passes the method as sent; Django routes ``delete`` to the view anyway."""
    matcher = Matcher((Rule("/items/{id}", methods=("DELETE",), scopes=("delete",)),))
    assert matcher.match(request(path="/items/7", method=method)).scopes == ("delete",)
    assert RequestView(method, "/").method == "DELETE"


def test_head_is_covered_by_a_get_rule(es256_key: Key, clock: FakeClock) -> None:
    """Starlette and Flask run the GET handler for HEAD: the GET rule's scopes apply to it."""
    auth = make_auth(es256_key, clock, default_access="public",
                     rules=(Rule("/reports", methods=("GET",), scopes=("reports",)),))
    weak = mint(es256_key, {"scope": "read"}, now=NOW)
    for method in ("GET", "HEAD", "head"):
        assert refuse(auth, request(bearer(weak), path="/reports", method=method)).status == 403
    assert decide(auth, request(path="/reports", method="POST")) is None


# --- patterns -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/users", "/admin/a/b/c"])
def test_prefix_rule_covers_the_prefix_and_below(auth: Authenticator, path: str, es256_key: Key) -> None:
    weak = mint(es256_key, {"scope": "read"}, now=NOW)
    rendered = refuse(auth, request(bearer(weak), path=path))
    assert rendered.status == 403
    assert rendered.challenge == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="admin"'
    )


@pytest.mark.parametrize("path", ["/administrator", "/admins", "/xadmin/", "/adm", "/"])
def test_prefix_rule_does_not_cover_lookalike_paths(path: str) -> None:
    matcher = Matcher(RULES)
    assert matcher.match(request(path=path)).scopes == ()


@pytest.mark.parametrize(
    ("pattern", "covered", "not_covered"),
    [
        ("/health", ["/health", "/health/"], ["/health/x", "/healthz", "/"]),
        ("/", ["/"], ["/a"]),
        ("/items/{id}", ["/items/7", "/items/abc/", "/items/é"], ["/items", "/items/", "/items/7/x"]),
        ("/items/{id}/parts", ["/items/7/parts", "/items/x/parts/"], ["/items/7", "/items/7/parts/1", "/items//parts"]),
        ("/items/{id:int}", ["/items/7", "/items/007"], ["/items/-1", "/items/7.5", "/items/abc", "/items/"]),
        ("/p/{x:float}", ["/p/1", "/p/1.5"], ["/p/1.", "/p/.5", "/p/nan"]),
        ("/u/{u:uuid}", ["/u/12345678-1234-1234-1234-1234567890ab"], ["/u/123", "/u/g2345678-1234-1234-1234-1234567890ab"]),
        ("/u/{u:str}", ["/u/x"], ["/u", "/u/x/y"]),
        ("/files/{rest:path}", ["/files", "/files/", "/files/a", "/files/a/b/c"], ["/filesx", "/file"]),
        ("/admin/*", ["/admin", "/admin/", "/admin/x/y"], ["/administrator", "/"]),
        ("/*", ["/", "/a", "/a/b/"], []),
        ("/{tenant}/admin/*", ["/acme/admin", "/acme/admin/x"], ["/acme/other", "/admin"]),
        ("/v1:batch", ["/v1:batch"], ["/v1"]),
        ("/café", ["/café"], ["/cafe"]),
    ],
)
def test_pattern_syntax(pattern: str, covered: list[str], not_covered: list[str]) -> None:
    matcher = Matcher((Rule(pattern, access="public"),))
    for path in covered:
        assert matcher.match(request(path=path)).access == "public", path
    for path in not_covered:
        assert matcher.match(request(path=path)).access == "required", path


def test_first_matching_rule_wins() -> None:
    matcher = Matcher((Rule("/a/public", access="public"), Rule("/a/*"), Rule("/a/public", access="optional")))
    assert matcher.match(request(path="/a/public")).access == "public"
    assert matcher.match(request(path="/a/other")).access == "required"


def test_first_matching_rule_wins_across_exact_parameter_and_prefix_rules() -> None:
    """The trie answers what a scan in configuration order would: the lowest index, whatever kind."""
    export = Rule("/items/export", scopes=("export",))
    item = Rule("/items/{id}", access="public")
    below = Rule("/items/*", scopes=("items",))
    assert Matcher((item, export, below)).match(request(path="/items/export")) is item
    assert Matcher((export, item, below)).match(request(path="/items/export")) is export
    assert Matcher((below, item, export)).match(request(path="/items/export")) is below
    assert Matcher((export, item, below)).match(request(path="/items/7/x")) is below
    # a parameter branch and a literal branch both match a segment: both are followed
    tenant = Rule("/{tenant}/reports", access="public")
    under_a = Rule("/acme/*", scopes=("acme",))
    assert Matcher((tenant, under_a)).match(request(path="/acme/reports")) is tenant
    assert Matcher((under_a, tenant)).match(request(path="/acme/reports")) is under_a
    assert Matcher((Rule("/acme/{id}/x", access="public"), tenant)).match(request(path="/acme/reports")) is tenant


def test_a_method_rule_does_not_hide_a_later_rule_for_other_methods() -> None:
    write = Rule("/items/{id}", methods=("POST", "DELETE"), scopes=("write",))
    read = Rule("/items/*", scopes=("read",))
    matcher = Matcher((write, read))
    assert matcher.match(request(path="/items/1", method="DELETE")) is write
    assert matcher.match(request(path="/items/1", method="GET")) is read


def test_rules_see_the_path_below_root_path_unless_match_full_path() -> None:
    view = RequestView("GET", "/admin", root_path="/api")
    assert view.full_path == "/api/admin"
    rules = (Rule("/admin", scopes=("admin",)), Rule("/api/admin", scopes=("full",)))
    assert Matcher(rules).match(view).scopes == ("admin",)
    assert Matcher(rules, match_full_path=True).match(view).scopes == ("full",)


# --- the trie against a scan in order ------------------------------------------------------------------
def _reference(rules: tuple[Rule, ...], path: str, method: str) -> Rule | None:
    """What the rules mean, written apart from the trie: the first rule whose regex matches."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for rule in rules:
        if rule.methods is not None and method not in rule.methods:
            continue
        regex = ""
        for kind, text in pattern_segments(rule.path):
            if kind == "literal":
                regex += "/" + re.escape(text)
            elif kind == "param":
                regex += "/" + (PARAM_CONVERTORS[text] or "[^/]+")
            else:
                regex += "(/.*)?"
        if re.fullmatch(regex or "/", path):
            return rule
    return None


PARTS = st.sampled_from(["a", "b", "7", "{x}", "{n:int}"])


def _rule(parts: list[str], rest: bool, methods: tuple[str, ...] | None) -> Rule:
    named = [part.replace("}", f"{i}}}") if ":" not in part else part.replace(":", f"{i}:") for i, part in enumerate(parts)]
    path = "/" + "/".join(named)
    return Rule(path.rstrip("/") + "/*" if rest else path, methods=methods)


RULE = st.builds(_rule, st.lists(PARTS, max_size=3), st.booleans(), st.sampled_from([None, ("GET",), ("POST",)]))
PATH = st.builds(lambda parts, slash: "/" + "/".join(parts) + ("/" if slash and parts else ""),
                 st.lists(st.sampled_from(["a", "b", "7", "c"]), max_size=4), st.booleans())


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(RULE, max_size=8).map(tuple), PATH, st.sampled_from(["GET", "HEAD", "POST"]))
def test_trie_matches_the_first_rule_a_scan_would(rules: tuple[Rule, ...], path: str, method: str) -> None:
    expected = _reference(rules, path, method)
    found = Matcher(rules).match(request(path=path, method=method))
    if expected is None:
        assert not any(found is rule for rule in rules) and found.access == "required"
    else:
        assert found is expected


# --- CORS preflight ------------------------------------------------------------------------------------
PREFLIGHT_HEADERS = [("origin", "https://app.example"), ("access-control-request-method", "DELETE")]


def test_cors_preflight_is_authenticated_by_default(auth: Authenticator) -> None:
    """No bypass: Django function views and mounted sub-apps would run for OPTIONS and answer."""
    view = request(PREFLIGHT_HEADERS, path="/admin/users", method="OPTIONS")
    assert Matcher(RULES).match(view) is not PREFLIGHT
    assert refuse(auth, view).status == 401


def test_cors_preflight_passes_when_configured(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, rules=RULES, preflight="pass")
    view = request(PREFLIGHT_HEADERS, path="/admin/users", method="OPTIONS")
    assert Matcher(RULES, preflight="pass").match(view) is PREFLIGHT
    assert decide(auth, view) is None


@pytest.mark.parametrize(
    ("method", "headers"),
    [("OPTIONS", [("origin", "https://app.example")]),
     ("OPTIONS", [("access-control-request-method", "GET")]),
     ("OPTIONS", []),
     ("OPTIONS", [*PREFLIGHT_HEADERS, ("authorization", "Bearer x")]),
     ("DELETE", PREFLIGHT_HEADERS),
     ("GET", PREFLIGHT_HEADERS)],
    ids=["options-origin-only", "options-acrm-only", "bare-options", "options-with-credentials",
         "delete-dressed-as-preflight", "get-dressed-as-preflight"],
)
def test_rejects_requests_dressed_as_preflight(
    es256_key: Key, clock: FakeClock, method: str, headers: list[tuple[str, str]]
) -> None:
    auth = make_auth(es256_key, clock, rules=RULES, preflight="pass")
    rendered = refuse(auth, request(headers, path="/admin/users", method=method))
    assert rendered.status in (400, 401)


# --- rule validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"path": "admin"}, "Rule.path"), ({"path": "/a*/b"}, "Rule.path"), ({"path": "/x", "access": "open"},
     "Rule.access"), ({"path": "/x", "access": "public", "scopes": ("a",)}, "Rule.scopes"),
     ({"path": "/x", "methods": ()}, "Rule.methods"), ({"path": "/x", "methods": []}, "Rule.methods"),
     ({"path": "/x", "methods": ("GET ",)}, "Rule.methods")],
)
def test_rule_config_errors_name_the_option(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        Rule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "fix"),
    [
        ("/admin*", "'/admin/*'"),
        ("/a/*/b", "'/a/*'"),
        ("/*/x", "'/*'"),
        ("/admin/*/", "'/admin/*'"),
        ("/items/<id>", "{id}"),
        ("/items/<int:id>", "{id}"),
        ("/items/:id", "{id}"),
        ("/items/{}", "{id}"),
        ("/items/{id", "{id}"),
        ("/items/id}", "{id}"),
        ("/items/x{id}", "{id}"),
        ("/items/{1d}", "{id}"),
        ("/items/{id:hex}", "str, int, float, uuid or path"),
        ("/files/{rest:path}/x", "must come last"),
        ("/items/{id}/{id}", "twice"),
        ("/items/(\\d+)", "no regular expressions"),
        ("/items/[0-9]", "no regular expressions"),
        ("^/items", "must start with '/'"),
        ("/items$", "no regular expressions"),
        ("/items/.+", "no regular expressions"),
        ("/items?", "no regular expressions"),
        ("/a|/b", "no regular expressions"),
        ("/a\\b", "no regular expressions"),
        ("/caf%C3%A9", "not its %-escape"),
        ("//admin", "canonical"),
        ("/a/./b", "canonical"),
        ("/a/../b", "canonical"),
        ("/a b", "no regular expressions"),
    ],
)
def test_rejects_patterns_the_matcher_cannot_honour(path: str, fix: str) -> None:
    """A rule that can never match (or matches more than it says) would be a silent no-op."""
    with pytest.raises(ConfigError, match=r"^Rule\.path: ") as caught:
        Rule(path)
    assert fix in str(caught.value)
