"""Litestar: it is ASGI, so the middleware wraps it; ``connection.user`` and the Identity follow."""

from __future__ import annotations

from typing import Any

from ..asgi import IDENTITY_KEY, JWTMiddleware
from ..authenticator import Authenticator
from ..identity import Identity

__all__ = ["identity", "wrap"]


def wrap(app: Any, authenticator: Authenticator) -> JWTMiddleware:
    """The Litestar app behind the middleware; ``connection.user`` is the JWTUser (or anonymous)."""
    return JWTMiddleware(app, authenticator)


def identity(connection: Any) -> Identity | None:
    """The Identity of a Litestar ``Request``/``WebSocket`` (None when anonymous)."""
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value
