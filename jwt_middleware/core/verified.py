"""VerifiedCache: tokens that passed parse, signature and claim checks, kept until they lapse.

Why a plain dict and not a cachetools TTLCache: this lookup is the whole hot path of a
repeated token, and TTLCache's per-access expiry bookkeeping costs more than everything else
the middleware does on a hit. Entries carry their own deadline and the key-set generation
they were verified under; a lookup drops an entry that lapsed or predates a key change.
Eviction only costs a re-verification, never correctness, so a full cache drops its oldest.
Failures are never cached. A revoked token's entry is dropped by :meth:`VerifiedCache.drop`
(memory hygiene: the revocation check on every hit is what refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TypeVar

from ..identity import Identity

__all__ = ["VerifiedCache", "put_bounded"]

K = TypeVar("K")
V = TypeVar("V")


def put_bounded(entries: dict[K, V], key: K, value: V, maxsize: int) -> None:
    """Insert into a dict used as a bounded cache; when full, drop the oldest sixteenth at once.

    Only for caches whose eviction costs a recomputation, never correctness.
    Why in batches: CPython leaves deleted slots at the front of a dict, so evicting one entry
    per insert with ``next(iter(d))`` rescans them every time (measured: 2 µs per insert at
    10,000 entries); one pass per ``maxsize / 16`` inserts keeps it O(1) amortized.
    """
    if len(entries) >= maxsize:
        try:
            oldest = list(islice(entries, max(1, maxsize // 16)))
        except RuntimeError:  # another thread changed the dict meanwhile; evict next time
            oldest = []
        for old in oldest:
            entries.pop(old, None)
    entries[key] = value


class VerifiedCache:
    __slots__ = ("_entries", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        #: keyed by the Authorization bytes of a ``Bearer`` header, else by the token text
        self._entries: dict[str | bytes, tuple[Identity, float, int]] = {}

    def get(self, token: str | bytes, now: float, generation: int) -> Identity | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        identity, until, entry_generation = entry
        if now < until and entry_generation == generation:
            return identity
        self._entries.pop(token, None)
        return None

    def put(self, token: str | bytes, identity: Identity, until: float, generation: int) -> None:
        if self._maxsize:
            put_bounded(self._entries, token, (identity, until, generation), self._maxsize)

    def drop(self, matches: Callable[[Identity], bool]) -> int:
        """Forget every entry whose identity ``matches``; how many were dropped.

        Safe from another thread than the requests' (a revocation store's follower): it reads
        a snapshot and removes each entry only if it is still the one it judged. Why a scan and
        not an index by jti/subject/session/client: revocations are rare and the scan is short
        (measured about 1 ms for 10,000 entries), while an index would cost every insert on the
        path of a new token.
        """
        entries = self._entries
        try:
            snapshot = list(entries.items())
        except RuntimeError:  # changed meanwhile by another thread: forget everything instead
            count = len(entries)
            entries.clear()
            return count
        dropped = 0
        for key, entry in snapshot:
            if matches(entry[0]) and entries.get(key) is entry:
                entries.pop(key, None)
                dropped += 1
        return dropped

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
