"""The middleware in a real uvicorn on 127.0.0.1, hit over the socket with httpx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, StaticKeys
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ._app import Recorder, serve
from .conftest import ISSUER, RULES

NOW = 1_800_000_000.0


@dataclass
class Live:
    base: str
    recorder: Recorder
    clock: FakeClock


@pytest.fixture(scope="module")
def live(es256_key: Key) -> Iterator[Live]:
    clock = FakeClock(NOW)
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    auth = Authenticator(Config(issuers=[issuer], audience="api", rules=RULES, clock=clock))
    recorder = Recorder()
    with serve(recorder.protected(auth)) as port:
        assert recorder.lifespan == ["startup"]
        yield Live(f"http://127.0.0.1:{port}", recorder, clock)
    assert recorder.lifespan == ["startup", "shutdown"]


@pytest.fixture
def http(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base, timeout=10) as client:
        yield client


def test_valid_token_over_the_socket(live: Live, http: httpx.Client, es256_key: Key) -> None:
    token = mint(es256_key, {"sub": "alice", "scope": "read"}, now=live.clock.now)
    response = http.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "display_name": "alice", "scopes": ["read"],
                               "subject": "alice", "state": "yes"}  # lifespan state reached the request
    assert http.get("/read", headers={"authorization": f"Bearer {token}"}).json() == {"read": True, "user": "alice"}


def test_missing_token_over_the_socket(live: Live, http: httpx.Client) -> None:
    calls = live.recorder.calls
    response = http.get("/whoami")
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == ['Bearer realm="api"']
    assert response.headers["cache-control"] == "no-store"
    assert live.recorder.calls == calls


def test_expired_token_over_the_socket(live: Live, http: httpx.Client, es256_key: Key) -> None:
    calls = live.recorder.calls
    token = mint(es256_key, now=live.clock.now - 600, lifetime=300)
    response = http.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="The access token expired"'
    )
    assert live.recorder.calls == calls


def test_forged_token_over_the_socket(live: Live, http: httpx.Client) -> None:
    calls = live.recorder.calls
    forged = mint(make_key("ES256", kid="es-1"), now=live.clock.now)
    for method in ("GET", "POST", "HEAD"):
        response = http.request(method, "/whoami", headers={"authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        if method == "HEAD":
            assert response.content == b""
        else:
            assert response.json()["error"] == "invalid_token"
    assert live.recorder.calls == calls


def test_query_token_over_the_socket(live: Live, http: httpx.Client, es256_key: Key) -> None:
    token = mint(es256_key, now=live.clock.now)
    response = http.get("/whoami", params={"access_token": token})
    assert response.status_code == 400
    assert token not in response.text and token not in str(response.headers)


async def test_concurrent_requests_over_the_socket(live: Live, es256_key: Key) -> None:
    tokens = [mint(es256_key, {"sub": f"user-{i}"}, now=live.clock.now) for i in range(20)]
    forged = mint(make_key("ES256", kid="es-1"), now=live.clock.now)
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as client:
        good = [client.get("/whoami", headers={"authorization": f"Bearer {t}"}) for t in tokens]
        bad = [client.get("/whoami", headers={"authorization": f"Bearer {forged}"}) for _ in range(10)]
        responses = await asyncio.gather(*good, *bad)
    assert [r.json()["subject"] for r in responses[:20]] == [f"user-{i}" for i in range(20)]
    assert {r.status_code for r in responses[20:]} == {401}
