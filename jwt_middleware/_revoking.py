"""The Authenticator's side of revocation: the store's start and close, the revoke calls and
their audit events, and dropping revoked tokens from the verified-token cache.

The check itself is in the core (``core/revocation.py``), against the store's in-process
mirror; nothing here runs on the request path except the one-time start on first use.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import weakref
from operator import attrgetter
from typing import Final, Literal, cast

from .audit import record_revocation
from .config import Config
from .core.verified import VerifiedCache
from .errors import ConfigError, StoreError
from .identity import Identity
from .revocation import AsyncRevocationStore, Revocation, RevocationStore, RevokedToken

__all__ = ["Revoker", "StoreKind"]

#: which revoke call: a token entry, or a cut-off for a subject, a session or a client
StoreKind = Literal["token", "subject", "session", "client"]

_WRONG_STORE: Final = (
    "revocation_store: {name} is not a revocation store; give MemoryRevocationStore (one "
    "process), RedisRevocationStore or AsyncRedisRevocationStore (jwt_middleware.revocation)"
)
#: the Identity member a cut-off of each kind is matched on
_CUT_OFF_FIELD: Final = {
    "subject": attrgetter("subject"),
    "session": attrgetter("session_id"),
    "client": attrgetter("client_id"),
}


def check_revocation_store(store: object) -> RevocationStore | AsyncRevocationStore:
    """:raises ConfigError: ``store`` is not one of the revocation stores (a nonce store, a client)"""
    if not isinstance(store, RevocationStore | AsyncRevocationStore):
        raise ConfigError(_WRONG_STORE.format(name=type(store).__name__))
    return store


def forget_cached(verified: VerifiedCache, change: Revocation) -> None:
    """Drop the verified-cache entries ``change`` matches (the mirror's own rule, per kind).

    Why drop and not clear: a clear makes every cached token verify its signature again
    (about 0.1 ms each for ES256, 1 s of CPU for a full 10,000-entry cache) on each
    revocation; the scan costs about 1 ms. Memory hygiene only: the check on every cache hit
    refuses a revoked token whether or not its entry is still there.
    """
    issuer = change.issuer
    if isinstance(change, RevokedToken):
        jti = change.jti
        verified.drop(lambda identity: identity.token_id == jti and identity.issuer == issuer)
        return
    read, value, at = _CUT_OFF_FIELD[change.kind], change.value, change.at
    verified.drop(
        lambda identity: read(identity) == value
        and identity.issuer == issuer
        and (identity.issued_at is None or identity.issued_at <= at)
    )


class Revoker:
    """One revocation store, started once per process and closed at shutdown; revokes on
    behalf of the app and audits each revocation.

    Start: a store that only holds memory (``non_blocking``) is started here; a Redis store
    on first use (the first request in each process, or :meth:`start`/:meth:`astart` earlier,
    which the ASGI adapter calls on ``lifespan.startup``). Why first use and not construction
    for WSGI: servers like gunicorn with ``--preload`` build the app in the master process,
    and a follower thread started there does not survive the fork into the workers; so a fork
    also marks the store as not started in the child. Until its first sync a store's mirror
    is not trusted: requests then get 503, never an accept.
    """

    def __init__(self, store: RevocationStore | AsyncRevocationStore, config: Config,
                 verified: VerifiedCache) -> None:
        self.store = store
        self.is_async = inspect.iscoroutinefunction(store.revoke_token)
        self._in_memory = bool(getattr(store, "non_blocking", False))
        self._issuers = frozenset(issuer.issuer for issuer in config.issuers)
        self._clock = config.clock
        self._leeway = config.leeway
        self._max_lifetime = config.max_lifetime
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        #: True while the store still has to be started in this process (read on every request)
        self.pending = not self._in_memory
        if self._in_memory:
            cast(RevocationStore, store).start()
        store.mirror.add_listener(lambda change: forget_cached(verified, change))
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))

    # -- lifecycle

    def start(self) -> None:
        """Start a sync store (idempotent, thread-safe); returns after its first sync attempt.

        :raises TypeError: the store is async: ``await astart()``
        """
        if not self.pending:
            return
        if self.is_async:
            raise TypeError("revocation_store is async (AsyncRedisRevocationStore): await astart()")
        with self._lock:
            if self.pending:
                cast(RevocationStore, self.store).start()
                self.pending = False

    async def astart(self) -> None:
        """Start the store from the event loop: an async store on it, a sync one in a thread."""
        if not self.pending:
            return
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            if not self.pending:
                return
            if self.is_async:
                await cast(AsyncRevocationStore, self.store).astart()
                self.pending = False
            else:
                await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Stop a started sync store; a later request starts it again."""
        if self.is_async:
            raise TypeError("revocation_store is async (AsyncRedisRevocationStore): await aclose()")
        with self._lock:
            if not self.pending and not self._in_memory:
                cast(RevocationStore, self.store).close()
                self.pending = True

    async def aclose(self) -> None:
        """Stop a started store from the event loop."""
        if self.pending or self._in_memory:
            return
        if self.is_async:
            await cast(AsyncRevocationStore, self.store).aclose()
            self.pending = True
        else:
            await asyncio.to_thread(self.close)
        self._alock = None

    def after_fork(self) -> None:
        """In a forked child: the parent's follower did not come along; start again on first use."""
        self._lock = threading.Lock()
        self._alock = None
        if not self._in_memory:
            self.pending = True

    # -- revoking

    def times_for(self, kind: StoreKind, issuer: str, time: float | None) -> float:
        """The ``until`` of a token entry or the ``at`` of a cut-off, defaults filled in.

        :raises ValueError: an issuer that is not configured (the revocation could never
            match), or a token entry without ``until`` when ``Config.max_lifetime`` is None
        """
        if issuer not in self._issuers:
            raise ValueError("issuer: not one of Config.issuers, so no accepted token could match; "
                             "give the exact 'iss' value")
        if time is not None:
            return time
        now = self._clock()
        if kind != "token":
            return now  # every token issued until now
        if self._max_lifetime is None:
            raise ValueError("until: Config.max_lifetime is None, so an accepted token may live "
                             "for ever; pass until= (the token's exp + leeway), or revoke_identity()")
        # Why: no token accepted from now on can expire later than this (Config.max_lifetime)
        return now + self._max_lifetime + self._leeway

    def until_of(self, identity: Identity) -> tuple[str, float | None]:
        """The jti and ``until`` (exp + leeway) that revoke exactly ``identity``'s token.

        :raises ValueError: the token has no ``jti``: revoke its session or subject instead
        """
        if not identity.token_id:
            raise ValueError("identity: the token has no jti, so it cannot be revoked alone; "
                             "use revoke_session() (sid) or revoke_subject()")
        exp = identity.expires_at
        return identity.token_id, None if exp is None else exp + self._leeway

    def revoke(self, kind: StoreKind, issuer: str, value: str, time: float | None) -> None:
        """Revoke through a sync store and audit it.

        :raises TypeError: the store is async (use the ``arevoke_*`` twin)
        :raises StoreError: the store failed (the revocation holds in this process only)
        """
        if self.is_async:
            raise TypeError(f"revocation_store is async (AsyncRedisRevocationStore): await arevoke_{kind}()")
        when = self.times_for(kind, issuer, time)
        try:
            getattr(self.store, f"revoke_{kind}")(issuer, value, when)
        except StoreError:
            record_revocation(kind, issuer, value, when, stored=False)
            raise
        record_revocation(kind, issuer, value, when, stored=True)

    async def arevoke(self, kind: StoreKind, issuer: str, value: str, time: float | None) -> None:
        """Revoke from the event loop: awaited (async store), inline (memory), in a thread (Redis)."""
        when = self.times_for(kind, issuer, time)
        method = getattr(self.store, f"revoke_{kind}")
        try:
            if self.is_async:
                await method(issuer, value, when)
            elif self._in_memory:
                method(issuer, value, when)
            else:
                await asyncio.to_thread(method, issuer, value, when)
        except StoreError:
            record_revocation(kind, issuer, value, when, stored=False)
            raise
        record_revocation(kind, issuer, value, when, stored=True)


def _after_fork(reference: weakref.ref[Revoker]) -> None:
    revoker = reference()
    if revoker is not None:
        revoker.after_fork()
