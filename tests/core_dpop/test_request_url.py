"""The URL a client used (for DPoP htu), and the normalisation htu is compared under."""

from __future__ import annotations

import pytest

from jwt_middleware.core.request_url import normalize_url, request_url
from jwt_middleware.errors import InvalidRequest
from jwt_middleware.request import RequestView


def view(
    path: str = "/v1/items",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    scheme: str = "https",
    server: str | None = "10.0.0.5:8000",
) -> RequestView:
    hdrs = [(b"host", b"api.example.com")] if headers is None else headers
    return RequestView("GET", path, hdrs, scheme=scheme, query_string=b"a=1&b=2", server=server)


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
                       trust_forwarded=True) == "https://api.example.com/prefix/v1/items"


def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    request = view(headers=[(b"host", b"internal:8080"), (b"forwarded", b"proto=https;host=api.example.com"),
                            (b"x-forwarded-host", b"evil.example")], scheme="http")
    assert request_url(request) == "http://internal:8080/v1/items"


def test_uses_first_forwarded_element() -> None:
    """RFC 7239 §4: elements are comma-separated; the first is the client-facing proxy's."""
    value = b'for=192.0.2.60;proto=https;host="api.example.com", for=10.0.0.1;proto=http;host=internal'
    request = view(headers=[(b"host", b"internal:8080"), (b"forwarded", value)], scheme="http")
    assert request_url(request, trust_forwarded=True) == "https://api.example.com/v1/items"


def test_forwarded_parameter_names_are_case_insensitive_and_quotes_may_hold_commas() -> None:
    value = b'For="[2001:db8::1]:4711";Proto=HTTPS;Host="api.example.com:8443";ext="a,b", for=x'
    request = view(headers=[(b"host", b"internal"), (b"forwarded", value)], scheme="http")
    assert request_url(request, trust_forwarded=True) == "https://api.example.com:8443/v1/items"


def test_forwarded_without_host_keeps_the_host_header() -> None:
    request = view(headers=[(b"host", b"api.example.com"), (b"forwarded", b"for=1.2.3.4;proto=https")],
                   scheme="http")
    assert request_url(request, trust_forwarded=True) == "https://api.example.com/v1/items"


def test_x_forwarded_proto_and_host_first_values() -> None:
    request = view(headers=[(b"host", b"internal:8080"), (b"x-forwarded-proto", b"https, http"),
                            (b"x-forwarded-host", b"api.example.com, internal")], scheme="http")
    assert request_url(request, trust_forwarded=True) == "https://api.example.com/v1/items"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"ok.example"), (b"forwarded", b"proto=https;host=evil/x?")],
        [(b"host", b"ok.example"), (b"x-forwarded-host", b"evil.example/x")],
        [(b"host", b"ok.example"), (b"x-forwarded-proto", b"javascript")],
    ],
)
def test_refuses_malformed_forwarded_values(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(InvalidRequest):
        request_url(view(headers=headers), trust_forwarded=True)


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
