"""Which keys of a JWKS may verify, each pinned to one algorithm (RFC 8725 §3.1), and why the others may not.

Why the reasons: a key given in code that can never verify is a configuration mistake and the
loader refuses it at construction, naming the key; a key published by an issuer is skipped with
a warning that names it, so one bad key never takes the issuer down. A reason names the key's
kid (or its index), its type, curve, size or declared members; never key material.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from ..config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS

__all__ = ["PinnedKey", "SkippedKey", "pin_keys", "read_keys"]

#: RFC 7518 §3.4 / FIPS 186-4: the curves ES256/384/512 are defined on; no other EC curve verifies
_EC_ALG: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
#: RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used"
_RSA_MIN_BITS: Final = 2048
#: a declared alg outside the allowlist but among these is a key for other tokens, not a broken one
_KNOWN_ALGS: Final = ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS
#: the two names of an Ed25519 signature: RFC 8037's EdDSA and RFC 9864's fully-specified one
_ED25519_NAMES: Final = {"EdDSA": "Ed25519", "Ed25519": "EdDSA"}
#: a kid is the issuer's text: shown (as repr) up to this many characters
_MAX_SHOWN: Final = 64


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """One verification key and the single algorithm it may verify (RFC 8725 §3.1)."""

    kid: str | None
    alg: str
    key: Key
    #: stable text of the public JWK, to tell whether a refetched set really changed
    fingerprint: str


@dataclass(frozen=True, slots=True)
class SkippedKey:
    """A key of a set that can never verify: which one (``kid 'x'`` or ``key #3``) and why."""

    key: str
    reason: str
    #: the key is sound but meant for something else (``use: enc``, ``key_ops`` without
    #: ``verify``, an ``alg`` outside Issuer.algorithms): normal in a set an IdP publishes
    other_purpose: bool = False

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class _Unusable(Exception):
    """Why one key can never verify; the message is safe to show (no key material)."""

    other_purpose = False


class _OtherPurpose(_Unusable):
    """A sound key this issuer's tokens are not verified with (encryption, another algorithm)."""

    other_purpose = True


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _infer_alg(key: Key, data: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    """The one algorithm this key may verify: its own ``alg``, else the only fit in the allowlist.

    :raises _Unusable: no allowed algorithm fits the key
    """
    declared = data.get("alg")
    if declared is not None:
        if isinstance(declared, str) and declared in allowed:
            return declared
        if isinstance(declared, str) and declared in _KNOWN_ALGS:
            raise _OtherPurpose(f"its alg {_show(declared)} is not in Issuer.algorithms {list(allowed)}")
        raise _Unusable(f"its alg {_show(declared)} is not in Issuer.algorithms {list(allowed)}")
    kty = key.key_type
    if kty == "EC":
        return _ec_alg(data.get("crv"), allowed)
    if kty == "OKP":
        if data.get("crv") != "Ed25519":
            raise _Unusable(f"OKP curve {_show(data.get('crv'))} is not a signature curve (Ed25519 only)")
        found: str | None = next((a for a in ("EdDSA", "Ed25519") if a in allowed), None)
    elif kty == "RSA":
        found = next((a for a in allowed if a[:2] in ("RS", "PS")), None)
    elif kty == "oct":
        found = next((a for a in allowed if a in HMAC_ALGORITHMS), None)
    else:
        raise _Unusable(f"key type {_show(kty)} is not supported")
    if found is None:
        raise _Unusable(f"no algorithm in Issuer.algorithms {list(allowed)} verifies with an {kty} key")
    return found


def _ec_alg(crv: object, allowed: tuple[str, ...]) -> str:
    alg = _EC_ALG.get(crv) if isinstance(crv, str) else None
    if alg is None:
        raise _Unusable(f"EC curve {_show(crv)} is not accepted (P-256, P-384 or P-521)")
    if alg not in allowed:
        raise _Unusable(f"a {crv} key verifies {alg}, which is not in Issuer.algorithms {list(allowed)}")
    return alg


def _check_members(data: object) -> Mapping[str, Any]:
    """The members RFC 7517 §4.2/§4.3 use to limit a key: it must be meant for verifying."""
    if not isinstance(data, Mapping):
        raise _Unusable("it is not a JSON object")
    use = data.get("use", "sig")
    if use != "sig":
        raise (_OtherPurpose if use == "enc" else _Unusable)(f"its use is {_show(use)}, not 'sig'")
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise (_OtherPurpose if isinstance(ops, list) else _Unusable)("its key_ops do not include 'verify'")
    if "kid" in data and not isinstance(data["kid"], str):
        raise _Unusable("its kid is not a string")
    return data


def _pin_one(raw: object, allowed: tuple[str, ...]) -> PinnedKey:
    """:raises _Unusable: the key can never verify a token under ``allowed``"""
    data = _check_members(raw)
    kid: str | None = data.get("kid")
    try:
        key = JWKRegistry.import_key(dict(data))
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        raise _Unusable(f"it is not a valid {_show(data.get('kty'))} JWK") from None
    alg = _infer_alg(key, data, allowed)
    try:
        JWSRegistry.algorithms[alg].check_key(key)
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        raise _Unusable(f"it cannot verify {alg} (another key type or curve)") from None
    if key.key_type == "RSA":
        bits: int = key.public_key.key_size  # type: ignore[union-attr]
        if bits < _RSA_MIN_BITS:
            raise _Unusable(f"its RSA modulus has {bits} bits, under {_RSA_MIN_BITS} (RFC 7518 §3.3)")
    public = key.as_dict(private=False) if key.key_type != "oct" else {"k": "<secret>", "kid": kid}
    return PinnedKey(kid, alg, key, json.dumps(public, sort_keys=True) + alg)


def _ed25519_twin(key: PinnedKey, raw: object, allowed: tuple[str, ...]) -> PinnedKey | None:
    """An Ed25519 key without ``alg`` under both names, when both are allowed.

    Why: ``EdDSA`` on an Ed25519 key and the fully-specified ``Ed25519`` (RFC 9864 §2) are one
    and the same verification, so pinning the key to only one name would refuse genuine tokens
    that use the other; a key that declares its ``alg`` keeps exactly that one.
    """
    if key.alg not in _ED25519_NAMES or (isinstance(raw, Mapping) and "alg" in raw):
        return None
    other = _ED25519_NAMES[key.alg]
    if other not in allowed:
        return None
    return PinnedKey(key.kid, other, key.key, key.fingerprint[: -len(key.alg)] + other)


def _name(raw: object, index: int) -> str:
    kid = raw.get("kid") if isinstance(raw, Mapping) else None
    return f"kid {_show(kid)}" if isinstance(kid, str) else f"key #{index}"


def read_keys(
    jwks: Mapping[str, Any], allowed: tuple[str, ...], max_keys: int = 64
) -> tuple[list[PinnedKey], list[SkippedKey]]:
    """Import a JWKS: the keys usable with an allowed algorithm, and each other key with its reason.

    Skipped: ``use`` other than ``sig`` and ``key_ops`` without ``verify`` (RFC 7517 §4.2, §4.3),
    unknown types, EC curves other than P-256/384/521, OKP other than Ed25519, RSA moduli under
    2048 bits (RFC 7518 §3.3), an ``alg`` outside the allowlist or the key's reach, a second key
    with the same ``(kid, alg)`` (the first is used), and entries past ``max_keys``.
    """
    raw = jwks.get("keys")
    if not isinstance(raw, list):
        return [], [SkippedKey("the set", "it has no 'keys' list (RFC 7517 §5)")]
    pinned: dict[tuple[str | None, str], PinnedKey] = {}
    skipped: list[SkippedKey] = []
    for index, entry in enumerate(raw[:max_keys]):
        try:
            key = _pin_one(entry, allowed)
        except _Unusable as why:
            skipped.append(SkippedKey(_name(entry, index), str(why), why.other_purpose))
            continue
        twin = _ed25519_twin(key, entry, allowed)
        if twin is not None and (twin.kid, twin.alg) not in pinned:
            pinned[(twin.kid, twin.alg)] = twin
        if (key.kid, key.alg) in pinned:
            duplicate = f"an earlier key has the same kid and alg {key.alg}"
            skipped.append(SkippedKey(_name(entry, index), duplicate))
            continue
        pinned[(key.kid, key.alg)] = key
    if len(raw) > max_keys:
        extra = len(raw) - max_keys
        skipped.append(SkippedKey(f"key #{max_keys} on", f"{extra} keys past KeyPolicy.max_keys={max_keys}"))
    return list(pinned.values()), skipped


def pin_keys(jwks: Mapping[str, Any], allowed: tuple[str, ...], max_keys: int = 64) -> list[PinnedKey]:
    """The keys of :func:`read_keys` that can verify; the others are dropped."""
    return read_keys(jwks, allowed, max_keys)[0]
