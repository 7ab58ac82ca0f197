"""RequestView: the framework-free facts about a request that the core decides on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ._types import RawHeader, Scope

__all__ = ["DECISION_HEADERS", "RequestView"]

#: Every header the core reads. Adapters that must convert headers (WSGI) convert only these;
#: tests/wsgi keeps the list in step with the core's source.
DECISION_HEADERS: Final = (
    b"authorization",
    b"cookie",
    b"dpop",
    b"host",
    b"forwarded",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"origin",
    b"access-control-request-method",
)


class RequestView:
    """Method, scheme, host, path, query, raw headers and client address of one request.

    Headers stay as the raw ``(lower-case name, value)`` byte pairs ASGI gives; values are
    decoded (latin-1, as HTTP/1.1 defines) only when a check asks for them.
    """

    __slots__ = ("_client_ip", "_scheme", "_scope", "_server", "headers", "method", "path", "query_string")

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
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.query_string = query_string
        self._scope: Scope | None = None
        self._scheme = scheme
        self._client_ip = client_ip
        self._server: str | tuple[str, int | None] | None = server

    @classmethod
    def from_asgi(cls, scope: Scope) -> RequestView:
        """Why scheme, client and server stay in the scope: only DPoP and audit read them, and
        copying them cost a quarter of what the middleware adds to a cached token."""
        view = _NEW(cls)
        view.method = scope.get("method", "GET")
        view.path = scope["path"]
        view.headers = scope["headers"]
        view.query_string = scope.get("query_string", b"")
        view._scope = scope
        return view

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
        return f"RequestView({self.method} {self.scheme}://…{self.path})"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "scheme": self.scheme, "client_ip": self.client_ip}


_NEW: Final = object.__new__


def _server_name(server: tuple[str, int | None] | None) -> str | None:
    if not server:
        return None
    host, port = server
    return host if port is None else f"{host}:{port}"
