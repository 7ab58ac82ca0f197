"""JWTMiddleware: the pure-ASGI adapter (http and websocket; lifespan passes through)."""

from __future__ import annotations

from ._types import ASGIApp, Receive, Scope, Send
from .authenticator import Authenticator
from .errors import Refusal
from .request import RequestView
from .starlette_user import anonymous, starlette_pair

__all__ = ["JWTMiddleware"]

#: namespaced scope key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"


class JWTMiddleware:
    """Wrap any ASGI app. Sets ``scope["user"]``, ``scope["auth"]`` (Starlette-compatible) and
    ``scope["jwt_middleware.identity"]``, or answers the refusal without calling the app.

    :param app: the ASGI app to protect
    :param authenticator: the shared decision maker
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        authenticator.check_driver("asgi")
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = RequestView.from_asgi(scope)
        if scope["type"] == "websocket":
            request.method = "GET"
        try:
            identity = await self.authenticator.aauthenticate(request)
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        if identity is None:
            scope["user"], scope["auth"] = anonymous()
        else:
            scope["user"], scope["auth"] = starlette_pair(identity)
        scope[IDENTITY_KEY] = identity
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        status, headers, body = self.authenticator.render(refusal)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
        # WebSocket: a real HTTP denial where the server supports it, else close before accept.
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
            await send({"type": "websocket.http.response.body", "body": body})
            return
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})
