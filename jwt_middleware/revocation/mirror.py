"""RevocationMirror: this process's copy of the revocation state, checked on every request.

Why a mirror: the check runs on every request, verified-cache hits included, so it must not
wait on the network. Stores keep the mirror current (the memory store *is* it; the Redis
stores follow a change channel) and say, through :meth:`RevocationMirror.trusted`, whether it
may still be believed.

Why nested dicts keyed issuer → value: a lookup then allocates nothing (a tuple key would be
built per request), and an empty mirror answers after one attribute read.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import Final

from .model import (
    CLIENT_REVOKED,
    SESSION_REVOKED,
    SUBJECT_REVOKED,
    TOKEN_REVOKED,
    CutOff,
    CutOffKind,
    Revocation,
    RevokedToken,
)

__all__ = ["Listener", "RevocationMirror"]

logger: Final = logging.getLogger("jwt_middleware.revocation")

#: Called with each change once it holds in this process (to drop verified-cache entries).
Listener = Callable[[Revocation], None]

_ByIssuer = dict[str, dict[str, float]]


class RevocationMirror:
    """Token entries ``(issuer, jti) -> until`` and cut-offs ``(kind, issuer, value) -> at``.

    Reads take no lock: a reader racing a change sees it or not, as a request that started
    just before the revocation would. Changes are merged under a lock and only ever add: a
    token entry's ``until`` and a cut-off's ``at`` only grow, so applying a change twice, late
    or out of order leaves the same state, and a full resync never forgets anything.

    :param max_staleness: seconds the mirror stays trusted after it was last confirmed current;
        None for a mirror that is the state itself (one process), which is never stale
    """

    __slots__ = (
        "_clients",
        "_confirmed_at",
        "_count",
        "_empty",
        "_expiries",
        "_listeners",
        "_lock",
        "_max_staleness",
        "_sessions",
        "_subjects",
        "_tokens",
        "trusted_until",
    )

    def __init__(self, max_staleness: float | None = None) -> None:
        self._max_staleness = max_staleness
        #: when the mirror was last known to hold every change; -inf until the first sync
        self._confirmed_at = math.inf if max_staleness is None else -math.inf
        #: the instant after which a check stops being believed (``trusted`` as one attribute,
        #: read by the pipeline on every request): +inf in-process, -inf until the first sync
        self.trusted_until = math.inf if max_staleness is None else -math.inf
        self._tokens: _ByIssuer = {}
        self._subjects: _ByIssuer = {}
        self._sessions: _ByIssuer = {}
        self._clients: _ByIssuer = {}
        #: (until, issuer, jti) of every token entry, soonest first: what to forget next
        self._expiries: list[tuple[float, str, str]] = []
        self._count = 0
        self._empty = True
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def check(
        self,
        issuer: str,
        jti: str | None,
        subject: str | None,
        sid: str | None,
        client_id: str | None,
        issued_at: float | None,
        now: float,
    ) -> str | None:
        """The reason a verified token is revoked, or None.

        Refused: a token entry for ``(issuer, jti)`` still live at ``now``; or a cut-off for its
        subject, session or client with ``issued_at <= at`` (the same second is refused: the
        safe side, see :class:`CutOff`), or with no ``issued_at`` at all, since such a token
        cannot show it was issued after the cut-off.

        :param issuer: the token's verified ``iss``
        :param issued_at: its ``iat`` (RFC 7519 §4.1.6), or None when absent
        :param now: epoch seconds on the app's clock
        :returns: ``token_revoked``, ``subject_revoked``, ``session_revoked``,
            ``client_revoked``, or None
        """
        if self._empty:
            return None
        if jti is not None and self._tokens:
            jtis = self._tokens.get(issuer)
            if jtis is not None:
                until = jtis.get(jti)
                if until is not None and now <= until:
                    return TOKEN_REVOKED
        if subject is not None and self._subjects:
            values = self._subjects.get(issuer)
            if values is not None:
                at = values.get(subject)
                if at is not None and (issued_at is None or issued_at <= at):
                    return SUBJECT_REVOKED
        if sid is not None and self._sessions:
            values = self._sessions.get(issuer)
            if values is not None:
                at = values.get(sid)
                if at is not None and (issued_at is None or issued_at <= at):
                    return SESSION_REVOKED
        if client_id is not None and self._clients:
            values = self._clients.get(issuer)
            if values is not None:
                at = values.get(client_id)
                if at is not None and (issued_at is None or issued_at <= at):
                    return CLIENT_REVOKED
        return None

    def staleness(self, now: float) -> float:
        """Seconds since the mirror was last confirmed current (0 for an in-process mirror).

        :param now: epoch seconds on the clock the store confirms with (the app's)
        """
        return max(0.0, now - self._confirmed_at)

    def trusted(self, now: float) -> bool:
        """Whether a check may be believed: staleness within ``max_staleness``.

        When False a request whose token the mirror does not refuse gets 503 (fail closed) or
        passes (``store_failure="open"``); a token the mirror refuses is refused either way.
        """
        return now <= self.trusted_until

    @property
    def max_staleness(self) -> float | None:
        """Seconds the mirror stays trusted without a confirmation; None: never stale."""
        return self._max_staleness

    def confirm(self, at: float) -> None:
        """Record that every change made up to ``at`` (epoch s) is in the mirror; stores call it."""
        if self._max_staleness is not None:
            self._confirmed_at = at
            self.trusted_until = at + self._max_staleness

    def invalidate(self) -> None:
        """Stop trusting the mirror until the next confirmation (a store lost its backend)."""
        if self._max_staleness is not None:
            self._confirmed_at = -math.inf
            self.trusted_until = -math.inf

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(change)`` after each change that altered the mirror, once per change.

        It runs on the thread (or event loop) that applied the change: the caller of a
        ``revoke_*`` method, or a Redis store's follower. An exception it raises is logged
        (its type only) and does not stop the change or the other listeners.
        """
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def apply(self, change: Revocation) -> bool:
        """Merge one change. True if it altered the mirror (a new entry, or a later time)."""
        with self._lock:
            changed = self._merge(change)
        if changed:
            self._notify((change,))
        return changed

    def merge(self, changes: Iterable[Revocation]) -> list[Revocation]:
        """Merge many changes (a full resync); returns those that altered the mirror, in order."""
        with self._lock:
            altered = [change for change in changes if self._merge(change)]
        self._notify(altered)
        return altered

    def holds(self, change: Revocation) -> bool:
        """Whether an entry for ``change``'s token, subject, session or client is held (any time)."""
        if isinstance(change, RevokedToken):
            table, value = self._tokens, change.jti
        else:
            table, value = self._table(change.kind), change.value
        return value in table.get(change.issuer, ())

    def forget_expired(self, now: float) -> int:
        """Drop token entries whose ``until`` is before ``now``; returns how many were dropped."""
        dropped = 0
        with self._lock:
            expiries = self._expiries
            while expiries and expiries[0][0] < now:
                until, issuer, jti = heapq.heappop(expiries)
                jtis = self._tokens.get(issuer)
                if jtis is None or jtis.get(jti) != until:
                    continue  # extended later: a newer heap entry stands for it
                del jtis[jti]
                if not jtis:
                    del self._tokens[issuer]
                self._count -= 1
                dropped += 1
            self._empty = self._count == 0
        return dropped

    def entries(self, now: float) -> list[Revocation]:
        """Every live entry (token entries not yet expired at ``now``, and all cut-offs)."""
        with self._lock:
            found: list[Revocation] = [
                RevokedToken(issuer, jti, until)
                for issuer, jtis in self._tokens.items()
                for jti, until in jtis.items()
                if until >= now
            ]
            for kind, table in self._cut_off_tables():
                found += [
                    CutOff(kind, issuer, value, at)
                    for issuer, values in table.items()
                    for value, at in values.items()
                ]
        return found

    def __len__(self) -> int:
        """Entries held, token entries past ``until`` included until forgotten."""
        return self._count

    def _merge(self, change: Revocation) -> bool:
        """Merge under the lock; only ever moves a time forward."""
        if isinstance(change, RevokedToken):
            table, value, time = self._tokens, change.jti, change.until
        else:
            table, value, time = self._table(change.kind), change.value, change.at
        values = table.get(change.issuer)
        if values is None:
            values = table[change.issuer] = {}
        current = values.get(value)
        if current is not None and current >= time:
            return False
        values[value] = time
        if current is None:
            self._count += 1
        if table is self._tokens:
            heapq.heappush(self._expiries, (time, change.issuer, value))
        self._empty = False
        return True

    def _table(self, kind: CutOffKind) -> _ByIssuer:
        if kind == "subject":
            return self._subjects
        if kind == "session":
            return self._sessions
        return self._clients

    def _cut_off_tables(self) -> tuple[tuple[CutOffKind, _ByIssuer], ...]:
        return (("subject", self._subjects), ("session", self._sessions), ("client", self._clients))

    def _notify(self, changes: Iterable[Revocation]) -> None:
        listeners = self._listeners
        if not listeners:
            return
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception as exc:  # a listener's bug must not stop revocation
                    logger.error("revocation listener failed: %s", type(exc).__name__)
