"""Pure Redis helpers shared by the sync and async store shells: key names, arguments, replies.

Nothing here performs I/O or imports ``redis``; ``stores/redis.py`` is the only module that does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Final

from ..errors import ConfigError, StoreError

__all__ = [
    "DEFAULT_NONCE_PREFIX",
    "MARK",
    "MAX_KEY_BYTES",
    "MIN_RETENTION_MS",
    "NonceSet",
    "check_prefix",
    "key_name",
    "nonce_set",
    "parse_set_reply",
]

DEFAULT_NONCE_PREFIX: Final = "jwtmw:nonce:"
#: Longest Redis key built from a caller's key as given; longer ones are hashed.
MAX_KEY_BYTES: Final = 200
#: Longest prefix accepted, so that a hashed name (prefix + "h:" + 64 hex) stays bounded too.
MAX_PREFIX_BYTES: Final = 64
#: A value is remembered at least this long, even when its window has already closed.
MIN_RETENTION_MS: Final = 1000
#: The stored value; only the key's existence matters.
MARK: Final = b"1"
_HASHED: Final = "h:"


@dataclass(frozen=True, slots=True)
class NonceSet:
    """Arguments of one ``SET name 1 NX (PXAT pxat | PX px)``: exactly one of ``pxat``/``px`` is set."""

    name: str
    pxat: int | None
    px: int | None


def check_prefix(prefix: str) -> str:
    """:raises ConfigError: a prefix that is empty, too long or not printable ASCII"""
    if not prefix or len(prefix) > MAX_PREFIX_BYTES or not _plain(prefix):
        raise ConfigError(
            f"prefix: use 1 to {MAX_PREFIX_BYTES} printable ASCII characters, e.g. {DEFAULT_NONCE_PREFIX!r}"
        )
    return prefix


def key_name(prefix: str, key: str) -> str:
    """The Redis key for ``key``: as given when short and plain, else ``prefix + "h:" + sha256 hex``."""
    # Why: keys come from tokens, so their length and bytes are the client's choice. Hashing
    # bounds memory per key and keeps odd bytes out of logs and MONITOR. A plain key that itself
    # starts with "h:" is hashed too, so no raw key can land on another key's digest.
    name = prefix + key
    if len(name) <= MAX_KEY_BYTES and _plain(key) and not key.startswith(_HASHED):
        return name
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return prefix + _HASHED + digest


def nonce_set(prefix: str, key: str, until: float, now: float) -> NonceSet:
    """Arguments to remember ``key`` until ``until`` (epoch s), and at least MIN_RETENTION_MS.

    The absolute expiry is rounded up to the millisecond, so Redis never forgets a value before
    the token it protects has expired. A window that closes within MIN_RETENTION_MS (or has
    already closed) uses a relative ``PX`` instead, which does not depend on the two clocks
    agreeing.

    :raises ValueError: ``until`` is not a finite number (NaN would store nothing)
    """
    if not math.isfinite(until):
        raise ValueError("until must be a finite epoch time in seconds")
    name = key_name(prefix, key)
    pxat = math.ceil(until * 1000)
    if pxat - now * 1000 < MIN_RETENTION_MS:
        return NonceSet(name, pxat=None, px=MIN_RETENTION_MS)
    return NonceSet(name, pxat=pxat, px=None)


def parse_set_reply(reply: object) -> bool:
    """True if ``SET NX`` stored the key (first use), False if it existed (a replay).

    :raises StoreError: any other reply; an unknown answer must not count as a first use
    """
    if reply is True or reply == b"OK" or reply == "OK":
        return True
    if reply is None or reply is False:
        return False
    raise StoreError(f"unexpected reply to SET NX: {type(reply).__name__}")


def _plain(text: str) -> bool:
    """Printable ASCII only (0x20 to 0x7e)."""
    return text.isascii() and text.isprintable()
