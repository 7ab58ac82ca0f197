"""Tokens for the matrix, signed by JOSE code we did not write: ``cryptography`` by hand and joserfc.

The servers run in other processes and read real time, so tokens carry real ``iat``/``exp``.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from joserfc import jwt
from joserfc.jwk import ECKey

__all__ = ["ISSUER", "Credential", "Signer", "credentials"]

ISSUER = "https://issuer.differential.test"
AUDIENCE = "api"
_LIFETIME = 3600  # seconds: longer than any matrix run


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Signer:
    """One P-256 key made with ``cryptography``; signs ES256 JWS by hand (RFC 7515 §5.1, RFC 7518 §3.4)."""

    def __init__(self, kid: str = "diff-1") -> None:
        self.kid = kid
        self._private = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        """The public JWKS (RFC 7517 §5), built from the curve point, not by a JOSE library."""
        numbers = self._private.public_key().public_numbers()
        point = {"x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}
        return {"keys": [{"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig", **point}]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS: ECDSA over SHA-256, the DER signature turned into r || s (RFC 7518 §3.4)."""
        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def sign_with_joserfc(self, claims: dict[str, Any]) -> str:
        """The same key, signed by joserfc's own JWT encoder."""
        pem = self._private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        key = ECKey.import_key(pem, {"kid": self.kid})
        return jwt.encode({"alg": "ES256", "kid": self.kid}, claims, key)


@dataclass(frozen=True, slots=True)
class Credential:
    """What a matrix row sends: no token, or a valid token for ``subject`` carrying ``scopes``."""

    name: str
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


def _claims(subject: str, scope: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "scope": scope, "iat": now, "exp": now + _LIFETIME}


def credentials(signer: Signer) -> dict[str, Credential]:
    """none, a ``read`` token (joserfc), and an ``admin items:delete sub`` token (cryptography)."""
    full = "admin items:delete sub"
    return {
        "none": Credential("none"),
        "read": Credential("read", "reader", frozenset({"read"}), signer.sign_with_joserfc(_claims("reader", "read"))),
        "full": Credential("full", "root", frozenset(full.split()), signer.sign(_claims("root", full))),
    }
