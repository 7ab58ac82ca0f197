"""Starlette: scope checks in a route answered as the middleware answers, and the ``Refused`` they raise.

:class:`~jwt_middleware.JWTMiddleware` sets ``scope["user"]`` (a ``JWTUser``, Starlette's
``UnauthenticatedUser``, or what ``Config.identity_loader`` returned) and ``scope["auth"]``
(``AuthCredentials`` holding the token's scopes), the two keys Starlette's
``AuthenticationMiddleware`` sets, so Starlette's own ``requires`` works on them unchanged. The
``requires`` here is the same decorator, answering like the middleware::

    from jwt_middleware.integrations.starlette import requires

    @requires("admin")                 # 403 insufficient_scope with the middleware's challenge and body
    async def admin(request): ...

A refusal inside the app is a :class:`Refused` (a Starlette ``HTTPException``). JWTMiddleware
registers a handler for it on the app it wraps (a Starlette or FastAPI app, or the
``ExceptionMiddleware`` that ``app.add_middleware`` puts below it), so it gets exactly the
middleware's answer: the status, the ``WWW-Authenticate`` challenge and the body, shaped by
``Config.on_refusal`` when one is set. An app's own handler for ``Refused`` wins over it (that is
how a refusal is routed to a framework's own error handling); registered before the app is
wrapped or after, it is the one that answers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec

from starlette import authentication
from starlette.authentication import has_required_scope
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from ..asgi import IDENTITY_KEY
from ..authenticator import Authenticator
from ..errors import ConfigError, InsufficientScope, MissingToken, Refusal
from ..identity import Identity
from ..starlette_user import JWTUser
from ._refuse import arender, asgi_view, challenge, header_dict, scope_tokens

__all__ = ["JWTUser", "Refused", "has_required_scope", "identity", "refusal_handler", "requires"]

_P = ParamSpec("_P")
#: a Starlette exception handler for :class:`Refused`
RefusalHandler = Callable[[Request, Exception], Awaitable[Response]]


class Refused(HTTPException):
    """A refusal raised by a helper inside the app (``requires``, a FastAPI dependency).

    Without a handler for it (an app not wrapped by JWTMiddleware), Starlette's own
    ``HTTPException`` handler answers with its status and the challenge headers (FastAPI's with
    ``{"detail": ...}``).

    :param refusal: what to answer
    :param authenticator: render with this Authenticator (its realm, DPoP challenge and hook);
        None: the middleware's, or ``realm``
    :param realm: the challenge's realm when no Authenticator renders it
    """

    def __init__(
        self, refusal: Refusal, *, authenticator: Authenticator | None = None, realm: str | None = None
    ) -> None:
        headers = header_dict(challenge(refusal, realm or "api", authenticator)[1])
        super().__init__(refusal.status, detail=refusal.description, headers=headers)
        self.refusal = refusal
        self.authenticator = authenticator
        self.realm = realm


async def answer(exc: Refused, request: HTTPConnection, fallback: Authenticator | None) -> Response:
    """The response for ``exc``: rendered by its own Authenticator, else (with no realm of its
    own) by ``fallback``, the middleware's, else as a Bearer challenge in its realm."""
    authenticator = exc.authenticator or (fallback if exc.realm is None else None)
    view = asgi_view(request.scope)
    status, headers, body = await arender(exc.refusal, exc.realm or "api", authenticator, view)
    response = Response(body, status_code=status)
    response.raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return response


async def refusal_handler(request: Request, exc: Exception) -> Response:
    """The middleware's whole answer (status, every header, body) for a :class:`Refused`, for an
    app that registers it itself: ``app.add_exception_handler(Refused, refusal_handler)``.
    JWTMiddleware registers one bound to its own Authenticator, so most apps need not."""
    if not isinstance(exc, Refused):
        raise exc
    return await answer(exc, request, None)


def refusal_handler_for(authenticator: Authenticator) -> RefusalHandler:
    """:func:`refusal_handler` rendering with ``authenticator`` what names no Authenticator."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, Refused):
            raise exc
        return await answer(exc, request, authenticator)

    return handle


def requires(
    scopes: str | Sequence[str], status_code: int = 403, redirect: str | None = None
) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Starlette's ``requires``, refusing as the middleware does: unless ``request.auth.scopes``
    holds every one of ``scopes``, a :class:`Refused` 403 ``insufficient_scope`` (401 for an
    anonymous caller of an optional route; RFC 6750 §3.1) with the middleware's challenge and
    body. A WebSocket is closed (1008) before it is accepted.

    ``status_code`` other than 403 (a 404 that hides the route) or ``redirect`` (the route named
    to log in at) keep Starlette's own answers, which carry no challenge.

    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3)
    """
    required = scope_tokens("requires", scopes)
    if status_code != 403 or redirect is not None:
        return authentication.requires(scopes, status_code, redirect)

    def decorate(func: Callable[_P, Any]) -> Callable[_P, Any]:
        index, kind = _connection_parameter(func)
        if kind == "websocket":

            @functools.wraps(func)
            async def websocket_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
                websocket: WebSocket = _argument(args, kwargs, index, "websocket")
                if has_required_scope(websocket, required):
                    await func(*args, **kwargs)
                else:
                    await websocket.close(code=1008)  # policy violation (RFC 6455 §7.4.1)

            return websocket_wrapper
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                _check(_argument(args, kwargs, index, "request"), required)
                return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def sync_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            _check(_argument(args, kwargs, index, "request"), required)
            return func(*args, **kwargs)

        return sync_wrapper

    return decorate


def _connection_parameter(func: Callable[..., Any]) -> tuple[int, str]:
    """Where the endpoint takes its ``request`` or ``websocket`` (Starlette's own rule)."""
    for index, parameter in enumerate(inspect.signature(func).parameters.values()):
        if parameter.name in ("request", "websocket"):
            return index, parameter.name
    raise ConfigError(f'requires: {func!r} has no "request" or "websocket" parameter to check')


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs.get(name, args[index] if index < len(args) else None)


def _check(request: HTTPConnection | None, required: tuple[str, ...]) -> None:
    """:raises Refused: 403 ``insufficient_scope`` when ``request.auth`` lacks a scope, 401 when
    there is no identity at all (an optional route's anonymous caller, or no middleware)"""
    if isinstance(request, HTTPConnection) and has_required_scope(request, required):
        return
    found = request.scope.get(IDENTITY_KEY) if isinstance(request, HTTPConnection) else None
    refusal = InsufficientScope("insufficient_scope", params={"scope": " ".join(required)})
    raise Refused(refusal if found is not None else MissingToken("missing_token"))


def identity(connection: HTTPConnection) -> Identity | None:
    """The Identity of a Starlette ``Request``/``WebSocket`` (None when anonymous or unwrapped)."""
    value: Identity | None = connection.scope.get(IDENTITY_KEY)
    return value
