"""An independent Ed25519 DPoP client: proofs with ``alg: Ed25519`` (RFC 9864 §2.2), signed with
`cryptography` alone, as tests/support/dpop_client.py does for ES256."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .dpop_client import ath_of, b64, compact


class Ed25519Client:
    """A DPoP client with an Ed25519 key (RFC 8037 §2 OKP JWK)."""

    def __init__(self, alg: str = "Ed25519") -> None:
        self.private = Ed25519PrivateKey.generate()
        self.alg = alg

    def jwk(self) -> dict[str, Any]:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}

    def thumbprint(self) -> str:
        """RFC 7638 §3.2 / RFC 8037 §2: members crv, kty, x in that order."""
        canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{self.jwk()["x"]}"}}'
        return b64(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, token: str | None, now: float) -> str:
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk()}
        payload: dict[str, Any] = {"jti": b64(secrets.token_bytes(12)), "htm": method, "htu": url, "iat": int(now)}
        if token is not None:
            payload["ath"] = ath_of(token)
        signing_input = f"{b64(compact(header))}.{b64(compact(payload))}"
        return f"{signing_input}.{b64(self.private.sign(signing_input.encode()))}"
