"""Django's edges: a settings mistake stops Django at start-up, Django's AuthenticationMiddleware
cannot silently undo ours, a bearer token is exempt from CSRF while a cookie-borne one is not,
the middleware runs without ``django.contrib.auth``, and ``request.user`` can be Django's real
``User`` loaded from a verified token.

Requests go through Django's own test clients (WSGIRequest and ASGIRequest, CSRF enforced) and
Django's ASGI handler under httpx. Settings this process cannot have (no ``contrib.auth``, a
database with users) run in a subprocess: tests/integrations/django_site.py. This module is the
URLconf of the in-process tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jwt_middleware import Authenticator, CookieSource, HeaderSource
from jwt_middleware.config import DPoPSettings
from jwt_middleware.testing import mint

from ..support.dpop_client import ES256Client
from . import apps, django_site

ROOT = Path(__file__).resolve().parents[2]
COOKIE = "__Host-access_token"
CSRF_MIDDLEWARE = "django.middleware.csrf.CsrfViewMiddleware"
OURS, AUTH_MIDDLEWARE, SESSIONS = django_site.MIDDLEWARE, django_site.AUTH_MIDDLEWARE, django_site.SESSION_MIDDLEWARE
SIGNED_SESSIONS = {"SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies"}


def _urlpatterns() -> list[Any]:
    apps.django_wsgi_app()  # settings configured once per process
    from django.contrib.auth.decorators import login_required
    from django.urls import path

    return [*django_site.urlpatterns, path("alogin", login_required(django_site.awhoami))]


urlpatterns = _urlpatterns()

from django.contrib.auth.middleware import AuthenticationMiddleware  # noqa: E402 - needs settings
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

from jwt_middleware.integrations.django import JWTAuthenticationMiddleware  # noqa: E402


class SiteAuthenticationMiddleware(AuthenticationMiddleware):
    """A project's own subclass of Django's: it overwrites request.user just the same."""


class SiteJWTMiddleware(JWTAuthenticationMiddleware):
    """A project's own subclass of ours."""


def view(request: Any) -> Any:
    return None


@contextmanager
def site(auth: Authenticator | None = None, **settings: Any) -> Iterator[None]:
    """This module as the URLconf, ``auth`` as the Authenticator, and any other settings."""
    settings.setdefault("JWT_MIDDLEWARE_AUTHENTICATOR", auth or django_site.authenticator())
    with override_settings(ROOT_URLCONF=__name__, **settings):
        yield


def alice() -> str:
    return django_site.token("alice")


def seen(response: Any) -> dict[str, Any]:
    """What the view saw; fails unless a view answered."""
    assert response.status_code == 200, (response.status_code, response.content[:300])
    found: dict[str, Any] = json.loads(response.content)
    return found


def csrf_refused(response: Any) -> None:
    """Refused by Django's CsrfViewMiddleware, not by us: no challenge, no view."""
    assert response.status_code == 403, (response.status_code, response.content[:300])
    assert b"CSRF verification failed" in response.content
    assert "www-authenticate" not in response.headers


# -- JWT_MIDDLEWARE_AUTHENTICATOR: a mistake is ImproperlyConfigured naming the setting ----------------

EXPECTED = "set JWT_MIDDLEWARE_AUTHENTICATOR to an Authenticator or its dotted path"


def test_missing_authenticator_setting_names_the_setting_and_the_expected_type() -> None:
    from django.conf import settings

    with site():
        del settings.JWT_MIDDLEWARE_AUTHENTICATOR
        with pytest.raises(ImproperlyConfigured, match="JWT_MIDDLEWARE_AUTHENTICATOR is not set") as raised:
            JWTAuthenticationMiddleware(view)
    assert EXPECTED in str(raised.value)


