"""Scope helpers never fail open: FastAPI's ``Security(..., scopes=[...])`` is enforced and
documented, every helper refuses a scope that is not one token, and a Flask check written in
the wrong decorator order is caught instead of leaving the view unprotected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from jwt_middleware import ConfigError, Identity, JWTMiddleware

from . import apps
from .test_helpers import asgi_get, middleware_refusal, token, wsgi_get

if TYPE_CHECKING:
    from flask import Flask


def bearer(scope: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(scope)}"}


def asgi_send(app: Any, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as c:
            return await c.request(method, path, headers=headers)

    return asyncio.run(go())


def fastapi_scoped_app() -> Any:
    """One route per way of asking FastAPI for scopes; no Rule checks any of them."""
    from fastapi import Depends, FastAPI, Security

    from jwt_middleware.integrations.fastapi import Refused, jwt_identity, refusal_handler, require_scopes

    api = FastAPI()
    api.add_exception_handler(Refused, refusal_handler)

    @api.delete("/items")
    async def delete(identity: Identity = Security(jwt_identity, scopes=["admin"])) -> str:
        return identity.subject or ""

    async def reader(identity: Identity = Security(jwt_identity, scopes=["a"])) -> Identity:
        return identity

    @api.get("/nested")
    async def nested(identity: Identity = Security(reader, scopes=["b"])) -> str:
        return identity.subject or ""

    @api.get("/both")
    async def both(identity: Identity = Security(require_scopes("x", authenticator=apps.AUTH), scopes=["y"])) -> str:
        return identity.subject or ""

    @api.get("/plain")
    async def plain(identity: Identity = Depends(require_scopes("admin"))) -> str:
        return identity.subject or ""

    @api.get("/any")
    async def any_token(identity: Identity = Depends(jwt_identity)) -> str:
        return identity.subject or ""

    return api


def test_fastapi_security_scopes_on_jwt_identity_are_enforced_like_a_rule() -> None:
    app = JWTMiddleware(fastapi_scoped_app(), apps.AUTH)
    refused = asgi_send(app, "DELETE", "/items", bearer("read"))
    reference = middleware_refusal()
    assert refused.status_code == 403
    assert refused.headers.get_list("www-authenticate") == reference.headers.get_list("www-authenticate")
    assert refused.content == reference.content  # refusal_handler: the middleware's own body
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["cache-control"] == "no-store"
    assert asgi_send(app, "DELETE", "/items", bearer("admin")).json() == "user-1"


@pytest.mark.parametrize(
    ("path", "granted", "status"),
    [
        ("/nested", "a", 403), ("/nested", "b", 403), ("/nested", "b a", 200),
        ("/both", "x", 403), ("/both", "y", 403), ("/both", "x y", 200),
        ("/plain", "read", 403), ("/plain", "admin", 200),
        ("/any", "read", 200),
    ],
)
def test_fastapi_scopes_accumulate_along_the_dependency_chain(path: str, granted: str, status: int) -> None:
    app = JWTMiddleware(fastapi_scoped_app(), apps.AUTH)
    response = asgi_get(app, path, bearer(granted))
    assert response.status_code == status, response.text
    if status == 403:
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        needed = challenge.split('scope="')[1].rstrip('"').split()
        assert not set(needed) <= set(granted.split())


def test_fastapi_anonymous_caller_of_an_optional_route_is_refused_by_the_scheme() -> None:
    from fastapi import FastAPI, Security

    from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys
    from jwt_middleware.integrations.fastapi import jwt_identity
    from jwt_middleware.testing import public_jwks

    api = FastAPI()

    @api.get("/maybe")
    async def maybe(identity: Identity = Security(jwt_identity, scopes=["admin"])) -> str:
        return "never"

    issuer = Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))
    auth = Authenticator(Config(issuers=(issuer,), audience="api", rules=(Rule("/maybe", access="optional"),),
                                clock=apps.CLOCK))
    response = asgi_get(JWTMiddleware(api, auth), "/maybe", {})
    assert (response.status_code, response.headers["www-authenticate"]) == (401, 'Bearer realm="api"')


def test_fastapi_without_a_handler_of_its_own_answers_with_the_middleware_body() -> None:
    """JWTMiddleware registers the handler for the dependency's Refused: no add_exception_handler."""
    from fastapi import FastAPI, Security

    from jwt_middleware.integrations.fastapi import jwt_identity

    api = FastAPI()

    @api.get("/items")
    async def items(identity: Identity = Security(jwt_identity, scopes=["admin"])) -> str:
        return "never"

    refused = asgi_get(JWTMiddleware(api, apps.AUTH), "/items", bearer("read"))
    reference = middleware_refusal()
    assert refused.status_code == 403
    assert refused.headers.get_list("www-authenticate") == reference.headers.get_list("www-authenticate")
    assert refused.content == reference.content  # not FastAPI's {"detail": ...}


