"""Helpers for tests (ours and users'): a settable clock, keys, tokens, DPoP proofs, a fixed identity.

Minting here is deliberately permissive (any header, any payload bytes, any algorithm but
``none``) so tests can build the malformed and hostile tokens a verifier must refuse.

The identity helpers (:func:`make_identity`, :func:`as_identity`, :func:`override_identity`)
decide requests without any token, so they refuse to run outside a test run (see
:func:`as_identity`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from joserfc.jwk import ECKey, Key, KeyParameters, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from ._test_identity import (
    FixedAuthenticator,
    as_identity,
    identity_overrides,
    make_identity,
    override_identity,
    under_test,
)

__all__ = [
    "Alg",
    "FakeClock",
    "FixedAuthenticator",
    "as_identity",
    "b64url",
    "dpop_proof",
    "identity_overrides",
    "jkt",
    "make_identity",
    "make_key",
    "mint",
    "override_identity",
    "public_jwks",
    "sign_raw",
    "signing_alg",
    "under_test",
]

Alg = Literal[
    "ES256", "ES384", "ES512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "EdDSA", "Ed25519",
    "HS256", "HS384", "HS512",
]
_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_EC_ALG: Final = {curve: alg for alg, curve in _CURVES.items()}
#: RFC 7518 §3.2: an HMAC key is at least as long as the hash output
_HMAC_BITS: Final = {"HS256": 256, "HS384": 384, "HS512": 512}
#: RFC 7638 §3.2: the members a JWK thumbprint (and so a DPoP ``jwk`` header) is made of
_PUBLIC_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


class FakeClock:
    """A clock tests move by hand: ``clock()`` returns ``now``; ``advance(seconds)`` moves it."""

    def __init__(self, now: float | None = None) -> None:
        self.now = float(int(time.time())) if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_key(alg: Alg = "ES256", kid: str | None = None, *, with_alg: bool = True) -> Key:
    """A new private key for ``alg``; ``kid`` defaults to its RFC 7638 thumbprint.

    RSA keys have 2048 bits; HMAC keys as many bits as their hash (RFC 7518 §3.2).
    """
    params: KeyParameters = {"use": "sig"}
    if kid is not None:
        params["kid"] = kid
    if with_alg:
        params["alg"] = alg
    key: Key
    if alg in _CURVES:
        key = ECKey.generate_key(_CURVES[alg], params)
    elif alg.startswith(("RS", "PS")):
        key = RSAKey.generate_key(2048, params)
    elif alg in ("EdDSA", "Ed25519"):
        key = OKPKey.generate_key("Ed25519", params)
    elif alg in _HMAC_BITS:
        key = OctKey.generate_key(_HMAC_BITS[alg], params)
    else:
        raise ValueError(f"make_key: {alg!r} is not a JWS algorithm this package accepts")
    key.ensure_kid()
    return key


def signing_alg(key: Key) -> str:
    """The JWS algorithm a key signs with: its own ``alg``, else the usual one for its type."""
    declared = key.get("alg")
    if isinstance(declared, str):
        return declared
    kty = key.key_type
    if kty == "EC":
        return _EC_ALG.get(str(key.get("crv")), "ES256")
    if kty == "OKP":
        return "EdDSA"
    if kty == "RSA":
        return "RS256"
    return "HS256"


def public_jwks(*keys: Key) -> dict[str, Any]:
    """The JWKS document an issuer would publish for these keys."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def jkt(key: Key) -> str:
    """The key's RFC 7638 SHA-256 thumbprint: the ``cnf.jkt`` of a token bound to it (RFC 9449 §6.1)."""
    return key.thumbprint()


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

    ``kid=False`` leaves the kid out; ``header`` adds or overrides header members; a claim
    given as None is left out.
    """
    alg = alg or signing_alg(key)
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


def dpop_proof(
    key: Key,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
) -> str:
    """A DPoP proof for one request (RFC 9449 §4.2), signed with the client's private ``key``.

    The header is ``typ: dpop+jwt``, the key's ``alg`` and its public ``jwk`` (the RFC 7638
    members only, never a private one, §4.3 check 10). The payload holds ``jti`` (random unless
    given), ``htm`` (``method`` as given), ``htu`` (``url`` without query and fragment, §4.2),
    ``iat`` (now unless given), ``ath`` (base64url SHA-256 of ``access_token``, when one is
    presented with the proof) and ``nonce`` (when the server asked for one, §8).

    :raises ValueError: a public or symmetric key (a proof is signed with an asymmetric private
        key, §4.2)
    """
    alg = signing_alg(key)
    if key.key_type not in _PUBLIC_MEMBERS or not key.is_private:
        raise ValueError("dpop_proof: sign with the client's asymmetric private key (RFC 9449 §4.2)")
    public = key.as_dict(private=False)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": {m: public[m] for m in _PUBLIC_MEMBERS[key.key_type]}}
    parts = urlsplit(url)
    payload: dict[str, Any] = {
        "jti": jti if jti is not None else b64url(os.urandom(16)),
        "htm": method,
        "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        "iat": int(time.time() if iat is None else iat),
    }
    if access_token is not None:
        payload["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
    if nonce is not None:
        payload["nonce"] = nonce
    return sign_raw(header, payload, key, alg)
