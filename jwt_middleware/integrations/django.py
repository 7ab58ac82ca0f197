"""Django: a middleware for ``settings.MIDDLEWARE``, sync and async, ``request.user``-compatible.

``settings.JWT_MIDDLEWARE_AUTHENTICATOR`` names the Authenticator (an object or a dotted path).
Refused requests get the same status, ``WWW-Authenticate`` and body as the ASGI/WSGI adapters,
and so do views under ``@require_scopes(...)``. Django's own ``permission_required`` works too
(a scope is a permission name), with Django's answers: a login redirect or a plain 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from ..asgi import _rewrite as _rewrite_scope
from ..audit import record_decision
from ..authenticator import Authenticator
from ..challenge import Answer
from ..core.canonical import NonCanonicalPath, canonical_path, require_canonical
from ..core.pipeline import Trace
from ..errors import InvalidRequest, Refusal
from ..identity import Identity, qualified_ids
from ..request import RequestView
from ..wsgi import _rewrite as _rewrite_environ
from ..wsgi import request_from_environ
from ._refuse import check_scopes, scope_tokens

__all__ = ["JWTAuthenticationMiddleware", "JWTUser", "require_scopes"]

V = TypeVar("V", bound=Callable[..., Any])


class JWTUser:
    """``request.user`` for a verified token (duck-types Django's user for auth checks).

    ``identity`` (and ``username``, ``pk``) is the user id (:meth:`Identity.user_id`): the bare
    subject with one trusted issuer, the issuer-qualified one with several; ``principal`` the
    whole Identity. A new JWTUser per request; the Identity it holds is shared and read-only.

    :param principal: the verified Identity
    :param qualified: use the issuer-qualified id (:func:`~jwt_middleware.identity.qualified_ids`)
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, principal: Identity, qualified: bool = False) -> None:
        self.principal = principal
        self.identity = self.username = principal.user_id(qualified)
        self.pk = self.id = self.identity or None

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """A Django permission name is granted when the token carries it as a scope.

        Never for one object (``obj``): a scope grants an action on every object, so it says
        nothing about this one; like Django's ModelBackend, False. Check ownership in the view.
        """
        return obj is None and perm in self.principal.scopes

    def has_perms(self, perms: Iterable[str], obj: Any = None) -> bool:
        """Every permission of ``perms`` (:meth:`has_perm`).

        :raises ValueError: ``perms`` is one string, as Django's own ``User.has_perms`` does
            (it would otherwise be read letter by letter)
        """
        if isinstance(perms, str):
            raise ValueError("has_perms: perms must be an iterable of permission names, e.g. ['app.view']")
        return obj is None and self.principal.scopes.issuperset(perms)

    def has_module_perms(self, app_label: str) -> bool:
        return any(scope.startswith(app_label + ".") for scope in self.principal.scopes)

    def __str__(self) -> str:
        return self.username


def _authenticator() -> Authenticator:
    value = settings.JWT_MIDDLEWARE_AUTHENTICATOR
    return import_string(value) if isinstance(value, str) else value  # type: ignore[no-any-return]


def _view(request: HttpRequest) -> RequestView:
    """The RequestView of a Django request, its path the one Django will route.

    Why ``request.path_info``: Django's resolver routes it (``BaseHandler.resolve_request``),
    below the script prefix Django itself chose (``SCRIPT_NAME``, ``root_path`` or
    ``FORCE_SCRIPT_NAME``); a rule judging any other string can be walked around. Under ASGI
    the view is the one :class:`~jwt_middleware.JWTMiddleware` builds from the scope; under WSGI
    the one :class:`~jwt_middleware.WSGIJWTMiddleware` builds from the environ (``request.META``),
    so the request target as sent (``raw_path``, ``RAW_URI``) is checked for what decoding made
    ambiguous in both.

    :raises NonCanonicalPath: the path is not canonical (the middleware rewrites or refuses)
    :raises InvalidRequest: the path has no single meaning (encoded ``/``, NUL, not UTF-8)
    """
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and "headers" in scope:
        view = RequestView.from_asgi(scope)
    else:
        view = request_from_environ(_environ(request))
    path_info = request.path_info
    if view.path != path_info:  # Django split off another prefix than the scope's root_path
        view.path = require_canonical(path_info)
        view.root_path = request.META.get("SCRIPT_NAME") or ""
    return view


def _environ(request: HttpRequest) -> dict[str, Any]:
    """``request.META`` with PATH_INFO and SCRIPT_NAME in PEP 3333's latin-1 transport form.

    Why: Django replaced both with the text it decoded as UTF-8 (``WSGIRequest.__init__``),
    which :func:`~jwt_middleware.wsgi.request_from_environ` would decode a second time. ASCII
    text is its own transport form, so the usual request needs no copy.
    """
    meta: dict[str, Any] = request.META
    path, script = request.path_info, meta.get("SCRIPT_NAME") or ""
    if path.isascii() and script.isascii():
        return {**meta, "PATH_INFO": path} if meta.get("PATH_INFO") != path else meta
    return {**meta, "PATH_INFO": _transport(path), "SCRIPT_NAME": _transport(script)}


