"""An independent DPoP client (RFC 9449 §4.2): a P-256 key and proofs signed with `cryptography`
alone, so tests never check our verifier against our own signer."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def ath_of(token: str) -> str:
    return b64(hashlib.sha256(token.encode("ascii")).digest())


class ES256Client:
    """A DPoP client with a P-256 key, signing with cryptography alone."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big"))}

    def thumbprint(self) -> str:
        jwk = self.jwk()
        canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
        return b64(hashlib.sha256(canonical.encode()).digest())

    def sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        signing_input = f"{b64(compact(header))}.{b64(compact(payload))}"
        der = self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def proof(self, method: str, url: str, token: str | None, now: float, **claims: Any) -> str:
        """A fresh proof for one request; ``claims`` override or (with None) remove members."""
        payload: dict[str, Any] = {
            "jti": b64(secrets.token_bytes(12)), "htm": method, "htu": url, "iat": int(now)
        }
        if token is not None:
            payload["ath"] = ath_of(token)
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return self.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}, payload)
