"""Config.claims_validator: the app's value checks after ours, sync or async, under ASGI and WSGI.

It runs once per newly verified token, before the token is cached, on every path that verifies
one (the inline verify, a cold key cache, DPoP, one-time routes), never on a cache hit; its
refusals are our 401/403 with the challenge, and its bugs a logged 503 that names no claim value.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from jwt_middleware import Authenticator, Config, ConfigError, Issuer, JWKSUrl, KeyPolicy, Rule
from jwt_middleware.core.effects import ValidateClaims
from jwt_middleware.core.pipeline import Trace
from jwt_middleware.errors import ClaimsRejected, InvalidToken, Unavailable
from jwt_middleware.request import RequestView
from jwt_middleware.testing import FakeClock, mint, public_jwks

from ..support.jwks_server import JWKSServer
from ._support import (
    DRIVERS,
    ISSUER,
    KEY,
    MARKER,
    MODES,
    NOW,
    Calls,
    Driver,
    Mode,
    bearer,
    body,
    challenges,
    client,
    config,
    in_mode,
    tenant_validator,
    token,
)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_tenant_outside_the_allowlist_is_refused_with_our_challenge(
    driver: Driver, mode: Mode, clock: FakeClock
) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, claims_validator=tenant_validator(mode, calls)))
    with client(driver, auth) as http:
        accepted = http.get("/me", headers=bearer(token(clock, tenant="acme")))
        rejected = http.get("/me", headers=bearer(token(clock, tenant="other")))
        read_only = http.get("/me", headers=bearer(token(clock, tenant="readonly")))
    assert accepted.status_code == 200 and accepted.json()["sub"] == "user-1"
    assert rejected.status_code == 401
    assert challenges(rejected) == [
        'Bearer realm="api", error="invalid_token", error_description="The access token is not accepted here"'
    ]
    assert body(rejected) == {"error": "invalid_token", "error_description": "The access token is not accepted here"}
    assert rejected.headers["cache-control"] == "no-store"
    assert read_only.status_code == 403
    assert challenges(read_only) == [
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="write"'
    ]
    assert [claims["tenant"] for claims in calls.seen] == ["acme", "other", "readonly"]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_runs_once_per_token_while_it_is_cached_and_again_for_a_refused_one(
    driver: Driver, mode: Mode, clock: FakeClock
) -> None:
    """A refusal is never filed as verified: the same refused token is judged (and refused) again."""
    calls = Calls()
    auth = Authenticator(config(clock, claims_validator=tenant_validator(mode, calls)))
    good, bad = token(clock, tenant="acme"), token(clock, tenant="other")
    with client(driver, auth) as http:
        statuses = [http.get("/me", headers=bearer(good)).status_code for _ in range(3)]
        refused = [http.get("/me", headers=bearer(bad)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200] and refused == [401, 401, 401]
    assert [claims["tenant"] for claims in calls.seen] == ["acme", "other", "other", "other"]
    assert len(auth._ctx.verified) == 1  # only the accepted token is cached


def test_the_validator_gets_the_verified_claims_read_only(clock: FakeClock) -> None:
    seen: list[Any] = []

    def validate(claims: Mapping[str, Any]) -> None:
        seen.append(dict(claims))
        with pytest.raises(TypeError):
            claims["tenant"] = "acme"  # type: ignore[index]
        with pytest.raises(TypeError):
            claims["groups"][0] = "admins"

    auth = Authenticator(config(clock, claims_validator=validate))
    with client("asgi", auth) as http:
        assert http.get("/me", headers=bearer(token(clock, tenant="t1", groups=["staff"]))).status_code == 200
    assert seen[0]["tenant"] == "t1" and seen[0]["groups"] == ("staff",) and seen[0]["iss"] == ISSUER


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_validator_bug_is_a_logged_503_naming_no_claim_value(
    driver: Driver, mode: Mode, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def validate(claims: Mapping[str, Any]) -> None:
        raise ValueError(f"unexpected tenant {claims['tenant']}")

    auth = Authenticator(config(clock, claims_validator=in_mode(mode, validate)))
    caplog.set_level(logging.DEBUG, logger="jwt_middleware")
    with client(driver, auth) as http:
        response = http.get("/me", headers=bearer(token(clock, tenant=MARKER)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert body(response) == {"error": "temporarily_unavailable",
                              "error_description": "Authentication is temporarily unavailable"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "hook claims_validator raised ValueError" in errors[0].getMessage()
    assert MARKER not in caplog.text and MARKER not in response.text and MARKER not in str(response.headers)
    assert any(getattr(r, "audit", {}).get("reason") == "hook_error" for r in caplog.records)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_validator_returning_false_refuses_instead_of_passing(
    driver: Driver, mode: Mode, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """``return claims["tenant"] == "acme"`` reads like a check; it must not be taken as an accept."""
    auth = Authenticator(config(clock, claims_validator=in_mode(mode, lambda claims: False)))
    with client(driver, auth) as http:
        assert http.get("/me", headers=bearer(token(clock))).status_code == 503
    assert "hook claims_validator returned a bool" in caplog.text


def test_a_sync_function_returning_a_coroutine_is_awaited_under_both_drivers(clock: FakeClock) -> None:
    calls = Calls()
    coroutine_validator = tenant_validator("async", calls)
    wrapped = lambda claims: coroutine_validator(claims)  # noqa: E731 (a plain function, on purpose)
    auth = Authenticator(config(clock, claims_validator=wrapped))
    for driver in DRIVERS:
        with client(driver, auth) as http:
            assert http.get("/me", headers=bearer(token(clock, tenant="other"))).status_code == 401
    assert len(calls) == 2


def test_a_callable_object_with_an_async_call_is_taken_as_async(clock: FakeClock) -> None:
    class TenantCheck:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, claims: Mapping[str, Any]) -> None:
            self.calls += 1
            if claims.get("tenant") != "acme":
                raise ClaimsRejected("tenant_not_allowed")

    check = TenantCheck()
    auth = Authenticator(config(clock, claims_validator=check))
    assert auth._claims_check is not None and auth._claims_check.hook.is_async
    with client("wsgi", auth) as http:
        assert http.get("/me", headers=bearer(token(clock, tenant="other"))).status_code == 401
        assert http.get("/me", headers=bearer(token(clock))).status_code == 200
    assert check.calls == 2


def test_an_async_validator_is_an_effect_of_the_flow(clock: FakeClock) -> None:
    """Stepped by hand, as the drivers do: the flow yields ValidateClaims and caches only after it."""
    calls = Calls()
    auth = Authenticator(config(clock, claims_validator=tenant_validator("async", calls)))
    scope = {"type": "http", "method": "GET", "path": "/me", "raw_path": b"/me", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {token(clock)}".encode())]}
    flow = auth.flow(RequestView.from_asgi(scope), Trace())
    effect = next(flow)
    assert isinstance(effect, ValidateClaims)
    assert len(auth._ctx.verified) == 0  # not cached before the validator accepted
    import asyncio

    assert asyncio.run(effect.pending) is None  # type: ignore[arg-type]
    with pytest.raises(StopIteration) as done:
        flow.send(None)
    assert done.value.value.subject == "user-1"
    assert len(auth._ctx.verified) == 1


def test_runs_when_the_keys_are_fetched_first(
    jwks_server: JWKSServer, client_tls: ssl.SSLContext, clock: FakeClock
) -> None:
    """A cold key cache: the verification happens in finish(), after the fetch."""
    jwks_server.behaviour.jwks = public_jwks(KEY)
    calls = Calls()
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url))
    keys = KeyPolicy(tls=client_tls, fetch_timeout=5.0)
    pairs: tuple[tuple[Driver, Mode], ...] = (("asgi", "async"), ("wsgi", "sync"))
    for driver, mode in pairs:
        auth = Authenticator(Config(issuers=[issuer], audience="api", clock=clock, keys=keys,
                                    claims_validator=tenant_validator(mode, calls)))
        with client(driver, auth) as http:
            assert http.get("/me", headers=bearer(token(clock, tenant="other"))).status_code == 401
            assert http.get("/me", headers=bearer(token(clock))).status_code == 200
    assert [claims["tenant"] for claims in calls.seen] == ["other", "acme", "other", "acme"]
    assert jwks_server.behaviour.hits() == 2  # one cold fetch per Authenticator


@pytest.mark.parametrize("mode", MODES)
def test_runs_on_one_time_routes_and_a_refusal_burns_no_jti(mode: Mode, clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, rules=(Rule("/me", one_time=True),),
                                claims_validator=tenant_validator(mode, calls)))
    refused_token = token(clock, tenant="other")
    with client("wsgi", auth) as http:
        assert http.get("/me", headers=bearer(refused_token)).status_code == 401
        assert http.get("/me", headers=bearer(refused_token)).status_code == 401  # not "replayed"
        once = token(clock)
        assert http.get("/me", headers=bearer(once)).status_code == 200
        replay = http.get("/me", headers=bearer(once))
    assert replay.status_code == 401 and 'error="invalid_token"' in replay.headers["www-authenticate"]
    # the replay is a verified-cache hit, refused by the jti check without asking the validator
    assert [claims["tenant"] for claims in calls.seen] == ["other", "other", "acme"]


@pytest.mark.parametrize("mode", MODES)
def test_runs_for_dpop_bound_tokens(mode: Mode, clock: FakeClock) -> None:
    from jwt_middleware import DPoPSettings

    from ..support.dpop_client import ES256Client

    dpop = ES256Client()
    calls = Calls()
    auth = Authenticator(config(clock, dpop=DPoPSettings(allowed_hosts=("api.test",)),
                                claims_validator=tenant_validator(mode, calls)))

    def get(http: httpx.Client, tenant: str) -> httpx.Response:
        bound = mint(KEY, {"tenant": tenant, "cnf": {"jkt": dpop.thumbprint()}}, issuer=ISSUER, now=clock.now)
        proof = dpop.proof("GET", "https://api.test/me", bound, clock.now)
        return http.get("/me", headers={"authorization": f"DPoP {bound}", "dpop": proof})

    for driver in DRIVERS:
        with client(driver, auth) as http:
            refused, accepted = get(http, "other"), get(http, "acme")
        assert refused.status_code == 401 and accepted.status_code == 200
        assert any(c.startswith('DPoP realm="api", error="invalid_token"') for c in challenges(refused))
    assert [claims["tenant"] for claims in calls.seen] == ["other", "acme"] * 2


def test_a_verified_cache_hit_never_runs_it_again(clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, claims_validator=tenant_validator("sync", calls)))
    good = token(clock)
    with client("asgi", auth) as asgi, client("wsgi", auth) as wsgi:
        for http in (asgi, wsgi, asgi, wsgi):
            assert http.get("/me", headers=bearer(good)).status_code == 200
    assert len(calls) == 1  # one Authenticator, one verified-token cache


def test_direct_calls_raise_the_refusal() -> None:
    clock = FakeClock(NOW)
    auth = Authenticator(config(clock, claims_validator=tenant_validator("async", Calls())))
    scope = {"type": "http", "method": "GET", "path": "/me", "raw_path": b"/me", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {token(clock, tenant='other')}".encode())]}
    with pytest.raises(ClaimsRejected) as refused:
        auth.authenticate(RequestView.from_asgi(scope))
    assert isinstance(refused.value, InvalidToken) and refused.value.reason == "tenant_not_allowed"
    assert ClaimsRejected().reason == "claims_rejected" and not isinstance(ClaimsRejected(), Unavailable)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tenant", "Config.claims_validator: a str given; give a function claims_validator(claims), or None"),
        (lambda: None, "cannot be called as claims_validator(claims)"),
        (lambda claims, extra: None, "cannot be called as claims_validator(claims)"),
    ],
)
def test_a_validator_that_cannot_be_called_with_the_claims_is_a_config_error(
    value: object, message: str, clock: FakeClock
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config(clock, claims_validator=value)
