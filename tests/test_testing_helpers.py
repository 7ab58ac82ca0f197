"""jwt_middleware.testing: keys for every algorithm, DPoP proofs the middleware and joserfc accept,
and a fixed identity through each framework's own test client (refused outside a test run)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import JWKRegistry, Key, OctKey

from jwt_middleware import (
    Authenticator,
    Config,
    DPoPSettings,
    Identity,
    Issuer,
    JWTMiddleware,
    Rule,
    StaticKeys,
    WSGIJWTMiddleware,
)
from jwt_middleware.config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS
from jwt_middleware.testing import (
    Alg,
    FakeClock,
    as_identity,
    dpop_proof,
    identity_overrides,
    jkt,
    make_identity,
    make_key,
    mint,
    override_identity,
    public_jwks,
    under_test,
)

from .integrations import apps

# Starlette's TestClient (FastAPI's too) warns that it will move to httpx2: not ours to act on
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ISSUER = "https://issuer.test"
BASE = "https://api.test"
ROOT = Path(__file__).resolve().parent.parent


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(b64decode(header)), json.loads(b64decode(payload))


# --- make_key, mint -------------------------------------------------------------------------
@pytest.mark.parametrize("alg", sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS))
def test_make_key_signs_a_token_the_middleware_accepts_for_every_algorithm(alg: Alg, clock: FakeClock) -> None:
    key = make_key(alg, kid="k")
    keys: Any
    if alg in HMAC_ALGORITHMS:
        from jwt_middleware import SharedSecret

        assert isinstance(key, OctKey)
        secret = key.get_op_key("sign")
        assert len(secret) * 8 == int(alg[2:])  # RFC 7518 §3.2: as long as the hash
        keys = SharedSecret(secret, kid="k")
    else:
        keys = StaticKeys(public_jwks(key))
    auth = Authenticator(Config(issuers=(Issuer(ISSUER, algorithms=(alg,), keys=keys),), audience="api", clock=clock))
    from jwt_middleware import RequestView

    token = mint(key, now=clock.now)
    assert segments(token)[0]["alg"] == alg
    identity = auth.authenticate(RequestView("GET", "/", [(b"authorization", f"Bearer {token}".encode())]))
    assert identity is not None and identity.subject == "user-1"


def test_make_key_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="XY256"):
        make_key("XY256")  # type: ignore[arg-type]


# --- dpop_proof ------------------------------------------------------------------------------
def dpop_auth(key: Key, clock: FakeClock, **settings: Any) -> Authenticator:
    return Authenticator(
        Config(
            issuers=(Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key))),),
            audience="api",
            rules=(Rule("/strict", dpop="required"),),
            dpop=DPoPSettings(allowed_hosts=("api.test",), **settings),
            clock=clock,
        )
    )


def dpop_app(auth: Authenticator) -> JWTMiddleware:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        identity = request.scope["jwt_middleware.identity"]
        return JSONResponse({"sub": identity.subject, "jkt": identity.binding})

    return JWTMiddleware(Starlette(routes=[Route("/strict", endpoint, methods=["GET", "POST"])]), auth)


async def send(app: JWTMiddleware, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        return await client.request(method, path, headers=headers)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"])
async def test_dpop_proof_is_accepted_by_the_middleware_for_a_bound_token(
    es256_key: Key, clock: FakeClock, alg: Alg
) -> None:
    client = make_key(alg)
    token = mint(es256_key, {"cnf": {"jkt": jkt(client)}}, issuer=ISSUER, now=clock.now)
    app = dpop_app(dpop_auth(es256_key, clock))
    proof = dpop_proof(client, "POST", f"{BASE}/strict?page=2#top", access_token=token, iat=clock.now)
    response = await send(app, "POST", "/strict?page=2", {"authorization": f"DPoP {token}", "dpop": proof})
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "user-1", "jkt": jkt(client)}
    replay = await send(app, "POST", "/strict?page=2", {"authorization": f"DPoP {token}", "dpop": proof})
    assert replay.status_code == 401 and 'error="invalid_dpop_proof"' in replay.headers["www-authenticate"]


async def test_dpop_proof_carries_the_server_nonce(es256_key: Key, clock: FakeClock) -> None:
    client = make_key("ES256")
    token = mint(es256_key, {"cnf": {"jkt": jkt(client)}}, issuer=ISSUER, now=clock.now)
    app = dpop_app(dpop_auth(es256_key, clock, nonce_secret=secrets.token_bytes(32)))
    first = dpop_proof(client, "GET", f"{BASE}/strict", access_token=token, iat=clock.now)
    asked = await send(app, "GET", "/strict", {"authorization": f"DPoP {token}", "dpop": first})
    assert asked.status_code == 401 and "use_dpop_nonce" in ",".join(asked.headers.get_list("www-authenticate"))
    proof = dpop_proof(client, "GET", f"{BASE}/strict", access_token=token, iat=clock.now,
                       nonce=asked.headers["dpop-nonce"])
    response = await send(app, "GET", "/strict", {"authorization": f"DPoP {token}", "dpop": proof})
    assert response.status_code == 200, response.text


def test_dpop_proof_follows_rfc_9449_and_verifies_with_joserfc() -> None:
    client = make_key("ES256", kid="client-1")
    proof = dpop_proof(client, "GET", "https://api.test/me?x=1#f", access_token="tok.en.value", iat=1_800_000_000,
                       jti="j-1", nonce="n-1")
    header, payload = segments(proof)
    assert header == {"typ": "dpop+jwt", "alg": "ES256", "jwk": {
        k: client.as_dict(private=False)[k] for k in ("crv", "kty", "x", "y")}}  # no kid, no private d
    ath = base64.urlsafe_b64encode(hashlib.sha256(b"tok.en.value").digest()).rstrip(b"=").decode()
    assert payload == {"jti": "j-1", "htm": "GET", "htu": "https://api.test/me", "iat": 1_800_000_000,
                       "ath": ath, "nonce": "n-1"}
    verified = jws.deserialize_compact(proof, JWKRegistry.import_key(header["jwk"]), algorithms=["ES256"])
    assert json.loads(verified.payload) == payload
    assert JWKRegistry.import_key(header["jwk"]).thumbprint() == jkt(client)


def test_dpop_proof_without_a_token_has_no_ath_and_a_fresh_jti() -> None:
    client = make_key("EdDSA")
    one, two = (segments(dpop_proof(client, "GET", "https://api.test/"))[1] for _ in range(2))
    assert "ath" not in one and "nonce" not in one
    assert one["jti"] != two["jti"]


@pytest.mark.parametrize("make", [lambda: make_key("HS256"), lambda: JWKRegistry.import_key(
    make_key("ES256").as_dict(private=False))], ids=["hmac", "public"])
def test_dpop_proof_needs_an_asymmetric_private_key(make: Any) -> None:
    with pytest.raises(ValueError, match="asymmetric private key"):
        dpop_proof(make(), "GET", "https://api.test/")


# --- make_identity ---------------------------------------------------------------------------
def test_make_identity_reads_as_a_verified_token_would() -> None:
    identity = make_identity("alice", scopes=["read", "write"], claims={"acr": "mfa", "amr": ["pwd", "otp"],
                             "cnf": {"jkt": "abc"}, "tenant": {"id": 7}}, now=1_800_000_000)
    assert (identity.subject, identity.issuer, identity.scopes) == ("alice", ISSUER, frozenset({"read", "write"}))
    assert (identity.acr, identity.amr, identity.binding) == ("mfa", ("pwd", "otp"), "abc")
    assert (identity.issued_at, identity.expires_at) == (1_800_000_000, 1_800_000_300)
    with pytest.raises(TypeError):
        identity.claims["tenant"]["id"] = 8  # read-only, as the middleware's
    assert "sub" not in make_identity(None).claims


def test_make_identity_refuses_scopes_as_one_string() -> None:
    with pytest.raises(TypeError, match="list of scopes"):
        make_identity(scopes="read write")


# --- a fixed identity through each framework -------------------------------------------------
def starlette_probe(auth: Authenticator) -> JWTMiddleware:
    """A Starlette app reporting what the middleware attached to the scope."""
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def probe(request: Request) -> JSONResponse:
        identity = request.scope.get("jwt_middleware.identity")
        return JSONResponse({
            "user": type(request.user).__name__,
            "authenticated": request.user.is_authenticated,
            "user_id": request.user.identity if request.user.is_authenticated else None,
            "scopes": list(request.auth.scopes),
            "identity": identity.subject if identity else None,
        })

    @requires("admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.identity})

    routes = [Route("/me", probe), Route("/public", probe), Route("/admin", admin), Route("/starlette-admin", admin)]
    return JWTMiddleware(Starlette(routes=routes), auth)


def test_as_identity_attaches_exactly_what_a_verified_token_gives() -> None:
    """The same scope["user"], scope["auth"] and identity as a real token with the same claims."""
    from starlette.testclient import TestClient

    real = TestClient(starlette_probe(apps.AUTH))
    token = mint(apps.KEY, {"sub": "alice", "scope": "read admin"}, issuer=ISSUER, now=apps.CLOCK.now)
    expected = real.get("/me", headers={"authorization": f"Bearer {token}"}).json()
    fixed = TestClient(starlette_probe(as_identity(make_identity("alice", scopes=["read", "admin"]), apps.AUTH.config)))
    assert fixed.get("/me").json() == expected
    assert expected == {"user": "JWTUser", "authenticated": True, "user_id": "alice",
                        "scopes": ["admin", "read"], "identity": "alice"}
    assert fixed.get("/starlette-admin").json() == {"admin": "alice"}  # Starlette's @requires reads scope["auth"]


def test_as_identity_keeps_the_rules_public_anonymous_and_scopes_required() -> None:
    """Refusals are the real middleware's own, challenge and body, for a token with those scopes."""
    from starlette.testclient import TestClient

    token = mint(apps.KEY, {"sub": "bob", "scope": "read"}, issuer=ISSUER, now=apps.CLOCK.now)
    real = TestClient(starlette_probe(apps.AUTH)).get("/admin", headers={"authorization": f"Bearer {token}"})
    reader = TestClient(starlette_probe(as_identity(make_identity("bob", scopes=["read"]), apps.AUTH.config)))
    assert reader.get("/public").json()["authenticated"] is False  # Rule("/public", access="public")
    refused = reader.get("/admin")  # Rule("/admin", scopes=("admin",))
    assert (refused.status_code, refused.headers["www-authenticate"], refused.content) == (
        403, real.headers["www-authenticate"], real.content)
    assert 'error="insufficient_scope"' in real.headers["www-authenticate"]
    anonymous = TestClient(starlette_probe(as_identity(None, apps.AUTH.config)))
    assert anonymous.get("/me").status_code == 401
    assert anonymous.get("/me").headers["www-authenticate"] == 'Bearer realm="api"'
    assert anonymous.get("/public").status_code == 200


