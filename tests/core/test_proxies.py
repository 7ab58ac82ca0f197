"""The one trusted-proxy model (jwt_middleware.proxies): which forwarded values are believed.

Every case is a request whose forwarded headers a client could have written; the model must
read only what a trusted proxy appended, right to left, and never mix the two header families.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jwt_middleware import Config, ConfigError, Issuer, SharedSecret, TrustedProxies
from jwt_middleware.errors import InvalidRequest
from jwt_middleware.proxies import READS, RequestOrigin, effective_origin, parse_forwarded
from jwt_middleware.request import DECISION_HEADERS, RequestView
from jwt_middleware.wsgi import request_from_environ

PROXY = "10.0.0.1"
EDGE = "10.0.0.2"
CLIENT = "198.51.100.7"
ONE = TrustedProxies(("10.0.0.0/8",))
FORWARDED = TrustedProxies(("10.0.0.0/8",), headers="forwarded")


def view(*headers: tuple[bytes, bytes], peer: str | None = PROXY, scheme: str = "http",
         host: bytes = b"internal:8080") -> RequestView:
    return RequestView("GET", "/me", [(b"host", host), *headers], scheme=scheme, client_ip=peer)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "named"),
    [(("10.0.0.0/8", "10.0.0.1/8"), "'10.0.0.1/8'"), (("proxy.internal",), "'proxy.internal'"),
     (("*",), "'*'"), (("10.0.0.0/33",), "'10.0.0.0/33'"), ((" 10.0.0.1",), "' 10.0.0.1'"), (("",), "''")],
)
def test_bad_network_is_a_config_error_naming_it(networks: tuple[str, ...], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"TrustedProxies.networks: {named}")):
        TrustedProxies(networks)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"networks": ()}, "networks"), ({"hops": 0}, "hops"), ({"hops": True}, "hops"), ({"hops": 1.5}, "hops"),
     ({"headers": "x-real-ip"}, "headers"), ({"headers": "forwarded", "x_forwarded_host": True}, "x_forwarded_host")],
)
def test_other_mistakes_are_config_errors(kwargs: dict[str, object], option: str) -> None:
    kwargs = {"networks": ("10.0.0.0/8",), **kwargs}
    with pytest.raises(ConfigError, match=rf"TrustedProxies\.{option}"):
        TrustedProxies(**kwargs)  # type: ignore[arg-type]


def test_config_takes_only_a_trusted_proxies_value() -> None:
    issuer = Issuer("https://issuer.test", algorithms=("HS256",), keys=SharedSecret(b"k" * 32))
    with pytest.raises(ConfigError, match=r"Config\.trusted_proxies"):
        Config(issuers=(issuer,), audience="api", trusted_proxies=("10.0.0.0/8",))  # type: ignore[arg-type]
    assert Config(issuers=(issuer,), audience="api", trusted_proxies=ONE).trusted_proxies is ONE


def test_one_network_string_and_lists_are_accepted() -> None:
    assert TrustedProxies("127.0.0.1").networks == ("127.0.0.1",)  # type: ignore[arg-type]
    assert TrustedProxies(["::1", "10.0.0.0/8"]).networks == ("::1", "10.0.0.0/8")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "trusted"),
    [("10.1.2.3", True), ("10.1.2.3:4711", True), ("::ffff:10.1.2.3", True), ("[::ffff:10.1.2.3]:80", True),
     ("11.0.0.1", False), ("fd00::1", True), ("[fd00::1]:443", True), ("fe80::1", False), (None, False),
     ("", False), ("unknown", False), ("_hidden", False), ("10.1.2.3.4", False), ("[10.1.2.3", False)],
)
def test_trusts_addresses_in_any_usual_spelling(address: str | None, trusted: bool) -> None:
    assert TrustedProxies(("10.0.0.0/8", "fd00::/8")).trusts(address) is trusted


# -- nothing trusted: forwarded headers are ignored -------------------------------------------------

SPOOFED = (
    (b"forwarded", b"for=1.2.3.4;proto=https;host=a.example"),
    (b"x-forwarded-for", b"1.2.3.4"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"a.example"),
)


@pytest.mark.parametrize("proxies", [None, ONE, FORWARDED, TrustedProxies(("10.0.0.0/8",), x_forwarded_host=True)])
def test_client_sent_forwarded_headers_from_an_untrusted_peer_are_ignored(proxies: TrustedProxies | None) -> None:
    request = view(*SPOOFED, peer=CLIENT)
    assert effective_origin(request, proxies) == RequestOrigin("http", "internal:8080", CLIENT)


def test_without_trusted_proxies_even_a_proxy_peer_is_not_believed() -> None:
    assert effective_origin(view(*SPOOFED, peer=PROXY), None) == RequestOrigin("http", "internal:8080", PROXY)


def test_a_trusted_peer_without_forwarded_headers_is_the_client() -> None:
    assert effective_origin(view(), ONE) == RequestOrigin("http", "internal:8080", PROXY)
    assert effective_origin(view(), FORWARDED) == RequestOrigin("http", "internal:8080", PROXY)


def test_no_peer_address_is_never_trusted() -> None:
    request = view(*SPOOFED, peer=None)
    assert effective_origin(request, TrustedProxies(("0.0.0.0/0", "::/0"))) == RequestOrigin(
        "http", "internal:8080", None
    )


# -- X-Forwarded-*: right to left ------------------------------------------------------------------


def test_the_rightmost_x_forwarded_values_win_over_what_the_client_prepended() -> None:
    request = view((b"x-forwarded-for", b"6.6.6.6, " + CLIENT.encode()), (b"x-forwarded-proto", b"http, https"),
                   (b"x-forwarded-host", b"evil.example, api.example"))
    proxies = TrustedProxies(("10.0.0.0/8",), x_forwarded_host=True)
    assert effective_origin(request, proxies) == RequestOrigin("https", "api.example", CLIENT)


def test_x_forwarded_host_is_read_only_when_configured() -> None:
    """Many proxies pass a client's X-Forwarded-Host on untouched: off by default, Host wins."""
    request = view((b"x-forwarded-for", CLIENT.encode()), (b"x-forwarded-host", b"evil.example"))
    assert effective_origin(request, ONE) == RequestOrigin("http", "internal:8080", CLIENT)


