"""Fetching key documents over real HTTPS (127.0.0.1, trustme CA): limits, TLS and redirects."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from jwt_middleware import ConfigError, Issuer, JWKSUrl, KeyPolicy, OIDCDiscovery
from jwt_middleware.keys.fetch import Fetched, FetchError, afetch_document, fetch_document, parse_discovery
from jwt_middleware.testing import make_key, public_jwks

from ..support.jwks_server import JWKSServer

Fetch = Callable[[str, KeyPolicy], Awaitable[Fetched]]


@pytest.fixture(params=["sync", "async"])
def fetch(request: pytest.FixtureRequest) -> Fetch:
    """Both twins, behind one awaitable signature (the sync one runs in a worker thread)."""
    if request.param == "async":
        return afetch_document

    async def sync(url: str, policy: KeyPolicy) -> Fetched:
        return await asyncio.to_thread(fetch_document, url, policy)

    return sync


@pytest.fixture
def issuer(jwks_server: JWKSServer) -> JWKSServer:
    jwks_server.behaviour.jwks = public_jwks(make_key("ES256", kid="k1"))
    return jwks_server


@pytest.mark.parametrize(
    ("cache_control", "max_age"),
    [("max-age=300", 300.0), ("public, max-age=120, must-revalidate", 120.0), ("no-store", 0.0),
     ("no-cache, max-age=600", 0.0), ("s-maxage=50", None), (None, None)],
)
async def test_fetch_returns_the_document_and_its_cache_control_max_age(
    fetch: Fetch, issuer: JWKSServer, key_policy: KeyPolicy, cache_control: str | None, max_age: float | None
) -> None:
    issuer.behaviour.cache_control = cache_control
    fetched = await fetch(issuer.jwks_url, key_policy)
    assert fetched.document == issuer.behaviour.jwks
    assert fetched.max_age == max_age


@pytest.mark.parametrize(
    "mode",
    ["garbage", "html", "not-object", "huge", "huge-unannounced", "503", "drop", "redirect-other-host"],
)
async def test_bad_answer_is_a_fetch_error(
    fetch: Fetch, issuer: JWKSServer, key_policy: KeyPolicy, mode: str
) -> None:
    issuer.behaviour.mode = mode
    with pytest.raises(FetchError):
        await fetch(issuer.jwks_url, key_policy)


async def test_redirect_to_the_same_origin_is_followed(
    fetch: Fetch, issuer: JWKSServer, key_policy: KeyPolicy
) -> None:
    issuer.behaviour.mode = "redirect-same-host"
    fetched = await fetch(issuer.jwks_url, key_policy)
    assert fetched.document == issuer.behaviour.jwks
    assert issuer.behaviour.hits("/jwks-moved") == 1


@pytest.mark.parametrize("mode", ["delay", "trickle-body", "trickle-headers"])
async def test_slow_issuer_is_cut_off_at_the_fetch_timeout(
    fetch: Fetch, issuer: JWKSServer, key_policy: KeyPolicy, mode: str
) -> None:
    # "trickle-*" keeps every gap under a read timeout (slowloris); only a whole-fetch deadline stops it.
    if mode == "delay":
        issuer.behaviour.delay = 3.0
    else:
        issuer.behaviour.mode = mode
        issuer.behaviour.trickle_interval = 0.1
    policy = dataclasses.replace(key_policy, fetch_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError):
        await fetch(issuer.jwks_url, policy)
    assert time.monotonic() - started < policy.fetch_timeout + 2.0  # a correctness bound, not a benchmark


async def test_issuer_certificate_from_an_untrusted_ca_is_refused(fetch: Fetch, issuer: JWKSServer) -> None:
    with pytest.raises(FetchError):
        await fetch(issuer.jwks_url, KeyPolicy())  # tls=True: system/certifi roots, not our test CA
    assert issuer.behaviour.hits() == 0  # the handshake failed before any request was sent


async def test_certificate_for_another_host_name_is_refused(ca: trustme.CA, fetch: Fetch) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("idp.example").configure_cert(server_tls)  # trusted CA, wrong name
    server = JWKSServer(server_tls).start()
    try:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        with pytest.raises(FetchError):
            await fetch(server.jwks_url, KeyPolicy(tls=trusting))
    finally:
        server.stop()


async def test_ca_bundle_path_is_accepted_without_deprecation_warnings(
    fetch: Fetch, issuer: JWKSServer, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        fetched = await fetch(issuer.jwks_url, KeyPolicy(tls=str(bundle)))
    assert fetched.document == issuer.behaviour.jwks


@pytest.mark.parametrize(
    "build",
    [
        lambda: JWKSUrl("http://idp.example/jwks"),
        lambda: JWKSUrl("http://127.0.0.1.nip.io/jwks"),
        lambda: JWKSUrl("ftp://idp.example/jwks"),
        lambda: JWKSUrl("https:///jwks"),
        lambda: OIDCDiscovery("http://idp.example/.well-known/openid-configuration"),
        lambda: Issuer("http://idp.example", algorithms=("ES256",)),  # discovery by default
    ],
    ids=["jwks-url", "loopback-lookalike", "ftp", "no-host", "discovery-url", "issuer-discovery"],
)
def test_plain_http_off_loopback_is_refused_at_configuration(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigError, match="https"):
        build()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"])
def test_plain_http_on_loopback_is_allowed(url: str) -> None:
    assert JWKSUrl(url).url == url


def test_discovery_jwks_uri_over_plain_http_off_loopback_is_refused() -> None:
    document = {"issuer": "https://idp.example", "jwks_uri": "http://idp.example/jwks"}
    with pytest.raises(FetchError):
        parse_discovery(Fetched(document, None), "https://idp.example")


@pytest.mark.parametrize(
    "document",
    [{"issuer": "https://idp.example.evil", "jwks_uri": "https://idp.example/jwks"},
     {"issuer": "https://idp.example/", "jwks_uri": "https://idp.example/jwks"},
     {"jwks_uri": "https://idp.example/jwks"},
     {"issuer": "https://idp.example"},
     {"issuer": "https://idp.example", "jwks_uri": ["https://idp.example/jwks"]}],
    ids=["other-issuer", "trailing-slash", "no-issuer", "no-jwks-uri", "jwks-uri-not-string"],
)
def test_discovery_document_must_name_exactly_our_issuer_and_a_jwks_uri(document: dict[str, object]) -> None:
    with pytest.raises(FetchError):
        parse_discovery(Fetched(dict(document), None), "https://idp.example")
