"""Helpers for tests (ours and users'): a settable clock, key generation and token minting.

Minting here is deliberately permissive (any header, any payload bytes, any algorithm but
``none``) so tests can build the malformed and hostile tokens a verifier must refuse.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any, Literal

from joserfc.jwk import ECKey, Key, KeyParameters, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

__all__ = ["FakeClock", "b64url", "make_key", "mint", "public_jwks", "sign_raw"]

Alg = Literal["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA", "HS256", "HS384", "HS512"]


class FakeClock:
    """A clock tests move by hand: ``clock()`` returns ``now``; ``advance(seconds)`` moves it."""

    def __init__(self, now: float | None = None) -> None:
        self.now = float(int(time.time())) if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_key(alg: Alg = "ES256", kid: str | None = None, *, with_alg: bool = True) -> Key:
    """A new private key for ``alg``; ``kid`` defaults to its RFC 7638 thumbprint."""
    params: KeyParameters = {"use": "sig"}
    if kid is not None:
        params["kid"] = kid
    if with_alg:
        params["alg"] = alg
    key: Key
    if alg.startswith("ES"):
        key = ECKey.generate_key({"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg], params)
    elif alg.startswith(("RS", "PS")):
        key = RSAKey.generate_key(2048, params)
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", params)
    else:
        key = OctKey.generate_key(256, params)
    key.ensure_kid()
    return key


def public_jwks(*keys: Key) -> dict[str, Any]:
    """The JWKS document an issuer would publish for these keys."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def b64url(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_raw(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, key: Key, alg: str) -> str:
    """Sign exactly these header and payload bytes (dicts are JSON-encoded compactly)."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    signing_input = f"{b64url(h)}.{b64url(p)}".encode()
    signature = JWSRegistry.algorithms[alg].sign(signing_input, key)
    return f"{signing_input.decode()}.{b64url(signature)}"


def mint(
    key: Key,
    claims: dict[str, Any] | None = None,
    *,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    kid: str | Literal[False] | None = None,
    issuer: str = "https://issuer.test",
    audience: str | list[str] = "api",
    lifetime: float = 300,
    now: float | None = None,
) -> str:
    """A signed token with sensible defaults (iss, aud, sub, iat, exp, jti) that ``claims`` override.

    ``kid=False`` leaves the kid out; ``header`` adds or overrides header members.
    """
    declared = key.get("alg")
    alg = alg or (declared if isinstance(declared, str) else None) or "ES256"
    issued = float(int(time.time())) if now is None else now
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": "user-1",
        "iat": int(issued),
        "exp": int(issued + lifetime),
        "jti": b64url(os.urandom(12)),
    }
    payload.update(claims or {})
    payload = {k: v for k, v in payload.items() if v is not None}
    head: dict[str, Any] = {"alg": alg, "typ": "at+jwt"}
    if kid is not False:
        head["kid"] = kid if kid is not None else key.kid
    head.update(header or {})
    return sign_raw(head, payload, key, alg)
