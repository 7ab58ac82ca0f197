"""Starlette: its own ``requires`` works unchanged on what JWTMiddleware attaches.

:class:`~jwt_middleware.JWTMiddleware` sets ``scope["user"]`` (a ``JWTUser``, or Starlette's
``UnauthenticatedUser``) and ``scope["auth"]`` (``AuthCredentials`` holding the token's scopes),
the same two keys Starlette's ``AuthenticationMiddleware`` sets. So ``starlette.authentication
.requires`` needs no adapter; it is re-exported here so the import says where it belongs::

    from jwt_middleware.integrations.starlette import requires

    @requires("admin")                 # 403 without the scope (Starlette's own answer)
    async def admin(request): ...

Starlette's ``requires`` answers a missing scope with its own plain 403 and no
``WWW-Authenticate``. For the RFC 6750 challenge, put the scope on a
:class:`~jwt_middleware.Rule` instead: the middleware then refuses before the route runs.
"""

from __future__ import annotations

from starlette.authentication import has_required_scope, requires
from starlette.requests import HTTPConnection

from ..asgi import IDENTITY_KEY
from ..identity import Identity
from ..starlette_user import JWTUser

__all__ = ["JWTUser", "has_required_scope", "identity", "requires"]


def identity(connection: HTTPConnection) -> Identity | None:
    """The Identity of a Starlette ``Request``/``WebSocket`` (None when anonymous or unwrapped)."""
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value
