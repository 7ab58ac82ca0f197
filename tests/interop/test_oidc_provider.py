"""End to end against a real OpenID provider: npm ``oidc-provider`` issues RFC 9068 JWT access tokens
(ES256, typ at+jwt, resource indicator https://api.test) by client_credentials; our middleware finds its
keys by OIDC discovery and guards a Starlette app served by uvicorn. Tokens and DPoP proofs come from
an independent node client (oauth4webapi, dpop), never from our own code.

Run scripts/install-interop.sh first (npm ci); without node these tests skip.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, KeyPolicy, OIDCDiscovery
from jwt_middleware.config import DPoPSettings

from ..support.uvicorn_server import serve
from .conftest import API, CLIENT_ID, OTHER, Provider

pytestmark = pytest.mark.timeout(60)


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


def kid_of(token: str) -> str:
    return str(_segment(token, 0)["kid"])


def build_app(issuer: str, *, dpop_host: str | None) -> JWTMiddleware:
    """A one-route Starlette app behind JWTMiddleware, trusting the provider through discovery only;
    with ``dpop_host``, DPoP proofs for that host (``allowed_hosts``) are accepted too."""

    async def me(request: Request) -> JSONResponse:
        identity = request.scope["jwt_middleware.identity"]
        return JSONResponse({
            "sub": identity.subject,
            "client_id": identity.claims.get("client_id"),
            "iss": identity.issuer,
            "scopes": sorted(identity.scopes),
            "binding": identity.binding,
            "user": request.user.display_name,
        })

    config = Config(
        issuers=[Issuer(issuer, algorithms=("ES256",), keys=OIDCDiscovery(), typ=("at+jwt",))],
        audience=API,
        keys=KeyPolicy(fetch_timeout=5.0),
        dpop=DPoPSettings(allowed_hosts=(dpop_host,)) if dpop_host else None,
    )
    return JWTMiddleware(Starlette(routes=[Route("/me", me)]), Authenticator(config))


ServeApi = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def serve_api(provider: Provider) -> ServeApi:
    """Serve the guarded app on 127.0.0.1 (a free port); yields its base URL."""

    @contextmanager
    def start(*, dpop: bool = False) -> Iterator[str]:
        # Why a late-bound app: DPoP needs the host (with the port serve() picks) in allowed_hosts
        apps: list[JWTMiddleware] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await apps[0](scope, receive, send)

        with serve(app) as port:
            apps.append(build_app(provider.issuer, dpop_host=f"127.0.0.1:{port}" if dpop else None))
            yield f"http://127.0.0.1:{port}"

    return start


@pytest.fixture
def api(serve_api: ServeApi) -> Iterator[str]:
    with serve_api() as base:
        yield base


Refusals = Callable[[], list[str]]


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> Refusals:
    """The reason codes of the refusals our middleware has logged so far (jwt_middleware.audit)."""
    caplog.set_level(logging.WARNING, logger="jwt_middleware.audit")
    return lambda: [r.audit["reason"] for r in caplog.records if r.name == "jwt_middleware.audit"]


def get_me(base: str, authorization: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{base}/me", headers={"Authorization": authorization, **headers}, timeout=10)


def assert_refused(response: httpx.Response, error: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert f'error="{error}"' in challenge, challenge


def test_provider_tokens_are_rfc9068_es256(provider: Provider) -> None:
    """The provider is configured as we think: at+jwt, ES256, our audience, the client as subject."""
    tokens = provider.tokens()
    header, claims = _segment(tokens.token, 0), _segment(tokens.token, 1)
    assert tokens.token_type.lower() == "bearer"
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"] in provider.kids
    assert claims["iss"] == provider.issuer and claims["aud"] == API
    assert claims["sub"] == claims["client_id"] == CLIENT_ID
    assert "cnf" not in claims


def test_bearer_token_from_provider_passes(provider: Provider, api: str) -> None:
    token = provider.tokens(scope="read write").token
    response = get_me(api, f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": CLIENT_ID, "client_id": CLIENT_ID, "iss": provider.issuer, "scopes": ["read", "write"],
        "binding": None, "user": CLIENT_ID,
    }


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another one of the same alphabet."""
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1:]


