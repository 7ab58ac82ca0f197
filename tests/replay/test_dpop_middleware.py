"""DPoP (RFC 9449) through the ASGI middleware: a stolen bound token is useless without the key,
and a captured proof is useless twice."""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwt_middleware import (
    Authenticator,
    Config,
    DPoPRequired,
    InvalidDPoPProof,
    Issuer,
    JWTMiddleware,
    RequestView,
    Rule,
    StaticKeys,
)
from jwt_middleware.config import DPoPSettings
from jwt_middleware.testing import FakeClock, mint, public_jwks

from ..support.dpop_client import ES256Client

ISSUER = "https://issuer.test"
BASE = "https://api.test"


def make_auth(key: Key, clock: FakeClock, **dpop: Any) -> Authenticator:
    config = Config(
        issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))],
        audience="api",
        rules=(Rule("/strict", dpop="required"),),
        dpop=DPoPSettings(**dpop),
        clock=clock,
    )
    return Authenticator(config)


def make_app(auth: Authenticator) -> tuple[JWTMiddleware, list[str]]:
    calls: list[str] = []

    async def endpoint(request: Request) -> JSONResponse:
        calls.append(request.url.path)
        identity = request.scope["jwt_middleware.identity"]
        return JSONResponse({"sub": identity.subject, "jkt": identity.binding})

    app = Starlette(routes=[Route("/me", endpoint, methods=["GET", "POST"]), Route("/strict", endpoint)])
    return JWTMiddleware(app, auth), calls


@pytest.fixture
def client_key() -> ES256Client:
    return ES256Client()


@pytest.fixture
def bound_token(es256_key: Key, client_key: ES256Client, clock: FakeClock) -> str:
    return mint(es256_key, {"cnf": {"jkt": client_key.thumbprint()}}, issuer=ISSUER, now=clock.now)


async def send(app: JWTMiddleware, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        return await client.request(method, path, headers=headers)


def challenge(response: httpx.Response, scheme: str) -> str:
    """The one WWW-Authenticate challenge of ``scheme`` (the server offers Bearer and DPoP)."""
    found = [c for c in response.headers.get_list("www-authenticate") if c.startswith(scheme + " ")]
    assert len(found) == 1, response.headers.get_list("www-authenticate")
    return found[0]


def dpop_headers(token: str, proof: str) -> dict[str, str]:
    return {"authorization": f"DPoP {token}", "dpop": proof}


async def test_bound_token_with_valid_proof_passes(es256_key, client_key, bound_token, clock) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 200
    assert response.json() == {"sub": "user-1", "jkt": client_key.thumbprint()}
    assert calls == ["/me"]


async def test_replayed_proof_is_refused(es256_key, client_key, bound_token, clock) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    assert (await send(app, "GET", "/me", dpop_headers(bound_token, proof))).status_code == 200
    replay = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert replay.status_code == 401
    assert challenge(replay, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    assert calls == ["/me"]


async def test_bound_token_downgraded_to_bearer_is_refused(es256_key, bound_token, clock) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    response = await send(app, "GET", "/me", {"authorization": f"Bearer {bound_token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response, "Bearer")
    assert calls == []


async def test_stolen_token_with_proof_by_attacker_key_is_refused(es256_key, bound_token, clock) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    attacker = ES256Client()
    proof = attacker.proof("GET", f"{BASE}/me", bound_token, clock.now)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 401 and 'error="invalid_token"' in challenge(response, "Bearer")
    assert calls == []


@pytest.mark.parametrize(
    ("method", "url", "changes"),
    [
        ("POST", f"{BASE}/me", {}),  # proof for another method
        ("GET", f"{BASE}/other", {}),  # another path
        ("GET", "https://evil.test/me", {}),  # another host
        ("GET", f"{BASE}/me", {"ath": "A" * 43}),  # another token's hash
        ("GET", f"{BASE}/me", {"ath": None}),  # no ath
        ("GET", f"{BASE}/me", {"iat": 0}),  # stale
    ],
)
async def test_proof_for_another_request_is_refused(es256_key, client_key, bound_token, clock, method, url, changes):
    app, calls = make_app(make_auth(es256_key, clock))
    if "iat" in changes:
        changes = {"iat": int(clock.now) - 3600}
    proof = client_key.proof(method, url, bound_token, clock.now, **changes)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    assert calls == []


async def test_missing_proof_is_refused(es256_key, bound_token, clock) -> None:
    app, _ = make_app(make_auth(es256_key, clock))
    response = await send(app, "GET", "/me", {"authorization": f"DPoP {bound_token}"})
    assert response.status_code == 401 and "invalid_dpop_proof" in challenge(response, "DPoP")


async def test_server_nonce_is_demanded_then_accepted(es256_key, client_key, clock) -> None:
    bound_token = mint(es256_key, {"cnf": {"jkt": client_key.thumbprint()}}, issuer=ISSUER, now=clock.now,
                       lifetime=3600)  # outlives the nonce steps below
    app, calls = make_app(make_auth(es256_key, clock, nonce_secret=secrets.token_bytes(32)))
    first = await send(app, "GET", "/me", dpop_headers(bound_token, client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)))
    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in challenge(first, "DPoP")
    nonce = first.headers["dpop-nonce"]
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now, nonce=nonce)
    assert (await send(app, "GET", "/me", dpop_headers(bound_token, proof))).status_code == 200
    clock.advance(3 * 300)  # two steps later the nonce is stale
    stale = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now, nonce=nonce)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, stale))
    assert response.status_code == 401 and 'error="use_dpop_nonce"' in challenge(response, "DPoP")
    assert response.headers["dpop-nonce"] != nonce
    assert calls == ["/me"]