def test_fastapi_openapi_json_lists_the_scopes_each_operation_needs() -> None:
    app = JWTMiddleware(fastapi_scoped_app(), apps.AUTH)
    document = asgi_get(app, "/openapi.json", bearer("read")).json()
    security = {path: next(iter(item.values()))["security"] for path, item in document["paths"].items()}
    assert security == {
        "/items": [{"bearerAuth": ["admin"]}],
        "/nested": [{"bearerAuth": ["b", "a"]}],
        "/both": [{"bearerAuth": ["y", "x"]}],
        "/plain": [{"bearerAuth": ["admin"]}],
        "/any": [{"bearerAuth": []}],
    }
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "JWT access token"}
    }


HELPERS = ("fastapi.require_scopes", "flask.require_scopes", "django.require_scopes", "litestar.require_scopes",
           "starlette.requires")


def test_fastapi_scheme_name_and_realm_act_and_a_realm_the_authenticator_overrides_is_refused() -> None:
    from fastapi import FastAPI, Security

    from jwt_middleware.integrations.fastapi import require_scopes

    api = FastAPI()

    @api.get("/shop")
    async def shop(identity: Identity = Security(require_scopes(realm="shop", scheme_name="jwt"), scopes=["admin"])) -> str:
        return "never"

    refused = asgi_get(JWTMiddleware(api, apps.AUTH), "/shop", bearer("read"))
    assert refused.headers["www-authenticate"].startswith('Bearer realm="shop", error="insufficient_scope"')
    document = api.openapi()
    assert document["paths"]["/shop"]["get"]["security"] == [{"jwt": ["admin"]}]
    assert set(document["components"]["securitySchemes"]) == {"jwt"}
    assert require_scopes(realm="api", authenticator=apps.AUTH).scheme.authenticator is apps.AUTH  # the same realm
    with pytest.raises(ConfigError, match="pass realm= or authenticator=, not both"):
        require_scopes(realm="shop", authenticator=apps.AUTH)


def helper_factories() -> dict[str, Callable[..., object]]:
    apps.django_wsgi_app()  # Django's settings, before its integration is imported
    from jwt_middleware.integrations import django, fastapi, flask, litestar, starlette

    return {
        "fastapi.require_scopes": fastapi.require_scopes,
        "litestar.require_scopes": litestar.require_scopes,
        "flask.require_scopes": flask.require_scopes,
        "django.require_scopes": django.require_scopes,
        "starlette.requires": starlette.requires,
    }


@pytest.mark.parametrize("name", HELPERS)
@pytest.mark.parametrize("bad", ["read write", 'a"b', "back\\slash", "", "caf\u00e9"])
def test_every_scope_helper_refuses_a_value_that_is_not_one_scope_token(name: str, bad: str) -> None:
    factory = helper_factories()[name]
    with pytest.raises(ConfigError, match=r"not one scope token \(RFC 6749 §3.3\)"):
        if name == "starlette.requires":  # Starlette's signature: one string, or a list
            factory(["read", bad])
        else:
            factory("read", bad)
    if name == "starlette.requires":
        with pytest.raises(ConfigError, match="not one scope token"):
            factory(bad)


@pytest.mark.parametrize("name", ["flask.require_scopes", "django.require_scopes"])
def test_a_scope_decorator_used_without_its_scopes_is_refused(name: str) -> None:
    def view() -> str:
        return "never"

    with pytest.raises(ConfigError, match="give it the scopes first"):
        helper_factories()[name](view)