@pytest.mark.parametrize("path", ["tests.integrations.nowhere.AUTH", "tests.integrations.apps.NO_SUCH_NAME", "AUTH"])
def test_authenticator_path_that_does_not_import_names_the_setting(path: str) -> None:
    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=path), pytest.raises(ImproperlyConfigured) as raised:
        JWTAuthenticationMiddleware(view)
    message = str(raised.value)
    assert message.startswith("JWT_MIDDLEWARE_AUTHENTICATOR: ") and EXPECTED in message


@pytest.mark.parametrize(("value", "found"), [(apps.AUTH.config, "Config"), ("tests.integrations.apps.ISSUER", "str"),
                                              (42, "int"), ("tests.integrations.apps.KEY", "ECKey")])
def test_authenticator_setting_that_is_not_an_authenticator_names_what_it_got(value: object, found: str) -> None:
    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=value), pytest.raises(ImproperlyConfigured) as raised:
        JWTAuthenticationMiddleware(view)
    assert f"JWT_MIDDLEWARE_AUTHENTICATOR: got {found}, not an Authenticator" in str(raised.value)
    assert EXPECTED in str(raised.value)


def test_settings_mistake_stops_django_when_it_loads_its_handler() -> None:
    from django.core.asgi import get_asgi_application

    with site(), override_settings(JWT_MIDDLEWARE_AUTHENTICATOR="tests.integrations.nowhere.AUTH"):
        with pytest.raises(ImproperlyConfigured, match="JWT_MIDDLEWARE_AUTHENTICATOR"):
            Client().get("/whoami")
        with pytest.raises(ImproperlyConfigured, match="JWT_MIDDLEWARE_AUTHENTICATOR"):
            get_asgi_application()


def test_authenticator_given_by_dotted_path_is_used() -> None:
    with site(), override_settings(JWT_MIDDLEWARE_AUTHENTICATOR="tests.integrations.apps.AUTH"):
        assert JWTAuthenticationMiddleware(view).authenticator is apps.AUTH



def test_a_store_that_does_not_suit_the_mode_is_refused_at_construction() -> None:
    """Sync Django (WSGI) cannot run an asyncio follower: an AsyncRedisRevocationStore there
    would leave the mirror unsynced and answer 503 forever, so it is a ConfigError at start-up;
    under Django's async path the same Authenticator is accepted."""
    import redis.asyncio

    from jwt_middleware import Authenticator
    from jwt_middleware.errors import ConfigError
    from jwt_middleware.revocation import AsyncRedisRevocationStore

    client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_timeout=0.1, socket_connect_timeout=0.1)
    store = AsyncRedisRevocationStore(client, clock=apps.AUTH.config.clock)
    auth = Authenticator(apps.AUTH.config, revocation_store=store)
    with site(), override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=auth):
        with pytest.raises(ConfigError, match="revocation_store"):
            JWTAuthenticationMiddleware(view)

        async def aview(request: Any) -> Any:
            return view(request)

        assert JWTAuthenticationMiddleware(aview).authenticator is auth

# -- MIDDLEWARE order: Django's AuthenticationMiddleware below ours is a start-up error ----------------


@pytest.mark.parametrize(("mine", "theirs"), [(OURS, AUTH_MIDDLEWARE),
                                              (f"{__name__}.SiteJWTMiddleware", AUTH_MIDDLEWARE),
                                              (OURS, f"{__name__}.SiteAuthenticationMiddleware")])
def test_authentication_middleware_after_ours_stops_django_at_start(mine: str, theirs: str) -> None:
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    with site(MIDDLEWARE=[SESSIONS, mine, theirs], **SIGNED_SESSIONS):
        for load in (get_wsgi_application, get_asgi_application):
            with pytest.raises(ImproperlyConfigured) as raised:
                load()
            message = str(raised.value)
            assert f"MIDDLEWARE: {theirs!r} comes after {mine!r}" in message
            assert f"Move {mine!r} below {theirs!r} in MIDDLEWARE." in message


