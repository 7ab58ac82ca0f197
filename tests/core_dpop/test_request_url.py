"""The URL a client used (for DPoP htu), and the normalisation htu is compared under."""

from __future__ import annotations

import pytest

from jwt_middleware.core.request_url import host_key, normalize_url, request_url
from jwt_middleware.errors import InvalidRequest
from jwt_middleware.proxies import TrustedProxies
from jwt_middleware.request import RequestView


def view(
    path: str = "/v1/items",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    scheme: str = "https",
    server: str | None = "10.0.0.5:8000",
    client_ip: str | None = "192.0.2.1",
) -> RequestView:
    hdrs = [(b"host", b"api.example.com")] if headers is None else headers
    return RequestView("GET", path, hdrs, scheme=scheme, query_string=b"a=1&b=2", server=server,
                       client_ip=client_ip)


# -- request_url ---------------------------------------------------------------------------------


def test_uses_scheme_host_header_and_path_never_the_query() -> None:
    assert request_url(view()) == "https://api.example.com/v1/items"


def test_falls_back_to_server_without_host_header() -> None:
    assert request_url(view(headers=[], scheme="http")) == "http://10.0.0.5:8000/v1/items"


def test_refuses_request_without_any_host() -> None:
    with pytest.raises(InvalidRequest):
        request_url(view(headers=[], server=None))


