"""The framework helpers: a scope check inside a view answers like a Rule in the middleware;
Flask's extension, Django's user and store checks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jwt_middleware import ConfigError, Identity, JWTMiddleware, Rule
from jwt_middleware.testing import mint

from . import apps


def token(scope: str) -> str:
    return mint(apps.KEY, {"scope": scope}, issuer=apps.ISSUER, now=apps.CLOCK.now)


def asgi_get(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def wsgi_get(app: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://api.test") as client:
        return client.get(path, headers=headers)


def middleware_refusal() -> httpx.Response:
    """The middleware's own 403 for a Rule(scopes=("admin",)) route."""
    return wsgi_get(apps.wsgi_app(), "/admin", {"authorization": f"Bearer {token('read')}"})


def test_rule_reference_is_an_insufficient_scope_challenge() -> None:
    reference = middleware_refusal()
    assert reference.status_code == 403
    assert reference.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="admin"'
    )


def test_fastapi_scope_dependency_answers_like_a_rule_in_the_middleware() -> None:
    from fastapi import Depends, FastAPI

    from jwt_middleware.integrations.fastapi import require_scopes

    api = FastAPI()

    @api.get("/reports")  # no Rule: only the dependency checks the scope
    async def reports(identity: Identity = Depends(require_scopes("admin", authenticator=apps.AUTH))) -> str:
        return identity.subject or ""

    app = JWTMiddleware(api, apps.AUTH)
    refused = asgi_get(app, "/reports", {"authorization": f"Bearer {token('read')}"})
    reference = middleware_refusal()
    assert refused.status_code == 403
    assert refused.headers.get_list("www-authenticate") == reference.headers.get_list("www-authenticate")
    assert refused.headers["cache-control"] == "no-store"
    assert asgi_get(app, "/reports", {"authorization": f"Bearer {token('admin')}"}).json() == "user-1"


def test_fastapi_jwt_identity_is_the_middleware_identity_and_documented() -> None:
    from fastapi import Depends, FastAPI

    from jwt_middleware.integrations.fastapi import jwt_identity

    api = FastAPI()

    @api.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)) -> dict[str, Any]:
        return {"sub": identity.subject, "scopes": sorted(identity.scopes)}

    app = JWTMiddleware(api, apps.AUTH)
    assert asgi_get(app, "/me", {"authorization": f"Bearer {token('b a')}"}).json() == {
        "sub": "user-1", "scopes": ["a", "b"]
    }
    document = api.openapi()
    assert document["paths"]["/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_flask_scope_decorator_answers_like_a_rule_in_the_middleware() -> None:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, require_scopes

    app = Flask(__name__)

    @app.get("/reports")
    @require_scopes("admin")
    def reports() -> str:
        return "report"

    JWTFlask(app, apps.AUTH)
    refused = wsgi_get(app, "/reports", {"authorization": f"Bearer {token('read')}"})
    reference = middleware_refusal()
    assert (refused.status_code, refused.content) == (403, reference.content)
    assert refused.headers.get_list("www-authenticate") == reference.headers.get_list("www-authenticate")
    assert refused.headers["content-type"] == "application/json"
    assert wsgi_get(app, "/reports", {"authorization": f"Bearer {token('admin')}"}).text == "report"


def test_jwt_flask_supports_app_factories_and_refuses_a_second_install() -> None:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, current_identity

    extension = JWTFlask(authenticator=apps.AUTH)

    def create_app() -> Flask:
        app = Flask(__name__)

        @app.get("/me")
        def me() -> str:
            caller = current_identity()
            return (caller.subject or "") if caller else "anonymous"

        extension.init_app(app)
        return app

    app = create_app()
    assert wsgi_get(app, "/me", {"authorization": f"Bearer {token('read')}"}).text == "user-1"
    assert wsgi_get(app, "/me", {}).status_code == 401
    with pytest.raises(ValueError, match="wrapped already"):
        JWTFlask(app, apps.AUTH)
    with pytest.raises(ValueError, match="pass the Authenticator"):
        JWTFlask(Flask(__name__))


def test_django_user_exposes_identity_and_scopes_as_permissions() -> None:
    apps.django_wsgi_app()
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from jwt_middleware.integrations.django import JWTAuthenticationMiddleware

    seen: list[Any] = []

    def view(request: Any) -> Any:
        from django.http import HttpResponse

        seen.append(request)
        return HttpResponse("ok")

    middleware = JWTAuthenticationMiddleware(view)
    factory = RequestFactory()
    middleware(factory.get("/me", HTTP_AUTHORIZATION=f"Bearer {token('reports.view reports.add')}"))
    middleware(factory.get("/public"))
    user, anonymous = seen[0].user, seen[1].user
    assert user.is_authenticated and not user.is_anonymous and user.identity == user.get_username() == "user-1"
    assert user.has_perm("reports.view") and user.has_perms(["reports.view", "reports.add"])
    assert not user.has_perm("reports.delete") and user.has_module_perms("reports")
    assert seen[0].jwt_identity is user.principal and user.principal.issuer == apps.ISSUER
    assert isinstance(anonymous, AnonymousUser) and seen[1].jwt_identity is None


def test_django_middleware_refuses_a_store_that_does_not_suit_its_mode() -> None:
    import redis
    import redis.asyncio as aioredis
    from django.test import override_settings

    from jwt_middleware import Authenticator, Config, Issuer, StaticKeys

    apps.django_wsgi_app()  # settings configured before the Django helper is imported, in any test order
    from jwt_middleware.integrations.django import JWTAuthenticationMiddleware
    from jwt_middleware.stores import AsyncRedisNonceStore, RedisNonceStore
    from jwt_middleware.testing import public_jwks

    def auth(store: Any) -> Authenticator:
        issuer = Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))
        return Authenticator(Config(issuers=(issuer,), audience="api", rules=(Rule("/pay", one_time=True),)),
                             nonce_store=store)

    def sync_view(request: Any) -> Any:
        return None

    async def async_view(request: Any) -> Any:
        return None

    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=auth(AsyncRedisNonceStore(aioredis.Redis(port=1)))), \
            pytest.raises(ConfigError, match="RedisNonceStore"):
        JWTAuthenticationMiddleware(sync_view)
    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=auth(RedisNonceStore(redis.Redis(port=1, socket_timeout=0.1, socket_connect_timeout=0.1, retry=None)))), \
            pytest.raises(ConfigError, match="AsyncRedisNonceStore"):
        JWTAuthenticationMiddleware(async_view)