def test_authentication_middleware_before_ours_leaves_the_token_user_to_the_view() -> None:
    with site(MIDDLEWARE=[SESSIONS, AUTH_MIDDLEWARE, OURS], **SIGNED_SESSIONS):
        user = seen(Client().get("/whoami", HTTP_AUTHORIZATION=f"Bearer {alice()}"))
        anonymous = seen(Client().get("/whoami"))
    assert user["class"] == "JWTUser" and user["username"] == "alice" and user["authenticated"]
    assert anonymous["class"] == "AnonymousUser" and anonymous["module"] == "django.contrib.auth.models"


def test_system_check_reports_each_mistake_with_its_id() -> None:
    from jwt_middleware.integrations.django_checks import check_settings

    def ids(**settings: Any) -> list[str]:
        with site(**settings):
            return [message.id for message in check_settings()]

    assert ids(MIDDLEWARE=[OURS]) == []
    assert ids(MIDDLEWARE=[SESSIONS, AUTH_MIDDLEWARE, OURS]) == []
    assert ids(MIDDLEWARE=[SESSIONS, OURS, AUTH_MIDDLEWARE]) == ["jwt_middleware.E001"]
    assert ids(MIDDLEWARE=[SESSIONS, AUTH_MIDDLEWARE]) == ["jwt_middleware.W001"]
    assert ids(MIDDLEWARE=[OURS], JWT_MIDDLEWARE_AUTHENTICATOR="tests.integrations.nowhere.AUTH") == [
        "jwt_middleware.E002"]
    assert ids(MIDDLEWARE=[SESSIONS, OURS, AUTH_MIDDLEWARE], JWT_MIDDLEWARE_AUTHENTICATOR=42) == [
        "jwt_middleware.E001", "jwt_middleware.E002"]


# -- CSRF: a token from the Authorization header is exempt, a cookie-borne one is not ------------------

BOTH_SOURCES = (HeaderSource(), CookieSource(COOKIE))
CSRF_ORDERS = {"csrf-first": [CSRF_MIDDLEWARE, OURS], "ours-first": [OURS, CSRF_MIDDLEWARE]}


def post(auth: Authenticator, *, mode: str = "wsgi", order: str = "csrf-first", authorization: str | None = None,
         cookie: str | None = None, **headers: str) -> Any:
    """One POST through Django's test client with CSRF checks enforced (as a browser is held to)."""
    client: Any = AsyncClient(enforce_csrf_checks=True) if mode == "asgi" else Client(enforce_csrf_checks=True)
    if cookie is not None:
        client.cookies[COOKIE] = cookie
    if authorization is not None:
        headers["authorization"] = authorization
    with site(auth, MIDDLEWARE=CSRF_ORDERS[order]):
        if mode == "asgi":
            import asyncio

            return asyncio.run(client.post("/awhoami", headers=headers))
        return client.post("/whoami", headers=headers)


@pytest.mark.parametrize("order", list(CSRF_ORDERS))
@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_bearer_token_post_is_exempt_from_csrf(mode: str, order: str) -> None:
    response = post(django_site.authenticator(sources=BOTH_SOURCES), mode=mode, order=order,
                    authorization=f"Bearer {alice()}")
    body = seen(response)
    assert body["username"] == "alice" and body["csrf_exempt"] is True


@pytest.mark.parametrize("order", list(CSRF_ORDERS))
@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_cookie_token_post_is_refused_by_csrf(mode: str, order: str) -> None:
    auth = django_site.authenticator(sources=BOTH_SOURCES)
    csrf_refused(post(auth, mode=mode, order=order, cookie=alice()))
    # the cookie token itself is good: a safe method reaches the view with it
    client = Client(enforce_csrf_checks=True)
    client.cookies[COOKIE] = alice()
    with site(auth, MIDDLEWARE=CSRF_ORDERS[order]):
        assert seen(client.get("/whoami"))["username"] == "alice"


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_anonymous_post_is_refused_by_csrf(mode: str) -> None:
    csrf_refused(post(django_site.authenticator(sources=BOTH_SOURCES), mode=mode))


