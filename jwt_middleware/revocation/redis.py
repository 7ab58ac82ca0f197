"""Redis revocation stores: one state shared by every worker, checked in each against its mirror.

A revocation is one Lua call: it merges the entry, increments the sequence number and publishes
the change, so every follower hears it (``_redis_ops`` has the layout, ``_follow`` the rules for
holes, heartbeats and resyncs). Requests never wait on Redis: they read the mirror, which a
follower (a daemon thread, or an asyncio task) keeps current, and which stops being trusted
when it could not be confirmed current for ``max_staleness`` seconds.

The sync and async shells differ only by ``await`` and by how they keep their time limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, Final

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .._types import Clock
from ..errors import StoreError
from ..stores import _redis_ops as store_ops
from . import _redis_ops as ops
from ._follow import Beats, Follower, Snapshot, Watch
from .mirror import RevocationMirror
from .model import CutOff, CutOffKind, Revocation, RevokedToken

__all__ = [
    "AsyncRedisRevocationStore",
    "RedisClient",
    "RedisRevocationStore",
    "client_from_url",
    "close_client",
]

logger: Final = logging.getLogger("jwt_middleware.revocation")

#: What a backend failure looks like from redis-py: RedisClusterException (every node of a
#: cluster unreachable) is not a RedisError, and TimeoutError, which asyncio.timeout raises,
#: is an OSError.
_BACKEND_ERRORS: Final = (RedisError, RedisClusterException, OSError)
#: Failures after which a script may or may not have run; its merge is idempotent, so retry once.
_RETRYABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
#: Longest ``start()`` waits for the follower's first attempt (seconds).
START_WAIT: Final = 10.0


class _RedisRevocationShell:
    """What both shells hold: keys, clocks, time limits, the mirror and its follower."""

    def __init__(
        self, owner: str, prefix: str, clock: Clock, timeout: float, heartbeat: float, max_staleness: float
    ) -> None:
        self._keys = ops.Keys.under(ops.check_prefix(owner, prefix))
        self._clock = clock
        self._timeout = store_ops.check_timeout(owner, timeout)
        self._heartbeat, max_staleness = ops.check_timing(owner, heartbeat, max_staleness, self._timeout)
        self._mirror = RevocationMirror(max_staleness)
        self._follower = Follower(self._mirror)
        #: whether the follower is between a failure and its next full resync (logged once each way)
        self._lost = False

    @property
    def mirror(self) -> RevocationMirror:
        """This process's copy, checked on every request; see ``RevocationMirror.trusted``."""
        return self._mirror

    @property
    def clock(self) -> Clock:
        """The app's clock (``Config.clock``): token entries expire and staleness is read on it."""
        return self._clock

    def _token_args(self, change: RevokedToken) -> tuple[list[str], list[str]]:
        return ops.token_args(self._keys, change, self._clock() - ops.TRIM_GRACE)

    def _lose(self, exc: BaseException) -> None:
        """Log a failure once per outage (its type only: a message could carry a key or value)."""
        if not isinstance(exc, (*_BACKEND_ERRORS, StoreError)):
            logger.error("revocation follower failed, resyncing: %s", type(exc).__name__)
        elif not self._lost:
            logger.warning(
                "revocation follower lost Redis (%s): the mirror is untrusted past max_staleness "
                "and resyncs on reconnect",
                type(exc).__name__,
            )
        self._lost = True

    def _synced(self, missing: Sequence[Revocation]) -> None:
        if self._lost:
            logger.info("revocation follower resynced (%d entries restored to Redis)", len(missing))
        self._lost = False

    def _restore_batches(self, missing: Sequence[Revocation]) -> Iterator[tuple[list[str], list[str]]]:
        trim_before = self._clock() - ops.TRIM_GRACE
        for start in range(0, len(missing), ops.RESTORE_BATCH):
            yield ops.restore_args(self._keys, missing[start : start + ops.RESTORE_BATCH], trim_before)


