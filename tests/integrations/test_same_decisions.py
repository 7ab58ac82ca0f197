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


def send_wsgi(factory: Callable[[], Any], path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    with httpx.Client(transport=httpx.WSGITransport(app=factory()), base_url="https://api.test") as client:
        return outcome(client.get(path, headers=headers))


@pytest.mark.parametrize(("name", "path", "headers", "status"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_every_framework_makes_the_same_decision(name: str, path: str, headers: dict[str, str], status: int) -> None:
    seen = {fw: send_asgi(f, path, headers) for fw, f in ASGI.items()}
    seen |= {fw: send_wsgi(f, path, headers) for fw, f in WSGI.items()}
    reference = seen["starlette"]
    assert reference[0] == status, reference
    assert all(value == reference for value in seen.values()), seen
    if status in (400, 401, 403):
        assert reference[1], "a refusal carries a WWW-Authenticate challenge"


def test_fastapi_openapi_declares_the_bearer_scheme() -> None:
    app = apps.fastapi_app().app
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "JWT access token"
    }
    assert document["paths"]["/admin"]["get"]["security"] == [{"bearerAuth": []}]
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