def test_cookie_token_with_a_basic_authorization_header_is_refused_by_csrf() -> None:
    # A browser attaches Basic credentials on its own; they say nothing about who sent the form.
    response = post(django_site.authenticator(sources=BOTH_SOURCES), cookie=alice(),
                    authorization="Basic dXNlcjpwYXNz")
    csrf_refused(response)


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
def test_cookie_only_config_is_not_exempted_by_a_bearer_header_it_ignores(mode: str) -> None:
    # The identity came from the cookie (this config never reads the header): still a cookie login.
    token = alice()
    response = post(django_site.authenticator(sources=(CookieSource(COOKIE),)), mode=mode, cookie=token,
                    authorization=f"Bearer {token}")
    csrf_refused(response)


def test_bearer_header_on_a_public_route_is_not_exempt() -> None:
    # No identity was decided from it (a public rule reads no token), so nothing shows who sent it.
    client = Client(enforce_csrf_checks=True)
    with site(django_site.authenticator(sources=BOTH_SOURCES), MIDDLEWARE=CSRF_ORDERS["csrf-first"]):
        csrf_refused(client.post("/public", headers={"authorization": f"Bearer {alice()}"}))
        assert seen(Client().post("/public", headers={"authorization": f"Bearer {alice()}"}))["subject"] is None


def test_same_token_in_header_and_cookie_is_exempt() -> None:
    token = alice()
    response = post(django_site.authenticator(sources=BOTH_SOURCES), cookie=token, authorization=f"Bearer {token}")
    assert seen(response)["csrf_exempt"] is True


def test_dpop_token_post_is_exempt_from_csrf() -> None:
    key = ES256Client()
    bound = mint(apps.KEY, {"sub": "alice", "cnf": {"jkt": key.thumbprint()}}, issuer=apps.ISSUER,
                 now=apps.CLOCK.now)
    auth = django_site.authenticator(sources=BOTH_SOURCES, dpop=DPoPSettings(allowed_hosts=("testserver",)))
    proof = key.proof("POST", "http://testserver/whoami", bound, apps.CLOCK.now)
    body = seen(post(auth, authorization=f"DPoP {bound}", dpop=proof))
    assert body["username"] == "alice" and body["csrf_exempt"] is True


def test_refused_bearer_post_is_answered_by_the_middleware() -> None:
    response = post(django_site.authenticator(sources=BOTH_SOURCES), authorization="Bearer not.a.token")
    assert response.status_code in (400, 401) and "www-authenticate" in response.headers


# -- request.auser: Django's async login_required sees the token's user --------------------------------


@pytest.mark.parametrize("middleware", [[OURS], [SESSIONS, AUTH_MIDDLEWARE, OURS]])
async def test_async_login_required_view_sees_the_token_user(middleware: list[str]) -> None:
    with site(MIDDLEWARE=middleware, **SIGNED_SESSIONS, LOGIN_URL="/login"):
        body = seen(await AsyncClient().get("/alogin", headers={"authorization": f"Bearer {alice()}"}))
        anonymous = await AsyncClient().get("/alogin")
    assert body["auser"] == "JWTUser" and body["username"] == "alice"
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/login")


# -- sites in a subprocess: no contrib.auth; Django's real User ---------------------------------------


