"""Flask: install the WSGI adapter, read the Identity, require scopes per view.

::

    app = Flask(__name__)
    JWTFlask(app, authenticator)       # or JWTFlask().init_app(app, authenticator)

    @app.get("/admin")
    @require_scopes("admin")
    def admin(): return {"sub": current_identity().subject}
"""

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

__all__ = ["JWTFlask", "current_identity", "install", "require_scopes"]

F = TypeVar("F", bound=Callable[..., Any])
#: ``app.extensions`` key holding the installed Authenticator
EXTENSION = "jwt_middleware"


class JWTFlask:
    """The Flask extension: wraps ``app.wsgi_app`` in :class:`~jwt_middleware.WSGIJWTMiddleware`.

    Every request is decided before Flask routes it, so refusals (and 404s of anonymous
    callers) get exactly the WSGI adapter's answer.

    :param app: the Flask app; or call :meth:`init_app` later (application factories)
    :param authenticator: the shared decision maker
    """

    def __init__(self, app: Flask | None = None, authenticator: Authenticator | None = None) -> None:
        self.authenticator = authenticator
        if app is not None:
            self.init_app(app, authenticator)

    def init_app(self, app: Flask, authenticator: Authenticator | None = None) -> None:
        """:raises ValueError: no Authenticator given here nor to the constructor"""
        authenticator = authenticator or self.authenticator
        if authenticator is None:
            raise ValueError("JWTFlask: pass the Authenticator, e.g. JWTFlask(app, Authenticator(config))")
        if isinstance(app.wsgi_app, WSGIJWTMiddleware):
            raise ValueError("JWTFlask: this app is wrapped already; install one Authenticator per app")
        app.wsgi_app = WSGIJWTMiddleware(app.wsgi_app, authenticator)  # type: ignore[method-assign]
        app.extensions[EXTENSION] = authenticator
        self.authenticator = authenticator


def install(app: Flask, authenticator: Authenticator) -> Flask:
    """Wrap ``app.wsgi_app`` (see :class:`JWTFlask`) and return the app."""
    JWTFlask(app, authenticator)
    return app


def current_identity() -> Identity | None:
    """The Identity of the current request (None on an optional or public route)."""
    identity: Identity | None = request.environ.get(IDENTITY_KEY)
    return identity


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Refuse the view with 401/403 and the middleware's challenge unless all ``scopes`` are granted.

    The answer comes from the Authenticator :class:`JWTFlask` registered (same realm, DPoP
    challenge and body as the middleware's refusals; RFC 6750 §3.1 ``insufficient_scope``).
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                check_scopes(current_identity(), scopes)
            except Refusal as refusal:
                authenticator = current_app.extensions.get(EXTENSION)
                status, headers, body = render(refusal, authenticator=authenticator)
                return Response(body, status=status, headers=headers)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
