"""JWTMiddleware: the pure-ASGI adapter (http and websocket; lifespan passes through)."""

from __future__ import annotations

from starlette.authentication import AuthCredentials

from ._types import ASGIApp, Receive, Scope, Send
from .authenticator import Authenticator, Resume
from .core.verified import put_bounded
from .errors import Refusal
from .identity import Identity
from .request import RequestView
from .starlette_user import JWTUser, anonymous, starlette_pair

__all__ = ["JWTMiddleware"]

#: namespaced scope key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"
_USERS_CACHED = 4096


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
        self._users: dict[int, tuple[Identity, JWTUser, AuthCredentials]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = RequestView.from_asgi(scope)
        if scope["type"] == "websocket":
            request.method = "GET"  # a WebSocket handshake is a GET (RFC 6455 §4.1)
        try:
            step = self.authenticator.begin(request)
            identity = await self.authenticator.aresume(step) if isinstance(step, Resume) else step
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        if identity is None:
            scope["user"], scope["auth"] = anonymous()
        else:
            # Why a memo: a repeated token yields the same Identity object from the
            # verified-token cache, and rebuilding Starlette's two objects cost more than the
            # cache lookup. They are shared between the requests of one token, so treat
            # ``request.auth.scopes`` as read-only.
            entry = self._users.get(id(identity))
            if entry is None or entry[0] is not identity:
                entry = self._remember_user(identity)
            scope["user"] = entry[1]
            scope["auth"] = entry[2]
        scope[IDENTITY_KEY] = identity
        await self.app(scope, receive, send)

    def _remember_user(self, identity: Identity) -> tuple[Identity, JWTUser, AuthCredentials]:
        """Starlette's user and credentials for an Identity, kept while the Identity lives."""
        user, credentials = starlette_pair(identity)
        entry = (identity, user, credentials)
        put_bounded(self._users, id(identity), entry, _USERS_CACHED)
        return entry

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
