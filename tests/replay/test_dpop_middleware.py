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
    ConfigError,
    DPoPRequired,
    InvalidDPoPProof,
    Issuer,
    JWTMiddleware,
    RequestView,
    Rule,
    StaticKeys,
    TrustedProxies,
    WSGIJWTMiddleware,
)
from jwt_middleware.config import DPoPSettings
from jwt_middleware.testing import FakeClock, mint, public_jwks

from ..support.dpop_client import ES256Client
from ..support.dpop_ed25519 import Ed25519Client
from ..support.uvicorn_server import serve

ISSUER = "https://issuer.test"
BASE = "https://api.test"


def make_auth(key: Key, clock: FakeClock, *, proxies: TrustedProxies | None = None, **dpop: Any) -> Authenticator:
    if "external_base_url" not in dpop:
        dpop.setdefault("allowed_hosts", ("api.test",))
    config = Config(
        issuers=(Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key))),),
        audience="api",
        rules=(Rule("/strict", dpop="required"),),
        dpop=DPoPSettings(**dpop),
        trusted_proxies=proxies,
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


async def test_bound_token_with_valid_proof_passes(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 200
    assert response.json() == {"sub": "user-1", "jkt": client_key.thumbprint()}
    assert calls == ["/me"]


async def test_replayed_proof_is_refused(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    assert (await send(app, "GET", "/me", dpop_headers(bound_token, proof))).status_code == 200
    replay = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert replay.status_code == 401
    assert challenge(replay, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    assert calls == ["/me"]


async def test_bound_token_downgraded_to_bearer_is_refused(
    es256_key: Key, bound_token: str, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    response = await send(app, "GET", "/me", {"authorization": f"Bearer {bound_token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response, "Bearer")
    assert calls == []


ALGS = "ES256 ES384 EdDSA Ed25519 RS256 PS256"


async def test_stolen_token_with_proof_by_attacker_key_is_refused(
    es256_key: Key, bound_token: str, clock: FakeClock
) -> None:
    """RFC 9449 §7.1 figure 20: the binding error sits on the DPoP challenge; Bearer, also
    accepted on this route, is offered without an error (§7.2)."""
    app, calls = make_app(make_auth(es256_key, clock))
    attacker = ES256Client()
    proof = attacker.proof("GET", f"{BASE}/me", bound_token, clock.now)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == [
        'Bearer realm="api"',
        f'DPoP realm="api", error="invalid_token", error_description="The access token is bound to another key", '
        f'algs="{ALGS}"',
    ]
    assert response.json() == {"error": "invalid_token", "error_description": "The access token is bound to another key"}
    assert calls == []


async def test_binding_mismatch_on_a_dpop_only_route_offers_no_bearer_challenge(
    es256_key: Key, bound_token: str, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = ES256Client().proof("GET", f"{BASE}/strict", bound_token, clock.now)
    response = await send(app, "GET", "/strict", dpop_headers(bound_token, proof))
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == [
        f'DPoP realm="api", error="invalid_token", error_description="The access token is bound to another key", '
        f'algs="{ALGS}"',
    ]
    missing = await send(app, "GET", "/strict", {})
    assert missing.headers.get_list("www-authenticate") == [
        f'DPoP realm="api", algs="{ALGS}"'
    ]
    assert calls == []


async def test_unbound_token_sent_with_the_dpop_scheme_is_an_invalid_token_on_the_dpop_challenge(
    es256_key: Key, client_key: ES256Client, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    plain = mint(es256_key, issuer=ISSUER, now=clock.now)
    response = await send(app, "GET", "/me", dpop_headers(plain, client_key.proof("GET", f"{BASE}/me", plain, clock.now)))
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_token"')
    assert challenge(response, "Bearer") == 'Bearer realm="api"'
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
async def test_proof_for_another_request_is_refused(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, method: str, url: str, changes: dict[str, Any]
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    if "iat" in changes:
        changes = {"iat": int(clock.now) - 3600}
    proof = client_key.proof(method, url, bound_token, clock.now, **changes)
    response = await send(app, "GET", "/me", dpop_headers(bound_token, proof))
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    assert calls == []


async def test_missing_proof_is_refused(es256_key: Key, bound_token: str, clock: FakeClock) -> None:
    app, _ = make_app(make_auth(es256_key, clock))
    response = await send(app, "GET", "/me", {"authorization": f"DPoP {bound_token}"})
    assert response.status_code == 401 and "invalid_dpop_proof" in challenge(response, "DPoP")


async def test_server_nonce_is_demanded_then_accepted(
    es256_key: Key, client_key: ES256Client, clock: FakeClock
) -> None:
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


async def test_nonces_from_one_instance_are_accepted_by_another(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
    secret = secrets.token_bytes(32)
    one, _ = make_app(make_auth(es256_key, clock, nonce_secret=secret))
    two, _ = make_app(make_auth(es256_key, clock, nonce_secret=secret))
    first = await send(one, "GET", "/me", dpop_headers(bound_token, client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now, nonce=first.headers["dpop-nonce"])
    assert (await send(two, "GET", "/me", dpop_headers(bound_token, proof))).status_code == 200


async def test_dpop_only_route_refuses_bearer_token(es256_key: Key, clock: FakeClock) -> None:
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


async def test_dpop_scheme_refused_when_dpop_is_off(
    es256_key: Key, static_auth: Authenticator, bound_token: str
) -> None:
    app, calls = make_app(static_auth)
    response = await send(app, "GET", "/me", {"authorization": f"DPoP {bound_token}", "dpop": "x.y.z"})
    assert response.status_code == 400 and calls == []


async def test_concurrent_replays_of_one_proof_let_exactly_one_through(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
    app, calls = make_app(make_auth(es256_key, clock))
    proof = client_key.proof("GET", f"{BASE}/me", bound_token, clock.now)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        responses = await asyncio.gather(
            *(client.get("/me", headers=dpop_headers(bound_token, proof)) for _ in range(50))
        )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 49
    assert len(calls) == 1


def test_concurrent_threads_replaying_one_proof_let_exactly_one_through(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
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


def test_dpop_required_error_is_a_bare_dpop_challenge(es256_key: Key, clock: FakeClock) -> None:
    status, headers, _ = make_auth(es256_key, clock).render(DPoPRequired("dpop_required"))
    assert status == 401
    dpop = [v for k, v in headers if k == "www-authenticate" and v.startswith("DPoP")]
    assert dpop and "error=" not in dpop[0] and 'algs="ES256' in dpop[0]


# -- Ed25519 proofs (RFC 9864) --------------------------------------------------------------------


async def test_ed25519_proof_from_an_independent_signer_is_accepted(es256_key: Key, clock: FakeClock) -> None:
    holder = Ed25519Client()
    token = mint(es256_key, {"cnf": {"jkt": holder.thumbprint()}}, issuer=ISSUER, now=clock.now)
    app, calls = make_app(make_auth(es256_key, clock))
    response = await send(app, "GET", "/me", dpop_headers(token, holder.proof("GET", f"{BASE}/me", token, clock.now)))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "user-1", "jkt": holder.thumbprint()}
    assert calls == ["/me"]


# -- sender constraints we cannot check (RFC 7800 §3, RFC 8705 §3.1) ------------------------------


@pytest.mark.parametrize(
    "cnf",
    [{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, {"jwk": {"kty": "EC"}}, {"kid": "k1"}, {},
     {"jkt": "placeholder", "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}],
    ids=["x5t#S256", "jwk", "kid", "empty", "jkt-and-x5t#S256"],
)
@pytest.mark.parametrize("dpop_on", [True, False], ids=["dpop-on", "dpop-off"])
async def test_token_bound_to_something_we_cannot_check_is_refused_as_invalid_token(
    es256_key: Key, static_auth: Authenticator, client_key: ES256Client, clock: FakeClock, cnf: dict[str, Any], dpop_on: bool
) -> None:
    """A token bound to an mTLS certificate (or any key other than cnf.jkt) is not a bearer token."""
    if "jkt" in cnf:
        cnf = {**cnf, "jkt": client_key.thumbprint()}
    token = mint(es256_key, {"cnf": cnf}, issuer=ISSUER, now=clock.now)
    app, calls = make_app(make_auth(es256_key, clock) if dpop_on else static_auth)
    for headers in ({"authorization": f"Bearer {token}"},
                    dpop_headers(token, client_key.proof("GET", f"{BASE}/me", token, clock.now))):
        if not dpop_on and "dpop" in headers:
            continue
        response = await send(app, "GET", "/me", headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
    assert calls == []


async def test_reason_for_an_uncheckable_binding_is_unsupported_confirmation(
    es256_key: Key, static_auth: Authenticator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="jwt_middleware.audit")
    token = mint(es256_key, {"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, issuer=ISSUER,
                 now=clock.now)
    app, _ = make_app(static_auth)
    response = await send(app, "GET", "/me", {"authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert [r.__dict__["audit"]["reason"] for r in caplog.records if r.name == "jwt_middleware.audit"] == [
        "unsupported_confirmation"
    ]


# -- the host a proof was made for (issue 9: trusted proxies, allowed_hosts) -----------------------

A = "https://a.test"
B = "https://b.test"


class WSGIApp:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]


async def deliver(face: str, auth: Authenticator, base: str, headers: dict[str, str]) -> tuple[httpx.Response, list[str]]:
    """GET /me on ``base`` through the ASGI or the WSGI adapter (peer 127.0.0.1 either way)."""
    if face == "asgi":
        app, calls = make_app(auth)
        response = await send_to(app, base, headers)
        return response, calls
    wsgi = WSGIApp()
    transport = httpx.WSGITransport(app=WSGIJWTMiddleware(wsgi, auth))
    with httpx.Client(transport=transport, base_url=base) as client:
        return client.get("/me", headers=headers), wsgi.calls


async def send_to(app: JWTMiddleware, base: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
        return await client.get("/me", headers=headers)


FACES = pytest.mark.parametrize("face", ["asgi", "wsgi"])


@FACES
async def test_proof_made_for_host_a_is_refused_at_host_b(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, face: str
) -> None:
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test", "b.test"))
    proof = client_key.proof("GET", f"{A}/me", bound_token, clock.now)
    response, calls = await deliver(face, auth, B, dpop_headers(bound_token, proof))
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    accepted, _ = await deliver(face, auth, A, dpop_headers(bound_token, proof))
    assert accepted.status_code == 200
    assert calls == []


@FACES
@pytest.mark.parametrize(
    "spoof",
    [{"forwarded": "proto=https;host=a.test"}, {"x-forwarded-host": "a.test", "x-forwarded-proto": "https"}],
    ids=["forwarded", "x-forwarded"],
)
@pytest.mark.parametrize(
    "proxies",
    [None, TrustedProxies(("10.0.0.0/8",), x_forwarded_host=True),
     TrustedProxies(("10.0.0.0/8",), headers="forwarded")],
    ids=["none-trusted", "x-forwarded-peer-untrusted", "forwarded-peer-untrusted"],
)
async def test_client_sent_forwarded_host_does_not_move_a_proof_to_another_server(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, face: str, spoof: dict[str, str], proxies: TrustedProxies | None
) -> None:
    """Issue 9: a proof for A, sent to B with a forwarded header naming A, from a peer no one trusts."""
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test", "b.test"), proxies=proxies)
    proof = client_key.proof("GET", f"{A}/me", bound_token, clock.now)
    response, calls = await deliver(face, auth, B, {**dpop_headers(bound_token, proof), **spoof})
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_dpop_proof"')
    assert calls == []


@FACES
@pytest.mark.parametrize(
    ("proxies", "forwarded"),
    [
        (TrustedProxies(("127.0.0.1",), headers="forwarded"),
         {"forwarded": "for=192.0.2.9;proto=https;host=b.test, for=198.51.100.7;proto=https;host=a.test"}),
        (TrustedProxies(("127.0.0.1",), x_forwarded_host=True),
         {"x-forwarded-for": "192.0.2.9, 198.51.100.7", "x-forwarded-proto": "https",
          "x-forwarded-host": "b.test, a.test"}),
    ],
    ids=["forwarded", "x-forwarded"],
)
async def test_through_a_trusted_proxy_its_rightmost_value_decides_and_the_clients_is_ignored(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, face: str, proxies: TrustedProxies | None, forwarded: dict[str, str]
) -> None:
    """The proxy (peer 127.0.0.1) reached the app over http at an internal name; the client
    prepended a value naming B. A proof for A passes, a proof for B does not."""
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test", "b.test"), proxies=proxies)
    for_a = client_key.proof("GET", f"{A}/me", bound_token, clock.now)
    for_b = client_key.proof("GET", f"{B}/me", bound_token, clock.now)
    ok, calls = await deliver(face, auth, "http://internal:8080", {**dpop_headers(bound_token, for_a), **forwarded})
    assert ok.status_code == 200, ok.text
    refused, more = await deliver(face, auth, "http://internal:8080", {**dpop_headers(bound_token, for_b), **forwarded})
    assert refused.status_code == 401 and more == []
    assert calls == ["/me"]


@FACES
async def test_mixing_header_families_reads_only_the_configured_one(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, face: str
) -> None:
    """A trusted proxy writing X-Forwarded-*; the Forwarded header (client-sent) never counts."""
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test", "b.test"),
                     proxies=TrustedProxies(("127.0.0.1",), x_forwarded_host=True))
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "a.test", "forwarded": "proto=https;host=b.test"}
    for_b = client_key.proof("GET", f"{B}/me", bound_token, clock.now)
    refused, calls = await deliver(face, auth, "http://internal:8080", {**dpop_headers(bound_token, for_b), **headers})
    assert refused.status_code == 401 and calls == []
    for_a = client_key.proof("GET", f"{A}/me", bound_token, clock.now)
    ok, calls = await deliver(face, auth, "http://internal:8080", {**dpop_headers(bound_token, for_a), **headers})
    assert ok.status_code == 200 and calls == ["/me"]


@FACES
async def test_host_not_in_allowed_hosts_is_a_400_before_the_proof_is_judged(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock, face: str
) -> None:
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test",))
    proof = client_key.proof("GET", f"{B}/me", bound_token, clock.now)
    response, calls = await deliver(face, auth, B, dpop_headers(bound_token, proof))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert calls == []


async def test_proof_for_host_a_is_refused_at_host_b_through_a_real_uvicorn(
    es256_key: Key, client_key: ES256Client, bound_token: str, clock: FakeClock
) -> None:
    """Through a real server's parser: its own proxy-header handling off, as the README says."""
    auth = make_auth(es256_key, clock, allowed_hosts=("a.test", "b.test"),
                     proxies=TrustedProxies(("127.0.0.1",), x_forwarded_host=True))
    app, calls = make_app(auth)
    with serve(app, proxy_headers=False) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            proof = client_key.proof("GET", f"{A}/me", bound_token, clock.now)
            spoofed = {**dpop_headers(bound_token, proof), "host": "b.test", "forwarded": "proto=https;host=a.test"}
            refused = await client.get("/me", headers=spoofed)
            forwarded = {**dpop_headers(bound_token, proof), "host": "b.test", "x-forwarded-proto": "https",
                         "x-forwarded-host": "b.test, a.test"}
            ok = await client.get("/me", headers=forwarded)
    assert refused.status_code == 401 and 'error="invalid_dpop_proof"' in challenge(refused, "DPoP")
    assert ok.status_code == 200, ok.text
    assert calls == ["/me"]


# -- configuration ---------------------------------------------------------------------------------


def test_dpop_without_allowed_hosts_or_external_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"external_base_url .* or allowed_hosts"):
        DPoPSettings()
    with pytest.raises(ConfigError, match="not both"):
        DPoPSettings(external_base_url="https://api.test", allowed_hosts=("api.test",))


@pytest.mark.parametrize("host", ["https://api.test", "api.test/v1", "*.api.test", "api.test:443", "api.test:80",
                                  "api.test:", "", "api test"])
def test_malformed_allowed_host_is_a_config_error(host: str) -> None:
    with pytest.raises(ConfigError, match=r"DPoPSettings\.allowed_hosts"):
        DPoPSettings(allowed_hosts=(host,))


@pytest.mark.parametrize("url", ["api.test", "ftp://api.test", "https://user@api.test", "https://api.test/?a=1",
                                 "https://api.test/#f", "https:///v1"])
def test_malformed_external_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"DPoPSettings\.external_base_url"):
        DPoPSettings(external_base_url=url)


def test_trust_forwarded_is_gone_not_silently_ignored() -> None:
    with pytest.raises(TypeError, match="trust_forwarded"):
        DPoPSettings(allowed_hosts=("api.test",), trust_forwarded=True)  # type: ignore[call-arg]


def test_allowed_hosts_are_kept_lower_case_as_a_tuple() -> None:
    assert DPoPSettings(allowed_hosts=["API.test", "localhost:8000"]).allowed_hosts == (  # type: ignore[arg-type]
        "api.test", "localhost:8000"
    )


@pytest.mark.parametrize("face", ["asgi", "wsgi"])
async def test_dpop_token_refused_by_a_claim_check_gets_its_error_on_the_dpop_challenge(
    face: str, es256_key: Key, client_key: ES256Client, clock: FakeClock
) -> None:
    """RFC 9449 §7.1: the client used the DPoP scheme, so whatever step refuses its token (here
    the expiry check, long before the sender step), the error sits on the DPoP challenge and
    the Bearer challenge, offered beside it, carries none."""
    expired = mint(es256_key, {"cnf": {"jkt": client_key.thumbprint()}}, issuer=ISSUER, now=clock.now - 7200)
    proof = client_key.proof("GET", f"{BASE}/me", expired, clock.now)
    response, calls = await deliver(face, make_auth(es256_key, clock), BASE, dpop_headers(expired, proof))
    assert response.status_code == 401
    assert challenge(response, "DPoP").startswith('DPoP realm="api", error="invalid_token"')
    assert challenge(response, "Bearer") == 'Bearer realm="api"'
    assert calls == []
