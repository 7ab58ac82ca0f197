"""Litestar: it is ASGI, so the middleware wraps it; ``connection.user`` and the Identity follow.

::

    app = wrap(Litestar(route_handlers=[...]), authenticator)   # = JWTMiddleware(litestar_app, auth)

    @get("/me")
    async def me(request: Request) -> dict:
        caller = identity(request)           # the Identity, or None when anonymous
        request.user.is_authenticated        # Litestar reads scope["user"]: our JWTUser
        ...

Why outside Litestar's own middleware stack: Litestar runs its middleware after routing, so
an unknown path would answer 404 before any decision; wrapping the app answers every request
exactly as under Starlette or WSGI.
"""

from __future__ import annotations

from typing import Any

from ..asgi import IDENTITY_KEY, JWTMiddleware
from ..authenticator import Authenticator
from ..identity import Identity
from ..starlette_user import JWTUser

__all__ = ["JWTUser", "identity", "wrap"]


def wrap(app: Any, authenticator: Authenticator) -> JWTMiddleware:
    """The Litestar app behind the middleware; ``connection.user`` is the JWTUser (or anonymous),
    ``connection.auth`` the scopes (Starlette's ``AuthCredentials``)."""
    return JWTMiddleware(app, authenticator)


def identity(connection: Any) -> Identity | None:
    """The Identity of a Litestar ``Request``/``WebSocket`` (None when anonymous).

    Read from ``connection.scope``; ``connection.user.principal`` is the same object.
    """
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value
