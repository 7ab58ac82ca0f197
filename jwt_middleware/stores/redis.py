"""Redis nonce stores: one atomic round trip per use, shared by every process using one Redis or Cluster.

The sync and async shells differ only by ``await`` and by how they keep their time limit;
names, arguments and replies come from ``_redis_ops``. This is the only module of the package
that imports ``redis``.

Key layout: one key per use, ``<prefix><key>``, or ``<prefix>h:<sha256 hex>`` when the key is
long or not plain ASCII (:func:`_redis_ops.key_name`), e.g. ``jwtmw:nonce:<iss hash>:<jti>``.
Every command touches that one key (``SET NX GET``; ``WAIT`` names none), so the names carry
no hash tag: Redis Cluster spreads them over all 16384 slots by the CRC16 of the whole name,
and a cluster client works where a single-node client does, with nothing else to change:
``redis.cluster.RedisCluster`` for :class:`RedisNonceStore`,
``redis.asyncio.cluster.RedisCluster`` for :class:`AsyncRedisNonceStore`. A key holding a
``{…}`` part lands on that part's slot; its sender could reach any slot by trying names
anyway, so nothing relies on the spread. A prefix with a ``{…}`` part puts every key of the
store on one slot, hence one master: correct, but one node then carries all the load.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Final, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ClusterDownError, MovedError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._types import Clock
from ..errors import ConfigError, StoreError
from . import _redis_ops as ops

__all__ = ["AsyncRedisNonceStore", "RedisNonceStore"]

#: What a backend failure looks like from redis-py: its own errors, the cluster client's
#: (RedisClusterException, e.g. no node reachable, is not a RedisError), and raw socket errors
#: (TimeoutError, which asyncio.timeout raises, is an OSError).
_BACKEND_ERRORS: Final = (RedisError, RedisClusterException, OSError)
#: Failures after which the command may or may not have run: worth one retry with the same value.
_RETRYABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
#: Failures of a command sent to one cluster node around the cluster client (the WAIT path)
#: after which the client's slot map may be stale (a failover, a moved slot): it is refreshed.
_STALE_MAP: Final = (MovedError, ClusterDownError, RedisConnectionError, RedisTimeoutError, OSError)


class RedisNonceStore:
    """One-time values in Redis: ``SET <prefix><key> <random> NX GET PX <ms left>``, one round trip.

    The expiry is relative: the time left until ``until``, measured on ``clock``, the clock that
    computed ``until`` (pass the app's, ``Config.clock``), rounded up and at least 1 s. Redis's
    own clock never matters, so an app clock behind Redis's cannot store a value already expired.

    Each call sends a fresh random value and, after a lost connection, retries once with the same
    value: a reply of our own value means our first attempt stored it, so only a real second use
    is refused (RFC 7519 §4.1.7). Needs Redis 7.0 or later (``SET NX GET``).

    The client is the caller's: this store neither configures nor closes it. A blocking call
    cannot be interrupted, so the client's socket timeouts bound each attempt; construction
    checks that they fit in ``timeout`` and that the client does not retry by itself::

        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            "redis://127.0.0.1:6379/0",
            socket_timeout=0.1,           # seconds: each read from a stalled Redis
            socket_connect_timeout=0.1,   # seconds: an unreachable host
            retry=Retry(NoBackoff(), 0),  # the store retries itself, within its timeout
        )
        # or a cluster, same options: redis.cluster.RedisCluster.from_url("redis://node:6379", ...)

    Why: redis-py's defaults are 5 s socket timeouts (none at all for a cluster client) and 10
    retries with backoff, during which a stalled Redis holds each request. Past ``timeout`` (a second
    attempt starts only when it can end in time) the call raises StoreError and the request gets
    503 with Retry-After, or passes when ``store_failure="open"``. A pooled connection to a
    restarted server fails at once; the retry reconnects, so the store recovers with no action
    of ours.

    A cluster client adds two waits of its own that no option shortens: after a failed node it
    asks the other known nodes in turn for the slot map (the failed one last), one socket
    timeout each for a stalled node; and a cluster that says CLUSTERDOWN (a master lost, its
    replica not yet promoted) is answered after redis-py's fixed 0.25 s pause. One stalled
    master costs one socket timeout, as a single Redis does.

    Run Redis with ``maxmemory-policy noeviction``: an evicted nonce is a replay gap, while a
    full Redis refuses the write and the request gets 503, as a full memory store does.

    Replication is asynchronous: a use acknowledged by a master that then dies (crash, kill,
    partition) before its replica received it is forgotten when that replica is promoted, and
    the value can be accepted once more; a planned ``CLUSTER FAILOVER`` waits for the replica
    and loses nothing. ``replica_acks=n`` closes the gap: each ``SET`` is followed on the same
    connection by ``WAIT n <half the socket timeout>``, and a use fewer than ``n`` replicas
    confirmed raises StoreError (503; the value stays used on the master, so the client needs
    a new token or proof). The most up-to-date replica stands for election first, and with one
    replica per master ``replica_acks=1`` means the promoted one holds every use that counted
    (unless it, too, lost its memory: a restart without persistence). It costs one
    master-to-replica round trip per use; with no replica, or a stalled one, every use answers
    503. Redis checks WAIT's own timeout only at its ``hz`` (10 per second by default), so an
    unconfirmed use may end as a read timeout instead: the same StoreError. An attempt then
    also includes the WAIT, so with the example's timeouts the retry no longer fits in 0.25 s
    (give ``timeout=0.5`` if it matters). A cluster client's pair goes to the key's master
    directly, not through redis-py's redirects: during a slot migration (ASK) such a use
    answers 503, and after a MOVED or a failed node the client's slot map is refreshed.

    :param client: a ``redis.Redis`` or ``redis.cluster.RedisCluster``, built as above
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; the clock ``until`` is computed on (``Config.clock``)
    :param timeout: seconds one call may take, its retry included
    :param replica_acks: replicas that must confirm each use before it counts (Redis ``WAIT``);
        0 takes the master's reply alone
    :raises ConfigError: an async client; a prefix that is empty, longer than 64 or not
        printable ASCII; a timeout outside (0, 30]; a client whose socket timeouts are unset or
        longer than ``timeout``, or that retries by itself; replica_acks not in 0..16
    """

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = ops.DEFAULT_TIMEOUT,  # seconds
        replica_acks: int = 0,
    ) -> None:
        _check_blocking(client)
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock
        self._timeout = ops.check_timeout("RedisNonceStore", timeout)
        self._acks = ops.check_replica_acks("RedisNonceStore", replica_acks)
        read_timeout, self._attempt = _attempt_bound(client, self._timeout)
        self._wait_ms = ops.wait_ms(read_timeout)
        self._send = self._set
        if self._acks:
            self._attempt += self._wait_ms / 1000
            cluster = isinstance(client, redis.cluster.RedisCluster)
            self._send = self._cluster_set_acked if cluster else self._set_acked

    @property
    def clock(self) -> Clock:
        """The clock ``until`` is read on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or timed out, or too few replicas confirmed the use;
            the request then gets 503
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        started = time.monotonic()
        try:
            try:
                reply = self._send(args)
            except _RETRYABLE:
                if not ops.retry_fits(time.monotonic() - started, self._attempt, self._timeout):
                    raise
                reply = self._send(args)  # same value: our own lost write reads as ours
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply, args.value)

    def ping(self) -> None:
        """Readiness (a cluster client asks one node). :raises StoreError: Redis does not answer"""
        try:
            self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    def _set(self, args: ops.NonceSet) -> object:
        return self._client.set(args.name, args.value, nx=True, get=True, px=args.px)

    def _set_acked(self, args: ops.NonceSet) -> object:
        """``SET`` then ``WAIT`` on one connection (a pipeline): WAIT counts this connection's writes."""
        pipe = self._client.pipeline(transaction=False)
        pipe.set(args.name, args.value, nx=True, get=True, px=args.px)
        pipe.wait(self._acks, self._wait_ms)
        reply, acked = pipe.execute()
        return ops.acknowledged(reply, acked, self._acks)

    def _cluster_set_acked(self, args: ops.NonceSet) -> object:
        """``_set_acked`` on the key's master: the cluster client would send WAIT to every master.

        Why: redis-py routes WAIT to all masters on other connections, where it waits for
        nothing. So the pair goes to the master the client's slot map names, through that
        node's own client; when it fails the map may be stale (a failover, a MOVED), so the
        cluster client refreshes it before the error surfaces, and the next call goes right.
        """
        client = cast(redis.cluster.RedisCluster, self._client)  # chosen in __init__
        master = client.get_node_from_key(args.name)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        node = client.get_redis_connection(master)
        pipe = node.pipeline(transaction=False)
        pipe.set(args.name, args.value, nx=True, get=True, px=args.px)
        pipe.wait(self._acks, self._wait_ms)
        try:
            reply, acked = pipe.execute()
        except _STALE_MAP:
            client.nodes_manager.initialize()
            raise
        return ops.acknowledged(reply, acked, self._acks)