def test_as_identity_without_a_config_trusts_the_identity_and_requires_every_route() -> None:
    from starlette.testclient import TestClient

    client = TestClient(starlette_probe(as_identity(make_identity("carol", issuer="https://idp.example"))))
    assert client.get("/public").json()["user_id"] == "carol"


def test_fastapi_testclient_with_the_middleware_overridden() -> None:
    from fastapi.testclient import TestClient

    application = apps.fastapi_app()  # JWTMiddleware(FastAPI app, AUTH)
    client = TestClient(application)
    with override_identity(application, make_identity("dave", scopes=["admin"])):
        assert client.get("/me").json() == {"sub": "dave"}
        assert client.get("/admin").json() == {"sub": "dave"}
    with override_identity(application, make_identity("erin")):
        assert client.get("/admin").status_code == 403  # require_scopes("admin") still checks
    assert client.get("/me").status_code == 401  # restored: the real Authenticator again
    assert application.authenticator is apps.AUTH


def fastapi_api() -> Any:
    from fastapi import Depends, FastAPI, Security

    from jwt_middleware.integrations.fastapi import jwt_identity, require_scopes

    api = FastAPI()

    @api.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)) -> dict[str, Any]:
        return {"sub": identity.subject}

    @api.get("/items")
    async def items(identity: Identity = Depends(require_scopes("read"))) -> dict[str, Any]:
        return {"sub": identity.subject}

    @api.delete("/items")
    async def delete(identity: Identity = Security(jwt_identity, scopes=["items:delete"])) -> dict[str, Any]:
        return {"sub": identity.subject}

    return api