def test_header_lines_are_one_list_in_order() -> None:
    request = view((b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", f"{CLIENT}, {EDGE}".encode()))
    assert effective_origin(request, TrustedProxies(("10.0.0.0/8",), hops=2)).client == CLIENT
    assert effective_origin(request, ONE).client == EDGE


def test_hops_bound_the_walk_even_through_trusted_addresses() -> None:
    chain = (b"x-forwarded-for", f"6.6.6.6, {CLIENT}, 10.0.0.9, {EDGE}".encode())
    assert effective_origin(view(chain), ONE).client == EDGE
    assert effective_origin(view(chain), TrustedProxies(("10.0.0.0/8",), hops=2)).client == "10.0.0.9"
    assert effective_origin(view(chain), TrustedProxies(("10.0.0.0/8",), hops=3)).client == CLIENT
    assert effective_origin(view(chain), TrustedProxies(("10.0.0.0/8",), hops=9)).client == CLIENT


def test_the_walk_stops_at_the_first_untrusted_address() -> None:
    request = view((b"x-forwarded-for", f"10.0.0.5, {CLIENT}, {EDGE}".encode()))
    assert effective_origin(request, TrustedProxies(("10.0.0.0/8",), hops=5)).client == CLIENT


def test_a_fully_trusted_chain_ends_at_its_leftmost_address() -> None:
    request = view((b"x-forwarded-for", f"10.0.0.5, {EDGE}".encode()))
    assert effective_origin(request, TrustedProxies(("10.0.0.0/8",), hops=5)).client == "10.0.0.5"


def test_client_addresses_are_normalised() -> None:
    for written, client in [("[2001:DB8::1]:4711", "2001:db8::1"), ("198.51.100.7:5555", CLIENT),
                            ("::ffff:198.51.100.7", CLIENT), ("", None)]:
        assert effective_origin(view((b"x-forwarded-for", written.encode())), ONE).client == client


@pytest.mark.parametrize(
    "header",
    [(b"x-forwarded-proto", b"javascript"), (b"x-forwarded-host", b"evil.example/x?")],
)
def test_malformed_values_from_a_trusted_proxy_are_refused(header: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidRequest):
        effective_origin(view(header), TrustedProxies(("10.0.0.0/8",), x_forwarded_host=True))


# -- Forwarded (RFC 7239): per-hop elements, right to left ------------------------------------------


def test_the_client_prepended_forwarded_element_is_ignored() -> None:
    value = f'for=6.6.6.6;proto=http;host=evil.example, for={CLIENT};proto=https;host="api.example"'
    request = view((b"forwarded", value.encode()))
    assert effective_origin(request, FORWARDED) == RequestOrigin("https", "api.example", CLIENT)


def test_scheme_and_host_come_from_the_outermost_trusted_element() -> None:
    """The edge terminated TLS (proto=https); the inner proxy's element says http."""
    value = f"for=6.6.6.6;proto=http;host=evil.example, for={CLIENT};proto=https;host=api.example, " \
            f"for={EDGE};proto=http;host=api.example"
    request = view((b"forwarded", value.encode()))
    two = TrustedProxies(("10.0.0.0/8",), hops=2, headers="forwarded")
    assert effective_origin(request, two) == RequestOrigin("https", "api.example", CLIENT)
    assert effective_origin(request, FORWARDED) == RequestOrigin("http", "api.example", EDGE)


def test_a_missing_parameter_falls_back_inwards_then_to_the_request() -> None:
    value = f"for={CLIENT}, for={EDGE};host=api.example"
    two = TrustedProxies(("10.0.0.0/8",), hops=2, headers="forwarded")
    assert effective_origin(view((b"forwarded", value.encode()), scheme="https"), two) == RequestOrigin(
        "https", "api.example", CLIENT
    )
    assert effective_origin(view((b"forwarded", f"for={CLIENT}".encode())), FORWARDED) == RequestOrigin(
        "http", "internal:8080", CLIENT
    )


def test_obfuscated_and_unknown_nodes_end_the_walk() -> None:
    """RFC 7239 §6: ``unknown`` and ``_hidden`` identifiers are kept as they are, never trusted."""
    many = TrustedProxies(("10.0.0.0/8",), hops=5, headers="forwarded")
    for node in ("unknown", "_hidden"):
        request = view((b"forwarded", f"for=10.0.0.7;host=evil.example, for={node};host=api.example".encode()))
        assert effective_origin(request, many) == RequestOrigin("http", "api.example", node)
    assert effective_origin(view((b"forwarded", b"host=api.example")), many).client is None


def test_forwarded_values_are_parsed_per_rfc7239() -> None:
    value = 'For="[2001:db8:cafe::17]:4711";Proto=HTTPS;Host="api.example:8443";ext="a,b;c=d", for=x'
    assert parse_forwarded(value) == [
        {"for": "[2001:db8:cafe::17]:4711", "proto": "HTTPS", "host": "api.example:8443", "ext": "a,b;c=d"},
        {"for": "x"},
    ]
    assert parse_forwarded(" , for=a,, ") == [{"for": "a"}]  # RFC 9110 §5.6.1: empty elements do not count
    rightmost = b'For="[2001:db8:cafe::17]:4711";Proto=HTTPS;Host="api.example:8443";ext="a,b"'
    request = view((b"forwarded", b"for=x;host=evil.example"), (b"forwarded", rightmost))
    assert effective_origin(request, FORWARDED) == RequestOrigin("https", "api.example:8443", "2001:db8:cafe::17")


# -- one family per request ------------------------------------------------------------------------


def test_x_forwarded_mode_never_reads_forwarded() -> None:
    request = view((b"forwarded", b"for=6.6.6.6;proto=https;host=evil.example"), (b"x-forwarded-for", CLIENT.encode()))
    assert effective_origin(request, ONE) == RequestOrigin("http", "internal:8080", CLIENT)


def test_forwarded_mode_never_reads_x_forwarded() -> None:
    request = view((b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https"),
                   (b"x-forwarded-host", b"evil.example"), (b"forwarded", f"for={CLIENT}".encode()))
    assert effective_origin(request, FORWARDED) == RequestOrigin("http", "internal:8080", CLIENT)


def test_the_other_family_alone_changes_nothing() -> None:
    only_x = view((b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https"))
    assert effective_origin(only_x, FORWARDED) == RequestOrigin("http", "internal:8080", PROXY)
    only_forwarded = view((b"forwarded", b"for=6.6.6.6;proto=https"))
    assert effective_origin(only_forwarded, ONE) == RequestOrigin("http", "internal:8080", PROXY)


# -- the request's own values ----------------------------------------------------------------------


def test_own_scheme_and_host_are_checked() -> None:
    with pytest.raises(InvalidRequest):
        effective_origin(view(peer=CLIENT, scheme="gopher"), None)
    with pytest.raises(InvalidRequest):
        effective_origin(view((b"host", b"second.example"), peer=CLIENT), None)
    assert effective_origin(view(peer=CLIENT, scheme="wss"), None).scheme == "https"
    bare = RequestView("GET", "/", [], server="10.0.0.5:8000", client_ip=CLIENT)
    assert effective_origin(bare, None).host == "10.0.0.5:8000"
    assert effective_origin(RequestView("GET", "/", []), None).host is None


# -- the WSGI view carries every header the model reads ----------------------------------------------


def test_every_header_the_model_reads_reaches_it_under_wsgi() -> None:
    source = (Path(__file__).resolve().parents[2] / "jwt_middleware" / "proxies.py").read_text()
    named = {m.encode() for m in re.findall(r'\bb"([a-z-]+)"', source)}
    assert named <= set(READS) <= set(DECISION_HEADERS), (named - set(READS), set(READS) - set(DECISION_HEADERS))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", "REMOTE_ADDR": PROXY, "SERVER_NAME": "internal",
               "SERVER_PORT": "8080", "wsgi.url_scheme": "http", "HTTP_HOST": "internal:8080",
               "HTTP_X_FORWARDED_FOR": f"6.6.6.6, {CLIENT}", "HTTP_X_FORWARDED_PROTO": "https",
               "HTTP_X_FORWARDED_HOST": "api.example"}
    proxies = TrustedProxies(("10.0.0.0/8",), x_forwarded_host=True)
    assert effective_origin(request_from_environ(environ), proxies) == RequestOrigin("https", "api.example", CLIENT)
