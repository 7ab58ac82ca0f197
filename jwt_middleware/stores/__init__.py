"""Store protocols, one per concern, each with a sync and an async twin (same method names).

Memory implementations (cachetools, bounded, locked) serve one process; Redis
implementations share state between processes. A backend failure is raised as StoreError;
the pipeline turns it into 503 (fail closed) unless configured to fail open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .memory import MemoryNonceStore

if TYPE_CHECKING:
    from .redis import AsyncRedisNonceStore, RedisNonceStore

__all__ = ["AsyncNonceStore", "AsyncRedisNonceStore", "MemoryNonceStore", "NonceStore", "RedisNonceStore"]


def __getattr__(name: str) -> Any:
    """The Redis stores load on first use, so the ``redis`` extra stays optional."""
    if name in ("RedisNonceStore", "AsyncRedisNonceStore"):
        from . import redis as _redis

        return getattr(_redis, name)
    raise AttributeError(name)


@runtime_checkable
class NonceStore(Protocol):
    """One-time values (token and proof ``jti``), remembered until they can no longer be replayed."""

    def consume(self, key: str, until: float) -> bool:
        """Remember ``key`` until ``until`` (epoch seconds). False if it was already there: a replay.

        ``until`` is read on the app's clock (``Config.clock``); a store whose backend keeps its
        own clock (Redis) stores the time left on the app's clock instead, never ``until`` itself.

        :raises StoreError: the backend failed or took longer than the store's timeout (a full
            memory store raises StoreFull)
        """
        ...

    def ping(self) -> None:
        """Readiness: return when usable. :raises StoreError: when not."""
        ...


@runtime_checkable
class AsyncNonceStore(Protocol):
    async def consume(self, key: str, until: float) -> bool: ...

    async def ping(self) -> None: ...