def test_fastapi_dependency_overrides_still_check_the_gathered_scopes() -> None:
    from fastapi.testclient import TestClient

    api = fastapi_api()
    client = TestClient(api)  # the bare app: no middleware, so nothing is attached
    assert client.get("/me").status_code == 401
    api.dependency_overrides.update(identity_overrides(api, make_identity("frank", scopes=["read"])))
    assert client.get("/me").json() == {"sub": "frank"}
    assert client.get("/items").json() == {"sub": "frank"}
    refused = client.delete("/items")
    assert refused.status_code == 403
    assert 'scope="items:delete"' in refused.headers["www-authenticate"]


def test_fastapi_override_identity_restores_the_overrides_it_found() -> None:
    from fastapi.testclient import TestClient

    api = fastapi_api()
    sentinel = object()
    api.dependency_overrides[sentinel] = lambda: None
    client = TestClient(api)
    with override_identity(api, make_identity("gina", scopes=["items:delete"])):
        assert client.delete("/items").json() == {"sub": "gina"}
        assert client.get("/items").status_code == 403  # holds items:delete, not read
    with override_identity(api, None):
        assert client.get("/me").status_code == 401
    assert client.get("/me").status_code == 401
    assert list(api.dependency_overrides) == [sentinel]


def test_flask_test_client_with_the_identity_overridden() -> None:
    app = apps.flask_app()
    client = app.test_client()
    with override_identity(app, make_identity("hana", scopes=["admin"])):
        assert client.get("/me").json == {"sub": "hana"}
        assert client.get("/admin").json == {"sub": "hana"}
    with override_identity(app, make_identity("ivan")):
        refused = client.get("/admin")  # @require_scopes("admin") answers with the app's Authenticator
        assert refused.status_code == 403 and 'scope="admin"' in refused.headers["www-authenticate"]
    assert client.get("/me").status_code == 401


