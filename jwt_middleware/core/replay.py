"""Replay windows: the ``iat`` window and one-time ``jti`` (RFC 7519 §4.1.6-4.1.7, RFC 8725 §3.8)."""

from __future__ import annotations

import hashlib
from collections.abc import Generator

from ..errors import InvalidDPoPProof, InvalidToken, StoreError, Unavailable
from ..identity import Identity
from .effects import ConsumeNonce, Effect

__all__ = ["check_iat_window", "consume_once"]

_MAX_KEY_PART = 128


def check_iat_window(identity: Identity, now: float, window: float) -> None:
    """``iat`` must lie within ``window`` seconds of now, whatever ``exp`` says.

    :raises InvalidToken: no ``iat``, or one outside the window
    """
    iat = identity.issued_at
    if iat is None:
        raise InvalidToken("missing_iat", "The access token has no issue time")
    if abs(now - iat) > window:
        raise InvalidToken("iat_outside_window", "The access token is too old or too new for this route")


def _part(value: str) -> str:
    """Key parts are bounded: a long or odd value is replaced by its hash (no key-length abuse)."""
    if len(value) <= _MAX_KEY_PART and value.isprintable() and ":" not in value:
        return value
    return "h" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def token_key(identity: Identity) -> str:
    """One-time key of an access token: per issuer, so two issuers' jti never collide."""
    if not identity.token_id:
        raise InvalidToken("missing_jti", "The access token has no unique id")
    return f"jti:{_part(identity.issuer)}:{_part(identity.token_id)}"


def proof_key(jkt: str, jti: str) -> str:
    """One-time key of a DPoP proof: per proof key, so clients cannot burn each other's jti."""
    return f"dpop:{_part(jkt)}:{_part(jti)}"


def consume_once(
    key: str, until: float, *, fail_open: bool, proof: bool = False
) -> Generator[Effect, object, None]:
    """Yield ConsumeNonce; refuse a replay; turn a store failure into 503 unless failing open.

    :raises InvalidToken: the token was used before (``token_replayed``)
    :raises InvalidDPoPProof: the proof was used before (``proof_replayed``, RFC 9449 §11.1)
    :raises Unavailable: the store failed and the config fails closed
    """
    try:
        fresh = yield ConsumeNonce(key, until)
    except StoreError:
        if fail_open:
            return
        raise Unavailable("store_unavailable", retry_after=1) from None
    if fresh is not True:
        if proof:
            raise InvalidDPoPProof("proof_replayed", "The DPoP proof was used before")
        raise InvalidToken("token_replayed", "The access token was used before")
