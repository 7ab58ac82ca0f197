"""KeyCache: per-issuer key state driven by an injected clock; no I/O, no locks.

States of one issuer's set, by ``now``::

    cold ──fetch ok──► fresh ──(expires_at - refresh_ahead)──► refresh-ahead (serve + background fetch)
                         ▲                                          │ expires_at
                         └──────────────fetch ok────────────────── expired: blocking fetch;
                                                                    on failure stale keys serve until
                                                                    expires_at + stale_if_error, then 503

Why: a failed fetch never wipes the last good set (PyJWT's PyJWKClient did), an unknown
``kid`` causes at most one refetch per cooldown per issuer, and kids found missing are
remembered, so a spray of random kids costs the issuer nothing and known-kid requests never
queue behind it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from ..config import HMAC_ALGORITHMS, Issuer, KeyPolicy
from ..errors import InvalidToken, Unavailable

__all__ = ["FetchNeeded", "KeyCache", "PinnedKey", "pin_keys"]

_MAX_REMEMBERED_MISSING_KIDS: Final = 1024
_EC_ALG: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_RSA_MIN_BITS: Final = 2048


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """One verification key and the single algorithm it may verify (RFC 8725 §3.1)."""

    kid: str | None
    alg: str
    key: Key
    #: stable text of the public JWK, to tell whether a refetched set really changed
    fingerprint: str


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
    missing_kids: dict[str, None] = field(default_factory=dict)
    attempts: int = 0


def _infer_alg(key: Key, data: Mapping[str, Any], allowed: tuple[str, ...]) -> str | None:
    """The one algorithm this key may verify: its own ``alg``, else the only fit in the allowlist."""
    declared = data.get("alg")
    if declared is not None:
        return declared if isinstance(declared, str) and declared in allowed else None
    kty = key.key_type
    if kty == "EC":
        alg = _EC_ALG.get(str(data.get("crv")))
        return alg if alg in allowed else None
    if kty == "OKP":
        if data.get("crv") != "Ed25519":
            return None
        return next((a for a in ("EdDSA", "Ed25519") if a in allowed), None)
    if kty == "RSA":
        return next((a for a in allowed if a[:2] in ("RS", "PS")), None)
    if kty == "oct":
        return next((a for a in allowed if a in HMAC_ALGORITHMS), None)
    return None


def _pin_one(data: Mapping[str, Any], allowed: tuple[str, ...]) -> PinnedKey | None:
    if not isinstance(data, Mapping) or data.get("use", "sig") != "sig":
        return None
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    kid = data.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    try:
        key = JWKRegistry.import_key(dict(data))
        alg = _infer_alg(key, data, allowed)
        if alg is None:
            return None
        JWSRegistry.algorithms[alg].check_key(key)
        if key.key_type == "RSA" and key.public_key.key_size < _RSA_MIN_BITS:  # type: ignore[union-attr]
            return None
        public = key.as_dict(private=False) if key.key_type != "oct" else {"k": "<secret>", "kid": kid}
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return PinnedKey(kid, alg, key, json.dumps(public, sort_keys=True) + alg)


def pin_keys(jwks: Mapping[str, Any], allowed: tuple[str, ...], max_keys: int = 64) -> list[PinnedKey]:
    """Import a JWKS, keeping only signature keys usable with an allowed algorithm.

    Keys with ``use`` other than ``sig``, unknown types, weak RSA moduli (< 2048 bits,
    RFC 7518 §3.3) or an ``alg`` outside the allowlist are skipped, not fatal.
    """
    raw = jwks.get("keys")
    if not isinstance(raw, list):
        return []
    pinned = [p for p in (_pin_one(d, allowed) for d in raw[:max_keys]) if p is not None]
    return pinned


class KeyCache:
    """Per-issuer key sets, their freshness and the kid-miss throttle.

    The core calls :meth:`select`; the key loader (driver side) calls :meth:`store` and
    :meth:`record_failure`. ``generation`` changes whenever any issuer's set changes, so
    caches of verified tokens can drop what was verified with a retired key.
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
        if kid is None or kid in state.missing_kids or state.static:
            raise InvalidToken("unknown_kid", "No trusted key matches the token")
        if now - state.kid_fetch_at < self.policy.kid_miss_cooldown:
            if self._kid_fetch_running(state, now):
                # Why: during a rotation the requests that carry the new kid while its fetch
                # runs must wait for that fetch (the loader's single-flight joins them to
                # it), not be refused as throttled.
                return None, FetchNeeded(blocking=True, reason="kid_miss")
            raise InvalidToken("unknown_kid_throttled", "No trusted key matches the token")
        state.kid_fetch_at = now
        state.kid_fetch_attempts = state.attempts
        return None, FetchNeeded(blocking=True, reason="kid_miss")

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
            if kid is not None and len(state.missing_kids) < _MAX_REMEMBERED_MISSING_KIDS:
                state.missing_kids[kid] = None
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
        """Install a freshly fetched set; TTL from Cache-Control max-age clamped to the policy."""
        state = self._state[issuer]
        policy = self.policy
        ttl = policy.default_ttl if max_age is None else min(max(max_age, policy.min_ttl), policy.max_ttl)
        if state.static:
            ttl = math.inf
        new = {(k.kid, k.alg): k for k in reversed(keys)}  # first key wins on a duplicate (kid, alg)
        if {k: v.fingerprint for k, v in new.items()} != {k: v.fingerprint for k, v in state.keys.items()}:
            self.generation += 1
            state.missing_kids.clear()
        state.keys = new
        state.kids = frozenset(kid for kid, _ in new)
        state.loaded = True
        state.expires_at = now + ttl
        state.failed_at = None
        state.refresh_started_at = None
        state.attempts += 1

    def record_failure(self, issuer: str, now: float) -> None:
        """A fetch failed (down, slow, garbage, empty): keep the last good set, back off."""
        state = self._state[issuer]
        state.failed_at = now
        state.refresh_started_at = None
        state.attempts += 1

    def is_static(self, issuer: str) -> bool:
        return self._state[issuer].static
