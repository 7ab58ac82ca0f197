"""JWTMiddleware: the pure-ASGI adapter (http and websocket; lifespan passes through, warms keys
and starts and closes the revocation store)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from ._lifespan import WarmKeys, check_warm_keys, lifespan_with_warmup
from ._types import ASGIApp, Message, Receive, Scope, Send
from .audit import record_decision
from .authenticator import Authenticator, Resume
from .core.canonical import NonCanonicalPath, encode_path
from .core.pipeline import Trace
from .core.verified import put_bounded
from .errors import InvalidRequest, Refusal
from .identity import Identity
from .request import RequestView, split_root

if TYPE_CHECKING:
    from starlette.authentication import AuthCredentials

    from .starlette_user import JWTUser

__all__ = ["IDENTITY_KEY", "ORIGINAL_PATH_KEY", "USER_KEY", "JWTMiddleware"]

#: namespaced scope key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"
#: with ``Config.identity_loader``: the loaded user (None for anonymous access); also ``scope["user"]``
USER_KEY = "jwt_middleware.user"
#: under ``path_normalization="rewrite"``, the ``(path, raw_path)`` the server gave, when rewritten
ORIGINAL_PATH_KEY = "jwt_middleware.original_path"
_USERS_CACHED = 4096
_from_asgi: Final = RequestView.from_asgi  # bound once: the hot path skips the classmethod lookup


class JWTMiddleware:
    """Wrap any ASGI app. Sets ``scope["user"]``, ``scope["auth"]`` (Starlette-compatible) and
    ``scope["jwt_middleware.identity"]``, or answers the refusal without calling the app.

    With ``Config.identity_loader``, ``scope["user"]`` (and ``scope["jwt_middleware.user"]``) is
    the user it loaded; ``scope["auth"]`` still holds the token's scopes. A Starlette, FastAPI or
    Litestar app gets a handler for the helpers' refusals (``integrations.starlette.Refused``),
    so they are answered as the middleware's own, unless the app has its own handler for them.

    :param app: the ASGI app to protect
    :param authenticator: the shared decision maker
    :param warm_keys: fetch every issuer's keys at server start-up (the ASGI lifespan), before
        the app's own start-up: True logs failures and starts anyway; ``"strict"`` refuses to
        start (``lifespan.startup.failed`` naming each issuer, URL and cause). Default False.

    A revocation store (``Authenticator(revocation_store=...)``) is started on
    ``lifespan.startup`` before the app sees it, and closed before the app's
    ``lifespan.shutdown.complete`` goes out. Under a server without lifespan (``--lifespan
    off``) or an app that does not speak it, the first request starts it (the others wait for
    that start); until its first sync, requests get 503, never an accept.
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator, *, warm_keys: WarmKeys = False) -> None:
        authenticator.check_driver("asgi")
        # Why imported here, not with the module: Starlette's user types are all this adapter
        # needs starlette for (the "asgi" extra), and the Django integration and the testing
        # helpers import this module's other names where starlette is not installed.
        from .starlette_user import anonymous, starlette_pair

        self._anonymous = anonymous
        self._starlette_pair = starlette_pair
        self.app = app
        self.authenticator = authenticator
        self._rewrite = authenticator.config.path_normalization == "rewrite"
        self._load_users = authenticator.loads_users
        self._users: dict[int, tuple[Identity, JWTUser, AuthCredentials]] = {}
        self._warm_keys = check_warm_keys(warm_keys)
        self._has_store_to_start = authenticator.starting
        # Why the Revoker itself: its ``pending`` is read on every request, one attribute
        # where the Authenticator's property would be a call
        self._revoker = authenticator._revoker
        _route_refusals(app, authenticator)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan" and (self._warm_keys or self._has_store_to_start):
                await self._lifespan(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        revoker = self._revoker
        if revoker is not None and revoker.pending:
            await revoker.astart()
        try:
            request = _from_asgi(scope)
        except InvalidRequest as refusal:
            # Why here, before any rule: the rule and the router must judge one string.
            rewritten = self._canonical(scope, refusal)
            if isinstance(rewritten, InvalidRequest):
                record_decision(Trace(), rewritten)
                await self._refuse(scope, receive, send, rewritten, None)
                return
            request = rewritten
        if scope["type"] == "websocket":
            request.method = "GET"  # a WebSocket handshake is a GET (RFC 6455 §4.1)
        try:
            step = self.authenticator.begin(request)
            identity = await self.authenticator.aresume(step) if isinstance(step, Resume) else step
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal, request)
            return
        if identity is None:
            scope["user"], scope["auth"] = self._anonymous()
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
        if self._load_users:
            try:
                user = None if identity is None else await self.authenticator.aload_user(identity)
            except Refusal as refusal:
                await self._refuse(scope, receive, send, refusal, request)
                return
            if user is not None:
                scope["user"] = user
            scope[USER_KEY] = user
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan with our start-up first (the revocation store, then the key
        warm-up) and the store closed when the app has shut down."""
        authenticator = self.authenticator

        async def receive_starting() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await authenticator.astart()
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await authenticator.aclose()
            await send(message)

        if self._warm_keys:
            strict = self._warm_keys == "strict"
            await lifespan_with_warmup(self.app, authenticator, scope, receive_starting, send_closing,
                                       strict=strict)
            return
        await self.app(scope, receive_starting, send_closing)

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
        user, credentials = self._starlette_pair(identity, self.authenticator.config)
        entry = (identity, user, credentials)
        put_bounded(self._users, id(identity), entry, _USERS_CACHED)
        return entry

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, refusal: Refusal, request: RequestView | None
    ) -> None:
        # WebSocket: a real HTTP denial where the server supports it, else close before accept.
        if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            status, headers, body = await self.authenticator.arender(refusal, request)
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            prefix = "http" if scope["type"] == "http" else "websocket.http"
            await send({"type": f"{prefix}.response.start", "status": status, "headers": raw})
            await send({"type": f"{prefix}.response.body", "body": body})
            return
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})


def _route_refusals(app: object, authenticator: Authenticator) -> None:
    """Have the wrapped app answer a helper's ``Refused`` with the middleware's own answer.

    Why at construction, on the app: a helper raises inside the app, where the app's own
    exception handling answers before this middleware sees anything. A Starlette or FastAPI app
    (and the ``ExceptionMiddleware`` that ``app.add_middleware`` wraps this around) takes a
    handler through ``add_exception_handler``; a Litestar app through its
    ``exception_handlers``. An app's own handler for ``Refused`` is left alone: it wins.
    """
    if callable(getattr(app, "add_exception_handler", None)):
        from .integrations.starlette import Refused, refusal_handler_for

        handlers = getattr(app, "exception_handlers", None)
        if not isinstance(handlers, Mapping):
            handlers = getattr(app, "_exception_handlers", None)  # Starlette's ExceptionMiddleware
        if not (isinstance(handlers, Mapping) and Refused in handlers):
            app.add_exception_handler(Refused, refusal_handler_for(authenticator))  # type: ignore[attr-defined]
        return
    litestar = sys.modules.get("litestar")  # imported already if the app is one: never import it here
    if litestar is not None and isinstance(app, litestar.Litestar):
        from .integrations.litestar import route_refusals

        route_refusals(app, authenticator)


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
