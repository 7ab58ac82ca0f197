"""RequestView: the framework-free facts about a request that the core decides on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ._types import RawHeader, Scope
from .core.canonical import MEMO, UNSEEN, require_canonical

__all__ = ["DECISION_HEADERS", "RequestView", "split_root"]

#: Every header the core reads. Adapters that must convert headers (WSGI) convert only these;
#: tests/wsgi keeps the list in step with the core's source.
DECISION_HEADERS: Final = (
    b"authorization",
    b"cookie",
    b"dpop",
    b"host",
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"origin",
    b"access-control-request-method",
)


class RequestView:
    """Method, scheme, host, path, query, raw headers and client address of one request.

    ``method`` is upper-case. ``path`` is the app's own path: below ``root_path`` (ASGI) or
    ``SCRIPT_NAME`` (WSGI), and canonical when an adapter built the view
    (:mod:`jwt_middleware.core.canonical`); ``full_path`` puts ``root_path`` back in front.
    Headers stay as the raw ``(lower-case name, value)`` byte pairs ASGI gives; values are
    decoded (latin-1, as HTTP/1.1 defines) only when a check asks for them.
    """

    __slots__ = (
        "_client_ip", "_scheme", "_scope", "_server", "headers", "method", "path", "query_string",
        "root_path",
    )

    def __init__(
        self,
        method: str,
        path: str,
        headers: Sequence[RawHeader] = (),
        *,
        scheme: str = "http",
        query_string: bytes = b"",
        client_ip: str | None = None,
        server: str | None = None,
        root_path: str = "",
    ) -> None:
        self.method = method.upper()
        self.path = path
        self.root_path = root_path
        self.headers = headers
        self.query_string = query_string
        self._scope: Scope | None = None
        self._scheme = scheme
        self._client_ip = client_ip
        self._server: str | tuple[str, int | None] | None = server

    @classmethod
    def from_asgi(cls, scope: Scope) -> RequestView:
        """The view of an ASGI scope, its path canonical and below ``root_path``.

        Why scheme, client and server stay in the scope: only DPoP and audit read them, and
        copying them cost a quarter of what the middleware adds to a cached token.

        :raises NonCanonicalPath: the path is not canonical (the adapter rewrites or refuses)
        :raises InvalidRequest: the path has no single meaning (encoded ``/``, NUL, bad escapes)
        """
        view = _NEW(cls)
        method: str = scope.get("method", "GET")
        view.method = method if method.isupper() else method.upper()
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root:
            path = split_root(path, root)[1]
        raw = scope.get("raw_path")
        if _MEMO_GET(path, UNSEEN) != raw:  # Why inline: the memo answers nearly every request
            path = require_canonical(path, raw)
        view.path = path
        view.root_path = root
        view.headers = scope["headers"]
        view.query_string = scope.get("query_string", b"")
        view._scope = scope
        return view

    @property
    def full_path(self) -> str:
        """``root_path`` + ``path``: the path the client sent to (DPoP ``htu``, RFC 9449 §4.3)."""
        root = self.root_path
        return root + self.path if root else self.path

    @property
    def scheme(self) -> str:
        scope = self._scope
        return self._scheme if scope is None else scope.get("scheme", "http")

    @property
    def client_ip(self) -> str | None:
        scope = self._scope
        if scope is None:
            return self._client_ip
        client = scope.get("client")
        return client[0] if client else None

    @property
    def server(self) -> str | None:
        """``host:port`` the request reached (ASGI ``server``, WSGI SERVER_NAME/PORT)."""
        server = self._server if self._scope is None else self._scope.get("server")
        return server if server is None or isinstance(server, str) else _server_name(server)

    def header_values(self, name: bytes) -> list[str]:
        """Every value of one header (name in lower case), decoded as latin-1."""
        return [v.decode("latin-1") for k, v in self.headers if k == name]

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None

    def __repr__(self) -> str:  # headers may hold credentials: never print them
        return f"RequestView({self.method} {self.scheme}://…{self.full_path})"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "root_path": self.root_path, "scheme": self.scheme,
                "client_ip": self.client_ip}


_NEW: Final = object.__new__
_MEMO_GET: Final = MEMO.get


def split_root(path: str, root: str) -> tuple[str, str]:
    """``(prefix, path below it)``, split exactly as Starlette's router splits ``path``
    (``starlette._utils.get_route_path``): at ``root`` when a segment boundary follows it, else
    not at all (a server that did not put ``root_path`` in front: the prefix is ``""``). The
    mount point itself is ``/`` below ``root``."""
    if not path.startswith(root):
        return "", path
    rest = path[len(root):]
    if not rest:
        return root, "/"
    return (root, rest) if rest[0] == "/" else ("", path)


def _server_name(server: tuple[str, int | None] | None) -> str | None:
    if not server:
        return None
    host, port = server
    return host if port is None else f"{host}:{port}"
