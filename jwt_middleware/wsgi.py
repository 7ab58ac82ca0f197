"""WSGIJWTMiddleware: the WSGI adapter; the same Authenticator decides, driven synchronously."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .authenticator import Authenticator
from .errors import Refusal
from .request import RequestView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["IDENTITY_KEY", "WSGIJWTMiddleware", "identity_of", "request_from_environ"]

#: namespaced environ key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"


def request_from_environ(environ: WSGIEnvironment) -> RequestView:
    """The framework-free view of a WSGI request.

    The path is ``SCRIPT_NAME + PATH_INFO`` (the full path, as ASGI's ``scope["path"]``), re-decoded
    from PEP 3333's latin-1 transport form as UTF-8, so rules and DPoP ``htu`` see what the client sent.
    """
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
    for key, header in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((header, str(environ[key]).encode("latin-1")))
    raw_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    port = environ.get("SERVER_PORT")
    return RequestView(
        environ.get("REQUEST_METHOD", "GET").upper(),
        raw_path.encode("latin-1").decode("utf-8", "replace") or "/",
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