def test_flask_app_without_jwtflask_is_refused() -> None:
    from flask import Flask

    with pytest.raises(TypeError, match="JWTFlask"), override_identity(Flask(__name__), make_identity()):
        pass


def test_wsgi_middleware_overridden_sets_the_environ_identity() -> None:
    seen: list[Identity | None] = []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["jwt_middleware.identity"])
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    app = WSGIJWTMiddleware(inner, apps.AUTH)
    identity = make_identity("jan")
    from werkzeug.test import Client

    with override_identity(app, identity):
        assert Client(app).get("/me").status_code == 200
    assert seen == [identity]
    assert Client(app).get("/me").status_code == 401


def test_django_test_client_with_the_identity_overridden() -> None:
    apps.django_wsgi_app()  # settings configured once per process
    from django.conf import settings
    from django.test import Client

    with override_identity(settings, make_identity("kim", scopes=["admin"])):
        client = Client()  # made in the block: Django builds its middleware at the first request
        assert client.get("/me").json() == {"sub": "kim"}
        assert client.get("/admin").json() == {"sub": "kim"}
    with override_identity(settings, make_identity("lee")):
        assert Client().get("/admin").status_code == 403
    assert Client().get("/me").status_code == 401
    assert settings.JWT_MIDDLEWARE_AUTHENTICATOR == "tests.integrations.apps.AUTH"


