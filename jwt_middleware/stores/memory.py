"""In-process nonce store: bounded, locked, and full rather than forgetful.

One process only: behind several workers a token can be replayed once per worker, so
deployments with more than one process use ``RedisNonceStore``.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import ClassVar, Final

from cachetools import TLRUCache

from .._types import Clock
from ..errors import ConfigError, StoreFull

__all__ = ["MemoryNonceStore"]

#: A value is remembered at least this long (seconds), even when its window has already closed.
MIN_RETENTION: Final = 1.0
#: Keys longer than this are kept as their SHA-256 digest (32 bytes), bounding memory per entry.
MAX_KEY_CHARS: Final = 64


def _until(_key: str | bytes, until: float, _now: float) -> float:
    return until


class _NoEvictTLRUCache(TLRUCache[str | bytes, float]):
    """A TLRUCache that refuses to evict a live entry instead of dropping the least recent one."""

    def popitem(self) -> tuple[str | bytes, float]:
        """Called by cachetools to make room when full: drop expired entries, never a live one."""
        # Why: the base class would evict the least recently used entry, live or not; forgetting
        # a live nonce lets its replay through, so a full store refuses (503) instead.
        expired = self.expire()
        if expired:
            return expired[0]
        raise StoreFull("the nonce store is full of live entries")


class MemoryNonceStore:
    """One-time values remembered in this process until their own ``until``.

    Each entry expires at the ``until`` it was given (the token's ``exp`` plus leeway). At
    capacity, expired entries are dropped first; if every entry is still live, ``consume``
    raises :class:`~jwt_middleware.errors.StoreFull` (503) rather than evict one, since an
    evicted nonce could be replayed (RFC 7519 §4.1.7, RFC 9449 §11.1).

    Calls are short and never block on I/O, so both the ASGI and the WSGI driver call this
    store inline; a lock makes it safe across threads (cachetools is not thread-safe).

    :param maxsize: most values remembered at once
    :param clock: epoch seconds; tests pass a ``FakeClock``
    :raises ConfigError: ``maxsize`` below 1
    """

    #: Safe to call inline from an event loop (see ``Authenticator.check_driver``).
    non_blocking: ClassVar[bool] = True

    def __init__(self, maxsize: int = 1_000_000, clock: Clock = time.time) -> None:
        if maxsize < 1:
            raise ConfigError("MemoryNonceStore.maxsize: use a positive number of entries, e.g. 1_000_000")
        self._cache = _NoEvictTLRUCache(maxsize, ttu=_until, timer=clock)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        """The clock ``until`` is read on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s), at least 1 s. False if already there: a replay.

        :raises StoreFull: every remembered value is still live and there is no room
        :raises ValueError: ``until`` is not finite (NaN would remember nothing)
        """
        if not math.isfinite(until):
            raise ValueError("until must be a finite epoch time in seconds")
        name = _bounded(key)
        cache = self._cache
        with self._lock:
            if name in cache:  # present and not yet expired
                return False
            # A closed window is still remembered briefly: a value must never be accepted twice.
            cache[name] = max(until, self._clock() + MIN_RETENTION)  # may raise StoreFull
            return True

    def ping(self) -> None:
        """Readiness: an in-process store is always ready."""

    def __len__(self) -> int:
        """Values remembered now (expired ones are dropped first)."""
        with self._lock:
            return len(self._cache)


def _bounded(key: str) -> str | bytes:
    """``key`` itself when short, else its SHA-256 digest (bytes never equal a str key)."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