def _transport(text: str) -> str:
    """Decoded text in PEP 3333's transport form: its UTF-8 bytes as latin-1 text."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def _rewrite_request(request: HttpRequest, canonical: str) -> None:
    """Hand Django the canonical path: ``path_info`` (what it routes), ``path`` and
    ``META["PATH_INFO"]``, and the scope or environ under them as the ASGI/WSGI adapters
    rewrite theirs (originals under ``jwt_middleware.original_path``).

    Why it works: Django resolves the view after the middleware chain has started
    (``BaseHandler._get_response``), from ``request.path_info``.
    """
    scope = getattr(request, "scope", None)
    meta = request.META
    if isinstance(scope, dict) and "headers" in scope:
        _rewrite_scope(scope, canonical)
    else:
        _rewrite_environ(meta, canonical)
    meta["PATH_INFO"] = request.path_info = canonical
    request.path = (meta.get("SCRIPT_NAME") or "").rstrip("/") + canonical


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
        self._qualified = qualified_ids(self.authenticator.config)
        self._rewrite = self.authenticator.config.path_normalization == "rewrite"
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        view = self._path_view(request)
        if isinstance(view, InvalidRequest):
            return self._refuse(view)
        try:
            identity = self.authenticator.authenticate(view)
        except Refusal as refusal:
            return self._refuse(refusal)
        self._attach(request, identity)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        view = self._path_view(request)
        if isinstance(view, InvalidRequest):
            return self._refuse(view)
        try:
            identity = await self.authenticator.aauthenticate(view)
        except Refusal as refusal:
            return self._refuse(refusal)
        self._attach(request, identity)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response

    def _path_view(self, request: HttpRequest) -> RequestView | InvalidRequest:
        """The view to decide on, or the refusal of a path that is not canonical (400).

        Under ``path_normalization="rewrite"`` a path with one meaning is rewritten in the
        request first, so Django routes the very path the rules judged.
        """
        try:
            return _view(request)
        except InvalidRequest as refusal:
            # Why here, before any rule: the rule and the router must judge one string.
            outcome = self._canonical(request, refusal)
        if isinstance(outcome, InvalidRequest):
            record_decision(Trace(), outcome)
        return outcome

    def _canonical(self, request: HttpRequest, refusal: InvalidRequest) -> RequestView | InvalidRequest:
        """Under ``"rewrite"``, the view after handing Django the canonical path; else (or for
        a path with no single meaning) the refusal to send."""
        if not (self._rewrite and isinstance(refusal, NonCanonicalPath)):
            return refusal
        try:
            _rewrite_request(request, canonical_path(request.path_info))
            return _view(request)
        except InvalidRequest as again:  # a script prefix that is itself ambiguous
            return again

    def _attach(self, request: HttpRequest, identity: Identity | None) -> None:
        request.user = JWTUser(identity, self._qualified) if identity is not None else AnonymousUser()
        request.jwt_identity = identity

    def _refuse(self, refusal: Refusal) -> HttpResponse:
        return _response(self.authenticator.render(refusal))


def _response(answer: Answer) -> HttpResponse:
    """The rendered refusal as a Django response."""
    status, headers, body = answer
    response = HttpResponse(body, status=status)
    for name, value in headers:
        if name == "content-length":
            continue
        # Django keeps one value per name: several challenges (Bearer, DPoP) become one
        # comma-separated list, which RFC 9110 §11.6.1 makes equivalent.
        previous = response.headers.get(name) if name == "www-authenticate" else None
        response.headers[name] = f"{previous}, {value}" if previous else value
    return response


def require_scopes(*scopes: str) -> Callable[[V], V]:
    """Refuse the view (sync or async) with 401/403 and the middleware's challenge and body
    unless ``request.jwt_identity`` holds every one of ``scopes`` (RFC 6750 §3.1).

    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3, ``"a b"``)
    """
    required = scope_tokens("require_scopes", scopes)

    def decorate(view: V) -> V:
        if iscoroutinefunction(view):

            @wraps(view)
            async def awrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = _refusal(request, required)
                return refused if refused is not None else await view(request, *args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = _refusal(request, required)
            return refused if refused is not None else view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _refusal(request: HttpRequest, required: tuple[str, ...]) -> HttpResponse | None:
    """The answer refusing ``request``, or None when its identity holds ``required``."""
    try:
        check_scopes(getattr(request, "jwt_identity", None), required)
    except Refusal as refusal:
        return _response(_authenticator().render(refusal))
    return None
