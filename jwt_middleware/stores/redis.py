"""Redis nonce stores: one atomic round trip per use, shared by every process using one Redis.

The sync and async shells differ only by ``await``; names, arguments and replies come from
``_redis_ops``. This is the only module of the package that imports ``redis``.
"""

from __future__ import annotations

import time
from typing import Final

import redis
import redis.asyncio
from redis.exceptions import RedisError

from .._types import Clock
from ..errors import StoreError
from . import _redis_ops as ops

__all__ = ["AsyncRedisNonceStore", "RedisNonceStore"]

#: What a backend failure looks like from redis-py: its own errors, and raw socket errors.
_BACKEND_ERRORS: Final = (RedisError, OSError)


class RedisNonceStore:
    """One-time values in Redis: ``SET <prefix><key> 1 NX PXAT <until_ms>``, one round trip.

    The expiry is absolute and rounded up, so a value outlives the token it protects. The
    client is the caller's: this store neither configures nor closes it.

    :param client: a ``redis.Redis``, built as below
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; only decides when a nearly closed window gets the 1 s minimum
    :raises ConfigError: a prefix that is empty, longer than 64 or not printable ASCII

    Build the client so that a dead Redis fails fast and a restarted one is used again::

        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            "redis://127.0.0.1:6379/0",
            socket_timeout=0.5,           # seconds: a stalled Redis raises StoreError, not a hang
            socket_connect_timeout=0.5,   # seconds: an unreachable host likewise
            health_check_interval=10,     # seconds idle before a pooled connection is PINGed first
            retry=Retry(NoBackoff(), 1),  # one immediate retry, on a fresh connection
        )

    Why: redis-py's defaults are a 5 s socket timeout and 10 retries with backoff, seconds
    # during which a request holds a worker. A pooled connection to a server that restarted
    # fails once; the single retry reconnects, so the store recovers with no action of ours.
    # A retry after a timeout may find the key its own first attempt set and answer "replay":
    # that fails closed (401), never open.

    Run Redis with ``maxmemory-policy noeviction``: an evicted nonce is a replay gap, while a
    full Redis refuses the write and the request gets 503, as a full memory store does.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock

    def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or timed out; the request then gets 503
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        try:
            reply = self._client.set(args.name, ops.MARK, nx=True, pxat=args.pxat, px=args.px)
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply)

    def ping(self) -> None:
        """Readiness. :raises StoreError: Redis does not answer"""
        try:
            self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc


class AsyncRedisNonceStore:
    """The ``redis.asyncio`` twin of :class:`RedisNonceStore`; same keys, same semantics.

    :param client: a ``redis.asyncio.Redis``, built with ``redis.asyncio.Redis.from_url`` and
        the same timeouts, health check and retry as shown for :class:`RedisNonceStore`
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; only decides when a nearly closed window gets the 1 s minimum
    :raises ConfigError: a prefix that is empty, longer than 64 or not printable ASCII
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock

    async def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or timed out
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        try:
            reply = await self._client.set(args.name, ops.MARK, nx=True, pxat=args.pxat, px=args.px)
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply)

    async def ping(self) -> None:
        """Readiness. :raises StoreError: Redis does not answer"""
        try:
            await self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