class AsyncRedisNonceStore:
    """The ``redis.asyncio`` twin of :class:`RedisNonceStore`; same keys, same semantics.

    ``timeout`` is kept with ``asyncio.timeout`` around the whole call (its retry and any retry
    of the client's own included, a cluster client's slot-map refresh too), so any client works;
    short socket timeouts and one retry, as shown for :class:`RedisNonceStore`, only let a
    failure surface sooner.

    A call cut off by its timeout may still be carried out by Redis later (a stalled server
    resumes): that use got 503 and its value stays consumed, so the client needs a new token.

    An asyncio cluster client discovers the cluster (slot map, command table) on its first
    command, which took 50 to 150 ms on loopback and counts against the first call's timeout:
    ``await client.initialize()`` at start-up (a lifespan handler), as the tests do.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; the clock ``until`` is computed on (``Config.clock``)
    :param timeout: seconds one call may take, its retry included
    :param replica_acks: replicas that must confirm each use before it counts (Redis ``WAIT``,
        see :class:`RedisNonceStore`); 0 takes the master's reply alone
    :raises ConfigError: a blocking client; a prefix that is empty, longer than 64 or not
        printable ASCII; a timeout outside (0, 30]; replica_acks not in 0..16
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = ops.DEFAULT_TIMEOUT,  # seconds
        replica_acks: int = 0,
    ) -> None:
        _check_async(client)
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock
        self._timeout = ops.check_timeout("AsyncRedisNonceStore", timeout)
        self._acks = ops.check_replica_acks("AsyncRedisNonceStore", replica_acks)
        self._wait_ms = 0
        self._send = self._set
        if self._acks:
            read_timeout = _seconds(client.get_connection_kwargs().get("socket_timeout"))
            self._wait_ms = ops.wait_ms(min(self._timeout, read_timeout or self._timeout))
            cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
            self._send = self._cluster_set_acked if cluster else self._set_acked

    @property
    def clock(self) -> Clock:
        """The clock ``until`` is read on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    async def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or did not answer within ``timeout``, or too few
            replicas confirmed the use
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    reply = await self._send(args)
                except _RETRYABLE:
                    reply = await self._send(args)  # same value: our own lost write reads as ours
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply, args.value)

    async def ping(self) -> None:
        """Readiness (a cluster client asks one node). :raises StoreError: no answer within ``timeout``"""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    async def _set(self, args: ops.NonceSet) -> object:
        return await self._client.set(args.name, args.value, nx=True, get=True, px=args.px)

    async def _set_acked(self, args: ops.NonceSet) -> object:
        """``SET`` then ``WAIT`` on one connection (a pipeline): WAIT counts this connection's writes."""
        pipe = self._client.pipeline(transaction=False)
        pipe.set(args.name, args.value, nx=True, get=True, px=args.px)
        pipe.wait(self._acks, self._wait_ms)
        reply, acked = await pipe.execute()
        return ops.acknowledged(reply, acked, self._acks)

    async def _cluster_set_acked(self, args: ops.NonceSet) -> object:
        """As :meth:`RedisNonceStore._cluster_set_acked`, on the key's master node.

        Why the node's ``execute_pipeline``: an asyncio cluster node has no client of its own
        to make a pipeline from, and this is how redis-py's cluster pipeline sends several
        commands on one connection of one node.
        """
        client = cast(redis.asyncio.cluster.RedisCluster, self._client)  # chosen in __init__
        await client.initialize()  # the slot map is loaded on first use; a no-op afterwards
        node = client.get_node_from_key(args.name)
        if node is None:  # only for a replica lookup; a covered slot always has a master
            raise StoreError("no master serves the key's slot")
        set_args = ("SET", args.name, args.value, "NX", "GET", "PX", args.px)
        commands = [
            redis.asyncio.cluster.PipelineCommand(0, *set_args, get=True),  # get: the reply is the old value
            redis.asyncio.cluster.PipelineCommand(1, "WAIT", self._acks, self._wait_ms),
        ]
        try:
            await node.execute_pipeline(commands)
            replies = [_raised(command.result) for command in commands]
        except _STALE_MAP:
            await client.nodes_manager.initialize()
            raise
        return ops.acknowledged(replies[0], replies[1], self._acks)


