"""WSGIJWTMiddleware: the WSGI adapter; the same Authenticator decides, driven synchronously."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from .authenticator import Authenticator
from .errors import Refusal
from .request import DECISION_HEADERS, RequestView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["IDENTITY_KEY", "WSGIJWTMiddleware", "identity_of", "request_from_environ"]

#: namespaced environ key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"


#: (header name, environ key) for every header the core reads; no other header is converted.
_ENVIRON_KEYS: Final = tuple(
    (name, "HTTP_" + name.decode().upper().replace("-", "_")) for name in DECISION_HEADERS
)


def request_from_environ(environ: WSGIEnvironment) -> RequestView:
    """The framework-free view of a WSGI request.

    The path is ``SCRIPT_NAME + PATH_INFO`` (the full path, as ASGI's ``scope["path"]``), re-decoded
    from PEP 3333's latin-1 transport form as UTF-8, so rules and DPoP ``htu`` see what the client sent.
    Only :data:`~jwt_middleware.request.DECISION_HEADERS` are converted: nothing else is read.
    """
    headers: list[tuple[bytes, bytes]] = []
    for name, key in _ENVIRON_KEYS:
        value = environ.get(key)
        if value is not None:
            headers.append((name, str(value).encode("latin-1", "replace")))
    raw_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    try:
        path = raw_path.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that put decoded text there, against PEP 3333
        path = raw_path
    port = environ.get("SERVER_PORT")
    return RequestView(
        environ.get("REQUEST_METHOD", "GET").upper(),
        path or "/",
        headers,
        scheme=environ.get("wsgi.url_scheme", "http"),
        query_string=environ.get("QUERY_STRING", "").encode("latin-1"),
        client_ip=environ.get("REMOTE_ADDR") or None,
        server=f"{environ.get('SERVER_NAME', '')}:{port}" if port else environ.get("SERVER_NAME"),
    )


class WSGIJWTMiddleware:
    """Wrap any WSGI app (Flask's ``app.wsgi_app``, Django's WSGI handler, …).

    Sets ``environ["jwt_middleware.identity"]`` (an Identity, or None for anonymous access on an
    optional or public route) and calls the app, or answers the refusal with the same status,
    headers and body as the ASGI adapter, without calling the app.

    :param app: the WSGI app to protect
    :param authenticator: the shared decision maker (sync or memory stores only)
    """

    def __init__(self, app: WSGIApplication, authenticator: Authenticator) -> None:
        authenticator.check_driver("wsgi")
        self.app = app
        self.authenticator = authenticator

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = request_from_environ(environ)
        try:
            identity = self.authenticator.authenticate(request)
        except Refusal as refusal:
            return self._refuse(refusal, start_response)
        environ[IDENTITY_KEY] = identity
        return self.app(environ, start_response)

    def _refuse(self, refusal: Refusal, start_response: StartResponse) -> list[bytes]:
        status, headers, body = self.authenticator.render(refusal)
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]


def identity_of(environ: dict[str, Any]) -> Any:
    """The Identity the middleware attached (None when anonymous or when not wrapped)."""
    return environ.get(IDENTITY_KEY)
