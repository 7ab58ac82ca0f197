"""DPoP proof checks, RFC 9449 §4.3: one proof, its embedded key, its claims against this request.

Pure and sans-I/O: ``now`` is an argument, and the jti replay check is the caller's (through
a nonce store, with :attr:`CheckedProof.replay_until`). The checks, in the order of §4.3:

1. exactly one ``DPoP`` header (:func:`proof_header`);
2. a well-formed compact JWS, parsed by the same strict gate as access tokens;
3. ``typ`` is ``dpop+jwt`` (RFC 7515 §4.1.9 media-type comparison);
4. ``alg`` is asymmetric and on the policy's list; no ``crit`` and no ``b64``;
5. ``jwk`` is a public key only, of the key type and curve ``alg`` names;
6. the signature verifies with that key (the access tokens' verifier, with its ECDSA range check);
7. ``jti``, ``htm``, ``htu`` (normalised, query and fragment ignored), ``iat`` within the window;
8. ``ath`` is the hash of the access token presented with the proof;
9. ``nonce`` is one the server issued, when nonces are on (§8, §9): :class:`UseDPoPNonce`.

Refusals carry constant descriptions; claim values never appear in them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from .._types import Claims
from ..config import ASYMMETRIC_ALGORITHMS, DPOP_ALGORITHMS
from ..errors import ConfigError, DPoPBindingMismatch, InvalidDPoPProof, InvalidToken, UseDPoPNonce
from ..keys.cache import PinnedKey
from ..request import RequestView
from .gate import ParsedToken, parse_token
from .request_url import normalize_url
from .verified import put_bounded
from .verify import check_signature, normalize_typ

__all__ = [
    "CheckedProof",
    "DPoPPolicy",
    "ProofKeyCache",
    "access_token_hash",
    "check_binding",
    "check_proof",
    "jwk_thumbprint",
    "proof_header",
]

_TYP: Final = "dpop+jwt"
_MAX_JTI: Final = 256
_MIN_PROOF_BYTES: Final = 256
_RSA_BITS: Final = (2048, 8192)
#: RFC 7517 §9.3 / RFC 7518 §6: members that only a private (or symmetric) JWK carries
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: RFC 7638 §3.2: the required members of each key type, in lexicographic order
_THUMBPRINT_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
#: alg → (kty, {curve: coordinate bytes}); RSA has no curve (RFC 7518 §3, §6.2.1; RFC 8037 §2)
_KEY_SHAPE: Final[dict[str, tuple[str, dict[str, int]]]] = {
    "ES256": ("EC", {"P-256": 32}),
    "ES384": ("EC", {"P-384": 48}),
    "ES512": ("EC", {"P-521": 66}),
    "EdDSA": ("OKP", {"Ed25519": 32, "Ed448": 57}),
    "Ed25519": ("OKP", {"Ed25519": 32}),
    **{f"{kind}{bits}": ("RSA", {}) for kind in ("RS", "PS") for bits in (256, 384, 512)},
}

_MALFORMED: Final = "The DPoP proof is malformed"
_BAD_TYP: Final = "The DPoP proof has the wrong type"
_BAD_ALG: Final = "The DPoP proof's algorithm is not accepted"
_BAD_KEY: Final = "The DPoP proof's key is invalid"
_BAD_SIGNATURE: Final = "The DPoP proof signature is invalid"
_BAD_CLAIMS: Final = "The DPoP proof's claims are invalid"
_WRONG_REQUEST: Final = "The DPoP proof was made for another request"
_BAD_TIME: Final = "The DPoP proof is too old or too new"
_BAD_ATH: Final = "The DPoP proof is not bound to this access token"


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """What a DPoP proof must satisfy; validated when built.

    :raises ConfigError: an empty list, ``none``, an HMAC or unknown algorithm, a window that
        is not positive, a negative leeway, or a size cap below 256
    """

    algorithms: tuple[str, ...] = DPOP_ALGORITHMS
    iat_window: float = 60.0  # seconds a proof's iat may lie before now (plus leeway)
    leeway: float = 5.0  # seconds of clock skew, both directions
    max_proof_bytes: int = 4096

    def __post_init__(self) -> None:
        algorithms = (self.algorithms,) if isinstance(self.algorithms, str) else tuple(self.algorithms)
        object.__setattr__(self, "algorithms", algorithms)
        if not algorithms or not set(algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ConfigError("DPoPPolicy.algorithms: proofs use asymmetric algorithms only, e.g. ('ES256',)")
        if not (math.isfinite(self.iat_window) and self.iat_window > 0):
            raise ConfigError("DPoPPolicy.iat_window: must be a positive number of seconds, e.g. 60.0")
        if not (math.isfinite(self.leeway) and self.leeway >= 0):
            raise ConfigError("DPoPPolicy.leeway: must be a non-negative number of seconds, e.g. 5.0")
        if self.max_proof_bytes < _MIN_PROOF_BYTES:
            raise ConfigError("DPoPPolicy.max_proof_bytes: must be at least 256, e.g. 4096")


@dataclass(frozen=True, slots=True)
class CheckedProof:
    """A proof that passed every check but replay; remember ``(jkt, jti)`` until ``replay_until``."""

    #: RFC 7638 SHA-256 thumbprint (base64url) of the proof's public JWK
    jkt: str
    jti: str
    iat: float
    #: iat + iat_window + leeway: after this the proof is refused as too old anyway
    replay_until: float
    nonce: str | None


def proof_header(request: RequestView) -> str:
    """The request's one DPoP proof (RFC 9449 §4.3, check 1).

    :raises InvalidDPoPProof: ``missing_proof`` when there is none, ``multiple_proofs`` when
        there are several (two header lines, or values joined by a comma)
    """
    values = request.header_values(b"dpop")
    if not values:
        raise InvalidDPoPProof("missing_proof", "A DPoP proof is required")
    if len(values) > 1 or "," in values[0]:
        raise InvalidDPoPProof("multiple_proofs", "Send exactly one DPoP proof")
    return values[0].strip(" \t")


def access_token_hash(token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII bytes (RFC 9449 §4.2).

    A token outside ASCII (which the extractor refuses anyway) is hashed as UTF-8, never raising.
    """
    digest = hashlib.sha256(_utf8(token)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3 SHA-256 thumbprint of a public EC, RSA or OKP JWK, base64url-encoded.

    :raises KeyError: a required member is missing, or the key type is not EC, RSA or OKP
    """
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_binding(identity_jkt: str | None, proof: CheckedProof) -> None:
    """The access token's ``cnf.jkt`` must name the proof's key (RFC 9449 §6.1, §4.3 check 12).

    :raises DPoPBindingMismatch: ``dpop_binding_mismatch`` (an ``invalid_token`` on the DPoP
        challenge, §7.1): the token is unbound, or bound to another key
    """
    if identity_jkt is None:
        raise DPoPBindingMismatch("dpop_binding_mismatch", "The access token is not bound to a DPoP key")
    if not hmac.compare_digest(_utf8(identity_jkt), _utf8(proof.jkt)):
        raise DPoPBindingMismatch("dpop_binding_mismatch", "The access token is bound to another key")


class ProofKeyCache:
    """Proof headers already checked, with the key they carry, by the header's exact base64url text.

    Why: a client signs every proof with one key and, in practice, byte-identical headers;
    importing and checking that key costs more than the signature check. Only headers that
    passed every header and key check are kept (the signature is still checked per proof).
    Bounded; a full cache drops its oldest entry, which only costs a rebuild.
    """

    __slots__ = ("_entries", "_maxsize")

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._entries: dict[tuple[str, tuple[str, ...]], PinnedKey] = {}

    def get(self, header_segment: str, policy: DPoPPolicy) -> PinnedKey | None:
        return self._entries.get((header_segment, policy.algorithms))

    def put(self, header_segment: str, policy: DPoPPolicy, key: PinnedKey) -> None:
        put_bounded(self._entries, (header_segment, policy.algorithms), key, self._maxsize)


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str | None,
    policy: DPoPPolicy,
    now: float,
    nonce_valid: Callable[[str], bool] | None = None,
    key_cache: ProofKeyCache | None = None,
) -> CheckedProof:
    """Check one DPoP proof against this request (RFC 9449 §4.3); jti replay is left to the caller.

    :param url: the URL the request was sent to (:func:`request_url`), compared with ``htu``
    :param access_token: the token the proof accompanies; None for a proof without one (a token
        request), which must then carry no ``ath``
    :param nonce_valid: when server nonces are on, tells whether a ``nonce`` is current
    :param key_cache: remembers checked proof headers, so a client's key is built once
    :raises InvalidDPoPProof: any failed check, with a machine ``reason``
    :raises UseDPoPNonce: nonces are on and the proof has none (``nonce_required``) or a stale
        or foreign one (``nonce_stale``); the caller adds the ``DPoP-Nonce`` header (§8, §9)
    """
    parsed = _parse(proof, policy.max_proof_bytes)
    header_segment = proof[: proof.index(".")]
    pinned = key_cache.get(header_segment, policy) if key_cache is not None else None
    if pinned is None:
        alg = _check_header(parsed.header, policy)
        jwk, key = _proof_key(parsed.header.get("jwk"), alg)
        pinned = PinnedKey(kid=None, alg=alg, key=key, fingerprint=jwk_thumbprint(jwk))
        if key_cache is not None:
            key_cache.put(header_segment, policy, pinned)
    jkt = pinned.fingerprint
    try:
        check_signature(parsed, pinned)
    except InvalidToken:
        raise InvalidDPoPProof("bad_signature", _BAD_SIGNATURE) from None
    claims = parsed.claims
    jti = _check_request(claims, method, url)
    iat = _check_iat(claims.get("iat"), policy, now)
    _check_ath(claims, access_token)
    nonce = _check_nonce(claims, nonce_valid)
    return CheckedProof(jkt, jti, iat, iat + policy.iat_window + policy.leeway, nonce)


def _parse(proof: str, max_bytes: int) -> ParsedToken:
    try:
        return parse_token(proof, max_bytes)
    except InvalidToken as exc:
        if exc.reason == "token_too_large":
            raise InvalidDPoPProof(exc.reason, "The DPoP proof is too large") from None
        raise InvalidDPoPProof(exc.reason, _MALFORMED) from None


def _check_header(header: Mapping[str, Any], policy: DPoPPolicy) -> str:
    """typ, alg and extensions (RFC 9449 §4.2, §4.3 checks 4 and 5; RFC 7515 §4.1.11); returns alg."""
    typ = header.get("typ")
    if not isinstance(typ, str) or normalize_typ(typ) != _TYP:
        raise InvalidDPoPProof("invalid_typ", _BAD_TYP)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in policy.algorithms or alg not in _KEY_SHAPE:
        raise InvalidDPoPProof("alg_not_allowed", _BAD_ALG, params={"algs": " ".join(policy.algorithms)})
    if "crit" in header or "b64" in header:
        raise InvalidDPoPProof("unsupported_crit", "The DPoP proof uses an unsupported JWS extension")
    return alg


def _proof_key(jwk: object, alg: str) -> tuple[dict[str, Any], Key]:
    """The ``jwk`` header as a public key fit for ``alg`` (RFC 9449 §4.3 checks 5 and 7)."""
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("missing_jwk", "The DPoP proof carries no public key")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        raise InvalidDPoPProof("private_key_in_jwk", "The DPoP proof carries a private key")
    kty, curves = _KEY_SHAPE[alg]
    crv = jwk.get("crv")
    if jwk.get("kty") != kty or (curves and (not isinstance(crv, str) or crv not in curves)):
        raise InvalidDPoPProof("jwk_mismatch", "The DPoP proof's key does not match its algorithm")
    if not _well_sized(jwk, curves):
        raise InvalidDPoPProof("invalid_jwk", _BAD_KEY)
    try:
        key = JWKRegistry.import_key(jwk)
        JWSRegistry.algorithms[alg].check_key(key)  # use, alg and curve (RFC 7517 §4.2, §4.4)
        key.check_key_op("verify")  # RFC 7517 §4.3
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("invalid_jwk", _BAD_KEY) from None
    return jwk, key


def _well_sized(jwk: dict[str, Any], curves: dict[str, int]) -> bool:
    """Exact coordinate lengths (RFC 7518 §6.2.1.2, RFC 8037 §2), so one key has one thumbprint;
    RSA moduli of 2048 to 8192 bits (RFC 7518 §3.3), checked before any key is built."""
    if not curves:
        low, high = _RSA_BITS
        return low <= _bit_length(jwk.get("n")) <= high
    size = curves[jwk["crv"]]
    return all(_decoded_length(jwk.get(member)) == size for member in ("x", "y") if member in jwk)


def _bit_length(value: object) -> int:
    raw = _decoded(value)
    return -1 if raw is None else int.from_bytes(raw, "big").bit_length()


def _decoded_length(value: object) -> int:
    raw = _decoded(value)
    return -1 if raw is None else len(raw)


def _decoded(value: object) -> bytes | None:
    if not isinstance(value, str) or "=" in value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _check_request(claims: Claims, method: str, url: str) -> str:
    """jti, htm and htu (RFC 9449 §4.2; §4.3 checks 3, 8, 9); returns the jti."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise InvalidDPoPProof("invalid_jti", _BAD_CLAIMS)
    htm = claims.get("htm")
    if not isinstance(htm, str):
        raise InvalidDPoPProof("invalid_htm", _BAD_CLAIMS)
    if htm != method:
        raise InvalidDPoPProof("htm_mismatch", _WRONG_REQUEST)
    htu = claims.get("htu")
    if not isinstance(htu, str):
        raise InvalidDPoPProof("invalid_htu", _BAD_CLAIMS)
    expected = normalize_url(url)
    if expected is None or normalize_url(htu) != expected:
        raise InvalidDPoPProof("htu_mismatch", _WRONG_REQUEST)
    return jti


def _check_iat(iat: object, policy: DPoPPolicy, now: float) -> float:
    """iat within [now - iat_window - leeway, now + leeway] (RFC 9449 §4.3 check 11, §11.1)."""
    if not isinstance(iat, int | float) or isinstance(iat, bool) or not math.isfinite(iat):
        raise InvalidDPoPProof("invalid_iat", _BAD_CLAIMS)
    if iat > now + policy.leeway:
        raise InvalidDPoPProof("iat_in_future", _BAD_TIME)
    if iat < now - policy.iat_window - policy.leeway:
        raise InvalidDPoPProof("iat_too_old", _BAD_TIME)
    return float(iat)


def _check_ath(claims: Claims, access_token: str | None) -> None:
    """ath is the token's hash when a token is presented, absent otherwise (RFC 9449 §4.2, §4.3)."""
    ath = claims.get("ath")
    if access_token is None:
        if ath is not None:
            raise InvalidDPoPProof("unexpected_ath", _BAD_ATH)
        return
    if not isinstance(ath, str):
        raise InvalidDPoPProof("missing_ath", _BAD_ATH)
    if not hmac.compare_digest(_utf8(ath), _utf8(access_token_hash(access_token))):
        raise InvalidDPoPProof("ath_mismatch", _BAD_ATH)


def _check_nonce(claims: Claims, nonce_valid: Callable[[str], bool] | None) -> str | None:
    """When nonces are on, the proof's ``nonce`` must be current (RFC 9449 §8, §9)."""
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDPoPProof("invalid_nonce", _BAD_CLAIMS)
    if nonce_valid is None:
        return nonce
    if nonce is None:
        raise UseDPoPNonce("nonce_required")
    if not nonce_valid(nonce):
        raise UseDPoPNonce("nonce_stale", "The DPoP nonce is no longer valid; use the new one")
    return nonce


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")
