"""One trusted-proxy model: which forwarded scheme, host and client address to believe (RFC 7239).

Everything that needs "the URL the client used" or "the client's address" reads it here, through
:func:`effective_origin`: DPoP ``htu`` now; rate limits, anomaly checks and HTTPS enforcement
later. Nothing else in the package reads a forwarded header.

The model, in four rules:

1. With no :class:`TrustedProxies` configured, forwarded headers are ignored: the scheme, Host
   and peer address of the connection are the request's own.
2. Forwarded values are read only when the direct peer (the connection's address) is in the
   trusted set; a client talking to the app directly cannot forge anything.
3. Values are taken right to left. Each proxy appends what it saw to the right, so the rightmost
   value is the closest proxy's; the walk goes on leftwards only while the address it reaches is
   trusted too, and for at most ``hops`` proxies. What a client sent itself sits to the left of
   everything a proxy appended, so it is never reached.
4. One family per request: ``headers="x-forwarded"`` reads ``X-Forwarded-For/-Proto/-Host``
   and never ``Forwarded``; ``headers="forwarded"`` reads RFC 7239 ``Forwarded`` and never an
   ``X-Forwarded-*`` header. The other family is ignored, not refused: it can only have come
   from the client (or a proxy nobody told us about), so ignoring it means it never wins, and a
   client cannot turn its own junk header into anything but its own refusal.

Why ``X-Forwarded-Proto`` and ``-Host`` are read at the rightmost value only, whatever ``hops``
is: they are not per hop (one proxy sets them, another appends, a third passes them on), so no
position further left can be attributed to a trusted proxy. The rightmost value is the one the
closest proxy sent; inner proxies must pass the edge's value on. RFC 7239 elements *are* per
hop, so with ``Forwarded`` the scheme and host come from the outermost trusted element.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from .errors import ConfigError, InvalidRequest
from .request import RequestView

__all__ = ["ForwardedHeaders", "RequestOrigin", "TrustedProxies", "effective_origin", "parse_forwarded"]

ForwardedHeaders = Literal["x-forwarded", "forwarded"]
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: every header this module reads (the WSGI adapter converts only DECISION_HEADERS)
READS: Final = (b"host", b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
#: ASGI gives WebSocket scopes ws/wss; their handshake is an http(s) request (RFC 6455 §3)
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
#: RFC 3986 §3.2.2 host (a DNS-style reg-name, or an IP literal) and an optional port
AUTHORITY: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::[0-9]{0,5})?")
_BAD_HOST: Final = "The request's Host is invalid"
_BAD_SCHEME: Final = "The request's scheme is invalid"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The reverse proxies in front of the app, whose forwarded headers are believed.

    Given to ``Config(trusted_proxies=...)``. Turn off your server's own forwarded-header
    handling (uvicorn ``--no-proxy-headers``, gunicorn ``secure_scheme_headers = {}``, no
    Werkzeug ``ProxyFix``), or it rewrites the peer, scheme or Host before this model sees them.

    :param networks: addresses or networks of the proxies, e.g. ``("10.0.0.0/8", "127.0.0.1")``;
        ``"0.0.0.0/0"`` trusts every peer, for an app no client can reach but through the proxy
    :param hops: how many trusted proxies to walk back through, closest first; a proxy chain of
        an edge load balancer and an ingress is ``hops=2``
    :param headers: the one header family the proxies write: ``"x-forwarded"``
        (``X-Forwarded-For`` / ``-Proto``, and ``-Host`` with ``x_forwarded_host``) or
        ``"forwarded"`` (RFC 7239 ``Forwarded``, each element ``for``, ``proto``, ``host``)
    :param x_forwarded_host: believe ``X-Forwarded-Host`` too. Off by default (as Werkzeug's
        ``x_host=0``): many proxies (nginx, unless told otherwise) pass a client's
        ``X-Forwarded-Host`` on untouched, and then the client would choose the host. Turn
        on only when every trusted proxy sets it. Without it the ``Host`` header names the host
    :raises ConfigError: no networks, a network that does not parse, hops below 1, an unknown
        header family, or ``x_forwarded_host`` with ``headers="forwarded"``
    """

    networks: tuple[str, ...]
    hops: int = 1
    headers: ForwardedHeaders = "x-forwarded"
    x_forwarded_host: bool = False
    _parsed: tuple[_Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = (self.networks,) if isinstance(self.networks, str) else tuple(self.networks)
        object.__setattr__(self, "networks", networks)
        if not networks:
            raise ConfigError(
                "TrustedProxies.networks: list your proxies' addresses, e.g. ('10.0.0.0/8',); "
                "with no proxy, leave Config.trusted_proxies=None"
            )
        object.__setattr__(self, "_parsed", tuple(_network(n) for n in networks))
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) or self.hops < 1:
            raise ConfigError("TrustedProxies.hops: the number of proxies in the chain, at least 1")
        if self.headers not in ("x-forwarded", "forwarded"):
            raise ConfigError("TrustedProxies.headers: use 'x-forwarded' or 'forwarded' (RFC 7239)")
        if self.x_forwarded_host and self.headers == "forwarded":
            raise ConfigError(
                "TrustedProxies.x_forwarded_host: applies to headers='x-forwarded' only; "
                "a Forwarded element's host= is always read"
            )

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (an IP, optionally with port or brackets) is one of the proxies."""
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self._parsed)


def _network(text: object) -> _Network:
    if not isinstance(text, str) or text.strip() != text or not text:
        raise ConfigError(f"TrustedProxies.networks: {text!r} is not an address or network")
    try:
        return ipaddress.ip_network(text)  # strict: "10.0.0.1/8" is a typo, not 10.0.0.0/8
    except ValueError:
        fix = "list addresses or networks, e.g. '10.0.0.0/8' or '127.0.0.1'"
        if "/" in text:
            fix = "give the network address, e.g. '10.0.0.0/8' (host bits must be zero)"
        if text == "*":
            fix = "name the proxies' networks; '0.0.0.0/0' and '::/0' trust every peer"
        raise ConfigError(f"TrustedProxies.networks: {text!r} does not parse; {fix}") from None


class RequestOrigin(NamedTuple):
    """What the client used: scheme, host and its own address, after the trusted-proxy step."""

    #: "http" or "https" (WebSocket ws/wss map to the http(s) of their handshake)
    scheme: str
    #: the authority (``host[:port]``) the client addressed; None when nothing names one
    host: str | None
    #: the client's IP address (normalised), an RFC 7239 §6 identifier, or None when unknown
    client: str | None


def effective_origin(request: RequestView, proxies: TrustedProxies | None) -> RequestOrigin:
    """The scheme, host and client address of ``request``, believing only trusted proxies.

    :raises InvalidRequest: several Host headers, or a scheme or host that is not well formed
        (RFC 3986 §3.1, §3.2.2), whether the request's own or a trusted proxy's
    """
    peer = request.client_ip
    if proxies is None or not proxies.trusts(peer):
        return _origin(request.scheme, _own_host(request), _client(peer))
    if proxies.headers == "forwarded":
        return _from_forwarded(request, proxies, peer)
    return _from_x_forwarded(request, proxies, peer)


def _from_x_forwarded(request: RequestView, proxies: TrustedProxies, peer: str | None) -> RequestOrigin:
    chain = _list_values(request, b"x-forwarded-for")
    client = peer
    hop = 1
    for entry in reversed(chain):
        client = entry
        if hop >= proxies.hops or not proxies.trusts(entry):
            break
        hop += 1
    proto = _rightmost(request, b"x-forwarded-proto")
    host = _rightmost(request, b"x-forwarded-host") if proxies.x_forwarded_host else None
    return _origin(proto or request.scheme, host or _own_host(request), _client(client))


def _from_forwarded(request: RequestView, proxies: TrustedProxies, peer: str | None) -> RequestOrigin:
    elements = parse_forwarded(",".join(request.header_values(b"forwarded")))
    trusted: list[dict[str, str]] = []  # written by trusted proxies, closest first
    client = peer
    for element in reversed(elements):
        trusted.append(element)
        client = element.get("for")
        if len(trusted) >= proxies.hops or not proxies.trusts(client):
            break
    proto = _outermost(trusted, "proto")
    host = _outermost(trusted, "host")
    return _origin(proto or request.scheme, host or _own_host(request), _client(client))


def _outermost(trusted: list[dict[str, str]], name: str) -> str | None:
    """The value of the outermost trusted element that has the parameter (RFC 7239 §5.3, §5.4)."""
    for element in reversed(trusted):
        value = element.get(name)
        if value:
            return value
    return None


def _origin(scheme: str, host: str | None, client: str | None) -> RequestOrigin:
    mapped = _SCHEMES.get(scheme.strip().lower())
    if mapped is None:
        raise InvalidRequest("invalid_scheme", _BAD_SCHEME)
    if host is not None and AUTHORITY.fullmatch(host) is None:
        raise InvalidRequest("invalid_host", _BAD_HOST)
    return RequestOrigin(mapped, host, client)


def _own_host(request: RequestView) -> str | None:
    """The Host header (RFC 9110 §7.2: exactly one), else the address the server listens on."""
    hosts = request.header_values(b"host")
    if len(hosts) > 1:
        raise InvalidRequest("invalid_host", _BAD_HOST)
    host = hosts[0].strip() if hosts else request.server
    return host or None


def _list_values(request: RequestView, name: bytes) -> list[str]:
    """A list header's members across all its lines, in order (RFC 9110 §5.3, §5.6.1)."""
    return [item.strip() for value in request.header_values(name) for item in value.split(",")]


def _rightmost(request: RequestView, name: bytes) -> str | None:
    values = _list_values(request, name)
    return (values[-1] or None) if values else None


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` value, left to right (RFC 7239 §4).

    Parameter names are lower-cased (they are case-insensitive), quoted-string values are
    unquoted, and a repeated parameter keeps its first value.
    """
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        if not element.strip():
            continue  # RFC 9110 §5.6.1: empty list elements do not count
        params: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, sep, raw = pair.partition("=")
            if not sep:
                continue
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(name.strip().lower(), raw)
        elements.append(params)
    return elements


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


def _ip(text: str | None) -> _Address | None:
    """An IP address from ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]``, ``[::1]:80`` or ``::1``.

    IPv4-mapped IPv6 (``::ffff:10.0.0.1``, as dual-stack sockets report IPv4 peers) is the
    IPv4 address, so one network entry covers both forms.
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _client(text: str | None) -> str | None:
    """The client's address as one canonical string; an RFC 7239 §6 identifier as it is."""
    ip = _ip(text)
    if ip is not None:
        return str(ip)
    return (text.strip() or None) if text else None
