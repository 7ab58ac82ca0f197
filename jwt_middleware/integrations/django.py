"""Django: a middleware for ``settings.MIDDLEWARE``, sync and async, ``request.user``-compatible.

``settings.JWT_MIDDLEWARE_AUTHENTICATOR`` names the Authenticator (an object or a dotted path).
Refused requests get the same status, ``WWW-Authenticate`` and body as the ASGI/WSGI adapters,
and so do views under ``@require_scopes(...)``; ``Config.on_refusal`` shapes every body. Django's
own ``permission_required`` works too (a scope is a permission name), with Django's answers: a
login redirect or a plain 403.

``request.user`` is a :class:`JWTUser` for a verified token, or what ``Config.identity_loader``
loaded (:class:`~jwt_middleware.integrations.django_users.UserModelLoader`: Django's user
model); without a token, Django's ``AnonymousUser`` (ours when ``django.contrib.auth`` is not
installed). A request whose token came in the ``Authorization`` header is exempt from
``CsrfViewMiddleware``, as DRF exempts it; a cookie-borne token is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from ..asgi import _rewrite as _rewrite_scope
from ..audit import record_decision
from ..challenge import Answer
from ..config import HeaderSource
from ..core.canonical import NonCanonicalPath, canonical_path, require_canonical
from ..core.extract import token_from_authorization
from ..core.pipeline import Trace
from ..errors import InvalidRequest, Refusal
from ..hooks import prepare_hook
from ..identity import Identity, qualified_ids
from ..request import RequestView
from ..wsgi import _rewrite as _rewrite_environ
from ..wsgi import request_from_environ
from ._refuse import check_scopes, scope_tokens
from .django_config import authenticator_from_settings, check_middleware_order
from .django_users import JWTUser, anonymous_user_class, check_identity_loader

__all__ = ["JWTAuthenticationMiddleware", "JWTUser", "require_scopes"]

V = TypeVar("V", bound=Callable[..., Any])


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
        view = RequestView.from_asgi(_bytes_query(scope))
    else:
        view = request_from_environ(_environ(request))
    path_info = request.path_info
    if view.path != path_info:  # Django split off another prefix than the scope's root_path
        view.path = require_canonical(path_info)
        view.root_path = request.META.get("SCRIPT_NAME") or ""
    return view


def _bytes_query(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with its query string as bytes, as ASGI defines it.

    Why: Django's ``AsyncClient`` puts the text of the query there (``ASGIRequest`` accepts
    both), and the extractor reads bytes; a copy, so the app's scope stays as it came.
    """
    query = scope.get("query_string")
    return {**scope, "query_string": query.encode()} if isinstance(query, str) else scope


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
    """Decide each request before the view; refuse it, or set ``request.user`` (and
    ``request.auser``, which Django's async ``login_required`` awaits) and
    ``request.jwt_identity`` (None when anonymous).

    Runs sync under WSGI and async under ASGI (Django picks by ``get_response``); each mode
    checks its store suits it, as the ASGI/WSGI adapters do.

    :raises ImproperlyConfigured: at construction (Django builds the chain when it loads its
        handler): ``JWT_MIDDLEWARE_AUTHENTICATOR`` missing or not an Authenticator, Django's
        ``AuthenticationMiddleware`` below this one in MIDDLEWARE, a ``UserModelLoader`` that
        cannot resolve users
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        check_middleware_order()
        self.get_response = get_response
        self.authenticator = authenticator = authenticator_from_settings()
        config = authenticator.config
        self._async = iscoroutinefunction(get_response)
        authenticator.check_driver("asgi" if self._async else "wsgi")
        check_identity_loader(config)
        self._qualified = qualified_ids(config)
        self._rewrite = config.path_normalization == "rewrite"
        self._anonymous = anonymous_user_class()
        self._loads_users = authenticator.loads_users
        loader = prepare_hook("identity_loader", config.identity_loader)
        self._loader_is_async = loader is not None and loader.is_async
        #: a token this config takes from the Authorization header (CSRF-exempt, see _attach)
        self._header_tokens = any(isinstance(source, HeaderSource) for source in config.sources)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        view = self._path_view(request)
        if isinstance(view, InvalidRequest):
            return _response(self.authenticator.render(view))
        try:
            identity = self.authenticator.authenticate(view)
            user = self._user(identity)
        except Refusal as refusal:
            return _response(self.authenticator.render(refusal, view))
        self._attach(request, view, identity, user)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        view = self._path_view(request)
        if isinstance(view, InvalidRequest):
            return _response(await self.authenticator.arender(view))
        try:
            identity = await self.authenticator.aauthenticate(view)
            user = await self._auser(identity)
        except Refusal as refusal:
            return _response(await self.authenticator.arender(refusal, view))
        self._attach(request, view, identity, user)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response

    def _user(self, identity: Identity | None) -> object:
        """``request.user``: anonymous, the loaded user, or the token's own :class:`JWTUser`.

        :raises Refusal: the identity loader found no user, or refused it
        """
        if identity is None:
            return self._anonymous()
        if self._loads_users:
            return self.authenticator.load_user(identity)
        return JWTUser(identity, self._qualified)

    async def _auser(self, identity: Identity | None) -> object:
        """:meth:`_user` in async mode.

        Why a sync loader goes through ``sync_to_async``: Django's ORM refuses to run in the
        event loop (``SynchronousOnlyOperation``), and Django itself runs sync views and
        middleware under ASGI this way, in the thread it keeps for the request's sync code
        (where its database connections are opened and closed).
        """
        if identity is None or not self._loads_users:
            return self._user(identity)
        if self._loader_is_async:
            return await self.authenticator.aload_user(identity)
        return await sync_to_async(self.authenticator.load_user)(identity)

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

    def _attach(
        self, request: HttpRequest, view: RequestView, identity: Identity | None, user: object
    ) -> None:
        request.user = user
        request.auser = _awaitable(user)
        request.jwt_identity = identity
        if identity is not None and self._header_tokens and _token_in_authorization(view):
            # Why exempt: a cross-site form or fetch cannot set Authorization (a browser sends
            # it on its own only for Basic/Digest, and cross-origin only after a CORS
            # preflight), so a request carrying its own bearer token is no forged request;
            # DRF exempts every non-session authentication the same way. Django's CSRF
            # middleware reads this flag (CsrfViewMiddleware.process_view) after the
            # csrf_exempt and safe-method checks and before it could reject.
            # Why this proves where the token came from: the extractor accepts several
            # sources only when they carry the same token (else 400), so with a Bearer/DPoP
            # token in the header, the verified token is that one; a cookie-only config
            # ignores the header, and a cookie-borne token is the browser's ambient
            # credential, which CSRF protection exists for.
            request._dont_enforce_csrf_checks = True


def _awaitable(user: object) -> Callable[[], Awaitable[object]]:
    """``request.auser``: Django's async twin of ``request.user`` (what ``login_required``
    awaits around an async view), answering the user this middleware decided."""

    async def auser() -> object:
        return user

    return auser


def _token_in_authorization(view: RequestView) -> bool:
    """Whether the one Authorization header carries a Bearer or DPoP token (RFC 6750 §2.1,
    RFC 9449 §7.1): ``Basic`` and other schemes, which a browser may send on its own, do not."""
    values = [value for name, value in view.headers if name == b"authorization"]
    if len(values) != 1:
        return False
    try:
        return token_from_authorization(values[0]) is not None
    except InvalidRequest:
        return False


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
                refusal = _missing(request, required)
                if refusal is None:
                    return await view(request, *args, **kwargs)
                return _response(await authenticator_from_settings().arender(refusal, _view_or_none(request)))

            return awrapper  # type: ignore[return-value]

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = _missing(request, required)
            if refusal is None:
                return view(request, *args, **kwargs)
            return _response(authenticator_from_settings().render(refusal, _view_or_none(request)))

        return wrapper  # type: ignore[return-value]

    return decorate


def _missing(request: HttpRequest, required: tuple[str, ...]) -> Refusal | None:
    """The refusal of ``request``, or None when its identity holds ``required``."""
    try:
        check_scopes(getattr(request, "jwt_identity", None), required)
    except Refusal as refusal:
        return refusal
    return None


def _view_or_none(request: HttpRequest) -> RequestView | None:
    """The request's view for ``on_refusal``; None for a path the middleware would not judge."""
    try:
        return _view(request)
    except InvalidRequest:
        return None
