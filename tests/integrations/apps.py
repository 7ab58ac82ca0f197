"""One protected API built on every supported framework, all deciding with one Authenticator."""

from __future__ import annotations

from typing import Any

from jwt_middleware import (
    Authenticator,
    Config,
    CookieSource,
    HeaderSource,
    Issuer,
    JWTMiddleware,
    Rule,
    StaticKeys,
)
from jwt_middleware.testing import FakeClock, make_key, public_jwks

ISSUER = "https://issuer.test"
KEY = make_key("ES256", kid="same-1")
CLOCK = FakeClock(1_800_000_000.0)
AUTH = Authenticator(
    Config(
        issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(KEY)))],
        audience="api",
        sources=(HeaderSource(), CookieSource("__Host-access_token")),
        rules=(Rule("/public", access="public"), Rule("/admin", scopes=("admin",))),
        clock=CLOCK,
    )
)


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity if request.user.is_authenticated else None})

    return JWTMiddleware(Starlette(routes=[Route(p, me) for p in ("/me", "/admin", "/public")]), AUTH)


def fastapi_app() -> Any:
    from fastapi import Depends, FastAPI

    from jwt_middleware import Identity
    from jwt_middleware.integrations.fastapi import jwt_identity, require_scopes

    app = FastAPI()

    @app.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)) -> dict[str, Any]:
        return {"sub": identity.subject}

    @app.get("/admin")
    async def admin(identity: Identity = Depends(require_scopes("admin"))) -> dict[str, Any]:
        return {"sub": identity.subject}

    @app.get("/public")
    async def public() -> dict[str, Any]:
        return {"sub": None}

    return JWTMiddleware(app, AUTH)


def litestar_app() -> Any:
    from litestar import Litestar, Request, get

    from jwt_middleware.integrations.litestar import identity, wrap

    @get(["/me", "/admin", "/public"])
    async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
        found = identity(request)
        return {"sub": found.subject if found else None, "user": request.user.is_authenticated}

    return wrap(Litestar(route_handlers=[me]), AUTH)


def wsgi_app() -> Any:
    from jwt_middleware import WSGIJWTMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] not in ("/me", "/admin", "/public"):
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("content-type", "application/json")])
        return [b"{}"]

    return WSGIJWTMiddleware(app, AUTH)


def flask_app() -> Any:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, current_identity, require_scopes

    app = Flask(__name__)

    @app.get("/me")
    @app.get("/public")
    def me() -> dict[str, Any]:
        found = current_identity()
        return {"sub": found.subject if found else None}

    @app.get("/admin")
    @require_scopes("admin")
    def admin() -> dict[str, Any]:
        return {"sub": current_identity().subject}  # type: ignore[union-attr]

    JWTFlask(app, AUTH)
    return app


def _django_setup() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-only-" + "x" * 40,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="tests.integrations.django_urls",
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
            MIDDLEWARE=["jwt_middleware.integrations.django.JWTAuthenticationMiddleware"],
            JWT_MIDDLEWARE_AUTHENTICATOR="tests.integrations.apps.AUTH",
        )
        django.setup()


def django_wsgi_app() -> Any:
    _django_setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def django_asgi_app() -> Any:
    _django_setup()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
