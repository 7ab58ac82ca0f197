"""The URL a client used for a request, and URL comparison for DPoP ``htu`` (RFC 9449 §4.3, RFC 3986 §6).

Two halves: :func:`request_url` rebuilds the target URI the client sent to (scheme, authority,
path; never the query), and :func:`normalize_url` brings any http(s) URI to one comparable form
(RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation, query and fragment dropped).

Scheme and host come from the one trusted-proxy model (:func:`jwt_middleware.proxies.effective_origin`),
never from a forwarded header read here; the host must then be one this API serves.

Why the path is re-encoded: ASGI's ``path`` and WSGI's ``PATH_INFO`` are percent-*decoded*, while
a client's ``htu`` is an encoded URI. :func:`request_url` encodes the decoded path with the
RFC 3986 ``pchar`` set, and :func:`normalize_url` canonicalises percent-encoding on both sides
(upper-case hex digits, unreserved characters decoded, characters outside the URI grammar
encoded). An encoded reserved character that the server already decoded (``%2F``, ``%3B``) then
compares unequal to the client's encoded form: a false negative, never a false positive.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final
from urllib.parse import quote, urlsplit

from ..errors import InvalidRequest
from ..proxies import TrustedProxies, effective_origin
from ..request import RequestView

__all__ = ["host_key", "normalize_url", "request_url"]

_DEFAULT_PORT: Final = {"http": 80, "https": 443}
#: RFC 3986 §3.3 pchar minus pct-encoded, plus "/" (the segment separator)
_PATH_SAFE: Final = "/!$&'()*+,;=:@-._~"
_PCT: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: whitespace and controls, which urlsplit would silently strip (tab, CR, LF) or keep
_CONTROL: Final = re.compile(r"[\x00-\x20\x7f]")


def request_url(
    request: RequestView,
    *,
    external_base_url: str | None = None,
    proxies: TrustedProxies | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> str:
    """The URL the client used (scheme, host, path; no query), to compare with a proof's ``htu``.

    :param external_base_url: the public origin and path prefix (``"https://api.example/v1"``);
        when given, the request's own scheme and Host are ignored
    :param proxies: whose forwarded scheme and host to believe (None: no forwarded header is read)
    :param allowed_hosts: the hosts this API serves, as :func:`host_key` forms; the effective
        host must be one of them (None: not checked, for callers that compare nothing)
    :raises InvalidRequest: no usable host, several Host headers, a malformed host or scheme
        (``invalid_host``, ``invalid_scheme``), or a host not in ``allowed_hosts``
        (``host_not_allowed``: a proof made for another server is never checked here)
    """
    path = quote(request.full_path or "/", safe=_PATH_SAFE)
    if external_base_url is not None:
        return external_base_url.rstrip("/") + path
    scheme, host, _ = effective_origin(request, proxies)
    if host is None:
        raise InvalidRequest("invalid_host", "The request's Host is invalid")
    if allowed_hosts is not None and host_key(scheme, host) not in allowed_hosts:
        raise InvalidRequest("host_not_allowed", "The request's host is not served here")
    return f"{scheme}://{host}{path}"


def host_key(scheme: str, host: str) -> str:
    """``host[:port]`` lower-cased, without the scheme's default port (RFC 3986 §6.2.2.1, §6.2.3),
    so ``API.example:443`` over https and ``api.example`` compare equal."""
    host = host.lower()
    name, sep, port = host.rpartition(":")
    if sep and "]" not in port and (not port or port.lstrip("0") == str(_DEFAULT_PORT[scheme])):
        return name
    return host


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