def test_starlette_requires_string_and_status_code_act() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from jwt_middleware.integrations.starlette import requires

    @requires("admin", status_code=404)
    async def hidden(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hidden")

    app = JWTMiddleware(Starlette(routes=[Route("/hidden", hidden)]), apps.AUTH)
    assert asgi_get(app, "/hidden", bearer("read")).status_code == 404
    assert asgi_get(app, "/hidden", bearer("admin")).text == "hidden"


# Flask: @require_scopes above the route decorator registers the bare view.


def flask_app_installed_first() -> Flask:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask

    app = Flask(__name__)
    JWTFlask(app, apps.AUTH)
    return app


def test_flask_check_above_the_route_decorator_is_refused_at_decoration() -> None:
    from jwt_middleware.integrations.flask import require_scopes

    app = flask_app_installed_first()
    with pytest.raises(ConfigError, match="'reports' is registered without its scope check"):

        @require_scopes("admin")
        @app.get("/reports")
        def reports() -> str:
            return "secret"


def test_flask_check_above_the_route_decorator_is_refused_at_install() -> None:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, check_views, require_scopes

    app = Flask(__name__)

    @require_scopes("admin")
    @app.get("/reports")
    def reports() -> str:
        return "secret"

    with pytest.raises(ConfigError, match="'reports' is registered without its scope check"):
        check_views(app)  # what an app behind a bare WSGIJWTMiddleware calls itself
    with pytest.raises(ConfigError, match="'reports' is registered without its scope check"):
        JWTFlask(app, apps.AUTH)


def test_flask_blueprint_registered_late_with_a_bare_view_never_serves_it(caplog: pytest.LogCaptureFixture) -> None:
    from flask import Blueprint

    from jwt_middleware.integrations.flask import require_scopes

    app = flask_app_installed_first()
    blueprint = Blueprint("reports", __name__)

    @require_scopes("admin")
    @blueprint.get("/reports")
    def reports() -> str:
        return "secret"

    app.register_blueprint(blueprint)
    caplog.set_level(logging.ERROR)
    for _ in range(2):  # the check keeps failing: a second request gets no further than the first
        response = wsgi_get(app, "/reports", bearer("read"))
        assert response.status_code == 500 and "secret" not in response.text
    assert "'reports.reports' is registered without its scope check" in caplog.text


def test_flask_views_in_the_right_order_pass_every_check() -> None:
    from flask import Blueprint

    from jwt_middleware.integrations.flask import require_scopes

    app = flask_app_installed_first()
    blueprint = Blueprint("reports", __name__)

    @blueprint.get("/reports")
    @require_scopes("admin")
    def reports() -> str:
        return "secret"

    app.register_blueprint(blueprint)
    assert wsgi_get(app, "/reports", bearer("read")).status_code == 403
    assert wsgi_get(app, "/reports", bearer("admin")).text == "secret"


# Django: scopes as permissions, and a decorator answering like the middleware.


def jwt_request(scope: str | None) -> Any:
    """A Django request that went through JWTAuthenticationMiddleware, as the view sees it."""
    apps.django_wsgi_app()
    from django.test import RequestFactory

    from jwt_middleware.integrations.django import JWTAuthenticationMiddleware

    seen: list[Any] = []

    def view(request: Any) -> Any:
        from django.http import HttpResponse

        seen.append(request)
        return HttpResponse("ok")

    if scope is None:  # a public route: the middleware lets the anonymous caller through
        JWTAuthenticationMiddleware(view)(RequestFactory().get("/public"))
    else:
        JWTAuthenticationMiddleware(view)(RequestFactory().get("/me", HTTP_AUTHORIZATION=f"Bearer {token(scope)}"))
    return seen[0]


def test_django_scope_permissions_never_speak_for_one_object() -> None:
    user = jwt_request("reports.change").user
    assert user.has_perm("reports.change") and user.has_perms(["reports.change"])
    assert not user.has_perm("reports.change", obj=object())
    assert not user.has_perms(["reports.change"], obj=object())
    with pytest.raises(ValueError, match="iterable of permission names"):
        user.has_perms("reports.change")


def test_django_permission_required_acts_on_the_token_scopes() -> None:
    from django.contrib.auth.decorators import permission_required
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse

    def report(request: Any) -> HttpResponse:
        return HttpResponse("report")

    view = permission_required("reports.view", raise_exception=True)(report)

    assert view(jwt_request("reports.view")).content == b"report"
    with pytest.raises(PermissionDenied):
        view(jwt_request("reports.add"))


def test_django_require_scopes_answers_like_a_rule_in_the_middleware() -> None:
    from django.http import HttpResponse

    from jwt_middleware.integrations.django import require_scopes

    @require_scopes("admin")
    def sync_view(request: Any) -> HttpResponse:
        return HttpResponse("sync")

    @require_scopes("admin")
    async def async_view(request: Any) -> HttpResponse:
        return HttpResponse("async")

    reference = middleware_refusal()
    for refused in (sync_view(jwt_request("read")), asyncio.run(async_view(jwt_request("read")))):
        assert (refused.status_code, refused.content) == (403, reference.content)
        assert refused.headers["www-authenticate"] == reference.headers["www-authenticate"]
        assert refused.headers["content-type"] == "application/json"
    assert sync_view(jwt_request("admin")).content == b"sync"
    assert asyncio.run(async_view(jwt_request("admin"))).content == b"async"
    anonymous = sync_view(jwt_request(None))
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, 'Bearer realm="api"')
