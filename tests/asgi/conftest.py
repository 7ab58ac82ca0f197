"""Fixtures for the ASGI suite: the protected app and an httpx client over ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys
from jwt_middleware.testing import FakeClock, public_jwks

from ._app import Recorder

ISSUER = "https://issuer.test"
RULES = (Rule("/feed", access="optional"), Rule("/admin", scopes=("admin",)))


@pytest.fixture
def auth(es256_key: Key, clock: FakeClock) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    return Authenticator(Config(issuers=[issuer], audience="api", rules=RULES, clock=clock))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(recorder: Recorder, auth: Authenticator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=recorder.protected(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
