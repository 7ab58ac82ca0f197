"""JWTMiddleware: the pure-ASGI adapter (http and websocket; lifespan passes through)."""

from __future__ import annotations

from typing import Final

from starlette.authentication import AuthCredentials

from ._types import ASGIApp, Receive, Scope, Send
from .audit import record_decision
from .authenticator import Authenticator, Resume
from .core.canonical import NonCanonicalPath, encode_path
from .core.pipeline import Trace
from .core.verified import put_bounded
from .errors import InvalidRequest, Refusal
from .identity import Identity
from .request import RequestView, split_root
from .starlette_user import JWTUser, anonymous, starlette_pair

__all__ = ["IDENTITY_KEY", "ORIGINAL_PATH_KEY", "JWTMiddleware"]

#: namespaced scope key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"
#: under ``path_normalization="rewrite"``, the ``(path, raw_path)`` the server gave, when rewritten
ORIGINAL_PATH_KEY = "jwt_middleware.original_path"
_USERS_CACHED = 4096
_from_asgi: Final = RequestView.from_asgi  # bound once: the hot path skips the classmethod lookup


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
        self._rewrite = authenticator.config.path_normalization == "rewrite"
        self._users: dict[int, tuple[Identity, JWTUser, AuthCredentials]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            request = _from_asgi(scope)
        except InvalidRequest as refusal:
            # Why here, before any rule: the rule and the router must judge one string.
            rewritten = self._canonical(scope, refusal)
            if isinstance(rewritten, InvalidRequest):
                record_decision(Trace(), rewritten)
                await self._refuse(scope, receive, send, rewritten)
                return
            request = rewritten
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
            # cache lookup. They are shared between the requests of one token, and read-only.
            entry = self._users.get(id(identity))
            if entry is None or entry[0] is not identity:
                entry = self._remember_user(identity)
            scope["user"] = entry[1]
            scope["auth"] = entry[2]
        scope[IDENTITY_KEY] = identity
        await self.app(scope, receive, send)

    def _canonical(self, scope: Scope, refusal: InvalidRequest) -> RequestView | InvalidRequest:
        """Under ``path_normalization="rewrite"``, the view after handing the app the canonical
        path; else (or for a path with no single meaning) the refusal to send."""
        if not (self._rewrite and isinstance(refusal, NonCanonicalPath)):
            return refusal
        _rewrite(scope, refusal.canonical)
        try:
            return RequestView.from_asgi(scope)
        except InvalidRequest as again:  # a root_path that is itself ambiguous
            return again

    def _remember_user(self, identity: Identity) -> tuple[Identity, JWTUser, AuthCredentials]:
        """Starlette's user and credentials for an Identity, kept while the Identity lives."""
        user, credentials = starlette_pair(identity, self.authenticator.config)
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


def _rewrite(scope: Scope, canonical: str) -> None:
    """Hand the app the canonical path (``path`` and ``raw_path``), as Envoy forwards its
    normalised path; keep what the server gave under ``jwt_middleware.original_path``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    prefix = split_root(path, root)[0] if root else ""
    scope[ORIGINAL_PATH_KEY] = (path, scope.get("raw_path"))
    scope["path"] = prefix + canonical
    if "raw_path" in scope:
        scope["raw_path"] = encode_path(prefix + canonical)