def _raised(result: object) -> object:
    """A pipeline keeps each command's error as its result; raise it here instead."""
    if isinstance(result, BaseException):
        raise result
    return result


def _check_blocking(client: object) -> None:
    """:raises ConfigError: an asyncio client, whose calls would return unawaited coroutines"""
    if inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
        raise ConfigError(
            f"RedisNonceStore.client: {type(client).__name__} is async; use AsyncRedisNonceStore "
            "with it, or give this store a redis.Redis or redis.cluster.RedisCluster"
        )


def _check_async(client: object) -> None:
    """:raises ConfigError: a blocking client, which would stall the event loop on every call"""
    if not inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
        raise ConfigError(
            f"AsyncRedisNonceStore.client: {type(client).__name__} is not async; use RedisNonceStore "
            "with it, or give this store a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster"
        )


def _seconds(value: object) -> float | None:
    """A socket timeout as a positive number of seconds, or None when unset or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _attempt_bound(client: redis.Redis | redis.cluster.RedisCluster, timeout: float) -> tuple[float, float]:
    """``client``'s read timeout, and the longest one blocking attempt takes (see ops.attempt_bound)."""
    kwargs: dict[str, Any] = client.get_connection_kwargs()
    if isinstance(client, redis.cluster.RedisCluster):
        # The cluster client retries by its ``retry`` (10 by default); its node clients never do.
        retries = client.retry.get_retries()
    elif (retry := client.get_retry()) is not None:
        retries = retry.get_retries()
    else:  # redis-py retries once when only retry_on_timeout / retry_on_error is given
        retries = 1 if kwargs.get("retry_on_timeout") or kwargs.get("retry_on_error") else 0
    bound = ops.attempt_bound(
        "RedisNonceStore",
        timeout,
        socket_timeout=kwargs.get("socket_timeout"),
        socket_connect_timeout=kwargs.get("socket_connect_timeout"),
        retries=retries,
    )
    return float(kwargs["socket_timeout"]), bound