async def test_nonces_from_one_instance_are_accepted_by_another(es256_key, client_key, bound_token, clock) -> None:
    secret = secrets.token_bytes(32)
    one, _ = make_app(make_auth(es256_key, clock, nonce_secret=secret))
    two, _ = make_app(make_auth(es256_key, clock, nonce_secret=secret))
    first = await send(one, "GET", "/me", dpop_headers(bound_token, client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now, nonce=first.headers["dpop-nonce"])
    assert (await send(two, "GET", "/me", dpop_headers(bound_token, proof))).status_code == 200


async def test_dpop_only_route_refuses_bearer_token(es256_key, clock) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    plain = mint(es256_key, issuer=ISSUER, now=clock.now)
    assert (await send(app, "GET", "/me", {"authorization": f"Bearer {plain}"})).status_code == 200
    response = await send(app, "GET", "/strict", {"authorization": f"Bearer {plain}"})
    assert response.status_code == 401
    challenges = response.headers.get_list("www-authenticate")
    assert any(c.startswith('DPoP realm="api"') and 'algs="' in c for c in challenges)
    missing = await send(app, "GET", "/strict", {})
    assert missing.status_code == 401 and any(c.startswith("DPoP") for c in missing.headers.get_list("www-authenticate"))
    assert calls == ["/me"]


async def test_dpop_scheme_refused_when_dpop_is_off(es256_key, static_auth, bound_token) -> None:
    app, calls = make_app(static_auth)
    response = await send(app, "GET", "/me", {"authorization": f"DPoP {bound_token}", "dpop": "x.y.z"})
    assert response.status_code == 400 and calls == []


async def test_concurrent_replays_of_one_proof_let_exactly_one_through(es256_key, client_key, bound_token, clock):
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        responses = await asyncio.gather(
            *(client.get("/me", headers=dpop_headers(bound_token, proof)) for _ in range(50))
        )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 49
    assert len(calls) == 1


def test_concurrent_threads_replaying_one_proof_let_exactly_one_through(es256_key, client_key, bound_token, clock):
    auth = make_auth(es256_key, clock)
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    view = RequestView("GET", "/me", [(b"authorization", f"DPoP {bound_token}".encode()), (b"dpop", proof.encode()),
                                      (b"host", b"api.test")], scheme="https")
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        barrier.wait()
        try:
            auth.authenticate(view)
            outcomes.append("ok")
        except InvalidDPoPProof:
            outcomes.append("replay")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(outcomes) == ["ok"] + ["replay"] * 19


def test_dpop_required_error_is_a_bare_dpop_challenge(es256_key, clock) -> None:
    status, headers, _ = make_auth(es256_key, clock).render(DPoPRequired("dpop_required"))
    assert status == 401
    dpop = [v for k, v in headers if k == "www-authenticate" and v.startswith("DPoP")]
    assert dpop and "error=" not in dpop[0] and 'algs="ES256' in dpop[0]