def run_site(name: str, tmp: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.integrations.django_site", name, str(tmp)], cwd=ROOT,
                          capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_site("bare", tmp_path_factory.mktemp("bare"))


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_site("users", tmp_path_factory.mktemp("users"))


def answered(observed: dict[str, Any], handler: str = "whoami") -> dict[str, Any]:
    assert "raised" not in observed, observed
    assert observed["status"] == 200, observed
    body: dict[str, Any] = observed["body"]
    assert body["handler"] == handler
    return body


def unknown_user(observed: dict[str, Any]) -> None:
    """Refused 401 invalid_token with the challenge; the view never ran."""
    assert "raised" not in observed, observed
    assert observed["status"] == 401, observed
    assert observed["www"].startswith("Bearer ") and 'error="invalid_token"' in observed["www"]
    assert "handler" not in str(observed["body"])


@pytest.mark.parametrize(("scenario", "handler"), [("wsgi_bearer", "whoami"), ("asgi_bearer", "awhoami")])
def test_without_contrib_auth_a_token_user_reaches_the_view(bare: dict[str, Any], scenario: str, handler: str) -> None:
    body = answered(bare[scenario], handler)
    assert body["class"] == "JWTUser" and body["username"] == "alice" and body["authenticated"] is True


@pytest.mark.parametrize(("scenario", "handler"), [("wsgi_anonymous", "whoami"), ("asgi_anonymous", "awhoami")])
def test_without_contrib_auth_anonymous_is_our_anonymous_user(bare: dict[str, Any], scenario: str, handler: str) -> None:
    body = answered(bare[scenario], handler)
    assert body["class"] == "JWTAnonymousUser"
    assert body["authenticated"] is False and body["anonymous"] is True and body["pk"] is None
    assert body["str"] == "AnonymousUser" and body["username"] == "" and body["has_perm"] is False
    assert body["has_no_perms"] is True  # as Django's AnonymousUser.has_perms([])
    if handler == "awhoami":
        assert body["auser"] == "JWTAnonymousUser"


def test_without_contrib_auth_refusals_are_ours(bare: dict[str, Any]) -> None:
    observed = bare["wsgi_refused"]
    assert observed["status"] in (400, 401) and observed["www"].startswith("Bearer ")


def test_without_contrib_auth_nothing_imports_the_auth_models(bare: dict[str, Any]) -> None:
    loaded = bare["auth_models_imported"]
    assert "django.contrib.auth.models" not in loaded and "django.contrib.contenttypes.models" not in loaded


def test_user_model_loader_without_contrib_auth_stops_django_at_start(bare: dict[str, Any]) -> None:
    for mode in ("wsgi", "asgi"):
        outcome = bare["user_loader_needs_auth"][mode]
        assert outcome.startswith("ImproperlyConfigured: UserModelLoader(claim='sub', field=None, issuer=None)")
        assert "add 'django.contrib.auth'" in outcome


def test_system_checks_run_without_contrib_auth(bare: dict[str, Any]) -> None:
    assert bare["checks"]["raised"] is None and bare["checks"]["ids"] == []
    assert bare["checks_bad_loader"]["ids"] == ["jwt_middleware.E003"]


def test_active_user_of_the_user_model_becomes_request_user(users: dict[str, Any]) -> None:
    body = answered(users["wsgi_active"])
    assert body["class"] == "User" and body["module"] == "django.contrib.auth.models"
    assert body["username"] == "alice" and body["authenticated"] is True and body["subject"] == body["pk"]


@pytest.mark.parametrize("scenario", ["wsgi_inactive", "wsgi_async_loader_inactive", "asgi_sync_loader_inactive",
                                      "asgi_async_loader_inactive"])
def test_inactive_user_is_refused_as_unknown(users: dict[str, Any], scenario: str) -> None:
    unknown_user(users[scenario])


@pytest.mark.parametrize("scenario", ["wsgi_unknown", "wsgi_not_a_key", "wsgi_claim_absent", "wsgi_claim_not_text",
                                      "asgi_async_loader_unknown"])
def test_token_naming_no_user_is_refused_as_unknown(users: dict[str, Any], scenario: str) -> None:
    unknown_user(users[scenario])


@pytest.mark.parametrize(("scenario", "handler"), [
    ("wsgi_async_loader", "whoami"),  # an async loader under WSGI: run to completion
    ("asgi_sync_loader", "awhoami"),  # a sync ORM loader under ASGI: in Django's sync thread, not the loop
    ("asgi_async_loader", "awhoami"),
    ("asgi_sync_view_sync_loader", "whoami"),
])
def test_user_model_loaders_work_in_either_mode(users: dict[str, Any], scenario: str, handler: str) -> None:
    body = answered(users[scenario], handler)
    assert body["class"] == "User" and body["username"] == "alice"
    if handler == "awhoami":
        assert body["auser"] == "User"


def test_user_model_loader_by_a_unique_field(users: dict[str, Any]) -> None:
    body = answered(users["wsgi_by_username"])
    assert body["class"] == "User" and body["username"] == "alice" and body["subject"] == "alice"


def test_anonymous_with_contrib_auth_is_djangos_anonymous_user(users: dict[str, Any]) -> None:
    body = answered(users["wsgi_anonymous"])
    assert body["class"] == "AnonymousUser" and body["module"] == "django.contrib.auth.models"


@pytest.mark.parametrize(("scenario", "words"), [
    ("not_unique_field", ["User.first_name is not unique", "unique=True"]),
    ("no_such_field", ["User has no field 'nickname'", "'username'"]),
    ("several_issuers", ["2 issuers are trusted", "pass issuer="]),
    ("untrusted_issuer", ["issuer 'https://nobody.test' is not among Config.issuers", "'https://issuer.test'"]),
])
def test_user_model_loader_that_cannot_resolve_users_stops_django_at_start(
        users: dict[str, Any], scenario: str, words: list[str]) -> None:
    for mode in ("wsgi", "asgi"):
        outcome = users[scenario][mode]
        assert outcome.startswith("ImproperlyConfigured: UserModelLoader("), outcome
        for word in words:
            assert word in outcome


def test_several_issuers_load_users_of_the_pinned_issuer_only(users: dict[str, Any]) -> None:
    own, other = users["several_issuers_pinned"]
    assert answered(own)["username"] == "alice"
    unknown_user(other)  # the same sub from another issuer names nobody here


def test_on_refusal_shapes_the_unknown_user_body_in_both_modes(users: dict[str, Any]) -> None:
    for scenario, path in (("on_refusal_wsgi", "/whoami"), ("on_refusal_asgi", "/awhoami")):
        observed = users[scenario]
        unknown_user(observed)
        assert observed["body"] == {"problem": "unknown_user", "path": path}


def test_on_refusal_shapes_the_require_scopes_body_in_both_modes(users: dict[str, Any]) -> None:
    for observed, path in zip(users["on_refusal_require_scopes"], ("/scoped", "/ascoped"), strict=True):
        assert observed["status"] == 403 and 'error="insufficient_scope"' in observed["www"], observed
        assert observed["body"] == {"problem": "insufficient_scope", "path": path}


def test_loaded_user_is_reused_for_its_token_within_the_ttl_only(users: dict[str, Any]) -> None:
    # [first load, same token after deactivation, a new token, same token after the ttl]
    assert users["reuse_within_ttl"] == [200, 200, 401, 401]
    assert users["reuse_without_ttl"] == [200, 401, 401, 401]


@pytest.mark.parametrize(("scenario", "raised", "ids"), [
    ("checks", None, []),
    ("checks_right_order", None, []),
    ("checks_wrong_order", "SystemCheckError", ["jwt_middleware.E001"]),
    ("checks_no_middleware", None, ["jwt_middleware.W001"]),
    ("checks_bad_loader", "SystemCheckError", ["jwt_middleware.E003"]),
    ("checks_bad_setting", "SystemCheckError", ["jwt_middleware.E002"]),
])
def test_manage_py_check_reports_mistakes(users: dict[str, Any], scenario: str, raised: str | None,
                                          ids: list[str]) -> None:
    outcome = users[scenario]
    assert outcome["raised"] == raised and outcome["ids"] == ids, outcome["output"]
