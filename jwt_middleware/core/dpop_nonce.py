"""Stateless DPoP server nonces (RFC 9449 §8, §9): a keyed MAC over a time step.

A nonce is ``base64url(step (8 bytes, big-endian) || HMAC-SHA256(secret, label || step)[:16])``:
32 characters of the RFC 9449 ``NQCHAR`` set. Every instance that shares the secret issues and
accepts the same nonces, with no store. A nonce is valid during the step it was issued in and
the next one, so a client holding one is never refused merely because a step boundary passed.

Why a MAC over time and not random nonces: random nonces need a shared store lookup per
request; a time-step MAC answers in memory, and freshness (RFC 9449 §11.1) is bounded by two
steps whatever the proof's ``iat`` says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from typing import Final

from ..errors import ConfigError

__all__ = ["DPoPNonces"]

_LABEL: Final = b"jwt_middleware dpop-nonce v1\x00"
_MAC_BYTES: Final = 16
_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{32}")
_MIN_SECRET_BYTES: Final = 32


class DPoPNonces:
    """Issues and checks server nonces; pure: ``now`` is always an argument.

    :param secret: at least 32 random bytes, the same on every instance
    :param step: seconds one nonce stays current; it is accepted for one more step after that
    :raises ConfigError: a short or non-bytes secret, or a step that is not positive
    """

    __slots__ = ("_secret", "_step")

    def __init__(self, secret: bytes, *, step: float = 300.0) -> None:
        if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
            raise ConfigError("DPoPNonces.secret: use at least 32 random bytes (secrets.token_bytes(32))")
        if not (isinstance(step, int | float) and math.isfinite(step) and step > 0):
            raise ConfigError("DPoPNonces.step: must be a positive number of seconds, e.g. 300.0")
        self._secret = secret
        self._step = float(step)

    def __repr__(self) -> str:  # the secret never appears
        return f"DPoPNonces(step={self._step!r})"

    def issue(self, now: float) -> str:
        """The nonce of the current step, for a ``DPoP-Nonce`` response header."""
        index = self._index(now).to_bytes(8, "big")
        return base64.urlsafe_b64encode(index + self._mac(index)).rstrip(b"=").decode("ascii")

    def is_valid(self, nonce: str, now: float) -> bool:
        """True for a nonce issued by a holder of the secret in this step or the previous one.

        Never raises: anything malformed is simply not valid. The MAC is compared in constant time.
        """
        if not isinstance(nonce, str) or _NONCE.fullmatch(nonce) is None:
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce)
        except (binascii.Error, ValueError):
            return False
        index, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(index)):
            return False
        current = self._index(now)
        return int.from_bytes(index, "big") in (current, current - 1)

    def _index(self, now: float) -> int:
        return max(0, math.floor(now / self._step))

    def _mac(self, index: bytes) -> bytes:
        return hmac.digest(self._secret, _LABEL + index, hashlib.sha256)[:_MAC_BYTES]
