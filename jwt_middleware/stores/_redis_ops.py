"""Pure Redis helpers shared by the sync and async store shells: key names, arguments, replies.

Nothing here performs I/O or imports ``redis``; ``stores/redis.py`` is the only module that does.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Final

from ..errors import ConfigError, StoreError

__all__ = [
    "DEFAULT_NONCE_PREFIX",
    "DEFAULT_TIMEOUT",
    "MAX_KEY_BYTES",
    "MAX_REPLICA_ACKS",
    "MIN_RETENTION_MS",
    "NonceSet",
    "acknowledged",
    "attempt_bound",
    "check_prefix",
    "check_replica_acks",
    "check_timeout",
    "key_name",
    "nonce_set",
    "parse_set_reply",
    "retry_fits",
    "wait_ms",
]

DEFAULT_NONCE_PREFIX: Final = "jwtmw:nonce:"
#: Longest Redis key built from a caller's key as given; longer ones are hashed.
MAX_KEY_BYTES: Final = 200
#: Longest prefix accepted, so that a hashed name (prefix + "h:" + 64 hex) stays bounded too.
MAX_PREFIX_BYTES: Final = 64
#: A value is remembered at least this long, even when its window has already closed.
MIN_RETENTION_MS: Final = 1000
#: Default time one store call may take, retry included (seconds).
DEFAULT_TIMEOUT: Final = 0.25
#: Longest timeout accepted (seconds): past this a stalled Redis holds requests too long to matter.
MAX_TIMEOUT: Final = 30.0
#: Most replicas a use may be made to wait for (Redis WAIT); more is a typo, not a topology.
MAX_REPLICA_ACKS: Final = 16
_HASHED: Final = "h:"
_TIMEOUT_FIX: Final = "use a positive number of seconds up to 30, e.g. 0.25"


@dataclass(frozen=True, slots=True)
class NonceSet:
    """Arguments of one ``SET name value NX GET PX px``.

    ``value`` is random per call, so a retry of this same call can tell its own earlier write
    (the reply is ``value``) from another use (the reply is some other value).
    """

    name: str
    value: str
    px: int


def check_prefix(prefix: str) -> str:
    """:raises ConfigError: a prefix that is empty, too long or not printable ASCII"""
    if not prefix or len(prefix) > MAX_PREFIX_BYTES or not _plain(prefix):
        raise ConfigError(
            f"prefix: use 1 to {MAX_PREFIX_BYTES} printable ASCII characters, e.g. {DEFAULT_NONCE_PREFIX!r}"
        )
    return prefix


def check_timeout(owner: str, timeout: float) -> float:
    """:raises ConfigError: a timeout that is not a finite number of seconds in (0, 30]"""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigError(f"{owner}.timeout: {_TIMEOUT_FIX}")
    return float(timeout)


def check_replica_acks(owner: str, replica_acks: int) -> int:
    """:raises ConfigError: a count of replicas that is not a whole number in 0..16"""
    whole = isinstance(replica_acks, int) and not isinstance(replica_acks, bool)
    if not whole or not 0 <= replica_acks <= MAX_REPLICA_ACKS:
        raise ConfigError(
            f"{owner}.replica_acks: use 0 (the master's reply suffices) or the number of replicas "
            f"that must confirm each use, up to {MAX_REPLICA_ACKS}, e.g. 1"
        )
    return replica_acks


def attempt_bound(
    owner: str,
    timeout: float,
    *,
    socket_timeout: object,
    socket_connect_timeout: object,
    retries: int,
) -> float:
    """Longest one blocking attempt can take (connect, then read), checked against ``timeout``.

    A blocking client cannot be interrupted, so its socket timeouts are what bounds a call to a
    stalled Redis, and retries of its own would multiply them: this store retries by itself.

    :raises ConfigError: a socket timeout unset or above ``timeout``, or a client that retries
    """
    fix = (
        f"build it with socket_timeout and socket_connect_timeout at most the store's timeout "
        f"({timeout} s) and retry=Retry(NoBackoff(), 0), e.g. redis.Redis.from_url(url, "
        "socket_timeout=0.1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))"
    )
    bound = 0.0
    timeouts = (("socket_timeout", socket_timeout), ("socket_connect_timeout", socket_connect_timeout))
    for name, value in timeouts:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= timeout:
            raise ConfigError(f"{owner}.client: {name} is {value!r}; {fix}")
        bound += value
    if retries:
        raise ConfigError(f"{owner}.client: it retries {retries} times by itself; {fix}")
    return bound


def retry_fits(elapsed: float, bound: float, timeout: float) -> bool:
    """Whether a second attempt that may take ``bound`` still ends within ``timeout``."""
    return elapsed + bound <= timeout


def wait_ms(read_timeout: float) -> int:
    """How long ``WAIT`` may block (ms): half the read timeout, at least 1.

    Half, so that its reply arrives before the client's read timeout cuts the read off; never
    0, which would make ``WAIT`` block forever.
    """
    return max(1, math.floor(read_timeout * 500))


def acknowledged(reply: object, acked: object, wanted: int) -> object:
    """``reply`` (of the SET) once ``WAIT`` says ``wanted`` replicas hold it.

    :raises StoreError: fewer replicas confirmed it in time: the use may not survive a
        failover, so it must not count as a first use (the request gets 503)
    """
    if isinstance(acked, bool) or not isinstance(acked, int):
        raise StoreError(f"unexpected reply to WAIT: {type(acked).__name__}")
    if acked < wanted:
        raise StoreError(f"{acked} of {wanted} replicas confirmed the use in time")
    return reply


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
    """Arguments to remember ``key`` for the rest of its window: ``until - now``, at least 1 s.

    ``until`` and ``now`` come from the same clock (the app's), so the relative TTL is the
    token's remaining life whatever Redis's own clock says; rounded up to the millisecond, and
    counted by Redis from when the command arrives, it never ends before the window does.

    :raises ValueError: ``until`` is not a finite number (NaN would store nothing)
    """
    if not math.isfinite(until):
        raise ValueError("until must be a finite epoch time in seconds")
    # Why relative: an absolute PXAT is read on Redis's clock; with the app 120 s behind Redis a
    # 60 s window had already closed there, so each use was stored expired and accepted again.
    px = max(MIN_RETENTION_MS, math.ceil((until - now) * 1000))
    return NonceSet(key_name(prefix, key), secrets.token_hex(16), px)


def parse_set_reply(reply: object, value: str) -> bool:
    """True if this call stored the key (first use), False if another use had (a replay).

    ``SET … NX GET`` answers nil when it stored the value, else the value already there: our own
    ``value`` means an earlier attempt of this same call stored it (its reply was lost).

    :raises StoreError: a reply that is not nil or a value; it must not count as a first use
    """
    if reply is None:
        return True
    if isinstance(reply, bytes):
        return reply == value.encode("ascii")
    if isinstance(reply, str):
        return reply == value
    raise StoreError(f"unexpected reply to SET NX GET: {type(reply).__name__}")


def _plain(text: str) -> bool:
    """Printable ASCII only (0x20 to 0x7e)."""
    return text.isascii() and text.isprintable()