def test_override_identity_refuses_what_it_cannot_override() -> None:
    with pytest.raises(TypeError, match="none of JWTMiddleware"), override_identity(object(), make_identity()):
        pass


# --- never outside a test run ----------------------------------------------------------------
GUARDED = textwrap.dedent(
    """
    import sys
    from jwt_middleware import ConfigError
    from jwt_middleware.testing import as_identity, make_identity, under_test
    try:
        as_identity(make_identity("x"))
    except ConfigError as exc:
        print("refused:", exc)
        sys.exit(3)
    print("built", under_test())
    """
)


def run_python(*argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "JWT_MIDDLEWARE"))}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False,
                          env={**clean, **(env or {})}, cwd=cwd)


def test_the_fixed_identity_is_refused_outside_a_test_run() -> None:
    done = run_python("-c", GUARDED)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "refused: FixedAuthenticator: decides every request as a fixed identity" in done.stdout
    assert "JWT_MIDDLEWARE_TESTING=1" in done.stdout


@pytest.mark.parametrize(
    "call",
    ["override_identity(object(), make_identity()).__enter__()", "identity_overrides(None, None)"],
    ids=["override_identity", "identity_overrides"],
)
def test_every_identity_helper_is_refused_outside_a_test_run(call: str) -> None:
    code = f"from jwt_middleware.testing import *\ntry:\n    {call}\nexcept Exception as exc:\n    print(repr(exc))"
    done = run_python("-c", code)
    assert done.stdout.startswith("ConfigError(") and "never use it to serve requests" in done.stdout, done.stderr


def test_the_fixed_identity_is_allowed_by_the_opt_in_variable() -> None:
    done = run_python("-c", GUARDED, env={"JWT_MIDDLEWARE_TESTING": "1"})
    assert (done.returncode, done.stdout.strip()) == (0, "built True"), done.stderr


def test_the_fixed_identity_is_allowed_in_djangos_test_environment() -> None:
    setup = textwrap.dedent(
        """
        import django
        from django.conf import settings
        from django.test.utils import setup_test_environment
        settings.configure(SECRET_KEY="x" * 50)
        django.setup()
        setup_test_environment()
        """
    )
    done = run_python("-c", setup + GUARDED)
    assert (done.returncode, done.stdout.strip()) == (0, "built True"), done.stderr


def test_the_fixed_identity_is_allowed_under_python_m_unittest(tmp_path: Path) -> None:
    (tmp_path / "test_fixed.py").write_text(textwrap.dedent(
        """
        import unittest
        from jwt_middleware.testing import as_identity, make_identity

        class Fixed(unittest.TestCase):
            def test_built(self):
                self.assertEqual(as_identity(make_identity("u")).identity.subject, "u")
        """
    ))
    done = run_python("-m", "unittest", "test_fixed", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stderr


def test_under_test_here() -> None:
    assert under_test() is True


@pytest.fixture
def quiet_warning(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level("WARNING", logger="jwt_middleware.testing"):
        yield caplog


def test_building_a_fixed_identity_logs_a_warning(quiet_warning: pytest.LogCaptureFixture) -> None:
    as_identity(make_identity("mo"))
    assert "every request is decided as 'mo' without a token" in quiet_warning.text


def test_the_middleware_never_imports_the_testing_helpers() -> None:
    code = textwrap.dedent(
        """
        import sys
        import jwt_middleware, jwt_middleware.asgi, jwt_middleware.wsgi, jwt_middleware.stores
        from jwt_middleware.integrations import fastapi, flask, litestar, starlette
        print(sorted(m for m in sys.modules if m.startswith(("jwt_middleware.testing", "jwt_middleware._test"))))
        """
    )
    done = run_python("-c", code)
    assert done.stdout.strip() == "[]", done.stderr
