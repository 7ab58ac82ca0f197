"""Revocation state: what is revoked, the in-process mirror every request is checked against, and its stores.

Issue 12's model: one token (``iss``, ``jti``) until it expires; every token of a subject, a
session (``sid``) or a client issued at or before a cut-off. The check is
``store.mirror.check(...)`` (in-process, nothing awaited) next to ``store.mirror.trusted(now)``;
the stores keep the mirror current. ``MemoryRevocationStore`` serves one process;
``RedisRevocationStore`` (thread) and ``AsyncRedisRevocationStore`` (asyncio task) share the
state between workers through one Redis. The Redis stores load on first use, so the ``redis``
extra stays optional, and importing this package costs no I/O (the sans-I/O core may).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._types import Clock
from .memory import MemoryRevocationStore
from .mirror import Listener, RevocationMirror
from .model import (
    CLIENT_REVOKED,
    SESSION_REVOKED,
    SUBJECT_REVOKED,
    TOKEN_REVOKED,
    CutOff,
    CutOffKind,
    Revocation,
    RevokedToken,
)
from .status_list import StatusListPolicy

if TYPE_CHECKING:
    from .redis import AsyncRedisRevocationStore, RedisRevocationStore

__all__ = [
    "CLIENT_REVOKED",
    "SESSION_REVOKED",
    "SUBJECT_REVOKED",
    "TOKEN_REVOKED",
    "AsyncRedisRevocationStore",
    "AsyncRevocationStore",
    "CutOff",
    "CutOffKind",
    "Listener",
    "MemoryRevocationStore",
    "RedisRevocationStore",
    "Revocation",
    "RevocationMirror",
    "RevocationStore",
    "RevokedToken",
    "StatusListPolicy",
]


def __getattr__(name: str) -> Any:
    """The Redis stores load on first use, so the ``redis`` extra stays optional."""
    if name in ("RedisRevocationStore", "AsyncRedisRevocationStore"):
        from . import redis as _redis

        return getattr(_redis, name)
    raise AttributeError(name)


@runtime_checkable
class RevocationStore(Protocol):
    """Where revocations are made, and the mirror they are checked against (sync twin).

    Each ``revoke_*`` holds in this process's mirror before it returns, and in every other
    worker's once their store has followed it. ``at`` and ``until`` are epoch seconds.
    """

    @property
    def mirror(self) -> RevocationMirror:
        """The mirror requests are checked against; listeners are added to it."""
        ...

    @property
    def clock(self) -> Clock:
        """The clock entries expire and staleness is read on; must be ``Config.clock``."""
        ...

    def revoke_token(self, issuer: str, jti: str, until: float) -> None:
        """Refuse ``(issuer, jti)`` until ``until``. :raises StoreError: the backend failed"""
        ...

    def revoke_subject(self, issuer: str, subject: str, at: float) -> None:
        """Refuse ``(issuer, sub)``'s tokens with ``iat <= at``. :raises StoreError: the backend failed"""
        ...

    def revoke_session(self, issuer: str, sid: str, at: float) -> None:
        """Refuse ``(issuer, sid)``'s tokens with ``iat <= at``. :raises StoreError: the backend failed"""
        ...

    def revoke_client(self, issuer: str, client_id: str, at: float) -> None:
        """Refuse ``(issuer, client_id)``'s tokens with ``iat <= at``. :raises StoreError: backend failed"""
        ...

    def start(self) -> None:
        """Begin keeping the mirror current (at app start-up)."""
        ...

    def close(self) -> None:
        """Stop keeping it current (at shutdown)."""
        ...


@runtime_checkable
class AsyncRevocationStore(Protocol):
    """The async twin of :class:`RevocationStore`: same names, awaited; ``astart``/``aclose``."""

    @property
    def mirror(self) -> RevocationMirror: ...

    @property
    def clock(self) -> Clock: ...

    async def revoke_token(self, issuer: str, jti: str, until: float) -> None: ...

    async def revoke_subject(self, issuer: str, subject: str, at: float) -> None: ...

    async def revoke_session(self, issuer: str, sid: str, at: float) -> None: ...

    async def revoke_client(self, issuer: str, client_id: str, at: float) -> None: ...

    async def astart(self) -> None: ...

    async def aclose(self) -> None: ...
