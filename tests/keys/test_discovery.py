"""OpenID Connect discovery (OIDC Discovery §4): jwks_uri from the document, issuer matched exactly."""

from __future__ import annotations

import pytest

from jwt_middleware import Authenticator, Config, Issuer, KeyPolicy, OIDCDiscovery, Unavailable
from jwt_middleware.testing import FakeClock, make_key, public_jwks

from ..support.jwks_server import JWKSServer
from .conftest import Decide
from .helpers import await_until, bearer, remote_auth, token_for

DISCOVERY = "/.well-known/openid-configuration"


async def test_issuer_without_keys_discovers_its_jwks_uri_by_default(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    behaviour.jwks_uri_override = jwks_server.url + "/jwks-moved"  # only the document says where
    auth = remote_auth(jwks_server, key_policy, clock, keys=OIDCDiscovery())
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert (behaviour.hits(DISCOVERY), behaviour.hits("/jwks-moved"), behaviour.hits("/jwks")) == (1, 1, 0)


async def test_issuer_with_default_keys_uses_discovery(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    jwks_server.behaviour.jwks = public_jwks(key)
    issuer = Issuer(jwks_server.url, algorithms=("ES256",))  # keys=None
    auth = Authenticator(Config(issuers=(issuer,), audience="api", clock=clock, keys=key_policy))
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert jwks_server.behaviour.hits(DISCOVERY) == 1


async def test_discovery_document_naming_another_issuer_yields_no_keys_and_503(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    behaviour.issuer_override = "https://attacker.example"
    auth = remote_auth(jwks_server, key_policy, clock, keys=OIDCDiscovery())
    with pytest.raises(Unavailable) as caught:
        await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert caught.value.status == 503 and caught.value.retry_after
    assert behaviour.hits("/jwks") == 0  # the keys of a mismatched document are never even fetched


async def test_explicit_discovery_url_is_used(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    jwks_server.behaviour.jwks = public_jwks(key)
    source = OIDCDiscovery(jwks_server.url + DISCOVERY)
    auth = remote_auth(jwks_server, key_policy, clock, keys=source)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert jwks_server.behaviour.hits(DISCOVERY) == 1


async def test_discovered_jwks_uri_is_reused_on_refresh_and_rediscovered_after_a_failure(
    decide: Decide, jwks_server: JWKSServer, key_policy: KeyPolicy, clock: FakeClock
) -> None:
    key = make_key("ES256", kid="k1")
    behaviour = jwks_server.behaviour
    behaviour.jwks = public_jwks(key)
    auth = remote_auth(jwks_server, key_policy, clock, keys=OIDCDiscovery())
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    clock.advance(300)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))
    assert (behaviour.hits(DISCOVERY), behaviour.hits("/jwks")) == (1, 2)
    behaviour.mode = "garbage"  # the JWKS answer goes bad: next time, ask the document again
    clock.advance(300)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))  # stale set serves
    behaviour.mode = "ok"
    clock.advance(key_policy.failure_backoff)
    attempts = auth.keys.attempts(jwks_server.url)
    assert await decide(auth, bearer(token_for(jwks_server, key, clock)))  # retried in the background
    assert await await_until(lambda: auth.keys.attempts(jwks_server.url) == attempts + 1)
    assert behaviour.hits(DISCOVERY) == 2
