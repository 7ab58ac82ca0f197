"""Django: a middleware for ``settings.MIDDLEWARE``, sync and async, ``request.user``-compatible.

``settings.JWT_MIDDLEWARE_AUTHENTICATOR`` names the Authenticator (an object or a dotted path).
Refused requests get the same status, ``WWW-Authenticate`` and body as the ASGI/WSGI adapters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from ..authenticator import Authenticator
from ..errors import Refusal
from ..identity import Identity
from ..request import RequestView
from ..wsgi import request_from_environ

__all__ = ["JWTAuthenticationMiddleware", "JWTUser"]


class JWTUser:
    """``request.user`` for a verified token (duck-types Django's user for auth checks).

    ``identity`` (and ``username``, ``pk``) is the subject; ``principal`` the whole Identity.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, principal: Identity) -> None:
        self.principal = principal
        self.identity = self.username = principal.subject or ""
        self.pk = self.id = principal.subject

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """A Django permission name is granted when the token carries it as a scope."""
        return perm in self.principal.scopes

    def has_perms(self, perms: Iterable[str], obj: Any = None) -> bool:
        return self.principal.scopes.issuperset(perms)

    def has_module_perms(self, app_label: str) -> bool:
        return any(scope.startswith(app_label + ".") for scope in self.principal.scopes)

    def __str__(self) -> str:
        return self.username


def _authenticator() -> Authenticator:
    value = settings.JWT_MIDDLEWARE_AUTHENTICATOR
    return import_string(value) if isinstance(value, str) else value  # type: ignore[no-any-return]


def _view(request: HttpRequest) -> RequestView:
    """Under ASGI, the very scope JWTMiddleware would read (raw repeated headers, UTF-8 path,
    scheme). Under WSGI, ``request.META`` is the environ, except that Django has replaced its
    PATH_INFO/SCRIPT_NAME with decoded text; ``request.path`` is that full decoded path."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and "headers" in scope:
        return RequestView.from_asgi(scope)
    view = request_from_environ({**request.META, "SCRIPT_NAME": "", "PATH_INFO": ""})
    view.path = request.path or "/"
    return view


class JWTAuthenticationMiddleware:
    """Decide each request before the view; refuse it, or set ``request.user`` and
    ``request.jwt_identity`` (None when anonymous).

    Runs sync under WSGI and async under ASGI (Django picks by ``get_response``); each mode
    checks its store suits it, as the ASGI/WSGI adapters do.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.authenticator = _authenticator()
        self._async = iscoroutinefunction(get_response)
        self.authenticator.check_driver("asgi" if self._async else "wsgi")
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        try:
            identity = self.authenticator.authenticate(_view(request))
        except Refusal as refusal:
            return self._refuse(refusal)
        self._attach(request, identity)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        try:
            identity = await self.authenticator.aauthenticate(_view(request))
        except Refusal as refusal:
            return self._refuse(refusal)
        self._attach(request, identity)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response

    def _attach(self, request: HttpRequest, identity: Identity | None) -> None:
        request.user = JWTUser(identity) if identity is not None else AnonymousUser()
        request.jwt_identity = identity

    def _refuse(self, refusal: Refusal) -> HttpResponse:
        status, headers, body = self.authenticator.render(refusal)
        response = HttpResponse(body, status=status)
        for name, value in headers:
            if name == "content-length":
                continue
            # Django keeps one value per name: several challenges (Bearer, DPoP) become one
            # comma-separated list, which RFC 9110 §11.6.1 makes equivalent.
            previous = response.headers.get(name) if name == "www-authenticate" else None
            response.headers[name] = f"{previous}, {value}" if previous else value
        return response
