"""Litestar behind JWTMiddleware, with the bearer scheme in /schema. Run: ``uvicorn examples.litestar_app:app``"""

from typing import Any

from litestar import Litestar, Request, get

from jwt_middleware.integrations.litestar import bearer_openapi_config, docs_rules, identity, wrap

from ._shared import authenticator


@get("/")
async def home() -> dict[str, Any]:
    return {"hello": "anyone"}


@get(["/me", "/admin"])
async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    caller = identity(request)
    return {"sub": caller.subject if caller else None, "scopes": sorted(caller.scopes) if caller else []}


litestar_app = Litestar(route_handlers=[home, me], openapi_config=bearer_openapi_config())
app = wrap(litestar_app, authenticator(*docs_rules(litestar_app)))  # /schema and its pages public
