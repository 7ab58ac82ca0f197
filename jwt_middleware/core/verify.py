"""Header policy and the signature check (RFC 7515 §5.2, RFC 8725 §3.1-3.11); joserfc does the crypto.

Our policy on top of joserfc's primitives, each decided on purpose:
- the algorithm must be on the issuer's allowlist *and* be the one the key is pinned to;
- ``crit`` is refused whatever it lists (we implement no extension; RFC 7515 §4.1.11) and so
  is ``b64`` (RFC 7797 unencoded payloads);
- ``jku``, ``jwk``, ``x5u`` and ``x5c`` are never read: keys come from configuration only,
  and a token carrying one is refused unless its issuer sets ``allow_key_headers`` (RFC 8725
  §3.10: an issuer that sends them is confused or the token is hostile);
- unregistered header parameters (``nonce``, vendor fields real IdPs send) are tolerated,
  where joserfc's strict registry would refuse them;
- ``typ`` is checked per issuer, and types that are never access tokens are always refused;
- ECDSA signatures must be exactly 2*n bytes with 0 < r, s < n (joserfc leaves the range
  check to OpenSSL; we make it explicit).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .._types import Claims
from ..config import Issuer
from ..errors import InvalidToken
from ..keys.cache import PinnedKey
from .gate import ParsedToken

__all__ = ["check_header", "check_signature", "normalize_typ"]

_MAX_KID: Final = 256
_BAD_SIGNATURE: Final = "The access token signature is invalid"
#: header ``typ`` values of JWTs that are never access tokens (RFC 9449, RFC 8417, OIDC logout)
_NEVER_ACCESS_TYP: Final = frozenset(
    {"dpop+jwt", "secevent+jwt", "logout+jwt", "refresh+jwt", "id_token+jwt", "statuslist+jwt"}
)
#: payload markers that real IdPs put on ID and refresh tokens (Keycloak ``typ``, Cognito ``token_use``)
_NEVER_ACCESS_CLAIM: Final = {
    "typ": frozenset({"id", "refresh", "offline", "logout"}),
    "token_use": frozenset({"id", "refresh"}),
}
_NEVER_ACCESS_CLAIMS: Final = frozenset(_NEVER_ACCESS_CLAIM)
#: header members that carry or name a key (RFC 7515 §4.1.2-4.1.6)
_KEY_HEADERS: Final = frozenset({"jku", "jwk", "x5u", "x5c"})
#: group order n of each curve (SEC 2 §2.4.2, §2.5.1, §2.6.1; FIPS 186-5 / SP 800-186 §3.2.1);
#: tests/core/test_verify.py checks each against ``cryptography``'s own range check
_CURVE_ORDER: Final = {
    "ES256": 0xFFFFFFFF_00000000_FFFFFFFF_FFFFFFFF_BCE6FAAD_A7179E84_F3B9CAC2_FC632551,
    "ES384": int(
        "FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF"
        "C7634D81 F4372DDF 581A0DB2 48B0A77A ECEC196A CCC52973".replace(" ", ""),
        16,
    ),
    # 521 bits: "01FF" then 16 groups of 8 hex digits, as SEC 2 prints it
    "ES512": int(
        "01FF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFA"
        "51868783 BF2F966B 7FCC0148 F709A5D0 3BB5C9B8 899C47AE BB6FB71E 91386409".replace(" ", ""),
        16,
    ),
}


#: bytes of r and of s for each curve order (RFC 7518 §3.4)
_SIZE: Final = {order: (order.bit_length() + 7) // 8 for order in _CURVE_ORDER.values()}
_ECDSA: Final = {
    "ES256": ECDSA(hashes.SHA256()),
    "ES384": ECDSA(hashes.SHA384()),
    "ES512": ECDSA(hashes.SHA512()),
}
_RSA: Final = {
    **{
        f"RS{n}": (rsa_padding.PKCS1v15(), h)
        for n, h in ((256, hashes.SHA256()), (384, hashes.SHA384()), (512, hashes.SHA512()))
    },
    **{
        f"PS{n}": (rsa_padding.PSS(rsa_padding.MGF1(h), h.digest_size), h)
        for n, h in ((256, hashes.SHA256()), (384, hashes.SHA384()), (512, hashes.SHA512()))
    },
}
_HMAC: Final = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}


def normalize_typ(value: str) -> str:
    """RFC 7515 §4.1.9: compare case-insensitively, with an omitted ``application/`` prefix."""
    value = value.lower()
    return value[12:] if value.startswith("application/") else value


def check_header(header: Mapping[str, Any], claims: Claims, issuer: Issuer) -> tuple[str, str | None]:
    """Check the protected header against the issuer's policy; return ``(alg, kid)``.

    :raises InvalidToken: alg missing, ``none`` or not allowed; crit or b64 present; a bad kid;
        ``jku``, ``jwk``, ``x5u`` or ``x5c`` present and not allowed (RFC 8725 §3.10);
        a ``typ`` the issuer does not accept, or one that is never an access token
    """
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise InvalidToken("alg_not_allowed", "The token's algorithm is not accepted")
    if "crit" in header or "b64" in header:
        raise InvalidToken("unsupported_crit", "The token uses an unsupported JWS extension")
    if not (issuer.allow_key_headers or _KEY_HEADERS.isdisjoint(header)):
        raise InvalidToken("key_header_refused", "The token carries or names a key of its own")
    kid = header.get("kid")
    if kid is not None or "kid" in header:
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID or not kid.isprintable():
            raise InvalidToken("invalid_kid", "The token's key id is invalid")
    _check_typ(header, claims, issuer)
    return alg, kid


def _check_typ(header: Mapping[str, Any], claims: Claims, issuer: Issuer) -> None:
    typ = header.get("typ")
    if typ is None:
        if "typ" in header:
            raise InvalidToken("invalid_typ", "The token type is not accepted")
        normalized = None
    elif not isinstance(typ, str) or (normalized := normalize_typ(typ)) in _NEVER_ACCESS_TYP:
        raise InvalidToken("invalid_typ", "The token type is not accepted")
    for claim in _NEVER_ACCESS_CLAIMS.intersection(claims):
        value = claims[claim]
        if isinstance(value, str) and value.lower() in _NEVER_ACCESS_CLAIM[claim]:
            raise InvalidToken("invalid_typ", "The token type is not accepted")
    if issuer.typ is not None and (normalized is None or normalized not in _accepted(issuer.typ)):
        raise InvalidToken("invalid_typ", "The token type is not accepted")


@functools.lru_cache(maxsize=64)
def _accepted(types: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize_typ(t) for t in types)


def check_signature(parsed: ParsedToken, key: PinnedKey) -> None:
    """Verify the signature with the key's pinned algorithm.

    Why not ``JWSRegistry.algorithms[alg].verify``: joserfc imported, validated and pinned the
    key; per call its algorithm objects rebuild hash and padding parameters and re-check key
    operations, which costs a tenth of an ES256 verification. Here the same ``cryptography``
    primitives run with parameters built once (RFC 7518 §3.2-3.5, RFC 8037 §3.1).

    :raises InvalidToken: ``bad_signature`` for any mismatch, malformed signature or key error
    """
    alg = key.alg
    message = parsed.signing_input
    signature = parsed.signature
    try:
        ecdsa = _ECDSA.get(alg)
        if ecdsa is not None:
            der = _ecdsa_der(signature, _CURVE_ORDER[alg])
            key.key.public_key.verify(der, message, ecdsa)  # type: ignore[call-arg, arg-type, union-attr]
        elif alg in _RSA:
            padding, digest = _RSA[alg]
            public = key.key.public_key
            public.verify(signature, message, padding, digest)  # type: ignore[call-arg, arg-type, union-attr]
        elif alg in _HMAC:
            expected = hmac.digest(key.key.raw_value, message, _HMAC[alg])  # type: ignore[arg-type]
            if not hmac.compare_digest(expected, signature):
                raise InvalidSignature
        elif alg in ("EdDSA", "Ed25519"):
            key.key.public_key.verify(signature, message)  # type: ignore[call-arg, union-attr]
        else:  # pragma: no cover - config allows no other algorithm
            raise InvalidSignature
    except (InvalidSignature, ValueError, TypeError, AttributeError):
        raise InvalidToken("bad_signature", _BAD_SIGNATURE) from None


def _ecdsa_der(signature: bytes, order: int) -> bytes:
    """Raw r||s (RFC 7518 §3.4) to DER, refusing wrong lengths and r or s outside [1, n-1]
    (CVE-2022-21449 'psychic signatures' sent r = s = 0)."""
    size = _SIZE[order]
    if len(signature) != 2 * size:
        raise InvalidSignature
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    if not (0 < r < order and 0 < s < order):
        raise InvalidSignature
    return encode_dss_signature(r, s)
