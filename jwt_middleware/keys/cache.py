"""KeyCache: per-issuer key state driven by an injected clock; no I/O, no locks.

States of one issuer's set, by ``now``::

    cold ──fetch ok──► fresh ──(expires_at - refresh_ahead)──► refresh-ahead (serve + background fetch)
                         ▲                                          │ expires_at
                         └──────────────fetch ok────────────────── expired: blocking fetch;
                                                                    on failure stale keys serve until
                                                                    expires_at + stale_if_error, then 503

Why: a failed fetch never wipes the last good set (PyJWT's PyJWKClient did), an unknown
``kid`` causes at most one refetch per cooldown per issuer, and kids found missing are
remembered for one cooldown, so a spray of random kids costs the issuer nothing and known-kid
requests never queue behind it. Kids a refresh dropped are remembered as retired and checked
again on a budget of their own, so tokens of a retired key never delay the next new kid.
Measured in cooldowns, how long genuine tokens are refused: a new kid, at most one (only when
another unknown kid spent the budget just before); a kid a forged token named before the
issuer published it, at most one; a retired kid published again, at most one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ..config import Issuer, KeyPolicy
from ..errors import InvalidToken, Unavailable
from .pinning import PinnedKey, pin_keys

__all__ = ["FetchNeeded", "KeyCache", "PinnedKey", "pin_keys"]

#: bound of each per-issuer memory of kids (missing, retired); a full one forgets its oldest sixteenth
_MAX_REMEMBERED_KIDS: Final = 1024


@dataclass(frozen=True, slots=True)
class FetchNeeded:
    """The cache cannot answer without a fetch. ``blocking``: the request must wait for it."""

    blocking: bool
    reason: Literal["cold", "expired", "kid_miss", "refresh_ahead"]


@dataclass(slots=True)
class _IssuerState:
    keys: dict[tuple[str | None, str], PinnedKey] = field(default_factory=dict)
    kids: frozenset[str | None] = frozenset()
    loaded: bool = False
    static: bool = False
    expires_at: float = -math.inf
    failed_at: float | None = None
    kid_fetch_at: float = -math.inf
    #: ``attempts`` when the last kid-miss fetch was asked for: equal while that fetch runs
    kid_fetch_attempts: int = -1
    refresh_started_at: float | None = None
    #: kids a fetch found missing → when that finding lapses (a kid-miss then refetches)
    missing_kids: dict[str, float] = field(default_factory=dict)
    #: kids a refresh dropped from the set → when; refused without spending the unknown-kid budget
    retired_kids: dict[str, float] = field(default_factory=dict)
    #: when the retired kids were last checked against the issuer (any fetch that ended well)
    retired_checked_at: float = -math.inf
    attempts: int = 0


def _remember(kids: dict[str, float], kid: str, value: float) -> None:
    """Note ``kid``; a full memory first forgets its oldest sixteenth (costs a fetch, never a key)."""
    if kid not in kids and len(kids) >= _MAX_REMEMBERED_KIDS:
        for old in list(kids)[: _MAX_REMEMBERED_KIDS // 16]:
            kids.pop(old, None)  # another request thread may be evicting the same ones
    kids[kid] = value


class KeyCache:
    """Per-issuer key sets, their freshness and the kid-miss throttle.

    The core calls :meth:`select`; the key loader (driver side) calls :meth:`store` and
    :meth:`record_failure`. ``generation`` changes whenever any issuer's set changes (once
    the new keys are in place), so caches of verified tokens can drop what was verified with a
    retired key: read it before looking a key up, and file the verification under that value.
    """

    def __init__(self, issuers: Mapping[str, Issuer], policy: KeyPolicy) -> None:
        self.policy = policy
        self.generation = 0
        self._issuers = dict(issuers)
        self._state = {name: _IssuerState(static=not i.remote) for name, i in issuers.items()}

    # --- read side (the core) -------------------------------------------------------------
    def select(
        self, issuer: str, kid: str | None, alg: str, now: float
    ) -> tuple[PinnedKey | None, FetchNeeded | None]:
        """Return the key for ``(kid, alg)`` and/or the fetch that is needed.

        ``(key, None)``: use it. ``(None, blocking fetch)``: fetch, then :meth:`select_after_fetch`.
        ``(key, background fetch)``: use it and refresh the set without making the request wait.

        :raises InvalidToken: unknown or ambiguous kid, or an alg the key is not pinned to
        :raises Unavailable: no keys and the issuer is failing (RFC 6750 has no code for it: 503)
        """
        state = self._state[issuer]
        need = self._freshness(state, now)
        if need is not None and need.blocking:
            return None, need
        key = self._find(state, issuer, kid, alg)
        if key is not None:
            if need is not None and self._start_refresh(state, now):
                return key, need
            return key, None
        if kid is None or state.static:
            raise InvalidToken("unknown_kid", "No trusted key matches the token")
        if kid in state.retired_kids:
            return None, self._retired_kid_fetch(state, now)
        if state.missing_kids.get(kid, -math.inf) > now:
            raise InvalidToken("unknown_kid", "No trusted key matches the token")
        return None, self._kid_miss_fetch(state, now)

    def _kid_miss_fetch(self, state: _IssuerState, now: float) -> FetchNeeded:
        """A kid neither in the set nor known to be missing: refetch, at most once per cooldown.

        :raises InvalidToken: ``unknown_kid_throttled`` within the cooldown, unless its fetch runs
        """
        if now - state.kid_fetch_at < self.policy.kid_miss_cooldown:
            if self._kid_fetch_running(state, now):
                # Why: during a rotation the requests that carry the new kid while its fetch
                # runs must wait for that fetch (the loader's single-flight joins them to
                # it), not be refused as throttled.
                return FetchNeeded(blocking=True, reason="kid_miss")
            raise InvalidToken("unknown_kid_throttled", "No trusted key matches the token")
        state.kid_fetch_at = now
        state.kid_fetch_attempts = state.attempts
        return FetchNeeded(blocking=True, reason="kid_miss")

    def _retired_kid_fetch(self, state: _IssuerState, now: float) -> FetchNeeded:
        """A kid a refresh dropped: checked again at most once per cooldown, on its own budget.

        Why its own budget: tokens signed with a retired key keep coming for their lifetime;
        if the first of them spent the unknown-kid refetch, the issuer's next new kid, used
        right after, would be refused as throttled. Why check at all: an issuer that publishes
        a retired kid again (a rollback, an endpoint behind a lagging cache) is believed within
        one cooldown, not only at the next scheduled refresh.

        :raises InvalidToken: ``unknown_kid`` while the last check is younger than the cooldown
        """
        if now - state.retired_checked_at < self.policy.kid_miss_cooldown:
            raise InvalidToken("unknown_kid", "No trusted key matches the token")
        state.retired_checked_at = now
        return FetchNeeded(blocking=True, reason="kid_miss")

    def ready(self, issuer: str, kid: str | None, alg: str, now: float) -> PinnedKey | None:
        """The key, when :meth:`select` would return it with no fetch due; else None (ask select).

        Why a separate probe: ``select`` records that it asked for a refresh or a kid-miss
        fetch, so it must run where that fetch is then yielded. This probe changes nothing,
        so the core can verify a token without a generator when the cache can answer alone.

        :raises InvalidToken: as :meth:`select` would, for the same (fresh) state
        :raises Unavailable: as :meth:`select` would
        """
        state = self._state[issuer]
        if not state.static and self._freshness(state, now) is not None:
            return None
        return self._find(state, issuer, kid, alg)

    def select_after_fetch(self, issuer: str, kid: str | None, alg: str, now: float) -> PinnedKey:
        """Like :meth:`select` once a blocking fetch has run (or failed): never asks again."""
        state = self._state[issuer]
        if not state.loaded or now >= state.expires_at + self.policy.stale_if_error:
            raise Unavailable("keys_unavailable", retry_after=self._retry_after(state, now))
        key = self._find(state, issuer, kid, alg)
        if key is None:
            if kid is not None and kid not in state.retired_kids:
                # Why a lapse: a forged token may name the kid the issuer publishes next; the
                # finding must not outlive one cooldown, or genuine tokens with that kid would
                # be refused until the set itself expired (up to max_ttl).
                _remember(state.missing_kids, kid, now + self.policy.kid_miss_cooldown)
            raise InvalidToken("unknown_kid", "No trusted key matches the token")
        return key

    def verified_until(self, issuer: str) -> float:
        """How long a verification with this issuer's current set may be reused without asking
        the cache again: until the set's refresh-ahead window opens, so a retired key stops
        verifying cached tokens once the set is refreshed, even with no other traffic."""
        state = self._state[issuer]
        return math.inf if state.static else state.expires_at - self.policy.refresh_ahead

    def attempts(self, issuer: str) -> int:
        """How many fetches have ended (ok or failed); single-flight compares it before fetching."""
        return self._state[issuer].attempts

    def _freshness(self, state: _IssuerState, now: float) -> FetchNeeded | None:
        if state.static:
            return None
        policy = self.policy
        backing_off = state.failed_at is not None and now - state.failed_at < policy.failure_backoff
        if not state.loaded:
            if backing_off:
                raise Unavailable("keys_unavailable", retry_after=self._retry_after(state, now))
            return FetchNeeded(blocking=True, reason="cold")
        if now >= state.expires_at:
            if now >= state.expires_at + policy.stale_if_error:
                if backing_off:
                    raise Unavailable("keys_unavailable", retry_after=self._retry_after(state, now))
                return FetchNeeded(blocking=True, reason="expired")
            window = state.expires_at - policy.refresh_ahead
            failing = state.failed_at is not None and state.failed_at >= window
            if not failing:
                return FetchNeeded(blocking=True, reason="expired")
            return None if backing_off else FetchNeeded(blocking=False, reason="refresh_ahead")
        if now >= state.expires_at - policy.refresh_ahead and not backing_off:
            return FetchNeeded(blocking=False, reason="refresh_ahead")
        return None

    def _kid_fetch_running(self, state: _IssuerState, now: float) -> bool:
        """A kid-miss fetch was asked for and has not ended (nor been abandoned) yet."""
        running = state.attempts == state.kid_fetch_attempts
        return running and now - state.kid_fetch_at < self.policy.fetch_timeout * 2

    def _start_refresh(self, state: _IssuerState, now: float) -> bool:
        """Claim the background refresh for this caller, once per fetch timeout."""
        started = state.refresh_started_at
        if started is not None and now - started < self.policy.fetch_timeout * 2:
            return False
        state.refresh_started_at = now
        return True

    def _find(self, state: _IssuerState, issuer: str, kid: str | None, alg: str) -> PinnedKey | None:
        if kid is None and self._issuers[issuer].require_kid:  # before a kid-less key could match
            raise InvalidToken("kid_required", "The token must name its key")
        key = state.keys.get((kid, alg))
        if key is not None:
            return key
        if kid is None:
            candidates = [k for k in state.keys.values() if k.alg == alg]
            if len(candidates) == 1:
                return candidates[0]
            raise InvalidToken("kid_required", "The token must name its key")
        if kid in state.kids:
            raise InvalidToken("alg_mismatch", "The token's algorithm is not the one its key is pinned to")
        # A configured key without a kid (a static secret, a single PEM) matches any kid hint.
        return state.keys.get((None, alg))

    def _retry_after(self, state: _IssuerState, now: float) -> int:
        if state.failed_at is None:
            return 1
        return max(1, math.ceil(self.policy.failure_backoff - (now - state.failed_at)))

    # --- write side (the key loader) ------------------------------------------------------
    def store(self, issuer: str, keys: list[PinnedKey], max_age: float | None, now: float) -> None:
        """Install a freshly fetched set; TTL from Cache-Control max-age clamped to the policy.

        Kids the previous set had and this one lacks become known-retired; kids it has are no
        longer missing nor retired. The generation changes after the keys are in place.
        """
        state = self._state[issuer]
        policy = self.policy
        ttl = policy.default_ttl if max_age is None else min(max(max_age, policy.min_ttl), policy.max_ttl)
        if state.static:
            ttl = math.inf
        new = {(k.kid, k.alg): k for k in reversed(keys)}  # first key wins on a duplicate (kid, alg)
        old = state.keys
        changed = {k: v.fingerprint for k, v in new.items()} != {k: v.fingerprint for k, v in old.items()}
        kids = frozenset(kid for kid, _ in new)
        self._note_retired(state, kids, now)
        # Why keys before generation: the pipeline reads the generation, then looks the key up,
        # and files what it verified under that generation. Bumped first, a reader could pair
        # the new generation with a key of the old set, and a retired key's token would be
        # cached as current (the rotation race).
        state.keys = new
        state.kids = kids
        if changed:
            self.generation += 1
        state.loaded = True
        state.expires_at = now + ttl
        state.failed_at = None
        state.refresh_started_at = None
        state.attempts += 1

    @staticmethod
    def _note_retired(state: _IssuerState, kids: frozenset[str | None], now: float) -> None:
        for kid in state.kids - kids:
            if kid is not None:
                _remember(state.retired_kids, kid, now)
        for kid in kids:
            if kid is not None:
                state.retired_kids.pop(kid, None)
                state.missing_kids.pop(kid, None)
        state.retired_checked_at = now

    def record_failure(self, issuer: str, now: float) -> None:
        """A fetch failed (down, slow, garbage, empty): keep the last good set, back off."""
        state = self._state[issuer]
        state.failed_at = now
        state.refresh_started_at = None
        state.attempts += 1

    def is_static(self, issuer: str) -> bool:
        return self._state[issuer].static

    def key_count(self, issuer: str) -> int:
        """How many keys the issuer's current set holds (0 before its first good fetch)."""
        return len(self._state[issuer].keys)
