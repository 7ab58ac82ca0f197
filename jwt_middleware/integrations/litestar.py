"""Litestar: it is ASGI, so the middleware wraps it; ``connection.user`` and the Identity follow.

::

    app = Litestar(route_handlers=[...], openapi_config=bearer_openapi_config())
    auth = Authenticator(Config(..., rules=(*docs_rules(app), ...)))   # /schema and its pages public
    application = wrap(app, auth)                  # = JWTMiddleware(app, auth)

    @get("/me")
    async def me(request: Request) -> dict:
        caller = identity(request)           # the Identity, or None when anonymous
        request.user                         # Litestar reads scope["user"]: our JWTUser, or the
        ...                                  # user Config.identity_loader returned

    @get("/admin", guards=[require_scopes("admin")])   # 403 insufficient_scope, the middleware's answer
    async def admin() -> dict: ...

Why outside Litestar's own middleware stack: Litestar runs its middleware after routing, so
an unknown path would answer 404 before any decision; wrapping the app answers every request
exactly as under Starlette or WSGI. Wrapping also registers the handler that answers a guard's
refusal (a :class:`~jwt_middleware.integrations.starlette.Refused`) as the middleware would,
unless the app has its own in ``exception_handlers``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

from litestar import Litestar, Request, Response
from litestar.app import DEFAULT_OPENAPI_CONFIG
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from ..asgi import IDENTITY_KEY, JWTMiddleware
from ..authenticator import Authenticator
from ..config import Rule
from ..errors import Refusal
from ..identity import Identity
from ..starlette_user import JWTUser
from ._refuse import asgi_view, check_scopes, docs_rule, header_dict, render, scope_tokens
from .starlette import Refused

__all__ = ["JWTUser", "bearer_openapi_config", "docs_rules", "identity", "require_scopes", "wrap"]

#: where Litestar defines the handlers of its OpenAPI router (schema files, UI pages)
_OPENAPI_MODULES: Final = ("litestar._openapi.", "litestar.openapi.")


def wrap(app: Any, authenticator: Authenticator) -> JWTMiddleware:
    """The Litestar app behind the middleware; ``connection.user`` is the JWTUser (the loaded
    user with ``Config.identity_loader``; Litestar's anonymous otherwise), ``connection.auth``
    the scopes (Starlette's ``AuthCredentials``)."""
    return JWTMiddleware(app, authenticator)


def require_scopes(*scopes: str) -> Callable[[Any, Any], None]:
    """A Litestar guard: the route runs only for a token holding every one of ``scopes``
    (``@get(..., guards=[require_scopes("admin")])``); else 403 ``insufficient_scope`` (401 for
    an optional route's anonymous caller; RFC 6750 §3.1) with the middleware's challenge and body.

    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3, ``"a b"``)
    """
    required = scope_tokens("require_scopes", scopes)

    def guard(connection: Any, _handler: Any) -> None:
        try:
            check_scopes(connection.scope.get(IDENTITY_KEY), required)
        except Refusal as refusal:
            raise Refused(refusal) from None

    return guard


def route_refusals(app: Litestar, authenticator: Authenticator) -> None:
    """Answer a guard's :class:`Refused` with ``authenticator``'s answer, unless the app has
    its own handler for it (called by JWTMiddleware when it wraps a Litestar app).

    Litestar calls exception handlers synchronously, so an async ``on_refusal`` is run to
    completion on a helper thread here (``Authenticator.render``).
    """
    if Refused in app.exception_handlers:
        return

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        if not isinstance(exc, Refused):
            raise exc
        chosen = exc.authenticator or (authenticator if exc.realm is None else None)
        status, headers, body = render(exc.refusal, exc.realm or "api", chosen, asgi_view(request.scope))
        media_type = dict(headers).get("content-type")
        return Response(body, status_code=status, headers=header_dict(headers), media_type=media_type)

    app.exception_handlers[Refused] = handle


def identity(connection: Any) -> Identity | None:
    """The Identity of a Litestar ``Request``/``WebSocket`` (None when anonymous).

    Read from ``connection.scope``; ``connection.user.principal`` is the same object (unless
    ``Config.identity_loader`` made ``connection.user`` the app's own user).
    """
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value


def docs_rules(app: Litestar) -> tuple[Rule, ...]:
    """Public rules for exactly the routes Litestar's OpenAPI router serves (``/schema``,
    ``/schema/openapi.json``, ``/schema/swagger``, … under ``OpenAPIConfig.path``), each for
    its handlers' methods. None with ``openapi_config=None``.

    A route of the app's own under that path stays closed, and so does the router's catch-all
    404 page (``/schema/{path:str}``). Paths are the app's own, below any ``root_path`` (as rules
    match unless ``Config.match_full_path``). List these rules first: the first matching rule wins.
    """
    rules: list[Rule] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "{" in route.path:
            continue
        handlers = [h for h in route.route_handlers if "OPTIONS" not in h.http_methods]
        if handlers and all(_serves_openapi(h) for h in handlers):
            methods = sorted({method for h in handlers for method in h.http_methods})
            rules.append(docs_rule(route.path, tuple(methods)))
    return tuple(sorted(rules, key=lambda rule: rule.path))


def _serves_openapi(handler: HTTPRouteHandler) -> bool:
    return str(getattr(handler.fn, "__module__", "")).startswith(_OPENAPI_MODULES)


def bearer_openapi_config(
    config: OpenAPIConfig | None = None, *, scheme_name: str = "bearerAuth"
) -> OpenAPIConfig:
    """A copy of ``config`` (default: Litestar's own) whose document declares the JWT bearer
    scheme (``components.securitySchemes``) and requires it for every operation, so the UIs
    offer "Authorize"; pass it as ``Litestar(openapi_config=...)``."""
    found = copy.copy(config or DEFAULT_OPENAPI_CONFIG)
    scheme = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT", description="JWT access token")
    components = found.components if isinstance(found.components, list) else [found.components]
    found.components = [*components, Components(security_schemes={scheme_name: scheme})]
    found.security = [*(found.security or []), {scheme_name: []}]
    return found