class RedisRevocationStore(_RedisRevocationShell):
    """Revocations in Redis, followed into this process's mirror by a daemon thread.

    A ``revoke_*`` call holds in this process at once (the mirror first), then runs one Lua
    call that merges the entry, increments the sequence number and publishes the change; it
    is retried once within ``timeout`` (the merge is idempotent). If Redis fails, the call
    raises StoreError but the revocation still holds here, and the follower writes it back on
    reconnect (it restores every live entry of the mirror that Redis lacks).

    ``start()`` starts the follower: it subscribes, resyncs in full, then applies each message
    and reads the sequence number every ``heartbeat`` seconds. The mirror is trusted while it
    was confirmed current within ``max_staleness``; with Redis gone it stops being trusted
    after that (requests the mirror does not refuse then get 503, or pass under
    ``store_failure="open"``), and on reconnect it resyncs and is trusted again. It never
    forgets an entry before it expires, even when Redis lost it.

    The client is the caller's and is built as for ``RedisNonceStore`` (socket timeouts within
    ``timeout``, no retries of its own). Run Redis with ``maxmemory-policy noeviction`` and
    persistence: a lost entry is only restored while some worker still holds it.

    :param client: a ``redis.Redis`` or ``redis.RedisCluster``
    :param prefix: key prefix holding one ``{hash tag}``, shared by every worker of one app
    :param clock: epoch seconds, the app's (``Config.clock``)
    :param timeout: seconds one revoke may take, its retry included
    :param heartbeat: seconds between reads of the sequence number
    :param max_staleness: seconds the mirror stays trusted without a confirmation
    :raises ConfigError: a prefix without a hash tag; a timeout outside (0, 30]; a heartbeat
        outside (0, 5]; a max_staleness not above heartbeat + timeout or above 3600; a client
        whose socket timeouts are unset or longer than ``timeout``, or that retries by itself
    """

    def __init__(
        self,
        client: redis.Redis | redis.RedisCluster,
        prefix: str = ops.DEFAULT_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = store_ops.DEFAULT_TIMEOUT,  # seconds
        heartbeat: float = ops.DEFAULT_HEARTBEAT,  # seconds
        max_staleness: float = ops.DEFAULT_MAX_STALENESS,  # seconds
    ) -> None:
        owner = "RedisRevocationStore"
        super().__init__(owner, prefix, clock, timeout, heartbeat, max_staleness)
        self._client = client
        self._attempt = _attempt_bound(owner, client, self._timeout)
        self._token_script = client.register_script(ops.REVOKE_TOKEN_SCRIPT)
        self._cut_off_script = client.register_script(ops.REVOKE_CUT_OFF_SCRIPT)
        self._restore_script = client.register_script(ops.RESTORE_SCRIPT)
        self._stopping = threading.Event()
        self._first_attempt = threading.Event()
        self._thread: threading.Thread | None = None

    def revoke_token(self, issuer: str, jti: str, until: float) -> None:
        """Refuse the token ``(issuer, jti)`` until ``until`` (its ``exp`` plus leeway, epoch s).

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or jti, or ``until`` not finite
        """
        change = RevokedToken(issuer, jti, until)
        self._mirror.apply(change)
        self._write(self._token_script, *self._token_args(change))

    def revoke_subject(self, issuer: str, subject: str, at: float) -> None:
        """Refuse every token of ``(issuer, sub)`` issued at or before ``at`` (see ``CutOff``).

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or subject, or ``at`` not finite
        """
        self._cut_off("subject", issuer, subject, at)

    def revoke_session(self, issuer: str, sid: str, at: float) -> None:
        """Refuse every token of the session ``(issuer, sid)`` issued at or before ``at``.

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or sid, or ``at`` not finite
        """
        self._cut_off("session", issuer, sid, at)

    def revoke_client(self, issuer: str, client_id: str, at: float) -> None:
        """Refuse every token of ``(issuer, client_id)`` issued at or before ``at``.

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or client_id, or ``at`` not finite
        """
        self._cut_off("client", issuer, client_id, at)

    def start(self) -> None:
        """Start following Redis; returns after the first attempt (synced, or failed and retrying).

        Until the first full resync the mirror is not trusted. Calling it again while the
        follower runs does nothing.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._first_attempt.clear()
        self._thread = threading.Thread(target=self._follow, name="jwt_middleware-revocation", daemon=True)
        self._thread.start()
        self._first_attempt.wait(START_WAIT)

    def close(self) -> None:
        """Stop the follower (within about one heartbeat); the mirror stays readable, untrusted
        once ``max_staleness`` passes. The client is the caller's to close."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=START_WAIT)
            self._thread = None

    def _cut_off(self, kind: CutOffKind, issuer: str, value: str, at: float) -> None:
        change = CutOff(kind, issuer, value, at)
        self._mirror.apply(change)
        self._write(self._cut_off_script, *ops.cut_off_args(self._keys, change))

    def _write(self, script: Any, keys: list[str], args: list[str]) -> None:
        started = time.monotonic()
        try:
            try:
                script(keys=keys, args=args)
            except _RETRYABLE:
                if not store_ops.retry_fits(time.monotonic() - started, self._attempt, self._timeout):
                    raise
                script(keys=keys, args=args)  # the merge is idempotent: a second run changes nothing
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    # -- the follower thread ----------------------------------------------------------------------

    def _follow(self) -> None:
        watch = Watch(self._follower, self._mirror)
        while not self._stopping.is_set():
            try:
                self._session(watch)
            except Exception as exc:  # any failure: count on staleness, reconnect after a pause
                self._lose(exc)
            self._first_attempt.set()
            watch.check()
            self._stopping.wait(self._heartbeat)
            watch.check()

    def _session(self, watch: Watch) -> None:
        # Why a read first: a cluster client's pubsub connects to the node its slot map names,
        # and only a keyed command refreshes that map (after a failover, or before first use).
        self._client.get(self._keys.seq)
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._keys.channel)
            self._await_subscribed(pubsub)
            self._resync()
            self._first_attempt.set()
            clock = Beats(self._heartbeat)
            while not self._stopping.is_set():
                message = pubsub.get_message(timeout=clock.wait())
                if _is_change(message) and self._follower.message(message["data"]):
                    self._resync()
                due = clock.due()
                if due == "resync":
                    self._resync()
                elif due == "beat":
                    self._beat()
                watch.check()
        finally:
            with contextlib.suppress(*_BACKEND_ERRORS):
                pubsub.close()

    def _await_subscribed(self, pubsub: Any) -> None:
        deadline = time.monotonic() + self._timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=remaining)
            if message is not None and message.get("type") == "subscribe":
                return
        raise StoreError("the change channel subscription was not confirmed in time")

    def _beat(self) -> None:
        read_at = self._clock()
        seq = ops.parse_seq(self._client.get(self._keys.seq))
        if self._follower.heartbeat(seq, read_at):
            self._resync()
        self._mirror.forget_expired(self._clock())

    def _resync(self) -> None:
        read_at = self._clock()
        seq = ops.parse_seq(self._client.get(self._keys.seq))
        changes = self._read_tokens(self._clock()) + self._read_cut_offs()
        missing = self._follower.resynced(Snapshot(seq, read_at, changes), self._clock())
        for keys, args in self._restore_batches(missing):
            self._restore_script(keys=keys, args=args)
        self._synced(missing)

    def _read_tokens(self, now: float) -> list[Revocation]:
        found: list[Revocation] = []
        cursor = 0
        while True:
            cursor, items = self._client.zscan(self._keys.tokens, cursor, count=ops.SCAN_COUNT)
            found += ops.live_tokens(items, now)
            if cursor == 0:
                return found

    def _read_cut_offs(self) -> list[Revocation]:
        found: list[Revocation] = []
        cursor = 0
        while True:
            cursor, items = self._client.hscan(self._keys.cut_offs, cursor, count=ops.SCAN_COUNT)
            found += ops.cut_offs(items)
            if cursor == 0:
                return found


