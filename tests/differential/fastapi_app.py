"""The matrix's route table on FastAPI (module-level imports: FastAPI resolves annotations here)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, WebSocket
from starlette.middleware.cors import CORSMiddleware

from jwt_middleware import JWTMiddleware

from .apps import IDENTITY_KEY, PROBE_HEADER, ByMode, authenticators, record
from .matrix import ORIGIN


def _body(request: Request, name: str) -> dict[str, Any]:
    scope = request.scope
    return record(request.headers.get(PROBE_HEADER), name, scope.get(IDENTITY_KEY), scope["path"])


def _sub_app() -> FastAPI:
    sub = FastAPI()

    @sub.get("/secret")
    async def sub_secret(request: Request) -> dict[str, Any]:
        return _body(request, "sub_secret")

    return sub


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"])

    @app.get("/public")
    async def public(request: Request) -> dict[str, Any]:
        return _body(request, "public")

    @app.api_route("/admin/panel", methods=["GET", "POST", "DELETE"])
    async def admin_panel(request: Request) -> dict[str, Any]:
        return _body(request, "admin_panel")

    @app.get("/admin/users/{id}")
    async def admin_user(request: Request, id: str) -> dict[str, Any]:
        return _body(request, "admin_user")

    @app.api_route("/admin/echo", methods=["GET", "OPTIONS"])
    async def admin_echo(request: Request) -> dict[str, Any]:
        return _body(request, "admin_echo")

    @app.get("/items/{id}")
    async def item_get(request: Request, id: str) -> dict[str, Any]:
        return _body(request, "item_get")

    @app.delete("/items/{id}")
    async def item_delete(request: Request, id: str) -> dict[str, Any]:
        return _body(request, "item_delete")

    @app.get("/reports/daily")
    async def report_daily(request: Request) -> dict[str, Any]:
        return _body(request, "report_daily")

    @app.websocket("/ws/admin")
    async def ws_admin(websocket: WebSocket) -> None:
        scope = websocket.scope
        record(websocket.headers.get(PROBE_HEADER), "ws_admin", scope.get(IDENTITY_KEY), scope["path"])
        await websocket.accept()
        await websocket.close()

    app.mount("/sub", _sub_app())
    return app


def build() -> ByMode:
    """What ``uvicorn --factory`` serves: one middleware-wrapped FastAPI app per mode."""
    return ByMode({name: JWTMiddleware(_app(), auth) for name, auth in authenticators().items()})
