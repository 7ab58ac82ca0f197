"""Visible failures (issue 11, item 6): a failed key fetch logs one WARNING naming the issuer,
the URL and the cause, never a body or key material, and not once per request while the
issuer is down; a request that carried no token is not a warning."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jwt_middleware import (
    Authenticator,
    Config,
    Issuer,
    JWKSFile,
    JWKSUrl,
    JWTMiddleware,
    KeyPolicy,
    OIDCDiscovery,
    Rule,
    StaticKeys,
    Unavailable,
)
from jwt_middleware.config import DPoPSettings
from jwt_middleware.keys.fetch import loggable_url
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ..support.jwks_server import HUGE_JWKS, JWKSServer
from ..support.redis_server import free_port
from .conftest import Decide
from .helpers import bearer, remote_auth, token_for

KEYS_LOGGER = "jwt_middleware.keys"


def fetch_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == KEYS_LOGGER and "jwks fetch failed" in r.getMessage()]


@pytest.fixture
def keys_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="jwt_middleware")
    return caplog


async def refused_503(decide: Decide, auth: Authenticator, token: str) -> None:
    with pytest.raises(Unavailable):
        await decide(auth, bearer(token))


def assert_one_warning(caplog: pytest.LogCaptureFixture, issuer: str, url: str, cause: str) -> logging.LogRecord:
    """Exactly one WARNING, whose text and ``extra`` fields name the issuer, the URL and the cause."""
    (record,) = fetch_warnings(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert repr(issuer) in message and url in message and cause in message, message
    assert (record.issuer, record.url) == (issuer, url)  # type: ignore[attr-defined]
    assert cause in record.cause  # type: ignore[attr-defined]
    return record


# --- what the line says, per kind of failure ----------------------------------------------------
SERVER_FAILURES: dict[str, tuple[dict[str, Any], str]] = {
    "503": ({"mode": "503"}, "HTTP 503 Service Unavailable"),
    "html-page": ({"mode": "html"}, "body is not JSON (JSONDecodeError: Expecting value: line 1 column 1"),
    "garbage": ({"mode": "garbage"}, "body is not JSON ("),
    "json-array": ({"mode": "not-object"}, "body is JSON but not an object (a list)"),
    "huge-announced": ({"mode": "huge"}, f"body over the size cap (Content-Length {len(HUGE_JWKS)} > "
                                         "KeyPolicy.max_jwks_bytes=262144)"),
    "huge-unannounced": ({"mode": "huge-unannounced"}, "bytes read > KeyPolicy.max_jwks_bytes=262144)"),
    "redirect-elsewhere": ({"mode": "redirect-other-host"},
                           "redirect to another origin refused (https://attacker.invalid)"),
    "dropped": ({"mode": "drop"}, "RemoteProtocolError: Server disconnected without sending a response."),
}


@pytest.mark.parametrize(("behaviour", "cause"), SERVER_FAILURES.values(), ids=SERVER_FAILURES.keys())
async def test_fetch_failure_log_names_issuer_url_and_cause(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture, behaviour: dict[str, Any], cause: str,
) -> None:
    jwks_server.behaviour.mode = behaviour["mode"]
    auth = remote_auth(jwks_server, key_policy, clock)
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    assert_one_warning(keys_log, jwks_server.url, jwks_server.jwks_url, cause)
    for record in keys_log.records:  # the body is the IdP's, and may be anything: never logged
        assert "Maintenance" not in record.getMessage() and "kty" not in record.getMessage()


async def test_unresolvable_host_names_the_resolver_error(
    decide: Decide, key_policy: KeyPolicy, clock: FakeClock, keys_log: pytest.LogCaptureFixture
) -> None:
    """The case from the issue: ``ConnectError: [Errno -2] Name or service not known``, not ``ConnectError``."""
    url = "https://idp.does-not-exist.invalid/jwks"
    issuer = Issuer("https://idp.does-not-exist.invalid", algorithms=("ES256",), keys=JWKSUrl(url))
    auth = Authenticator(Config(issuers=(issuer,), audience="api", clock=clock, keys=key_policy))
    token = mint(make_key("ES256"), issuer=issuer.issuer, now=clock.now)
    await refused_503(decide, auth, token)
    record = assert_one_warning(keys_log, issuer.issuer, url, "ConnectError: [Errno ")
    assert record.cause != "ConnectError: "  # type: ignore[attr-defined]  # the resolver's words follow


async def test_refused_connection_names_the_port(
    decide: Decide, key_policy: KeyPolicy, clock: FakeClock, keys_log: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    issuer = Issuer(f"http://127.0.0.1:{port}", algorithms=("ES256",), keys=JWKSUrl(f"http://127.0.0.1:{port}/jwks"))
    auth = Authenticator(Config(issuers=(issuer,), audience="api", clock=clock, keys=key_policy))
    await refused_503(decide, auth, mint(make_key("ES256"), issuer=issuer.issuer, now=clock.now))
    assert_one_warning(keys_log, issuer.issuer, f"http://127.0.0.1:{port}/jwks", "ConnectError: All connection attempts failed")


async def test_untrusted_certificate_says_so(
    decide: Decide, jwks_server: JWKSServer, clock: FakeClock, keys_log: pytest.LogCaptureFixture
) -> None:
    """The most common production mistake after a typo: the IdP's CA is not the process's."""
    auth = remote_auth(jwks_server, KeyPolicy(tls=ssl.create_default_context()), clock)
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    assert_one_warning(keys_log, jwks_server.url, jwks_server.jwks_url, "ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED]")


async def test_slow_issuer_names_the_timeout_option(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    jwks_server.behaviour.mode, jwks_server.behaviour.trickle_interval = "trickle-headers", 0.05
    auth = remote_auth(jwks_server, dataclasses.replace(key_policy, fetch_timeout=0.5), clock)
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    assert_one_warning(keys_log, jwks_server.url, jwks_server.jwks_url, "timed out after 0.5 s (KeyPolicy.fetch_timeout)")


async def test_discovery_issuer_mismatch_names_both_issuers_and_the_discovery_url(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    jwks_server.behaviour.issuer_override = jwks_server.url + "/"  # the classic trailing slash
    auth = remote_auth(jwks_server, key_policy, clock, keys=OIDCDiscovery())
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    discovery = jwks_server.url + "/.well-known/openid-configuration"
    cause = f"discovery issuer {jwks_server.url + '/'!r} is not the configured issuer {jwks_server.url!r}"
    assert_one_warning(keys_log, jwks_server.url, discovery, cause)


async def test_a_set_without_a_usable_key_names_no_key_material(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    enc = public_jwks(make_key("ES256", kid="enc-only"))["keys"][0] | {"use": "enc"}
    jwks_server.behaviour.jwks = {"keys": [enc]}
    auth = remote_auth(jwks_server, key_policy, clock)
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    assert_one_warning(keys_log, jwks_server.url, jwks_server.jwks_url, "none of the 1 keys in the set can verify ['ES256']")
    for record in keys_log.records:
        assert enc["x"] not in record.getMessage() and enc["y"] not in record.getMessage()


async def test_jwks_file_failure_names_the_path_and_the_os_error(
    decide: Decide, tmp_path: Path, key_policy: KeyPolicy, clock: FakeClock, keys_log: pytest.LogCaptureFixture,
) -> None:
    key = make_key("ES256", kid="file-1")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key)))
    issuer = Issuer("https://file.test", algorithms=("ES256",), keys=JWKSFile(path))
    auth = Authenticator(Config(issuers=(issuer,), audience="api", clock=clock, keys=key_policy))
    os.remove(path)
    clock.advance(key_policy.default_ttl + key_policy.stale_if_error + 1)  # no stale set left to serve
    await refused_503(decide, auth, mint(key, issuer=issuer.issuer, now=clock.now))
    assert_one_warning(keys_log, issuer.issuer, str(path), "FileNotFoundError: [Errno 2] No such file or directory")


def test_a_password_in_the_url_is_never_logged() -> None:
    assert loggable_url("https://svc:s3cret@idp.test/jwks?x=1") == "https://svc:***@idp.test/jwks?x=1"
    assert loggable_url("https://idp.test/jwks") == "https://idp.test/jwks"


async def test_a_password_in_the_jwks_url_stays_out_of_the_log(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    jwks_server.behaviour.mode = "503"
    url = f"https://svc:s3cret@127.0.0.1:{jwks_server.port}/jwks"
    auth = remote_auth(jwks_server, key_policy, clock, keys=JWKSUrl(url))
    await refused_503(decide, auth, token_for(jwks_server, make_key("ES256"), clock))
    assert_one_warning(keys_log, jwks_server.url, f"https://svc:***@127.0.0.1:{jwks_server.port}/jwks", "HTTP 503")
    assert all("s3cret" not in r.getMessage() and "s3cret" not in str(r.__dict__) for r in keys_log.records)


# --- how often it is said -----------------------------------------------------------------------
async def test_an_outage_logs_once_per_fetch_attempt_not_once_per_request(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    """The failure backoff bounds the attempts, and so the warnings: 50 requests, one line."""
    jwks_server.behaviour.mode = "503"
    auth = remote_auth(jwks_server, key_policy, clock)
    token = token_for(jwks_server, make_key("ES256"), clock)
    for _ in range(25):
        await refused_503(decide, auth, token)
    clock.advance(key_policy.failure_backoff - 0.5)
    for _ in range(25):
        await refused_503(decide, auth, token)
    assert jwks_server.behaviour.hits() == 1
    assert len(fetch_warnings(keys_log)) == 1
    clock.advance(1.0)  # the backoff is over: one more attempt, one more line
    for _ in range(10):
        await refused_503(decide, auth, token)
    assert jwks_server.behaviour.hits() == 2
    assert len(fetch_warnings(keys_log)) == 2


async def test_an_outage_behind_a_stale_set_logs_once_per_attempt(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    """Requests keep passing on the last good set; the refetches, and their lines, stay bounded."""
    key = make_key("ES256", kid="k1")
    jwks_server.behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    jwks_server.behaviour.mode = "503"
    clock.advance(301)  # max-age=300 is over: stale-if-error serves the last good set
    for _ in range(30):
        assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert jwks_server.behaviour.hits() == 2
    assert len(fetch_warnings(keys_log)) == 1
    record = fetch_warnings(keys_log)[0]
    assert "HTTP 503 Service Unavailable" in record.getMessage()


async def test_recovery_is_logged_at_info_with_the_key_count(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock,
    keys_log: pytest.LogCaptureFixture,
) -> None:
    key = make_key("ES256", kid="k1")
    jwks_server.behaviour.jwks, jwks_server.behaviour.mode = public_jwks(key), "503"
    auth = remote_auth(jwks_server, key_policy, clock)
    await refused_503(decide, auth, token_for(jwks_server, key, clock))
    jwks_server.behaviour.mode = "ok"
    clock.advance(key_policy.failure_backoff)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    loaded = [r for r in keys_log.records if r.name == KEYS_LOGGER and "jwks loaded" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in loaded] == [
        (logging.INFO, f"jwks loaded for issuer {jwks_server.url!r} from {jwks_server.jwks_url} (keys: 1)")
    ]


# --- refusals of a request that carried no token are not warnings -------------------------------
ISSUER = "https://issuer.test"


def audit_app(key: Key, clock: FakeClock) -> httpx.AsyncClient:
    config = Config(
        issuers=(Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key))),),
        audience="api",
        rules=(Rule("/strict", dpop="required"),),
        dpop=DPoPSettings(allowed_hosts=("api.test",)),
        clock=clock,
    )

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = JWTMiddleware(Starlette(routes=[Route("/me", endpoint), Route("/strict", endpoint)]), Authenticator(config))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test")


def audit_levels(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    return [(r.audit["reason"], r.levelno) for r in caplog.records if r.name == "jwt_middleware.audit"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "token", "reason", "level"),
    [("/me", None, "missing_token", logging.INFO),
     ("/strict", None, "missing_token", logging.INFO),  # the DPoP-only route's bare DPoP challenge
     ("/strict", "valid", "dpop_required", logging.WARNING),  # a token was sent, with the wrong scheme
     ("/me", "forged", "bad_signature", logging.WARNING),
     ("/me", "expired", "token_expired", logging.WARNING),
     ("/me", "valid", "ok", logging.INFO)],
)
async def test_only_a_request_without_a_token_is_refused_below_warning(
    es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    path: str, token: str | None, reason: str, level: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="jwt_middleware.audit")
    tokens = {"valid": mint(es256_key, now=clock.now), "forged": mint(make_key("ES256", kid="es-1"), now=clock.now),
              "expired": mint(es256_key, now=clock.now - 3600)}
    headers = {} if token is None else {"authorization": f"Bearer {tokens[token]}"}
    async with audit_app(es256_key, clock) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == (200 if reason == "ok" else 401)
    assert audit_levels(caplog) == [(reason, level)]


async def test_a_warning_level_logger_keeps_real_refusals_and_drops_missing_tokens(
    es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The level memo (audit._LEVEL_MEMO) must answer per level: INFO off, WARNING on."""
    forged = mint(make_key("ES256", kid="es-1"), now=clock.now)
    async with audit_app(es256_key, clock) as client:
        caplog.set_level(logging.WARNING, logger="jwt_middleware.audit")
        for _ in range(2):  # the second round reads the memo
            await client.get("/me")
            await client.get("/me", headers={"authorization": f"Bearer {forged}"})
        assert audit_levels(caplog) == [("bad_signature", logging.WARNING)] * 2
        caplog.clear()
        caplog.set_level(logging.INFO, logger="jwt_middleware.audit")
        await client.get("/me")
        assert audit_levels(caplog) == [("missing_token", logging.INFO)]
