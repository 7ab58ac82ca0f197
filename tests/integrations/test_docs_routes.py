"""Under ``default_access="required"``, one line opens the framework's own documentation routes
(FastAPI's /docs, /redoc, /openapi.json; Litestar's /schema pages) and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from jwt_middleware import Authenticator, Config, ConfigError, Issuer, JWTMiddleware, Rule, StaticKeys
from jwt_middleware.testing import public_jwks

from . import apps
from .test_helpers import token
from .test_scope_helpers import asgi_send

TOKEN = {"authorization": f"Bearer {token('read')}"}


def authenticator(*rules: Rule) -> Authenticator:
    issuer = Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))
    return Authenticator(Config(issuers=(issuer,), audience="api", default_access="required", rules=rules,
                                clock=apps.CLOCK))


def fastapi_app(**settings: Any) -> Any:
    from fastapi import FastAPI

    from jwt_middleware.integrations.fastapi import docs_rules

    api = FastAPI(**settings)

    @api.get("/items")
    async def items() -> str:
        return "items"

    @api.get("/docs/mine")
    async def mine() -> str:
        return "mine"

    return JWTMiddleware(api, authenticator(*docs_rules(api)))


def status(app: Any, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    return asgi_send(app, method, path, headers or {}).status_code


FASTAPI_DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")


@pytest.mark.parametrize("path", FASTAPI_DOCS)
def test_fastapi_docs_routes_answer_without_a_token(path: str) -> None:
    app = fastapi_app()
    assert status(app, path) == 200
    assert status(app, path, "HEAD") == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/items"), ("GET", "/docs/mine"), ("GET", "/docsx"), ("GET", "/openapi.json/x"),
     ("POST", "/openapi.json"), ("DELETE", "/docs"), ("GET", "/"), ("GET", "/schema")],
)
def test_fastapi_every_other_route_still_needs_a_token(method: str, path: str) -> None:
    assert status(fastapi_app(), path, method) == 401


def test_fastapi_docs_page_points_at_the_opened_document() -> None:
    app = fastapi_app()
    page = asgi_send(app, "GET", "/docs", {}).text
    assert "/openapi.json" in page and "/docs/oauth2-redirect" in page
    assert asgi_send(app, "GET", "/openapi.json", {}).json()["paths"].keys() == {"/items", "/docs/mine"}


def test_fastapi_a_docs_route_set_to_none_is_not_opened() -> None:
    app = fastapi_app(docs_url=None, openapi_url="/api.json")
    assert status(app, "/docs") == 401 and status(app, "/docs", headers=TOKEN) == 404
    assert status(app, "/docs/oauth2-redirect") == 401
    assert status(app, "/openapi.json") == 401
    assert status(app, "/api.json") == 200 and status(app, "/redoc") == 200


def test_fastapi_without_openapi_url_nothing_is_opened() -> None:
    from fastapi import FastAPI

    from jwt_middleware.integrations.fastapi import docs_rules

    assert docs_rules(FastAPI(openapi_url=None)) == ()
    app = fastapi_app(openapi_url=None)
    for path in FASTAPI_DOCS:
        assert status(app, path) == 401 and status(app, path, headers=TOKEN) == 404


def test_fastapi_docs_url_a_rule_would_read_as_a_prefix_is_refused() -> None:
    from fastapi import FastAPI

    from jwt_middleware.integrations.fastapi import docs_rules

    with pytest.raises(ConfigError, match="docs_rules: '/docs\\*' holds '\\*'"):
        docs_rules(FastAPI(docs_url="/docs*"))


def litestar_app(**settings: Any) -> Any:
    from litestar import Litestar, get

    from jwt_middleware.integrations.litestar import bearer_openapi_config, docs_rules, wrap

    @get("/items")
    async def items() -> str:
        return "items"

    @get("/schema/mine")
    async def mine() -> str:
        return "mine"

    settings.setdefault("openapi_config", bearer_openapi_config())
    app = Litestar(route_handlers=[items, mine], **settings)
    return wrap(app, authenticator(*docs_rules(app)))


LITESTAR_DOCS = ("/schema", "/schema/openapi.json", "/schema/openapi.yaml", "/schema/swagger", "/schema/redoc",
                 "/schema/elements", "/schema/rapidoc", "/schema/oauth2-redirect.html")


@pytest.mark.parametrize("path", LITESTAR_DOCS)
def test_litestar_schema_routes_answer_without_a_token(path: str) -> None:
    assert status(litestar_app(), path) == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/items"), ("GET", "/schema/mine"), ("GET", "/schema/nope"), ("POST", "/schema/openapi.json"),
     ("GET", "/schemax"), ("GET", "/docs"), ("GET", "/")],
)
def test_litestar_every_other_route_still_needs_a_token(method: str, path: str) -> None:
    app = litestar_app()
    assert status(app, path, method) == 401
    assert status(app, path, method, TOKEN) in (200, 404, 405)


def test_litestar_schema_at_another_path_and_disabled() -> None:
    from litestar.openapi import OpenAPIConfig

    from jwt_middleware.integrations.litestar import bearer_openapi_config

    moved = litestar_app(openapi_config=bearer_openapi_config(OpenAPIConfig(title="t", version="1", path="/api-docs")))
    assert status(moved, "/api-docs") == 200 and status(moved, "/api-docs/openapi.json") == 200
    assert status(moved, "/schema") == 401
    disabled = litestar_app(openapi_config=None)
    assert status(disabled, "/schema") == 401 and status(disabled, "/schema", headers=TOKEN) == 404


def test_litestar_openapi_declares_the_bearer_scheme() -> None:
    from litestar.openapi import OpenAPIConfig

    from jwt_middleware.integrations.litestar import bearer_openapi_config

    document = asgi_send(litestar_app(), "GET", "/schema/openapi.json", {}).json()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "JWT access token"}
    }
    assert document["security"] == [{"bearerAuth": []}]
    mine = OpenAPIConfig(title="mine", version="2")
    assert bearer_openapi_config(mine) is not mine and mine.security is None  # a copy: the given one unchanged


def test_fastapi_docs_rules_match_below_the_root_path() -> None:
    """Behind a proxy that strips ``/api``, the server gives ``root_path="/api"`` and the full path;
    the rules name the app's own paths and match the path below the root path."""
    import asyncio

    import httpx

    app = fastapi_app()

    async def go(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            return await client.get(path)

    docs, document, items = (asyncio.run(go(p)) for p in ("/api/docs", "/api/openapi.json", "/api/items"))
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text
    assert document.status_code == 200 and items.status_code == 401
