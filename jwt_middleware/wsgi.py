"""WSGIJWTMiddleware: the WSGI adapter; the same Authenticator decides, driven synchronously."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from .authenticator import Authenticator
from .errors import Refusal
from .identity import Identity
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

    The path is ``SCRIPT_NAME + PATH_INFO``: the full path the client sent, as ASGI's
    ``scope["path"]`` (which includes ``root_path``). So a :class:`~jwt_middleware.Rule` names
    the same path under gunicorn with a ``SCRIPT_NAME`` as under uvicorn with ``--root-path``,
    and DPoP's ``htu`` (RFC 9449 §4.3) compares against the URL the client used. The path is
    re-decoded from PEP 3333's latin-1 transport form as UTF-8.

    Only :data:`~jwt_middleware.request.DECISION_HEADERS` are converted (to lower-case byte
    pairs, as ASGI carries them): nothing else is read, so nothing else is paid for.
    """
    get = environ.get
    headers = [(name, _latin1(value)) for name, key in _ENVIRON_KEYS if (value := get(key)) is not None]
    path: str = get("PATH_INFO", "")
    script = get("SCRIPT_NAME")
    if script:
        path = script + path
    if not path.isascii():
        path = _utf8_path(path)
    query = get("QUERY_STRING")
    port = get("SERVER_PORT")
    view = RequestView.__new__(RequestView)  # Why: skips keyword-argument binding on the hot path
    view.method = get("REQUEST_METHOD", "GET").upper()
    view.path = path or "/"
    view.headers = headers
    view.query_string = _latin1(query) if query else b""
    view._scope = None
    view._scheme = get("wsgi.url_scheme", "http")
    view._client_ip = get("REMOTE_ADDR") or None
    view._server = f"{get('SERVER_NAME', '')}:{port}" if port else get("SERVER_NAME")
    return view


def _latin1(value: object) -> bytes:
    """PEP 3333 native strings carry bytes as latin-1 text; anything else is replaced, never a 500."""
    return str(value).encode("latin-1", "replace")


def _utf8_path(path: str) -> str:
    try:
        return path.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that put decoded text there, against PEP 3333
        return path


class WSGIJWTMiddleware:
    """Wrap any WSGI app (Flask's ``app.wsgi_app``, Django's WSGI handler, …).

    Sets ``environ["jwt_middleware.identity"]`` (an Identity, or None for anonymous access on an
    optional or public route) and calls the app, or answers the refusal with the same status,
    headers and body as the ASGI adapter, without calling the app (and without reading the
    request body). Thread-safe: per-request state stays in locals; the key cache fetches
    single-flight under a ``threading.Lock`` per issuer, and the memory stores are locked.

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


def identity_of(environ: Mapping[str, Any]) -> Identity | None:
    """The Identity the middleware attached (None when anonymous or when not wrapped)."""
    identity: Identity | None = environ.get(IDENTITY_KEY)
    return identity
