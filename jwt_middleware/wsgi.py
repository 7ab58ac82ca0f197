"""WSGIJWTMiddleware: the WSGI adapter; the same Authenticator decides, driven synchronously."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from .audit import record_decision
from .authenticator import Authenticator
from .core.canonical import MEMO as _MEMO
from .core.canonical import UNSEEN as _UNSEEN
from .core.canonical import NonCanonicalPath, encode_path, require_canonical
from .core.pipeline import Trace
from .errors import InvalidRequest, Refusal
from .identity import Identity
from .request import DECISION_HEADERS, RequestView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "IDENTITY_KEY",
    "ORIGINAL_PATH_KEY",
    "USER_KEY",
    "WSGIJWTMiddleware",
    "identity_of",
    "request_from_environ",
]

#: namespaced environ key holding the Identity (None for anonymous access)
IDENTITY_KEY = "jwt_middleware.identity"
#: with ``Config.identity_loader``: the user it loaded (None for anonymous access)
USER_KEY = "jwt_middleware.user"
#: under ``path_normalization="rewrite"``, the PATH_INFO/RAW_URI/REQUEST_URI the server gave, when rewritten
ORIGINAL_PATH_KEY = "jwt_middleware.original_path"


#: (header name, environ key) for every header the core reads; no other header is converted.
_ENVIRON_KEYS: Final = tuple(
    (name, "HTTP_" + name.decode().upper().replace("-", "_")) for name in DECISION_HEADERS
)


def request_from_environ(environ: WSGIEnvironment) -> RequestView:
    """The framework-free view of a WSGI request.

    ``path`` is ``PATH_INFO``, the app's own path below ``SCRIPT_NAME`` (``root_path``), re-decoded
    from PEP 3333's latin-1 transport form as UTF-8 and canonical
    (:mod:`jwt_middleware.core.canonical`); the request target as sent (``RAW_URI``, else
    ``REQUEST_URI``) is checked for what decoding made ambiguous. So a
    :class:`~jwt_middleware.Rule` names the same path under gunicorn with a ``SCRIPT_NAME`` as
    under uvicorn with ``--root-path``, and ``full_path`` is what DPoP's ``htu`` (RFC 9449 §4.3)
    compares against.

    Only :data:`~jwt_middleware.request.DECISION_HEADERS` are converted (to lower-case byte
    pairs, as ASGI carries them): nothing else is read, so nothing else is paid for.

    :raises NonCanonicalPath: the path is not canonical (the adapter rewrites or refuses)
    :raises InvalidRequest: the path has no single meaning (encoded ``/``, NUL, not UTF-8)
    """
    get = environ.get
    headers = [(name, _latin1(value)) for name, key in _ENVIRON_KEYS if (value := get(key)) is not None]
    path: str = get("PATH_INFO") or "/"
    if not path.isascii():
        path = _utf8(path)
    script: str = get("SCRIPT_NAME") or ""
    if not script.isascii():
        script = _utf8(script, strict=False)  # deployment configuration, not the client's
    query = get("QUERY_STRING")
    port = get("SERVER_PORT")
    view = RequestView.__new__(RequestView)  # Why: skips keyword-argument binding on the hot path
    view.method = get("REQUEST_METHOD", "GET").upper()
    uri = get("RAW_URI") or get("REQUEST_URI")
    raw = _raw_target(uri) if isinstance(uri, str) and "%" in uri else None  # only escapes can hide
    view.path = path if _MEMO.get(path, _UNSEEN) == raw else require_canonical(path, raw)
    view.root_path = script
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


def _utf8(text: str, *, strict: bool = True) -> str:
    """PEP 3333 latin-1 transport text decoded as the UTF-8 the client sent.

    :raises InvalidRequest: (``strict``) the bytes are not UTF-8 (RFC 3629), so the path has
        no single meaning
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:  # a server that put decoded text there, against PEP 3333
        return text
    try:
        return raw.decode("utf-8", "strict" if strict else "replace")
    except UnicodeDecodeError:
        raise InvalidRequest("invalid_utf8_in_path", "The request path is ambiguous") from None