def _change_claim_byte(token: str) -> str:
    """One byte of the decoded payload changed (inside the jti value): still valid JSON, still a JWT."""
    header, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    jti = json.loads(raw)["jti"]
    changed = raw.replace(jti.encode(), _flip(jti, len(jti) // 2).encode(), 1)
    assert len(changed) == len(raw) and changed != raw
    return ".".join((header, base64.urlsafe_b64encode(changed).rstrip(b"=").decode(), signature))


def _change_segment(token: str, segment: int) -> str:
    """One base64url character changed in the middle of one segment (header, payload, signature)."""
    parts = token.split(".")
    parts[segment] = _flip(parts[segment], len(parts[segment]) // 2)
    return ".".join(parts)


TAMPER: dict[str, tuple[Callable[[str], str], str]] = {
    "header": (lambda token: _change_segment(token, 0), "malformed_header"),
    "payload": (lambda token: _change_segment(token, 1), "malformed_payload"),
    "claim": (_change_claim_byte, "bad_signature"),
    "signature": (lambda token: _change_segment(token, 2), "bad_signature"),
}


@pytest.mark.parametrize("where", list(TAMPER))
def test_one_changed_byte_is_refused(provider: Provider, api: str, refusals: Refusals, where: str) -> None:
    token = provider.tokens().token
    assert get_me(api, f"Bearer {token}").status_code == 200
    tamper, reason = TAMPER[where]
    tampered = tamper(token)
    assert tampered != token
    response = get_me(api, f"Bearer {tampered}")
    assert_refused(response)
    assert tampered not in response.text and token not in response.text
    assert refusals() == [reason]


def test_token_for_another_resource_is_refused(provider: Provider, api: str, refusals: Refusals) -> None:
    token = provider.tokens(resource=OTHER).token
    assert _segment(token, 1)["aud"] == OTHER  # a valid token from our issuer, just not for us
    assert_refused(get_me(api, f"Bearer {token}"))
    assert refusals() == ["invalid_audience"]


def test_dpop_bound_token_presented_as_bearer_is_refused(
    provider: Provider, api: str, refusals: Refusals
) -> None:
    """RFC 9449 §7.2: a token with cnf.jkt is useless without a proof of its key."""
    tokens = provider.tokens(dpop=True)
    assert tokens.token_type.lower() == "dpop"
    assert _segment(tokens.token, 1)["cnf"] == {"jkt": tokens.jkt}
    assert_refused(get_me(api, f"Bearer {tokens.token}"))
    assert refusals() == ["bound_token_without_proof"]


def test_key_rotation_while_serving(provider: Provider, api: str) -> None:
    """New kid: one JWKS refetch, however many requests carry it at once; the old kid keeps working
    while it is published; retiring it costs no fetch for tokens of the new key."""
    old = provider.tokens().token
    assert get_me(api, f"Bearer {old}").status_code == 200
    fetched = provider.jwks_requests()
    assert fetched == 1

    new_kid = provider.rotate()
    assert provider.kids == [new_kid, kid_of(old)]
    new = provider.tokens().token
    assert kid_of(new) == new_kid

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get_me(api, f"Bearer {new}").status_code, range(16)))
    assert statuses == [200] * 16
    assert provider.jwks_requests() == fetched + 1

    assert get_me(api, f"Bearer {old}").status_code == 200  # still published, still good
    assert get_me(api, f"Bearer {new}").status_code == 200

    provider.retire()
    newer = provider.tokens().token
    assert kid_of(newer) == new_kid
    assert get_me(api, f"Bearer {newer}").status_code == 200
    assert provider.jwks_requests() == fetched + 1


@pytest.mark.dpop_interop
def test_dpop_bound_token_with_proof_passes(
    provider: Provider, serve_api: ServeApi, refusals: Refusals
) -> None:
    """RFC 9449 §7.1: ``Authorization: DPoP <token>`` plus a proof for this very request."""
    with serve_api(dpop=True) as base:
        url = f"{base}/me"
        tokens = provider.tokens(dpop=True, requests=(("GET", url), ("GET", url), ("POST", url)))
        proof, second, for_post = (p["proof"] for p in tokens.proofs)

        response = get_me(base, f"DPoP {tokens.token}", DPoP=proof)
        assert response.status_code == 200, response.text
        assert response.json()["binding"] == tokens.jkt
        assert response.json()["sub"] == CLIENT_ID

        # each proof once (§11.1), and only for the method it names (§4.3)
        assert_refused(get_me(base, f"DPoP {tokens.token}", DPoP=proof), "invalid_dpop_proof")
        assert_refused(get_me(base, f"DPoP {tokens.token}", DPoP=for_post), "invalid_dpop_proof")
        assert get_me(base, f"DPoP {tokens.token}", DPoP=second).status_code == 200
        assert refusals() == ["proof_replayed", "htm_mismatch"]