class AsyncRedisRevocationStore(_RedisRevocationShell):
    """The ``redis.asyncio`` twin of :class:`RedisRevocationStore`; same keys, same semantics.

    The follower is an asyncio task on the loop that called :meth:`astart`; every Redis call is
    kept within ``timeout`` by ``asyncio.timeout``. The mirror itself is read without awaiting,
    so requests check it inline.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.RedisCluster``
    :param prefix: key prefix holding one ``{hash tag}``, shared by every worker of one app
    :param clock: epoch seconds, the app's (``Config.clock``)
    :param timeout: seconds one Redis call may take (a revoke's retry included)
    :param heartbeat: seconds between reads of the sequence number
    :param max_staleness: seconds the mirror stays trusted without a confirmation
    :raises ConfigError: a prefix without a hash tag; a timeout outside (0, 30]; a heartbeat
        outside (0, 5]; a max_staleness not above heartbeat + timeout or above 3600
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.RedisCluster,
        prefix: str = ops.DEFAULT_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = store_ops.DEFAULT_TIMEOUT,  # seconds
        heartbeat: float = ops.DEFAULT_HEARTBEAT,  # seconds
        max_staleness: float = ops.DEFAULT_MAX_STALENESS,  # seconds
    ) -> None:
        super().__init__("AsyncRedisRevocationStore", prefix, clock, timeout, heartbeat, max_staleness)
        self._client = client
        self._token_script = client.register_script(ops.REVOKE_TOKEN_SCRIPT)
        self._cut_off_script = client.register_script(ops.REVOKE_CUT_OFF_SCRIPT)
        self._restore_script = client.register_script(ops.RESTORE_SCRIPT)
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Event | None = None
        #: set by aclose: the follower also stops on it, since redis-py's use of asyncio.wait_for
        #: can swallow a cancellation on Python 3.11
        self._closing = False

    async def revoke_token(self, issuer: str, jti: str, until: float) -> None:
        """Refuse the token ``(issuer, jti)`` until ``until`` (its ``exp`` plus leeway, epoch s).

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or jti, or ``until`` not finite
        """
        change = RevokedToken(issuer, jti, until)
        self._mirror.apply(change)
        await self._write(self._token_script, *self._token_args(change))

    async def revoke_subject(self, issuer: str, subject: str, at: float) -> None:
        """Refuse every token of ``(issuer, sub)`` issued at or before ``at`` (see ``CutOff``).

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or subject, or ``at`` not finite
        """
        await self._cut_off("subject", issuer, subject, at)

    async def revoke_session(self, issuer: str, sid: str, at: float) -> None:
        """Refuse every token of the session ``(issuer, sid)`` issued at or before ``at``.

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or sid, or ``at`` not finite
        """
        await self._cut_off("session", issuer, sid, at)

    async def revoke_client(self, issuer: str, client_id: str, at: float) -> None:
        """Refuse every token of ``(issuer, client_id)`` issued at or before ``at``.

        :raises StoreError: Redis failed or timed out (the revocation holds in this process)
        :raises ValueError: an empty issuer or client_id, or ``at`` not finite
        """
        await self._cut_off("client", issuer, client_id, at)

    async def astart(self) -> None:
        """Start following Redis on the running loop; returns after the first attempt.

        Until the first full resync the mirror is not trusted. Calling it again while the
        follower runs does nothing.
        """
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        first_attempt = self._first_attempt = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="jwt_middleware-revocation")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_WAIT):
                await first_attempt.wait()

    async def aclose(self) -> None:
        """Stop the follower; the mirror stays readable, untrusted once ``max_staleness`` passes.
        The client is the caller's to close."""
        task, self._task = self._task, None
        self._closing = True
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(START_WAIT):
                    await task

    async def _cut_off(self, kind: CutOffKind, issuer: str, value: str, at: float) -> None:
        change = CutOff(kind, issuer, value, at)
        self._mirror.apply(change)
        await self._write(self._cut_off_script, *ops.cut_off_args(self._keys, change))

    async def _write(self, script: Any, keys: list[str], args: list[str]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    await script(keys=keys, args=args)
                except _RETRYABLE:
                    await script(keys=keys, args=args)  # idempotent merge
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    # -- the follower task ------------------------------------------------------------------------

    async def _follow(self) -> None:
        watch = Watch(self._follower, self._mirror)
        while not self._closing:
            try:
                await self._session(watch)
            except Exception as exc:  # any failure: count on staleness, reconnect after a pause
                self._lose(exc)
            self._started()
            watch.check()
            await asyncio.sleep(self._heartbeat)
            watch.check()

    def _started(self) -> None:
        if self._first_attempt is not None:
            self._first_attempt.set()

    async def _session(self, watch: Watch) -> None:
        await self._call(self._client.get(self._keys.seq))  # see RedisRevocationStore._session
        pubsub = self._client.pubsub()
        try:
            await self._call(pubsub.subscribe(self._keys.channel))
            await self._await_subscribed(pubsub)
            await self._resync()
            self._started()
            clock = Beats(self._heartbeat)
            while not self._closing:
                wait = clock.wait()
                message = await self._call(pubsub.get_message(timeout=wait), wait)
                if _is_change(message) and self._follower.message(message["data"]):
                    await self._resync()
                due = clock.due()
                if due == "resync":
                    await self._resync()
                elif due == "beat":
                    await self._beat()
                watch.check()
        finally:
            with contextlib.suppress(*_BACKEND_ERRORS):
                await self._call(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def _call(self, call: Awaitable[Any], wait: float = 0.0) -> Any:
        async with asyncio.timeout(wait + self._timeout):
            return await call

    async def _await_subscribed(self, pubsub: Any) -> None:
        deadline = time.monotonic() + self._timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = await self._call(pubsub.get_message(timeout=remaining), remaining)
            if message is not None and message.get("type") == "subscribe":
                return
        raise StoreError("the change channel subscription was not confirmed in time")

    async def _beat(self) -> None:
        read_at = self._clock()
        seq = ops.parse_seq(await self._call(self._client.get(self._keys.seq)))
        if self._follower.heartbeat(seq, read_at):
            await self._resync()
        self._mirror.forget_expired(self._clock())

    async def _resync(self) -> None:
        read_at = self._clock()
        seq = ops.parse_seq(await self._call(self._client.get(self._keys.seq)))
        changes = await self._read_tokens(self._clock()) + await self._read_cut_offs()
        missing = self._follower.resynced(Snapshot(seq, read_at, changes), self._clock())
        for keys, args in self._restore_batches(missing):
            await self._call(self._restore_script(keys=keys, args=args))
        self._synced(missing)

    async def _read_tokens(self, now: float) -> list[Revocation]:
        found: list[Revocation] = []
        cursor = 0
        while True:
            cursor, items = await self._call(
                self._client.zscan(self._keys.tokens, cursor, count=ops.SCAN_COUNT)
            )
            found += ops.live_tokens(items, now)
            if cursor == 0:
                return found

    async def _read_cut_offs(self) -> list[Revocation]:
        found: list[Revocation] = []
        cursor = 0
        while True:
            cursor, items = await self._call(
                self._client.hscan(self._keys.cut_offs, cursor, count=ops.SCAN_COUNT)
            )
            found += ops.cut_offs(items)
            if cursor == 0:
                return found


def _is_change(message: Any) -> bool:
    return message is not None and message.get("type") == "message"


def _attempt_bound(owner: str, client: redis.Redis | redis.RedisCluster, timeout: float) -> float:
    """What one blocking attempt of ``client`` may take; see ``stores._redis_ops.attempt_bound``."""
    kwargs = client.get_connection_kwargs()
    retry = client.retry if isinstance(client, redis.RedisCluster) else client.get_retry()
    if retry is not None:
        retries = retry.get_retries()
    else:  # redis-py retries once when only retry_on_timeout / retry_on_error is given
        retries = 1 if kwargs.get("retry_on_timeout") or kwargs.get("retry_on_error") else 0
    return store_ops.attempt_bound(
        owner,
        timeout,
        socket_timeout=kwargs.get("socket_timeout"),
        socket_connect_timeout=kwargs.get("socket_connect_timeout"),
        retries=retries,
    )


#: a blocking client, to one server or to a cluster
RedisClient = redis.Redis | redis.RedisCluster


def client_from_url(url: str, *, cluster: bool, timeout: float) -> RedisClient:
    """A blocking client for ``url`` that fits a store built with ``timeout`` (the command line's
    revoke: one write, no follower).

    Why a quarter of the timeout per socket operation and no retries of its own: one attempt
    (connect, then read) takes at most half the timeout, so the store's one retry after a
    dropped connection still ends within it.

    :param cluster: ``url`` names a node of a Redis Cluster (read at once, for the slot map)
    :raises ValueError: ``url`` is not a Redis URL
    :raises StoreError: a cluster whose slot map cannot be read
    """
    attempt = timeout / 4
    options: dict[str, Any] = {
        "socket_timeout": attempt,
        "socket_connect_timeout": attempt,
        "retry": Retry(NoBackoff(), 0),
    }
    try:
        if cluster:
            return redis.RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, **options)
    except _BACKEND_ERRORS as exc:  # RedisClusterException is not a RedisError
        raise StoreError(exc) from None


def close_client(client: RedisClient) -> None:
    """Close ``client``; a connection already gone is no error here."""
    with contextlib.suppress(*_BACKEND_ERRORS):
        client.close()
