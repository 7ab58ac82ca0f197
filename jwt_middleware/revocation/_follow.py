"""Follower: when a mirror fed by a change channel is current, and when it must resync in full.

No I/O: the Redis shells read messages and sequence numbers and hand them here; this says
what they mean, and when (on the monotonic clock) the next heartbeat is due or the mirror must
stop being trusted. Shared by the sync (thread) and async (task) shells so both decide alike.

Strategy: every change in Redis increments one sequence number and publishes ``<seq> <change>``
in the same script. The follower applies each message it receives (applying is idempotent and
order-free, see ``RevocationMirror``) and tracks the highest number it holds without a hole.
A heartbeat reads the number at time ``t``; once the follower holds every change up to that
number, the mirror is known current as of ``t``. A hole in the numbers, a heartbeat number not
reached by the next heartbeat (a message lost), or a number that went backwards (Redis lost its
data or failed over) calls for a full resync, as does a ``*`` message (another worker restored
entries Redis had lost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from . import _redis_ops as ops
from .mirror import RevocationMirror
from .model import CutOff, Revocation

__all__ = ["FULL_RESYNC_EVERY", "Beats", "Follower", "Snapshot", "Watch"]

#: A full resync this often (seconds) even when nothing looked wrong: bounds the life of any
#: divergence the sequence numbers could not show.
FULL_RESYNC_EVERY: Final = 60.0
#: Longest one wait for a message (seconds), so ``close()`` returns promptly with long heartbeats.
_POLL: Final = 0.25


@dataclass(slots=True)
class Snapshot:
    """What a resync read: the sequence number first, then every entry (read after it)."""

    seq: int
    #: when the sequence number was read, on the app's clock
    read_at: float
    changes: list[Revocation]


class Follower:
    """Follows one change channel into one mirror."""

    __slots__ = ("_held", "_mirror", "_pending", "confirmations")

    def __init__(self, mirror: RevocationMirror) -> None:
        self._mirror = mirror
        #: highest sequence number held with every earlier one; None until the first resync
        self._held: int | None = None
        #: (seq, read_at) of a heartbeat not yet reached
        self._pending: tuple[int, float] | None = None
        #: how many times the mirror was confirmed current; the shells watch it on a monotonic clock
        self.confirmations = 0

    @property
    def held(self) -> int | None:
        """The sequence number the mirror is complete up to; None before the first resync."""
        return self._held

    def message(self, data: bytes | str) -> bool:
        """Apply one message. True when the follower must resync in full (hole, ``*``, garbage)."""
        message = ops.parse_message(data)
        if message is None:
            return True
        if message.change is not None:
            self._mirror.apply(message.change)  # even across a hole: the sooner it holds, the better
        held = self._held
        if held is None or message.seq <= held:
            return held is None
        if message.seq != held + 1 or message.change is None:
            return True
        self._held = message.seq
        self._reach()
        return False

    def heartbeat(self, seq: int, read_at: float) -> bool:
        """Record a heartbeat read of the sequence number. True when a resync is needed."""
        held = self._held
        if held is None or seq < held:
            return True
        if seq == held:
            self._pending = None
            self._confirm(read_at)
            return False
        if self._pending is not None:
            return True  # the previous heartbeat's number was never reached: a message was lost
        self._pending = (seq, read_at)
        return False

    def resynced(self, snapshot: Snapshot, now: float) -> list[Revocation]:
        """Merge a full snapshot; returns the mirror's live entries that Redis lacks (to restore).

        The mirror keeps what Redis lost (a restart without persistence, a failover): nothing
        revoked is readmitted, and the caller writes those entries back.
        """
        self._mirror.merge(snapshot.changes)
        self._held = snapshot.seq
        self._pending = None
        self._confirm(snapshot.read_at)
        return _missing(self._mirror.entries(now), snapshot.changes)

    def _reach(self) -> None:
        pending = self._pending
        if pending is not None and self._held is not None and self._held >= pending[0]:
            self._pending = None
            self._confirm(pending[1])

    def _confirm(self, at: float) -> None:
        self._mirror.confirm(at)
        self.confirmations += 1


def _missing(held: list[Revocation], stored: list[Revocation]) -> list[Revocation]:
    """Entries of ``held`` that ``stored`` lacks or holds with an earlier time."""
    times: dict[tuple[str, str, str], float] = {}
    for change in stored:
        key, time = _key(change)
        times[key] = max(time, times.get(key, time))
    missing = []
    for change in held:
        key, time = _key(change)
        if times.get(key, -float("inf")) < time:
            missing.append(change)
    return missing


def _key(change: Revocation) -> tuple[tuple[str, str, str], float]:
    if isinstance(change, CutOff):
        return (change.kind, change.issuer, change.value), change.at
    return ("token", change.issuer, change.jti), change.until


class Beats:
    """When the next heartbeat is due, and whether it is a full resync (every FULL_RESYNC_EVERY)."""

    __slots__ = ("_interval", "_next_beat", "_next_resync")

    def __init__(self, interval: float) -> None:
        now = time.monotonic()
        self._interval = interval
        self._next_beat = now + interval
        self._next_resync = now + FULL_RESYNC_EVERY

    def wait(self) -> float:
        """Seconds to wait for a message: until the next heartbeat, at most ``_POLL``."""
        return min(_POLL, max(0.0, self._next_beat - time.monotonic()))

    def due(self) -> str | None:
        """``"beat"``, ``"resync"`` or None, and schedules the next one."""
        now = time.monotonic()
        if now < self._next_beat:
            return None
        self._next_beat = now + self._interval
        if now < self._next_resync:
            return "beat"
        self._next_resync = now + FULL_RESYNC_EVERY
        return "resync"


class Watch:
    """Stops trusting the mirror when no confirmation came for ``max_staleness`` of monotonic time.

    Why besides the staleness read on the app's clock: that clock is wall time, and one stepped
    back while Redis is gone would make an old confirmation look recent for as long as the step.
    """

    __slots__ = ("_bound", "_follower", "_mirror", "_seen", "_since")

    def __init__(self, follower: Follower, mirror: RevocationMirror) -> None:
        self._follower = follower
        self._mirror = mirror
        self._bound = mirror.max_staleness or 0.0
        self._seen = follower.confirmations
        self._since = time.monotonic()

    def check(self) -> None:
        count, now = self._follower.confirmations, time.monotonic()
        if count != self._seen:
            self._seen, self._since = count, now
        elif now - self._since > self._bound:
            self._mirror.invalidate()