def _raw_target(uri: object) -> bytes | None:
    """The path of a request target as sent (origin- or absolute-form), without the query."""
    if not isinstance(uri, str) or not uri:
        return None
    target = uri.partition("?")[0]
    if target[0] != "/":
        _, sep, rest = target.partition("://")
        if not sep:
            return None  # "*" (OPTIONS) or junk: PATH_INFO alone decides
        target = rest[rest.find("/"):] if "/" in rest else "/"
    return target.encode("latin-1", "replace")


def _rewrite(environ: WSGIEnvironment, canonical: str) -> None:
    """Hand the app the canonical ``PATH_INFO`` (latin-1 transport form, PEP 3333) and keep
    ``RAW_URI``/``REQUEST_URI`` consistent with it; the originals go to
    ``jwt_middleware.original_path``."""
    keys = ("PATH_INFO", "RAW_URI", "REQUEST_URI")
    environ[ORIGINAL_PATH_KEY] = {key: environ[key] for key in keys if key in environ}
    environ["PATH_INFO"] = canonical.encode("utf-8").decode("latin-1")
    script = environ.get("SCRIPT_NAME") or ""
    for key in ("RAW_URI", "REQUEST_URI"):
        uri = environ.get(key)
        if isinstance(uri, str) and uri:
            environ[key] = _rewritten_uri(uri, script, canonical)


def _rewritten_uri(uri: str, script: str, canonical: str) -> str:
    """``uri`` with its path replaced by ``SCRIPT_NAME`` + the canonical path, encoded;
    the scheme and authority of an absolute-form target and the query are kept."""
    target, mark, query = uri.partition("?")
    origin = ""
    if target[:1] != "/" and "://" in target:
        scheme, _, rest = target.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
    prefix = script.encode("latin-1", "replace").decode("utf-8", "replace") if script else ""
    return origin + encode_path(prefix + canonical).decode("ascii") + mark + query


class WSGIJWTMiddleware:
    """Wrap any WSGI app (Flask's ``app.wsgi_app``, Django's WSGI handler, …).

    Sets ``environ["jwt_middleware.identity"]`` (an Identity, or None for anonymous access on an
    optional or public route), with ``Config.identity_loader`` also
    ``environ["jwt_middleware.user"]`` (the loaded user, or None), and calls the app, or answers
    the refusal with the same status,
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
        self._rewrite = authenticator.config.path_normalization == "rewrite"
        self._load_users = authenticator.loads_users

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = request_from_environ(environ)
        except InvalidRequest as refusal:
            # Why here, before any rule: the rule and the router must judge one string.
            rewritten = self._canonical(environ, refusal)
            if isinstance(rewritten, InvalidRequest):
                record_decision(Trace(), rewritten)
                return self._refuse(rewritten, start_response, None)
            request = rewritten
        try:
            identity = self.authenticator.authenticate(request)
            if self._load_users:
                environ[USER_KEY] = None if identity is None else self.authenticator.load_user(identity)
        except Refusal as refusal:
            return self._refuse(refusal, start_response, request)
        environ[IDENTITY_KEY] = identity
        return self.app(environ, start_response)

    def _canonical(self, environ: WSGIEnvironment, refusal: InvalidRequest) -> RequestView | InvalidRequest:
        """Under ``path_normalization="rewrite"``, the view after handing the app the canonical
        path; else (or for a path with no single meaning) the refusal to send."""
        if not (self._rewrite and isinstance(refusal, NonCanonicalPath)):
            return refusal
        _rewrite(environ, refusal.canonical)
        try:
            return request_from_environ(environ)
        except InvalidRequest as again:  # a SCRIPT_NAME that is itself ambiguous
            return again

    def _refuse(
        self, refusal: Refusal, start_response: StartResponse, request: RequestView | None
    ) -> list[bytes]:
        status, headers, body = self.authenticator.render(refusal, request)
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]


def identity_of(environ: Mapping[str, Any]) -> Identity | None:
    """The Identity the middleware attached (None when anonymous or when not wrapped)."""
    identity: Identity | None = environ.get(IDENTITY_KEY)
    return identity