@pytest.mark.parametrize(
    "host",
    [b"evil.example/path?", b"a b", b"host:port", b"", b"example.com,other.com", b"ex@mple.com", b"h:123456"],
)
def test_refuses_malformed_host_header(host: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        request_url(view(headers=[(b"host", host)]))
    assert info.value.reason == "invalid_host"


def test_refuses_two_host_headers() -> None:
    with pytest.raises(InvalidRequest):
        request_url(view(headers=[(b"host", b"a.example"), (b"host", b"b.example")]))


@pytest.mark.parametrize("host", [b"api.example.com:8443", b"[::1]:8000", b"127.0.0.1", b"API.Example.com"])
def test_keeps_valid_host_forms(host: bytes) -> None:
    assert request_url(view(headers=[(b"host", host)])) == f"https://{host.decode()}/v1/items"


def test_encodes_the_decoded_path() -> None:
    """ASGI paths are percent-decoded; the URL must be an encoded URI again."""
    assert request_url(view("/café/a b/100%")) == "https://api.example.com/caf%C3%A9/a%20b/100%25"
    assert request_url(view("/a:b@c;d=e,f+g!$&'()*~")) == "https://api.example.com/a:b@c;d=e,f+g!$&'()*~"


def test_websocket_schemes_map_to_http() -> None:
    assert request_url(view(scheme="wss")) == "https://api.example.com/v1/items"
    assert request_url(view(scheme="ws")) == "http://api.example.com/v1/items"


def test_refuses_unknown_scheme() -> None:
    with pytest.raises(InvalidRequest):
        request_url(view(scheme="gopher"))


def test_external_base_url_wins_over_host_and_forwarded() -> None:
    request = view(headers=[(b"host", b"internal:8080"), (b"x-forwarded-host", b"evil.example")])
    assert request_url(request, external_base_url="https://api.example.com/prefix/",
                       proxies=TrustedProxies(("0.0.0.0/0",), x_forwarded_host=True)
                       ) == "https://api.example.com/prefix/v1/items"


def test_forwarded_headers_are_ignored_without_trusted_proxies() -> None:
    """Issue 9: a client-sent Forwarded or X-Forwarded-* must not choose the origin a proof is for."""
    request = view(headers=[(b"host", b"internal:8080"), (b"forwarded", b"proto=https;host=api.example.com"),
                            (b"x-forwarded-host", b"evil.example"), (b"x-forwarded-proto", b"https")],
                   scheme="http")
    assert request_url(request) == "http://internal:8080/v1/items"


def test_scheme_and_host_come_from_the_trusted_proxy_model() -> None:
    value = b'for=192.0.2.60;proto=http;host=evil.example, for=198.51.100.7;proto=https;host="api.example.com"'
    request = view(headers=[(b"host", b"internal:8080"), (b"forwarded", value)], scheme="http",
                   client_ip="10.0.0.1")
    proxies = TrustedProxies(("10.0.0.0/8",), headers="forwarded")
    assert request_url(request, proxies=proxies) == "https://api.example.com/v1/items"
    assert request_url(view(headers=[(b"host", b"internal:8080"), (b"forwarded", value)], scheme="http",
                            client_ip="192.0.2.60"), proxies=proxies) == "http://internal:8080/v1/items"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"ok.example"), (b"forwarded", b"proto=https;host=evil/x?")],
        [(b"host", b"ok.example"), (b"forwarded", b"proto=javascript")],
    ],
)
def test_refuses_malformed_values_of_a_trusted_proxy(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(InvalidRequest):
        request_url(view(headers=headers, client_ip="10.0.0.1"),
                    proxies=TrustedProxies(("10.0.0.1",), headers="forwarded"))


# -- allowed_hosts ----------------------------------------------------------------------------------

ALLOWED = frozenset({"api.example.com", "api.example.com:8443", "[::1]:8000"})


@pytest.mark.parametrize(
    ("scheme", "host"),
    [("https", b"api.example.com"), ("https", b"API.Example.COM"), ("https", b"api.example.com:443"),
     ("http", b"api.example.com:80"), ("https", b"api.example.com:8443"), ("http", b"[::1]:8000")],
)
def test_allowed_host_passes_case_insensitively_and_with_its_default_port(scheme: str, host: bytes) -> None:
    url = request_url(view(headers=[(b"host", host)], scheme=scheme), allowed_hosts=ALLOWED)
    assert url == f"{scheme}://{host.decode()}/v1/items"


@pytest.mark.parametrize(
    ("scheme", "host"),
    [("https", b"b.example.com"), ("https", b"api.example.com:8444"), ("http", b"api.example.com:443"),
     ("https", b"api.example.com.evil"), ("http", b"[::1]")],
)
def test_host_not_allowed_is_refused_before_any_proof_check(scheme: str, host: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        request_url(view(headers=[(b"host", host)], scheme=scheme), allowed_hosts=ALLOWED)
    assert info.value.reason == "host_not_allowed"


def test_allowed_hosts_judge_the_host_after_the_trusted_proxy_step() -> None:
    """The proxy's rightmost X-Forwarded-Host is the host checked; the client's own is ignored."""
    headers = [(b"host", b"internal:8080"), (b"x-forwarded-host", b"api.example.com, b.example.com"),
               (b"x-forwarded-proto", b"https")]
    proxies = TrustedProxies(("10.0.0.1",), x_forwarded_host=True)
    with pytest.raises(InvalidRequest) as info:
        request_url(view(headers=headers, client_ip="10.0.0.1"), proxies=proxies, allowed_hosts=ALLOWED)
    assert info.value.reason == "host_not_allowed"
    headers[1] = (b"x-forwarded-host", b"b.example.com, api.example.com")
    assert request_url(view(headers=headers, client_ip="10.0.0.1"), proxies=proxies,
                       allowed_hosts=ALLOWED) == "https://api.example.com/v1/items"


@pytest.mark.parametrize(
    ("scheme", "host", "key"),
    [("https", "API.example.com:443", "api.example.com"), ("http", "a:80", "a"), ("http", "a:443", "a:443"),
     ("https", "a:0443", "a"), ("https", "a:", "a"), ("https", "[::1]", "[::1]"), ("https", "[::1]:443", "[::1]")],
)
def test_host_key_drops_only_the_schemes_default_port(scheme: str, host: str, key: str) -> None:
    assert host_key(scheme, host) == key


def test_url_is_rebuilt_from_the_full_path_below_the_root_path() -> None:
    request = RequestView("GET", "/items", [(b"host", b"api.example.com")], scheme="https", root_path="/v1")
    assert request_url(request) == "https://api.example.com/v1/items"


# -- normalize_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://API.EXAMPLE.COM/Path", "https://api.example.com/Path"),
        ("https://api.example.com:443/a", "https://api.example.com/a"),
        ("http://api.example.com:80/a", "http://api.example.com/a"),
        ("http://api.example.com:443/a", "http://api.example.com:443/a"),
        ("https://api.example.com:/a", "https://api.example.com/a"),
        ("https://api.example.com:0443/a", "https://api.example.com/a"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/a?q=1#f", "https://api.example.com/a"),
        ("https://api.example.com/%7euser/%41", "https://api.example.com/~user/A"),
        ("https://api.example.com/a%2fb%c3%A9", "https://api.example.com/a%2Fb%C3%A9"),
        ("https://api.example.com/café", "https://api.example.com/caf%C3%A9"),
        ("https://api.example.com/a/./b/../c", "https://api.example.com/a/c"),
        ("https://api.example.com/a/b/..", "https://api.example.com/a/"),
        ("https://api.example.com/../a", "https://api.example.com/a"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ],
)
def test_normalises_per_rfc3986_section_6(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "/relative",
        "api.example.com/a",
        "ftp://api.example.com/a",
        "https:///a",
        "https://user:pw@api.example.com/a",
        "https://api.example.com:99999/a",
        "https://api.example.com:port/a",
        "https://api.example.com/a\tb",
        "https://api.example.com/a b",
        "https://api.example.com/a\nb",
        "",
    ],
)
def test_invalid_urls_normalise_to_none(url: str) -> None:
    assert normalize_url(url) is None
