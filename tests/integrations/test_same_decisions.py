"""The same requests through every adapter and framework give the same status and challenge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jwt_middleware.testing import make_key, mint

from . import apps

ASGI = {"starlette": apps.starlette_app, "fastapi": apps.fastapi_app, "litestar": apps.litestar_app,
        "django-asgi": apps.django_asgi_app}
WSGI = {"wsgi": apps.wsgi_app, "flask": apps.flask_app, "django-wsgi": apps.django_wsgi_app}


def token(**claims: Any) -> str:
    options = {k: claims.pop(k) for k in ("audience", "lifetime", "now") if k in claims}
    options.setdefault("now", apps.CLOCK.now)
    return mint(apps.KEY, claims, issuer=apps.ISSUER, **options)


def requests() -> list[tuple[str, str, dict[str, str], int]]:
    forged = mint(make_key("ES256", kid="same-1"), issuer=apps.ISSUER, now=apps.CLOCK.now)
    return [
        ("valid", "/me", {"authorization": f"Bearer {token()}"}, 200),
        ("valid-admin", "/admin", {"authorization": f"Bearer {token(scope='admin')}"}, 200),
        ("missing", "/me", {}, 401),
        ("expired", "/me", {"authorization": f"Bearer {token(now=apps.CLOCK.now - 4000)}"}, 401),
        ("forged", "/me", {"authorization": f"Bearer {forged}"}, 401),
        ("wrong-audience", "/me", {"authorization": f"Bearer {token(audience='other')}"}, 401),
        ("malformed-header", "/me", {"authorization": "Bearer a b"}, 400),
        ("two-tokens", "/me", {"authorization": f"Bearer {token()}", "cookie": f"__Host-access_token={token()}"}, 400),
        ("insufficient-scope", "/admin", {"authorization": f"Bearer {token(scope='read')}"}, 403),
        ("public", "/public", {}, 200),
        # A non-ASCII path: WSGI carries it as latin-1 transport text, ASGI as UTF-8 str.
        ("unicode-path-missing", "/caf\u00e9/\u65e5\u672c", {}, 401),
        ("unicode-path-valid", "/caf\u00e9/\u65e5\u672c", {"authorization": f"Bearer {token()}"}, 404),
    ]


REQUESTS = requests()


def outcome(response: httpx.Response) -> tuple[int, list[str]]:
    return response.status_code, response.headers.get_list("www-authenticate")


def send_asgi(factory: Callable[[], Any], path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    async def go() -> tuple[int, list[str]]:
        transport = httpx.ASGITransport(app=factory())
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            return outcome(await client.get(path, headers=headers))

    return asyncio.run(go())


def pep3333(app: Any) -> Any:
    """httpx.WSGITransport puts the decoded path in PATH_INFO; a WSGI server (PEP 3333) puts the
    UTF-8 bytes as latin-1 text. Give the app what gunicorn would."""

    def call(environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return call


def send_wsgi(factory: Callable[[], Any], path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    with httpx.Client(transport=httpx.WSGITransport(app=pep3333(factory())), base_url="https://api.test") as client:
        return outcome(client.get(path, headers=headers))


@pytest.mark.parametrize(("name", "path", "headers", "status"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_every_framework_makes_the_same_decision(name: str, path: str, headers: dict[str, str], status: int) -> None:
    seen = {fw: send_asgi(f, path, headers) for fw, f in ASGI.items()}
    seen |= {fw: send_wsgi(f, path, headers) for fw, f in WSGI.items()}
    reference = seen["starlette"]
    assert reference[0] == status, reference
    assert all(value == reference for value in seen.values()), repr(seen)
    if status in (400, 401, 403):
        assert reference[1], "a refusal carries a WWW-Authenticate challenge"


def test_starlette_requires_works_unchanged_on_the_middleware_scope() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from jwt_middleware import JWTMiddleware
    from jwt_middleware.integrations.starlette import identity, requires

    @requires("report")
    async def report(request: Request) -> PlainTextResponse:
        caller = identity(request)
        assert caller is request.user.principal
        return PlainTextResponse(f"{request.user.identity} {caller.issuer}")

    app = JWTMiddleware(Starlette(routes=[Route("/report", report)]), apps.AUTH)

    async def go(scope: str) -> tuple[int, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            response = await client.get("/report", headers={"authorization": f"Bearer {token(scope=scope)}"})
            return response.status_code, response.text

    assert asyncio.run(go("report read")) == (200, f"user-1 {apps.ISSUER}")
    assert asyncio.run(go("read"))[0] == 403  # Starlette's own answer: the middleware let it pass


def test_helpers_given_the_authenticator_answer_exactly_like_the_middleware() -> None:
    """With DPoP on, a refusal carries two challenges (Bearer and DPoP); the helpers that refuse
    inside a framework (FastAPI, Flask, Django) send the same ones. Django keeps one value per
    header name, so its challenges come comma-joined, which RFC 9110 §11.6.1 makes equivalent."""
    from django.test import override_settings
    from fastapi import Depends, FastAPI
    from flask import Flask

    from jwt_middleware import (
        Authenticator,
        Config,
        DPoPSettings,
        Identity,
        Issuer,
        JWTMiddleware,
        Rule,
        StaticKeys,
    )
    from jwt_middleware.integrations import fastapi as fastapi_helpers
    from jwt_middleware.integrations import flask as flask_helpers
    from jwt_middleware.testing import public_jwks

    auth = Authenticator(Config(
        issuers=[Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))],
        audience="api", realm="shop", dpop=DPoPSettings(algorithms=("ES256",), allowed_hosts=("api.test",)),
        rules=(Rule("/public", access="optional"), Rule("/admin", scopes=("admin",))), clock=apps.CLOCK,
    ))
    api = FastAPI()

    @api.get("/public")
    async def fastapi_view(identity: Identity = Depends(fastapi_helpers.require_scopes(authenticator=auth))) -> str:
        return "never"

    flask = Flask(__name__)

    @flask.get("/public")
    @flask_helpers.require_scopes("admin")
    def flask_view() -> str:
        return "never"

    flask_helpers.JWTFlask(flask, auth)

    def joined(outcome: tuple[int, list[str]]) -> tuple[int, str]:
        return outcome[0], ", ".join(outcome[1])

    middleware = joined(send_asgi(lambda: JWTMiddleware(api, auth), "/me", {}))
    assert middleware[0] == 401 and middleware[1].startswith('Bearer realm="shop", DPoP realm="shop"')
    assert joined(send_asgi(lambda: JWTMiddleware(api, auth), "/public", {})) == middleware
    assert joined(send_wsgi(lambda: flask, "/public", {})) == middleware
    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=auth):
        assert joined(send_wsgi(apps.django_wsgi_app, "/me", {})) == middleware
        assert joined(send_asgi(apps.django_asgi_app, "/me", {})) == middleware


def test_fastapi_openapi_declares_the_bearer_scheme() -> None:
    app = apps.fastapi_app().app
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "JWT access token"
    }
    assert document["paths"]["/admin"]["get"]["security"] == [{"bearerAuth": ["admin"]}]
    assert "security" not in document["paths"]["/public"]["get"]


def test_litestar_connection_user_is_the_verified_caller() -> None:
    async def go() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=apps.litestar_app())
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            response = await client.get("/me", headers={"authorization": f"Bearer {token(sub='lit')}"})
            return dict(response.json())

    assert asyncio.run(go()) == {"sub": "lit", "user": True}


def test_django_request_user_is_the_verified_caller() -> None:
    body = httpx.Client(transport=httpx.WSGITransport(app=apps.django_wsgi_app()), base_url="https://api.test").get(
        "/me", headers={"authorization": f"Bearer {token(sub='dj')}"}
    ).json()
    assert body == {"sub": "dj"}
