"""A small Starlette app behind JWTMiddleware that records what it saw, and a real uvicorn server."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from jwt_middleware import Authenticator, JWTMiddleware
from jwt_middleware.asgi import IDENTITY_KEY

from ..support.uvicorn_server import serve as _serve


@dataclass
class Recorder:
    """The protected app: counts every call that reached it and keeps the lifespan events."""

    calls: int = 0
    lifespan: list[str] = field(default_factory=list)

    def starlette(self) -> Starlette:
        async def whoami(request: Request) -> JSONResponse:
            self.calls += 1
            identity = request.scope.get(IDENTITY_KEY)
            return JSONResponse({
                "authenticated": request.user.is_authenticated,
                "display_name": request.user.display_name,
                "scopes": sorted(request.auth.scopes),
                "subject": identity.subject if identity is not None else None,
                "state": getattr(request.state, "started", None),
            })

        @requires("read")
        async def read(request: Request) -> JSONResponse:
            self.calls += 1
            return JSONResponse({"read": True, "user": request.user.display_name})

        @requires(["read", "write"])
        async def write(request: Request) -> JSONResponse:
            self.calls += 1
            return JSONResponse({"write": True})

        async def ws(websocket: WebSocket) -> None:
            self.calls += 1
            await websocket.accept()
            identity = websocket.scope.get(IDENTITY_KEY)
            await websocket.send_json({
                "authenticated": websocket.user.is_authenticated,
                "display_name": websocket.user.display_name,
                "subject": identity.subject if identity is not None else None,
            })
            await websocket.close()

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
            self.lifespan.append("startup")
            yield {"started": "yes"}
            self.lifespan.append("shutdown")

        return Starlette(
            routes=[
                Route("/whoami", whoami, methods=["GET", "POST", "HEAD", "OPTIONS"]),
                Route("/feed", whoami),
                Route("/admin", whoami),
                Route("/read", read),
                Route("/write", write),
                WebSocketRoute("/ws", ws),
            ],
            lifespan=lifespan,
        )

    def protected(self, authenticator: Authenticator) -> JWTMiddleware:
        return JWTMiddleware(self.starlette(), authenticator)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, **options: Any) -> Iterator[int]:
    """A real uvicorn on 127.0.0.1 (tests/support/uvicorn_server.py), with the lifespan on."""
    options.setdefault("lifespan", "on")
    with _serve(app, **options) as port:
        yield port
