"""In-process revocation store: the mirror is the state, bounded, full rather than forgetful.

One process only: a revocation made in one worker is unknown to the others, so deployments
with more than one process use ``RedisRevocationStore``.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from .._types import Clock
from ..errors import ConfigError, StoreFull
from .mirror import RevocationMirror
from .model import CutOff, CutOffKind, Revocation, RevokedToken

__all__ = ["MemoryRevocationStore"]


class MemoryRevocationStore:
    """Revocations held in this process; its mirror is always current (staleness 0).

    At capacity, expired token entries are forgotten first; if every entry is still live,
    the revocation raises :class:`~jwt_middleware.errors.StoreFull` rather than evict one, since
    an evicted entry would readmit a revoked token. Cut-offs count towards ``maxsize`` and are
    never forgotten. The change holds in the mirror only if it was stored: a full store refuses
    the revocation as a whole, so the caller knows it did not happen.

    Calls are short and never block on I/O, so both drivers may call this store inline.

    :param maxsize: most entries (token entries and cut-offs) held at once
    :param clock: epoch seconds, the app's (``Config.clock``); token entries expire on it
    :raises ConfigError: ``maxsize`` below 1
    """

    #: Safe to call inline from an event loop (see ``Authenticator.check_driver``).
    non_blocking: ClassVar[bool] = True

    def __init__(self, maxsize: int = 1_000_000, clock: Clock = time.time) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(
                "MemoryRevocationStore.maxsize: use a positive number of entries, e.g. 1_000_000"
            )
        self._maxsize = maxsize
        self._clock = clock
        self._mirror = RevocationMirror()
        self._lock = threading.Lock()  # room is checked and taken as one step

    @property
    def mirror(self) -> RevocationMirror:
        """The state itself, checked on every request."""
        return self._mirror

    @property
    def clock(self) -> Clock:
        """The clock token entries expire on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    def revoke_token(self, issuer: str, jti: str, until: float) -> None:
        """Refuse the token ``(issuer, jti)`` until ``until`` (its ``exp`` plus leeway, epoch s).

        :raises StoreFull: every entry is still live and there is no room
        :raises ValueError: an empty issuer or jti, or ``until`` not finite
        """
        self._store(RevokedToken(issuer, jti, until))

    def revoke_subject(self, issuer: str, subject: str, at: float) -> None:
        """Refuse every token of ``(issuer, sub)`` issued at or before ``at`` (see ``CutOff``).

        :raises StoreFull: every entry is still live and there is no room
        :raises ValueError: an empty issuer or subject, or ``at`` not finite
        """
        self._cut_off("subject", issuer, subject, at)

    def revoke_session(self, issuer: str, sid: str, at: float) -> None:
        """Refuse every token of the session ``(issuer, sid)`` issued at or before ``at``.

        :raises StoreFull: every entry is still live and there is no room
        :raises ValueError: an empty issuer or sid, or ``at`` not finite
        """
        self._cut_off("session", issuer, sid, at)

    def revoke_client(self, issuer: str, client_id: str, at: float) -> None:
        """Refuse every token of ``(issuer, client_id)`` issued at or before ``at``.

        :raises StoreFull: every entry is still live and there is no room
        :raises ValueError: an empty issuer or client_id, or ``at`` not finite
        """
        self._cut_off("client", issuer, client_id, at)

    def start(self) -> None:
        """Nothing to follow: the mirror is the state, current from the start."""

    def close(self) -> None:
        """Nothing to release; the state stays readable."""

    def _cut_off(self, kind: CutOffKind, issuer: str, value: str, at: float) -> None:
        self._store(CutOff(kind, issuer, value, at))

    def _store(self, change: Revocation) -> None:
        mirror = self._mirror
        with self._lock:
            if len(mirror) >= self._maxsize and not mirror.holds(change):
                mirror.forget_expired(self._clock())
                if len(mirror) >= self._maxsize:
                    raise StoreFull("the revocation store is full of live entries")
            mirror.apply(change)
