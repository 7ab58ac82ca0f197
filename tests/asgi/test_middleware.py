"""JWTMiddleware over ASGI: identity attached the Starlette way, refusals rendered, the app spared."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, JWKSUrl, JWTMiddleware, StaticKeys
from jwt_middleware.asgi import IDENTITY_KEY
from jwt_middleware.core import pipeline
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ._app import Recorder, free_port
from .conftest import ISSUER


def auth_header(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_valid_token_attaches_user_auth_and_identity(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, {"sub": "alice", "scope": "read write"}, now=clock.now)
    response = await client.get("/whoami", headers=auth_header(token))
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "display_name": "alice", "scopes": ["read", "write"],
                               "subject": "alice", "state": None}
    assert recorder.calls == 1


async def test_missing_token_is_a_bare_401(client: httpx.AsyncClient, recorder: Recorder) -> None:
    response = await client.get("/whoami")
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == ['Bearer realm="api"']
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "unauthorized"
    assert recorder.calls == 0


async def test_forged_token_is_401_invalid_token(
    client: httpx.AsyncClient, recorder: Recorder, clock: FakeClock
) -> None:
    forged = mint(make_key("ES256", kid="es-1"), now=clock.now)
    response = await client.get("/whoami", headers=auth_header(forged))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="The access token signature is invalid"'
    )
    assert response.json() == {"error": "invalid_token", "error_description": "The access token signature is invalid"}
    assert recorder.calls == 0


async def test_two_tokens_is_400_invalid_request(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, now=clock.now)
    response = await client.get("/whoami", headers=[("authorization", f"Bearer {token}"),
                                                    ("authorization", f"Bearer {token}")])
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_request"')
    assert response.json()["error"] == "invalid_request"
    assert recorder.calls == 0


def _refusals(key: Key, now: float) -> dict[str, tuple[dict[str, str], int]]:
    stranger = make_key("ES256", kid="es-1")
    return {
        "missing": ({}, 401),
        "basic": ({"authorization": "Basic dXNlcjpwYXNz"}, 401),
        "forged": (auth_header(mint(stranger, now=now)), 401),
        "expired": (auth_header(mint(key, now=now - 3600)), 401),
        "wrong-audience": (auth_header(mint(key, audience="other", now=now)), 401),
        "unknown-issuer": (auth_header(mint(key, issuer="https://evil.test", now=now)), 401),
        "garbage": (auth_header("a.b.c"), 401),
        "junk-after-token": ({"authorization": f"Bearer {mint(key, now=now)} x"}, 400),
        "query-token": ({}, 400),
    }


REFUSAL_KINDS = ["missing", "basic", "forged", "expired", "wrong-audience", "unknown-issuer", "garbage",
                 "junk-after-token", "query-token"]


def test_refusal_kinds_are_all_listed(es256_key: Key) -> None:
    assert list(_refusals(es256_key, 0)) == REFUSAL_KINDS


@pytest.mark.parametrize("kind", REFUSAL_KINDS)
async def test_app_is_never_called_on_refusal(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock, kind: str
) -> None:
    headers, status = _refusals(es256_key, clock.now)[kind]
    url = "/whoami?access_token=x" if kind == "query-token" else "/whoami"
    for method in ("GET", "POST"):
        response = await client.request(method, url, headers=headers)
        assert response.status_code == status
        assert response.headers["cache-control"] == "no-store"
    assert recorder.calls == 0


# --- Starlette's requires and our scope rules ---------------------------------------------------------
async def test_starlette_requires_sees_our_scopes(
    client: httpx.AsyncClient, es256_key: Key, clock: FakeClock
) -> None:
    reader = auth_header(mint(es256_key, {"sub": "bob", "scope": "read"}, now=clock.now))
    response = await client.get("/read", headers=reader)
    assert response.status_code == 200 and response.json() == {"read": True, "user": "bob"}
    assert (await client.get("/write", headers=reader)).status_code == 403  # Starlette's own 403
    writer = auth_header(mint(es256_key, {"scp": ["read", "write"]}, now=clock.now))
    assert (await client.get("/write", headers=writer)).status_code == 200


async def test_rule_scopes_answer_our_403_with_scope_challenge(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock
) -> None:
    response = await client.get("/admin", headers=auth_header(mint(es256_key, {"scope": "read"}, now=clock.now)))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="admin"'
    )
    assert response.json()["error"] == "insufficient_scope"
    assert recorder.calls == 0
    admin = auth_header(mint(es256_key, {"scope": "admin"}, now=clock.now))
    assert (await client.get("/admin", headers=admin)).status_code == 200


# --- optional access ----------------------------------------------------------------------------------
async def test_optional_route_attaches_anonymous_user(client: httpx.AsyncClient) -> None:
    response = await client.get("/feed")
    assert response.status_code == 200
    assert response.json() | {"state": None} == {"authenticated": False, "display_name": "", "scopes": [],
                                                 "subject": None, "state": None}


async def test_optional_route_attaches_a_valid_token(
    client: httpx.AsyncClient, es256_key: Key, clock: FakeClock
) -> None:
    response = await client.get("/feed", headers=auth_header(mint(es256_key, {"sub": "carol"}, now=clock.now)))
    assert response.json()["display_name"] == "carol" and response.json()["authenticated"] is True


async def test_optional_route_refuses_an_invalid_token(
    client: httpx.AsyncClient, recorder: Recorder, clock: FakeClock
) -> None:
    forged = mint(make_key("ES256", kid="es-1"), now=clock.now)
    assert (await client.get("/feed", headers=auth_header(forged))).status_code == 401
    assert recorder.calls == 0


async def test_cors_preflight_needs_a_token_by_default(client: httpx.AsyncClient, recorder: Recorder) -> None:
    """No preflight bypass unless Config(preflight="pass"): the handler would answer OPTIONS."""
    headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
    response = await client.options("/whoami", headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert recorder.calls == 0


async def test_cors_preflight_passes_when_configured(recorder: Recorder, es256_key: Key, clock: FakeClock) -> None:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    auth = Authenticator(Config(issuers=[issuer], audience="api", clock=clock, preflight="pass"))
    transport = httpx.ASGITransport(app=recorder.protected(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
        response = await http.options("/whoami", headers=headers)
    assert response.status_code == 200 and response.json()["authenticated"] is False
    assert recorder.calls == 1


# --- failures of our own ----------------------------------------------------------------------------------
async def test_unreachable_jwks_answers_503(recorder: Recorder, es256_key: Key, clock: FakeClock) -> None:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=JWKSUrl(f"http://127.0.0.1:{free_port()}/jwks"))
    auth = Authenticator(Config(issuers=[issuer], audience="api", clock=clock))
    transport = httpx.ASGITransport(app=recorder.protected(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/whoami", headers=auth_header(mint(es256_key, now=clock.now)))
        again = await http.get("/whoami", headers=auth_header(mint(es256_key, now=clock.now)))
    for answer in (response, again):
        assert answer.status_code == 503
        assert "www-authenticate" not in answer.headers  # not the token's fault: never invalid_token
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"] == "temporarily_unavailable"
    assert recorder.calls == 0


async def test_internal_bug_answers_503_never_500_and_never_leaks(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    token = mint(es256_key, {"sub": "MARKER-7f3a"}, now=clock.now)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(pipeline, "check_signature", broken)
    with caplog.at_level(logging.DEBUG, logger="jwt_middleware"):
        response = await client.get("/whoami", headers=auth_header(token))
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable",
                               "error_description": "Authentication is temporarily unavailable"}
    assert recorder.calls == 0
    assert "MARKER" not in response.text and token not in caplog.text and "MARKER" not in caplog.text


async def test_strip_failure_body(recorder: Recorder, es256_key: Key, clock: FakeClock) -> None:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    auth = Authenticator(Config(issuers=[issuer], audience="api", strip_failure_body=True, clock=clock))
    transport = httpx.ASGITransport(app=recorder.protected(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/whoami", headers=auth_header("a.b.c"))
    assert response.status_code == 401 and response.content == b""
    assert response.headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')


# --- lifespan and pass-through -------------------------------------------------------------------------------
async def test_lifespan_passes_through(recorder: Recorder, auth: Authenticator) -> None:
    """The lifespan protocol reaches the app's handler, state included (a server's view of it)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        outbox.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    await recorder.protected(auth)(scope, inbox.get, send)
    assert [m["type"] for m in outbox] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert recorder.lifespan == ["startup", "shutdown"]
    assert state == {"started": "yes"}


async def test_unknown_scope_types_pass_through_untouched(auth: Authenticator) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "custom.protocol", "path": "/whoami"}
    await JWTMiddleware(app, auth)(scope, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "custom.protocol", "path": "/whoami"}]


async def test_scope_keys_are_set_for_the_app(auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    captured: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        captured.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=JWTMiddleware(app, auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        await http.get("/x", headers=auth_header(mint(es256_key, {"sub": "dave", "scope": "a b"}, now=clock.now)))
    identity = captured[IDENTITY_KEY]
    assert identity.subject == "dave" and identity.issuer == ISSUER
    assert captured["user"].display_name == "dave" and captured["user"].principal is identity and captured["user"].identity == "dave"
    assert sorted(captured["auth"].scopes) == ["a", "b"]
    assert json.dumps(sorted(identity.scopes)) == '["a", "b"]'
