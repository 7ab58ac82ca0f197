"""Flask: wrap the app in the WSGI adapter, read the Identity and the user, require scopes per view.

::

    app = Flask(__name__)
    JWTFlask(app, authenticator)       # or JWTFlask().init_app(app, authenticator)

    @app.get("/admin")                 # the route decorator first (outermost), then
    @require_scopes("admin")           # the check: Flask registers what the route decorator gets
    def admin(): return {"sub": current_identity().subject}

Written the other way round (``@require_scopes`` above ``@app.get``), Flask would register the
bare view and the check would never run. :class:`JWTFlask` refuses that with a ConfigError: at
the decoration when the app is installed already, at ``init_app`` for the views registered
before it, and at the first request for blueprints registered later.

A refusal of ``@require_scopes`` is a :class:`Refused` (a werkzeug ``HTTPException``) whose
response is the middleware's answer, body shaped by ``Config.on_refusal``. Flask's error
handling sees it: an app's ``@app.errorhandler(Refused)`` (or a catch-all for every
``HTTPException``) answers it instead, with ``error.refusal`` and ``error.get_response()`` at
hand; handlers for a status code (``@app.errorhandler(403)``) do not see it, so the 403 page of
the app's HTML views is not what an API client gets. Whatever the handler returns, JWTFlask puts
the middleware's ``WWW-Authenticate``, ``Retry-After``, ``DPoP-Nonce`` and ``Cache-Control``
back on the response: the challenge stays the middleware's (RFC 6750 §3).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, TypeVar

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..authenticator import Authenticator
from ..errors import ConfigError, Refusal
from ..identity import Identity, qualified_ids
from ..wsgi import IDENTITY_KEY, USER_KEY, WSGIJWTMiddleware
from ._refuse import check_scopes, render, scope_tokens, wsgi_view

__all__ = [
    "JWTFlask",
    "Refused",
    "check_views",
    "current_identity",
    "current_user",
    "current_user_id",
    "require_scopes",
]

F = TypeVar("F", bound=Callable[..., Any])
#: ``app.extensions`` key holding the installed Authenticator
EXTENSION = "jwt_middleware"
#: every view given to require_scopes: found registered as such, it would run unchecked
_GUARDED: Final[weakref.WeakSet[Callable[..., Any]]] = weakref.WeakSet()
#: the apps JWTFlask installed, whose registered views each decoration is checked against
_APPS: Final[weakref.WeakSet[Flask]] = weakref.WeakSet()
#: environ key: the headers of a helper's refusal that stay the middleware's own
_REFUSED_KEY: Final = "jwt_middleware.refused_headers"
#: what an app's error handler cannot take off a refusal (the body and its type are its own)
_KEPT: Final = frozenset({"www-authenticate", "retry-after", "dpop-nonce", "cache-control"})
_BARE_VIEW: Final = (
    "require_scopes: the view {endpoint!r} is registered without its scope check, so it would answer "
    "every caller; put the route decorator above it: @app.get(...), then @require_scopes(...)"
)


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
        """Wrap ``app.wsgi_app`` and check its views now, at each later ``@require_scopes`` and at
        the first request.

        :raises ValueError: no Authenticator given here nor to the constructor
        :raises ConfigError: a view registered bare though ``@require_scopes`` was applied to it
        """
        authenticator = authenticator or self.authenticator
        if authenticator is None:
            raise ValueError("JWTFlask: pass the Authenticator, e.g. JWTFlask(app, Authenticator(config))")
        if isinstance(app.wsgi_app, WSGIJWTMiddleware):
            raise ValueError("JWTFlask: this app is wrapped already; install one Authenticator per app")
        app.wsgi_app = WSGIJWTMiddleware(app.wsgi_app, authenticator)  # type: ignore[method-assign]
        app.extensions[EXTENSION] = authenticator
        self.authenticator = authenticator
        check_views(app)
        _APPS.add(app)
        app.before_request(_check_views_once(app))
        app.after_request(_keep_challenge)


class Refused(HTTPException):
    """A refusal of :func:`require_scopes`; :meth:`get_response` is the middleware's answer.

    ``code`` is set per refusal (401 or 403), not on the class, so Flask looks its handler up
    by class (``@app.errorhandler(Refused)``), never by a status code's handler.
    """

    def __init__(self, refusal: Refusal, response: Response) -> None:
        super().__init__(description=refusal.description, response=response)
        self.code = refusal.status
        self.refusal = refusal


def _keep_challenge(response: Response) -> Response:
    """An ``after_request`` hook: a helper's refusal leaves with the middleware's challenge
    headers, whatever an error handler of the app made of its response."""
    kept: list[tuple[str, str]] | None = request.environ.get(_REFUSED_KEY)
    if kept is None:
        return response
    for name in _KEPT:
        response.headers.pop(name, None)
    for name, value in kept:
        response.headers.add(name, value)
    return response


def current_user() -> object:
    """The user ``Config.identity_loader`` loaded for this request (None when anonymous).

    :raises RuntimeError: a verified request but no ``identity_loader`` configured (the Identity
        is :func:`current_identity`)
    """
    environ = request.environ
    if USER_KEY in environ:
        return environ[USER_KEY]
    if environ.get(IDENTITY_KEY) is None:
        return None
    raise RuntimeError(
        "current_user: set Config(identity_loader=...) to load the app's user; "
        "current_identity() is the token's Identity"
    )


def current_identity() -> Identity | None:
    """The Identity of the current request (None on an optional or public route).

    One Identity serves every request with its token, so it is read-only throughout
    (``claims`` a :class:`~jwt_middleware.identity.ReadOnlyDict`); ``jsonify(identity.to_dict())``.
    """
    identity: Identity | None = request.environ.get(IDENTITY_KEY)
    return identity


def current_user_id() -> str | None:
    """The current request's user id (None when anonymous): the bare ``sub`` with one trusted
    issuer, the issuer-qualified subject with several (:meth:`Identity.user_id`).

    :raises RuntimeError: the app was not installed with :class:`JWTFlask`, whose Authenticator
        says how many issuers are trusted
    """
    identity = current_identity()
    if identity is None:
        return None
    authenticator: Authenticator | None = current_app.extensions.get(EXTENSION)
    if authenticator is None:
        raise RuntimeError("current_user_id: install the app with JWTFlask(app, authenticator)")
    return identity.user_id(qualified_ids(authenticator.config))


def check_views(app: Flask) -> None:
    """Refuse an app that registered a view bare although ``@require_scopes`` was applied to it.

    :raises ConfigError: ``@require_scopes`` written above the route decorator
    """
    for endpoint, view in app.view_functions.items():
        if view in _GUARDED:
            raise ConfigError(_BARE_VIEW.format(endpoint=endpoint))


def _check_views_once(app: Flask) -> Callable[[], None]:
    """A ``before_request`` hook: :func:`check_views` until it passes once. Flask allows no new
    route after the first request, so one clean pass covers blueprints registered late; a
    failing pass fails every request (500) rather than serve an unchecked view."""
    passed = False

    def check() -> None:
        nonlocal passed
        if not passed:
            check_views(app)
            passed = True

    return check


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Refuse the view with 401/403 and the middleware's challenge unless all ``scopes`` are granted.

    The answer comes from the Authenticator :class:`JWTFlask` registered (same realm, DPoP
    challenge and body as the middleware's refusals; RFC 6750 §3.1 ``insufficient_scope``).
    Write it below the route decorator; :class:`JWTFlask` refuses the other order (see the
    module docstring). Without JWTFlask (a bare WSGIJWTMiddleware), call :func:`check_views`
    once every route is registered.

    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3, ``"a b"``), or a
        view that an installed app registered already (the decorators in the wrong order)
    """
    required = scope_tokens("require_scopes", scopes)

    def decorate(view: F) -> F:
        _refuse_registered(view)

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                check_scopes(current_identity(), required)
            except Refusal as refusal:
                raise _refused(refusal) from None
            return view(*args, **kwargs)

        _guard(view)
        return wrapper  # type: ignore[return-value]

    return decorate


def _refused(refusal: Refusal) -> Refused:
    """The :class:`Refused` carrying the answer the installed Authenticator renders."""
    authenticator: Authenticator | None = current_app.extensions.get(EXTENSION)
    status, headers, body = render(refusal, authenticator=authenticator, request=wsgi_view(request.environ))
    request.environ[_REFUSED_KEY] = [(name, value) for name, value in headers if name in _KEPT]
    return Refused(refusal, Response(body, status=status, headers=headers))


def _refuse_registered(view: Callable[..., Any]) -> None:
    """:raises ConfigError: an installed app routes ``view`` itself, so the check would never run"""
    for app in list(_APPS):
        for endpoint, found in app.view_functions.items():
            if found is view:
                raise ConfigError(_BARE_VIEW.format(endpoint=endpoint))


def _guard(view: Callable[..., Any]) -> None:
    """Remember ``view`` (a callable that takes no weak reference cannot be checked later)."""
    try:
        _GUARDED.add(view)
    except TypeError:
        pass
