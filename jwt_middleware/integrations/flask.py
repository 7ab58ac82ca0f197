"""Flask: install the WSGI adapter, read the Identity, require scopes per view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request

from ..authenticator import Authenticator
from ..errors import Refusal
from ..identity import Identity
from ..wsgi import IDENTITY_KEY, WSGIJWTMiddleware
from ._refuse import check_scopes, render

__all__ = ["current_identity", "install", "require_scopes"]

F = TypeVar("F", bound=Callable[..., Any])


def install(app: Flask, authenticator: Authenticator) -> Flask:
    """Wrap ``app.wsgi_app`` so every request is decided before Flask sees it."""
    app.wsgi_app = WSGIJWTMiddleware(app.wsgi_app, authenticator)  # type: ignore[method-assign]
    app.extensions["jwt_middleware"] = authenticator
    return app


def current_identity() -> Identity | None:
    """The Identity of the current request (None on an optional or public route)."""
    identity: Identity | None = request.environ.get(IDENTITY_KEY)
    return identity


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Refuse the view with 401/403 and the middleware's challenge unless all ``scopes`` are granted.

    The answer comes from the Authenticator :func:`install` registered (same realm, DPoP
    challenge and body as the middleware's refusals).
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                check_scopes(current_identity(), scopes)
            except Refusal as refusal:
                authenticator = current_app.extensions.get("jwt_middleware")
                status, headers, body = render(refusal, authenticator=authenticator)
                return Response(body, status=status, headers=headers)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
