"""StatusListCache: per-uri Status List state driven by an injected clock; no I/O, no locks.

States of one list, by ``now``::

    cold ──fetch ok──► fresh ──fresh_until──► due: blocking refetch (a revocation may be out)
                         ▲                          │ fails
                         │                          ▼
                         └──────fetch ok─────── failing: the last good list serves, with one
                                                background refetch per backoff, until
                                                min(fresh_until + stale_if_error, exp); then
                                                the tokens that reference it fail closed

Why like the key cache: a failed fetch never wipes the last good list, a failing list is
asked for at most once per ``failure_backoff`` (a dead status server costs one fetch per
backoff, not one per request), and while a stale list serves, requests never wait on a
server that hangs. Past the stale window, what the tokens get depends on what went wrong:
a list that came back and was refused (signature, issuer, format, caps) fails them as
``status_list_invalid`` (401); a list that could not be had fails them as
``status_list_unavailable`` (503 with Retry-After).

The pure core consults :meth:`lookup` and :meth:`after_fetch`; the loader (driver side)
calls :meth:`store` and :meth:`record_failure`. At most ``max_lists`` uris are remembered;
a full cache forgets the entry that is of least use (a failure record first, then the list
that stops being usable soonest): forgetting a list costs one fetch, never a wrong answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from ..errors import InvalidToken, Refusal, Unavailable
from .status_list import StatusList, StatusListRules, VerifiedStatusList

__all__ = ["FailureKind", "ListFetchNeeded", "StatusListCache"]

#: ``invalid``: a list came back and was refused; ``unavailable``: no list could be had
FailureKind = Literal["invalid", "unavailable"]
_INVALID: Final = "The access token's status list could not be verified"


@dataclass(frozen=True, slots=True)
class ListFetchNeeded:
    """The list must be fetched. ``blocking``: the request waits for it; else it is judged by
    the stale list and the fetch runs in the background."""

    blocking: bool


_BLOCKING: Final = ListFetchNeeded(blocking=True)
_BACKGROUND: Final = ListFetchNeeded(blocking=False)


@dataclass(slots=True)
class _Entry:
    verified: VerifiedStatusList | None = None
    failed_at: float | None = None
    failure: FailureKind = "unavailable"
    refresh_started_at: float | None = None
    attempts: int = 0


class StatusListCache:
    """One issuer's Status Lists, their freshness and the failure backoff, keyed by uri.

    Why one cache per issuer: a list is verified with its issuer's keys and checked against
    its issuer's name, so it may only ever judge that issuer's tokens, even when two issuers
    share an origin (realms of one server) and name the same uri.
    """

    def __init__(self, rules: StatusListRules) -> None:
        self.rules = rules
        self.policy = rules.policy
        self._entries: dict[str, _Entry] = {}

    # --- read side (the core) -------------------------------------------------------------
    def lookup(self, uri: str, now: float) -> tuple[StatusList | None, ListFetchNeeded | None]:
        """The list to judge by and/or the fetch that is needed.

        ``(list, None)``: judge by it. ``(None, blocking)``: fetch, then :meth:`after_fetch`.
        ``(list, background)``: judge by this stale list and refetch without waiting.

        :raises InvalidToken: ``status_list_invalid``: the list was refused, nothing usable is
            cached, and the backoff has not passed
        :raises Unavailable: ``status_list_unavailable``: likewise, after fetches failed
        """
        entry = self._entries.get(uri)
        if entry is None:
            return None, _BLOCKING
        verified = entry.verified
        if verified is not None and now < verified.fresh_until:
            return verified.status_list, None
        failing = entry.failed_at is not None
        backing_off = entry.failed_at is not None and now - entry.failed_at < self.policy.failure_backoff
        if verified is None or now >= self._usable_until(verified):
            if failing and backing_off:
                raise self._refusal(entry, now)
            return None, _BLOCKING
        if not failing:
            return None, _BLOCKING  # the first refetch after freshness ends: wait for the news
        if backing_off or not self._start_refresh(entry, now):
            return verified.status_list, None
        return verified.status_list, _BACKGROUND

    def after_fetch(self, uri: str, now: float) -> StatusList:
        """Like :meth:`lookup` once a blocking fetch has run (or failed): never asks again.

        :raises InvalidToken: ``status_list_invalid``, as :meth:`lookup`
        :raises Unavailable: ``status_list_unavailable``, as :meth:`lookup`, or the entry was
            forgotten meanwhile (a full cache)
        """
        entry = self._entries.get(uri)
        if entry is None:
            raise Unavailable("status_list_unavailable", retry_after=1)
        verified = entry.verified
        if verified is not None and now < self._usable_until(verified):
            return verified.status_list
        raise self._refusal(entry, now)

    def attempts(self, uri: str) -> int:
        """How many fetches of ``uri`` have ended; single-flight compares it before fetching."""
        entry = self._entries.get(uri)
        return -1 if entry is None else entry.attempts

    def _usable_until(self, verified: VerifiedStatusList) -> float:
        return min(verified.fresh_until + self.policy.stale_if_error, verified.expires_at)

    def _refusal(self, entry: _Entry, now: float) -> Refusal:
        if entry.failure == "invalid":
            return InvalidToken("status_list_invalid", _INVALID)
        return Unavailable("status_list_unavailable", retry_after=self._retry_after(entry, now))

    def _retry_after(self, entry: _Entry, now: float) -> int:
        if entry.failed_at is None:
            return 1
        return max(1, math.ceil(self.policy.failure_backoff - (now - entry.failed_at)))

    def _start_refresh(self, entry: _Entry, now: float) -> bool:
        """Claim the background refetch for this caller, once per fetch timeout."""
        started = entry.refresh_started_at
        if started is not None and now - started < self.policy.fetch_timeout * 2:
            return False
        entry.refresh_started_at = now
        return True

    # --- write side (the loader) ----------------------------------------------------------
    def store(self, uri: str, verified: VerifiedStatusList) -> None:
        """Install a list whose token passed every check."""
        entry = self._entry(uri)
        entry.verified = verified
        entry.failed_at = None
        entry.refresh_started_at = None
        entry.attempts += 1

    def record_failure(self, uri: str, kind: FailureKind, now: float) -> None:
        """A fetch failed (down, slow, refused): keep the last good list, back off."""
        entry = self._entry(uri)
        entry.failed_at = now
        entry.failure = kind
        entry.refresh_started_at = None
        entry.attempts += 1

    def _entry(self, uri: str) -> _Entry:
        entry = self._entries.get(uri)
        if entry is None:
            if len(self._entries) >= self.policy.max_lists:
                self._forget_one()
            entry = self._entries.setdefault(uri, _Entry())
        return entry

    def _forget_one(self) -> None:
        def use(item: tuple[str, _Entry]) -> float:
            verified = item[1].verified
            return -math.inf if verified is None else self._usable_until(verified)

        entries = list(self._entries.items())  # another thread may be storing another uri
        if entries:
            self._entries.pop(min(entries, key=use)[0], None)
