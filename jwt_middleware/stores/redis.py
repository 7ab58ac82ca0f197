"""Redis nonce stores: one atomic round trip per use, shared by every process using one Redis.

The sync and async shells differ only by ``await`` and by how they keep their time limit;
names, arguments and replies come from ``_redis_ops``. This is the only module of the package
that imports ``redis``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._types import Clock
from ..errors import StoreError
from . import _redis_ops as ops

__all__ = ["AsyncRedisNonceStore", "RedisNonceStore"]

#: What a backend failure looks like from redis-py: its own errors, and raw socket errors
#: (TimeoutError, which asyncio.timeout raises, is an OSError).
_BACKEND_ERRORS: Final = (RedisError, OSError)
#: Failures after which the command may or may not have run: worth one retry with the same value.
_RETRYABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)


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

    Why: redis-py's defaults are 5 s socket timeouts and 10 retries with backoff, during which
    a stalled Redis holds each request. Past ``timeout`` (a second attempt starts only when it
    can end in time) the call raises StoreError and the request gets 503 with Retry-After, or
    passes when ``store_failure="open"``. A pooled connection to a restarted server fails at
    once; the retry reconnects, so the store recovers with no action of ours.

    Run Redis with ``maxmemory-policy noeviction``: an evicted nonce is a replay gap, while a
    full Redis refuses the write and the request gets 503, as a full memory store does.

    :param client: a ``redis.Redis``, built as above
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; the clock ``until`` is computed on (``Config.clock``)
    :param timeout: seconds one call may take, its retry included
    :raises ConfigError: a prefix that is empty, longer than 64 or not printable ASCII; a
        timeout outside (0, 30]; a client whose socket timeouts are unset or longer than
        ``timeout``, or that retries by itself
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = ops.DEFAULT_TIMEOUT,  # seconds
    ) -> None:
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock
        self._timeout = ops.check_timeout("RedisNonceStore", timeout)
        self._attempt = _attempt_bound(client, self._timeout)

    @property
    def clock(self) -> Clock:
        """The clock ``until`` is read on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or timed out; the request then gets 503
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        started = time.monotonic()
        try:
            try:
                reply = self._set(args)
            except _RETRYABLE:
                if not ops.retry_fits(time.monotonic() - started, self._attempt, self._timeout):
                    raise
                reply = self._set(args)  # same value: our own lost write reads as ours
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply, args.value)

    def ping(self) -> None:
        """Readiness. :raises StoreError: Redis does not answer"""
        try:
            self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    def _set(self, args: ops.NonceSet) -> object:
        return self._client.set(args.name, args.value, nx=True, get=True, px=args.px)


class AsyncRedisNonceStore:
    """The ``redis.asyncio`` twin of :class:`RedisNonceStore`; same keys, same semantics.

    ``timeout`` is kept with ``asyncio.timeout`` around the whole call (its retry and any retry
    of the client's own included), so any client works; short socket timeouts and one retry, as
    shown for :class:`RedisNonceStore`, only let a failure surface sooner.

    A call cut off by its timeout may still be carried out by Redis later (a stalled server
    resumes): that use got 503 and its value stays consumed, so the client needs a new token.

    :param client: a ``redis.asyncio.Redis``
    :param prefix: namespace of this store's keys
    :param clock: epoch seconds; the clock ``until`` is computed on (``Config.clock``)
    :param timeout: seconds one call may take, its retry included
    :raises ConfigError: a prefix that is empty, longer than 64 or not printable ASCII; a
        timeout outside (0, 30]
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = ops.DEFAULT_NONCE_PREFIX,
        *,
        clock: Clock = time.time,
        timeout: float = ops.DEFAULT_TIMEOUT,  # seconds
    ) -> None:
        self._client = client
        self._prefix = ops.check_prefix(prefix)
        self._clock = clock
        self._timeout = ops.check_timeout("AsyncRedisNonceStore", timeout)

    @property
    def clock(self) -> Clock:
        """The clock ``until`` is read on; the Authenticator checks it is ``Config.clock``."""
        return self._clock

    async def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch s). False if it was already there: a replay.

        :raises StoreError: Redis failed or did not answer within ``timeout``
        """
        args = ops.nonce_set(self._prefix, key, until, self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    reply = await self._set(args)
                except _RETRYABLE:
                    reply = await self._set(args)  # same value: our own lost write reads as ours
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc
        return ops.parse_set_reply(reply, args.value)

    async def ping(self) -> None:
        """Readiness. :raises StoreError: Redis does not answer within ``timeout``"""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except _BACKEND_ERRORS as exc:
            raise StoreError(exc) from exc

    async def _set(self, args: ops.NonceSet) -> object:
        return await self._client.set(args.name, args.value, nx=True, get=True, px=args.px)


def _attempt_bound(client: redis.Redis, timeout: float) -> float:
    """What one blocking attempt of ``client`` may take; see :func:`_redis_ops.attempt_bound`."""
    kwargs = client.get_connection_kwargs()
    retry = client.get_retry()
    if retry is not None:
        retries = retry.get_retries()
    else:  # redis-py retries once when only retry_on_timeout / retry_on_error is given
        retries = 1 if kwargs.get("retry_on_timeout") or kwargs.get("retry_on_error") else 0
    return ops.attempt_bound(
        "RedisNonceStore",
        timeout,
        socket_timeout=kwargs.get("socket_timeout"),
        socket_connect_timeout=kwargs.get("socket_connect_timeout"),
        retries=retries,
    )
