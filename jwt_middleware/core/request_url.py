"""The URL a client used for a request, and URL comparison for DPoP ``htu`` (RFC 9449 §4.3, RFC 3986 §6).

Two halves: :func:`request_url` rebuilds the target URI the client sent to (scheme, authority,
path; never the query), and :func:`normalize_url` brings any http(s) URI to one comparable form
(RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation, query and fragment dropped).

Why the path is re-encoded: ASGI's ``path`` and WSGI's ``PATH_INFO`` are percent-*decoded*, while
a client's ``htu`` is an encoded URI. :func:`request_url` encodes the decoded path with the
RFC 3986 ``pchar`` set, and :func:`normalize_url` canonicalises percent-encoding on both sides
(upper-case hex digits, unreserved characters decoded, characters outside the URI grammar
encoded). An encoded reserved character that the server already decoded (``%2F``, ``%3B``) then
compares unequal to the client's encoded form: a false negative, never a false positive.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, urlsplit

from ..errors import InvalidRequest
from ..request import RequestView

__all__ = ["normalize_url", "request_url"]

_DEFAULT_PORT: Final = {"http": 80, "https": 443}
#: ASGI gives WebSocket scopes ws/wss; their handshake is an http(s) request (RFC 6455 §3)
_HTTP_SCHEME: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
#: RFC 3986 §3.2.2 host (a DNS-style reg-name, or an IP literal) and an optional port
_AUTHORITY: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::[0-9]{0,5})?")
#: RFC 3986 §3.3 pchar minus pct-encoded, plus "/" (the segment separator)
_PATH_SAFE: Final = "/!$&'()*+,;=:@-._~"
_PCT: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: whitespace and controls, which urlsplit would silently strip (tab, CR, LF) or keep
_CONTROL: Final = re.compile(r"[\x00-\x20\x7f]")
_BAD_HOST: Final = "The request's Host is invalid"


def request_url(
    request: RequestView, *, external_base_url: str | None = None, trust_forwarded: bool = False
) -> str:
    """The URL the client used (scheme, host, path; no query), to compare with a proof's ``htu``.

    :param external_base_url: the public origin and path prefix (``"https://api.example/v1"``);
        when given, the request's own scheme and Host are ignored
    :param trust_forwarded: take scheme and host from the first ``Forwarded`` element
        (RFC 7239 §4) or from ``X-Forwarded-Proto``/``X-Forwarded-Host``; only behind a proxy
        that sets them, since a client can send these headers too
    :raises InvalidRequest: no usable host, several Host headers, or a malformed host or scheme
    """
    path = quote(request.path or "/", safe=_PATH_SAFE)
    if external_base_url is not None:
        return external_base_url.rstrip("/") + path
    scheme, host = _HTTP_SCHEME.get(request.scheme.lower()), None
    if trust_forwarded:
        proto, host = _forwarded(request)
        if proto is not None:
            scheme = _HTTP_SCHEME.get(proto.lower())
    if host is None:
        host = _host(request)
    if scheme is None or _AUTHORITY.fullmatch(host) is None:
        raise InvalidRequest("invalid_host", _BAD_HOST)
    return f"{scheme}://{host}{path}"


def _host(request: RequestView) -> str:
    hosts = request.header_values(b"host")
    if len(hosts) > 1:
        raise InvalidRequest("invalid_host", _BAD_HOST)
    host = hosts[0].strip() if hosts else request.server
    if not host:
        raise InvalidRequest("invalid_host", _BAD_HOST)
    return host


def _forwarded(request: RequestView) -> tuple[str | None, str | None]:
    """(proto, host) from ``Forwarded`` if present, else from ``X-Forwarded-Proto``/``-Host``."""
    values = request.header_values(b"forwarded")
    if values:
        params = _first_forwarded_element(values[0])
        return params.get("proto") or None, params.get("host") or None
    return _first_value(request, b"x-forwarded-proto"), _first_value(request, b"x-forwarded-host")


def _first_value(request: RequestView, name: bytes) -> str | None:
    values = request.header_values(name)
    if not values:
        return None
    first = values[0].split(",", 1)[0].strip()
    return first or None


def _first_forwarded_element(value: str) -> dict[str, str]:
    """Parameters of the first element of an RFC 7239 §4 ``Forwarded`` value (names lower-cased)."""
    params: dict[str, str] = {}
    for pair in _split_outside_quotes(_split_outside_quotes(value, ",")[0], ";"):
        name, sep, raw = pair.partition("=")
        if not sep:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(name.strip().lower(), raw)
    return params


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def normalize_url(url: str) -> str | None:
    """One comparable form of an absolute http(s) URI, without query and fragment; None if invalid.

    RFC 3986 §6.2.2: scheme and host lower-cased, percent-encoding normalised, dot-segments
    removed; §6.2.3: default port and empty port dropped, empty path made ``/``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORT or not host or "@" in parts.netloc or _CONTROL.search(url):
        return None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORT[scheme] else f"{host}:{port}"
    return f"{scheme}://{authority}{_normalize_path(parts.path)}"


def _normalize_path(path: str) -> str:
    path = _PCT.sub(_normalize_triplet, path)
    path = quote(path, safe=_PATH_SAFE + "%")
    return _remove_dot_segments(path) or "/"


def _normalize_triplet(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on a path that is absolute (starts with ``/``) or empty."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "".join("/" + segment for segment in output)
