"""Starlette: its own ``requires`` works unchanged on what JWTMiddleware attaches.

:class:`~jwt_middleware.JWTMiddleware` sets ``scope["user"]`` (a ``JWTUser``, or Starlette's
``UnauthenticatedUser``) and ``scope["auth"]`` (``AuthCredentials`` holding the token's scopes),
the same two keys Starlette's ``AuthenticationMiddleware`` sets. So ``starlette.authentication
.requires`` needs no adapter; it is re-exported here so the import says where it belongs::

    from jwt_middleware.integrations.starlette import requires

    @requires("admin")                 # 403 without the scope (Starlette's own answer)
    async def admin(request): ...

The one difference from Starlette's own: a scope that is not one scope token
(``requires("read write")``, which no token could ever hold) is a ConfigError at the
decoration, as it is in ``Rule.scopes``.

Starlette's ``requires`` answers a missing scope with its own plain 403 and no
``WWW-Authenticate``. For the RFC 6750 challenge, put the scope on a
:class:`~jwt_middleware.Rule` instead: the middleware then refuses before the route runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

from starlette import authentication
from starlette.authentication import has_required_scope
from starlette.requests import HTTPConnection

from ..asgi import IDENTITY_KEY
from ..identity import Identity
from ..starlette_user import JWTUser
from ._refuse import scope_tokens

__all__ = ["JWTUser", "has_required_scope", "identity", "requires"]

_P = ParamSpec("_P")


def requires(
    scopes: str | Sequence[str], status_code: int = 403, redirect: str | None = None
) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Starlette's ``requires``: ``status_code`` (or a redirect to the route named ``redirect``)
    unless ``request.auth.scopes`` holds every one of ``scopes``.

    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3)
    """
    scope_tokens("requires", scopes)
    return authentication.requires(scopes, status_code, redirect)


def identity(connection: HTTPConnection) -> Identity | None:
    """The Identity of a Starlette ``Request``/``WebSocket`` (None when anonymous or unwrapped)."""
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value
