"""StatusListLoader: the driver side of one issuer's status-list cache: fetch, verify, single-flight.

Locks live here, not in the cache: a ``threading.Lock`` per uri for sync drivers and an
``asyncio.Lock`` per uri and event loop for async ones. N concurrent requests that need the
same list cause one fetch: each notes the cache's attempt counter before taking the lock and
skips the fetch when another caller finished one meanwhile. The lock tables are bounded:
past four locks per cached list, the idle ones are dropped (the worst a drop can do is let
two fetches of one list overlap once).

:meth:`check` / :meth:`acheck` run the whole step for a verified token's claims; a pipeline
that yields effects uses :meth:`StatusListCache.lookup` itself and calls :meth:`load` /
:meth:`aload` to answer the fetch it asked for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .._types import Clock
from ..errors import Unavailable
from .status_list import (
    StatusListError,
    VerifyListToken,
    check_token_status,
    read_status_list_token,
    reference_of,
)
from .status_list_cache import FailureKind, StatusListCache
from .status_list_fetch import StatusListFetchError, afetch_status_list_token, fetch_status_list_token

__all__ = ["StatusListLoader"]

logger = logging.getLogger("jwt_middleware.status_list")
_LockT = TypeVar("_LockT", threading.Lock, asyncio.Lock)


class StatusListLoader:
    """Fills one issuer's :class:`StatusListCache` with verified lists, one fetch per list at a time.

    :param verify: that issuer's list-token verifier: ``verify(compact) -> (header, claims)``,
        the signature checked with one of its keys; InvalidToken when it fails, Unavailable
        when its keys cannot be had (the list then counts as unavailable, not as refused)
    """

    def __init__(self, cache: StatusListCache, verify: VerifyListToken, clock: Clock) -> None:
        self.cache = cache
        self.rules = cache.rules
        self._verify = verify
        self._clock = clock
        self._max_locks = 4 * cache.policy.max_lists
        self._guard = threading.Lock()
        self._thread_locks: dict[str, threading.Lock] = {}
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
        self._loop_locks = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the whole step ------------------------------------------------------------------
    def check(self, claims: Mapping[str, Any]) -> None:
        """Refuse a verified token whose status list entry is not VALID (sync drivers).

        :raises InvalidToken: the reference, the list or the entry refuses the token
        :raises Unavailable: ``status_list_unavailable``: no usable list could be had
        """
        reference = reference_of(claims, self.rules)
        if reference is None:
            return
        status_list, need = self.cache.lookup(reference.uri, self._clock())
        if status_list is None or (need is not None and need.blocking):
            self.load(reference.uri)
            status_list = self.cache.after_fetch(reference.uri, self._clock())
        elif need is not None:
            self.refresh_in_background(reference.uri)
        check_token_status(status_list, reference)

    async def acheck(self, claims: Mapping[str, Any]) -> None:
        """The async twin of :meth:`check`."""
        reference = reference_of(claims, self.rules)
        if reference is None:
            return
        status_list, need = self.cache.lookup(reference.uri, self._clock())
        if status_list is None or (need is not None and need.blocking):
            await self.aload(reference.uri)
            status_list = self.cache.after_fetch(reference.uri, self._clock())
        elif need is not None:
            self.arefresh_in_background(reference.uri)
        check_token_status(status_list, reference)

    # --- sync ------------------------------------------------------------------------------
    def load(self, uri: str) -> None:
        """Fetch, verify and cache the list at ``uri`` unless a concurrent caller just did.

        Never raises: every failure is recorded in the cache (which then answers the tokens)
        and logged; an unexpected exception is logged at ERROR as a bug and counts as
        ``unavailable``, so the tokens fail closed with 503.
        """
        seen = self.cache.attempts(uri)
        with self._lock(self._thread_locks, uri, threading.Lock):
            if self.cache.attempts(uri) != seen:
                return
            try:
                body = fetch_status_list_token(uri, self.rules)
            except StatusListFetchError as exc:
                self._failed(uri, "unavailable", exc)
            except Exception as exc:
                self._bug(uri, exc)
            else:
                self._install(uri, body)

    def refresh_in_background(self, uri: str) -> None:
        thread = threading.Thread(target=self.load, args=(uri,), name="jwt-status-list-refresh", daemon=True)
        thread.start()

    # --- async -----------------------------------------------------------------------------
    async def aload(self, uri: str) -> None:
        """The async twin of :meth:`load`; ``verify`` runs inline (it is CPU work)."""
        seen = self.cache.attempts(uri)
        async with self._lock(self._async_locks(), uri, asyncio.Lock):
            if self.cache.attempts(uri) != seen:
                return
            try:
                body = await afetch_status_list_token(uri, self.rules)
            except StatusListFetchError as exc:
                self._failed(uri, "unavailable", exc)
            except Exception as exc:
                self._bug(uri, exc)
            else:
                self._install(uri, body)

    def arefresh_in_background(self, uri: str) -> None:
        task = asyncio.get_running_loop().create_task(self.aload(uri))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _async_locks(self) -> dict[str, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        with self._guard:
            locks = self._loop_locks.get(loop)
            if locks is None:
                locks = self._loop_locks[loop] = {}
            return locks

    # --- shared ----------------------------------------------------------------------------
    def _lock(self, locks: dict[str, _LockT], uri: str, make: Callable[[], _LockT]) -> _LockT:
        with self._guard:
            lock = locks.get(uri)
            if lock is None:
                if len(locks) >= self._max_locks:
                    for key, old in list(locks.items()):
                        if not old.locked():
                            del locks[key]
                lock = locks[uri] = make()
            return lock

    def _install(self, uri: str, body: bytes) -> None:
        try:
            verified = read_status_list_token(body, uri, self.rules, self._verify, self._clock())
        except StatusListError as exc:
            self._failed(uri, "invalid", exc)
        except Unavailable as exc:  # the issuer's keys could not be had
            self._failed(uri, "unavailable", exc)
        except Exception as exc:
            self._bug(uri, exc)
        else:
            self.cache.store(uri, verified)
            logger.info(
                "status list loaded", extra={"status_list_uri": uri, "entries": verified.status_list.size}
            )

    def _failed(self, uri: str, kind: FailureKind, exc: Exception) -> None:
        self.cache.record_failure(uri, kind, self._clock())
        logger.warning("status list %s failed: %s", kind, exc, extra={"status_list_uri": uri})

    def _bug(self, uri: str, exc: Exception) -> None:
        self.cache.record_failure(uri, "unavailable", self._clock())
        logger.error("status list load raised %s (a bug)", type(exc).__name__, extra={"status_list_uri": uri})
