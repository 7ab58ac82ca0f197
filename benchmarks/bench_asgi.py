"""ASGI cost per request, in-process (no server, no TestClient), ratios measured in one run.

Run: python benchmarks/bench_asgi.py [--quick]

Rows:
  bare            Starlette app, no auth
  ours/repeat     JWTMiddleware, the same ES256 token every call (verified-token cache hit)
  ours/unique     JWTMiddleware, a new token every call (parse + signature + claims), per alg
  starlette+pyjwt Starlette AuthenticationMiddleware with PyJWT + PyJWKClient, unique ES256 tokens
  floor/crypto    one raw ES256 signature verify with `cryptography` (nothing else)
  floor/hand      hand-written verifier: split, base64url, json, ES256 verify, exp/aud/iss checks
  joserfc.decode  joserfc.jwt.decode with a KeySet + JWTClaimsRegistry.validate
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import asgi_caller, best_us, best_us_async, http_scope
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, SharedSecret, StaticKeys
from jwt_middleware.testing import make_key, mint, public_jwks

ISS = "https://issuer.bench"
UNIQUE_ROUNDS = 3
AUD = "api"


async def endpoint(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def starlette_app(**kwargs: Any) -> Starlette:
    return Starlette(routes=[Route("/me", endpoint)], **kwargs)


def ours(alg: str, key: Any) -> JWTMiddleware:
    keys: Any = (
        SharedSecret(b64d(key.as_dict(private=True)["k"]))
        if alg.startswith("HS")
        else StaticKeys(public_jwks(key))
    )
    auth = Authenticator(Config(issuers=[Issuer(ISS, algorithms=(alg,), keys=keys)], audience=AUD))
    return JWTMiddleware(starlette_app(), auth)


def serve_jwks(jwks: dict[str, Any]) -> str:
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/jwks"


def pyjwt_app(jwks_url: str) -> Starlette:
    import jwt as pyjwt

    client = pyjwt.PyJWKClient(jwks_url, cache_keys=True)

    class Backend(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            header = conn.headers.get("authorization", "")
            if not header.lower().startswith("bearer "):
                return None
            token = header[7:]
            try:
                key = client.get_signing_key_from_jwt(token)
                claims = pyjwt.decode(token, key.key, algorithms=["ES256"], audience=AUD, issuer=ISS)
            except pyjwt.PyJWTError as exc:
                raise AuthenticationError("invalid token") from exc
            return AuthCredentials(claims.get("scope", "").split()), SimpleUser(claims["sub"])

    return starlette_app(middleware=[Middleware(AuthenticationMiddleware, backend=Backend())])


def b64d(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def hand_floor(public_key: Any) -> Any:
    """The least a correct verifier does: parse, verify ES256, check exp/aud/iss."""

    def verify(token: str) -> dict[str, Any]:
        h, p, s = token.split(".")
        header = json.loads(b64d(h))
        claims = json.loads(b64d(p))
        if header["alg"] != "ES256":
            raise ValueError
        sig = b64d(s)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public_key.verify(der, f"{h}.{p}".encode(), ECDSA(hashes.SHA256()))
        if claims["exp"] <= time.time() or claims["iss"] != ISS or claims["aud"] != AUD:
            raise ValueError
        return dict(claims)

    return verify


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    n_repeat, n_unique = (2000, 300) if args.quick else (20000, 2000)

    keys = {alg: make_key(alg) for alg in ("ES256", "RS256", "EdDSA", "HS256")}
    # Unique rows: every round gets its own tokens, so no round hits the verified-token cache.
    tokens = {
        alg: [
            mint(keys[alg], issuer=ISS, audience=AUD, lifetime=3600) for _ in range(n_unique * UNIQUE_ROUNDS)
        ]
        for alg in keys
    }
    es_key = keys["ES256"]
    results: dict[str, float] = {}

    bare = asgi_caller(starlette_app(), http_scope("/me", [(b"authorization", b"Bearer x")]))
    results["bare"] = best_us_async(bare, n_repeat)

    repeat_token = tokens["ES256"][0]
    repeated = asgi_caller(
        ours("ES256", es_key), http_scope("/me", [(b"authorization", f"Bearer {repeat_token}".encode())])
    )
    results["ours/repeat ES256"] = best_us_async(repeated, n_repeat)
    assert set(repeated.statuses) == {200}, set(repeated.statuses)  # type: ignore[attr-defined]

    for alg, key in keys.items():
        app = ours(alg, key)
        scopes = [http_scope("/me", [(b"authorization", f"Bearer {t}".encode())]) for t in tokens[alg]]
        results[f"ours/unique {alg}"] = _unique(app, scopes)

    jwks_url = serve_jwks(public_jwks(es_key))
    scopes = [http_scope("/me", [(b"authorization", f"Bearer {t}".encode())]) for t in tokens["ES256"]]
    results["starlette+pyjwt unique ES256"] = _unique(pyjwt_app(jwks_url), scopes)

    public = es_key.public_key
    signed = []
    for t in tokens["ES256"]:
        h, p, s = t.split(".")
        sig = b64d(s)
        signed.append(
            (
                f"{h}.{p}".encode(),
                encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
            )
        )
    results["floor/crypto ES256 verify"] = best_us(
        lambda i: public.verify(signed[i][1], signed[i][0], ECDSA(hashes.SHA256())), n_unique
    )
    floor = hand_floor(public)
    results["floor/hand ES256 verifier"] = best_us(lambda i: floor(tokens["ES256"][i]), n_unique)
    keyset = KeySet([es_key])
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS}, aud={"essential": True, "value": AUD}
    )

    def jose(i: int) -> None:
        registry.validate(jose_jwt.decode(tokens["ES256"][i], keyset, algorithms=["ES256"]).claims)

    results["joserfc.decode ES256"] = best_us(jose, n_unique)
    report(results)


def _unique(app: Any, scopes: list[dict[str, Any]]) -> float:
    callers = [asgi_caller(app, s) for s in scopes]
    n = len(scopes) // UNIQUE_ROUNDS
    cost = best_us_async(lambda i: callers[i](i), n, rounds=UNIQUE_ROUNDS, fresh=True)
    statuses = {st for c in callers for st in c.statuses}  # type: ignore[attr-defined]
    assert statuses == {200}, statuses
    return cost


def report(r: dict[str, float]) -> None:
    width = max(map(len, r))
    for name, us in r.items():
        print(f"{name:<{width}}  {us:9.2f} µs/request")
    bare, floor = r["bare"], r["floor/hand ES256 verifier"]
    added = r["ours/unique ES256"] - bare
    print()
    print(
        f"repeated token vs bare Starlette:             {r['ours/repeat ES256'] / bare:5.2f}x  (target <= 1.25x)"
    )
    print(f"unique ES256 added cost vs hand floor:        {added / floor:5.2f}x  (target <= 1.25x)")
    print(f"joserfc.decode vs hand floor:                 {r['joserfc.decode ES256'] / floor:5.2f}x")
    pyjwt_added = r["starlette+pyjwt unique ES256"] - bare
    print(f"Starlette+PyJWT added cost / ours added cost: {pyjwt_added / added:5.2f}x  (target >= 1.5x)")
    print(
        f"Starlette+PyJWT total / ours total (unique):  {r['starlette+pyjwt unique ES256'] / r['ours/unique ES256']:5.2f}x"
    )
    print(
        f"ours unique ES256 vs one raw ES256 verify:    {r['ours/unique ES256'] / r['floor/crypto ES256 verify']:5.2f}x"
    )


if __name__ == "__main__":
    main()
