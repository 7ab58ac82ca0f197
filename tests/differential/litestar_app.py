"""The matrix's route table on Litestar, behind the middleware (outside Litestar's own stack)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, WebSocket, delete, get, route, websocket
from litestar.config.cors import CORSConfig
from litestar.handlers import asgi

from jwt_middleware import JWTMiddleware

from .apps import IDENTITY_KEY, PROBE_HEADER, ByMode, authenticators, record
from .matrix import ORIGIN

AnyRequest = Request[Any, Any, Any]


def _body(request: AnyRequest, name: str) -> dict[str, Any]:
    scope = request.scope
    return record(request.headers.get(PROBE_HEADER), name, scope.get(IDENTITY_KEY), scope["path"])


@get("/public")
async def public(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "public")


@route("/admin/panel", http_method=["GET", "POST", "DELETE"], status_code=200)
async def admin_panel(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "admin_panel")


@get("/admin/users/{id:str}")
async def admin_user(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "admin_user")


@route("/admin/echo", http_method=["GET", "OPTIONS"], status_code=200)
async def admin_echo(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "admin_echo")


@get("/items/{id:str}")
async def item_get(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "item_get")


@delete("/items/{id:str}", status_code=200)
async def item_delete(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "item_delete")


@get("/reports/daily")
async def report_daily(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "report_daily")


@websocket("/ws/admin")
async def ws_admin(socket: WebSocket[Any, Any, Any]) -> None:
    scope = socket.scope
    record(socket.headers.get(PROBE_HEADER), "ws_admin", scope.get(IDENTITY_KEY), scope["path"])
    await socket.accept()
    await socket.close()


@get("/secret")
async def sub_secret(request: AnyRequest) -> dict[str, Any]:
    return _body(request, "sub_secret")


def _app() -> Any:  # Any: Litestar's own scope types are narrower than the ASGI alias
    sub_app = Litestar(route_handlers=[sub_secret])

    @asgi("/sub", is_mount=True, copy_scope=True)
    async def sub(scope: Any, receive: Any, send: Any) -> None:
        await sub_app(scope, receive, send)

    handlers = [public, admin_panel, admin_user, admin_echo, item_get, item_delete, report_daily, ws_admin, sub]
    return Litestar(route_handlers=handlers, cors_config=CORSConfig(allow_origins=[ORIGIN]))


def build() -> ByMode:
    """What ``uvicorn --factory`` serves: one middleware-wrapped Litestar app per mode."""
    return ByMode({name: JWTMiddleware(_app(), auth) for name, auth in authenticators().items()})
