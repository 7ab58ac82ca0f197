"""One pushed SET taken from its bytes to cut-offs held by the revocation store, once per ``(iss, jti)``.

Why apart from the ASGI shell: this is the work that touches the outside (the transmitter's
key set, the app's subject resolver, the store) around the pure checks of ``caep_set`` and
the pure mapping of ``caep_events``; the shell only speaks HTTP. A failure here that the
transmitter should retry (keys, resolver, store) is a 503 ``SETRefused``, and the SET is
not remembered, so the retry applies it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from .._types import Clock
from ..config import KeyPolicy
from ..core.gate import ParsedToken
from ..errors import InvalidToken, StoreError, Unavailable
from ..keys.cache import KeyCache
from ..keys.loader import KeyLoader
from . import AsyncRevocationStore, RevocationStore
from .caep_events import cut_offs_of, iss_sub_pair, logger, needs_resolver, plan_event
from .caep_set import (
    SecurityEvent,
    SETRefused,
    Transmitter,
    check_key_header,
    check_pusher,
    check_set_claims,
    check_set_signature,
    is_text,
    key_refused,
    read_events,
    read_set,
)
from .model import CutOff

__all__ = ["DeliveredSETs", "SETDelivery", "SubjectResolver"]

#: ``(subject identifier, transmitter issuer) -> [(token issuer, sub), ...]``, sync or async;
#: called for RFC 9493 user identifiers the receiver cannot map itself (email, opaque, ...)
SubjectResolver: TypeAlias = Callable[
    [Mapping[str, Any], str],
    "Iterable[tuple[str, str]] | Awaitable[Iterable[tuple[str, str]]]",
]
_RETRY: Final = [(b"retry-after", b"1")]


class DeliveredSETs:
    """The ``(iss, jti)`` of SETs applied, each until ``now + remember_for``, at most ``limit``.

    Why forgetting is safe: a SET re-delivered after its jti was forgotten is applied again,
    and cut-offs only move forward, so nothing changes.
    """

    def __init__(self, remember_for: float, limit: int) -> None:
        self._remember_for = remember_for
        self._limit = limit
        self._until: OrderedDict[tuple[str, str], float] = OrderedDict()  # oldest first

    def seen(self, key: tuple[str, str], now: float) -> bool:
        """Whether ``key`` was applied and is still remembered at ``now``."""
        until = self._until
        while until:
            oldest, expires = next(iter(until.items()))
            if expires >= now:
                break
            del until[oldest]
        return key in until

    def remember(self, key: tuple[str, str], now: float) -> None:
        """Remember ``key`` as applied; past ``limit`` the oldest is forgotten."""
        self._until[key] = now + self._remember_for
        while len(self._until) > self._limit:
            self._until.popitem(last=False)


class SETDelivery:
    """Verifies a SET's bytes and applies its events to the store (the receiver's work, without HTTP).

    Its options are the ``SETReceiver``'s, validated there.
    """

    def __init__(
        self,
        store: RevocationStore | AsyncRevocationStore,
        transmitters: Mapping[str, Transmitter],
        *,
        subject_resolver: SubjectResolver | None,
        max_bytes: int,
        leeway: float,
        remember_for: float,
        max_remembered: int,
        key_policy: KeyPolicy,
    ) -> None:
        self._store = store
        self._clock: Clock = store.clock
        self._transmitters = transmitters
        self._resolver = subject_resolver
        self._max_bytes = max_bytes
        self._leeway = leeway
        self._async_store = inspect.iscoroutinefunction(store.revoke_subject)
        self._inline_store = getattr(store, "non_blocking", False)
        issuers = {t.issuer: t.as_issuer() for t in transmitters.values()}
        self._keys = KeyCache(issuers, key_policy)
        self._loader = KeyLoader(self._keys, issuers, key_policy, self._clock)
        self._delivered = DeliveredSETs(remember_for, max_remembered)

    async def deliver(self, body: bytes, pushed_by: Transmitter | None = None) -> None:
        """Verify one SET and apply its events, unless its ``(iss, jti)`` was applied already.

        :param pushed_by: the transmitter the push authenticated as, if it did
        :raises SETRefused: what the push is answered with when it is not a 202
        """
        parsed, transmitter = read_set(body, self._transmitters, self._max_bytes)
        check_pusher(transmitter, pushed_by)
        await self._verify_signature(parsed, transmitter)
        now = self._clock()
        claims = parsed.claims
        jti = check_set_claims(claims, transmitter, now, self._leeway)
        events = read_events(claims, self._leeway)
        key = (transmitter.issuer, jti)
        if self._delivered.seen(key, now):
            logger.info("set re-delivered, nothing applied: iss %r jti %r", transmitter.issuer, jti)
            return
        cut_offs = await self._cut_offs(events, transmitter)
        await self._apply(cut_offs)
        self._delivered.remember(key, now)
        logger.info(
            "set applied: iss %r jti %r events %s cut-offs %d",
            transmitter.issuer,
            jti,
            [event.type for event in events],
            len(cut_offs),
            extra={"issuer": transmitter.issuer, "jti": jti, "cut_offs": len(cut_offs)},
        )

    async def _verify_signature(self, parsed: ParsedToken, transmitter: Transmitter) -> None:
        """The key from the transmitter's key set (fetched on a miss, single-flight), then the signature."""
        alg, kid = check_key_header(parsed, transmitter)
        issuer, now = transmitter.issuer, self._clock()
        try:
            key, need = self._keys.select(issuer, kid, alg, now)
            if key is None:
                await self._loader.aload(issuer)
                key = self._keys.select_after_fetch(issuer, kid, alg, self._clock())
            elif need is not None:
                self._loader.arefresh_in_background(issuer)
        except InvalidToken as exc:
            raise key_refused(exc.reason) from None
        except Unavailable as exc:
            retry = str(exc.retry_after or 1).encode()
            raise SETRefused(
                503,
                None,
                exc.reason,
                "The transmitter's keys are unavailable; retry",
                [(b"retry-after", retry)],
            ) from None
        check_set_signature(parsed, key)

    async def _cut_offs(self, events: Sequence[SecurityEvent], transmitter: Transmitter) -> list[CutOff]:
        cut_offs: list[CutOff] = []
        for event in events:
            plan = plan_event(event)
            if plan is None:
                continue
            pairs: list[tuple[str, str]] = []
            for user in plan.users:
                pair = iss_sub_pair(user)
                if pair is not None:
                    pairs.append(pair)
                elif self._resolver is not None and needs_resolver(user):
                    pairs += await self._resolve(self._resolver, user, transmitter.issuer)
            cut_offs += cut_offs_of(plan, pairs, transmitter)
        return cut_offs

    async def _resolve(
        self, resolver: SubjectResolver, user: Mapping[str, Any], issuer: str
    ) -> list[tuple[str, str]]:
        """The app's resolver; its bug is a 503 (the transmitter retries), never a 500."""
        try:
            result = resolver(user, issuer)
            if inspect.isawaitable(result):
                result = await result
            pairs = [(iss, sub) for iss, sub in result]
            if not all(is_text(iss) and is_text(sub) for iss, sub in pairs):
                raise TypeError("subject_resolver must return (issuer, sub) string pairs")
        except Exception as exc:
            logger.error("subject_resolver failed: %s", type(exc).__name__)
            raise SETRefused(
                503, None, "resolver_failed", "The subject could not be resolved; retry", _RETRY
            ) from None
        return pairs

    async def _apply(self, cut_offs: Sequence[CutOff]) -> None:
        """Each cut-off through the store; a failure is a 503, and the re-delivery applies it.

        Why three ways to call: an async store is awaited, the memory store (``non_blocking``)
        called inline, and a sync store that does I/O (sync Redis) runs in a worker thread so
        the event loop serving other pushes is never blocked on Redis.
        """
        store = self._store
        try:
            for cut in cut_offs:
                revoke = store.revoke_session if cut.kind == "session" else store.revoke_subject
                if self._async_store:
                    await revoke(cut.issuer, cut.value, cut.at)  # type: ignore[misc]
                elif self._inline_store:
                    revoke(cut.issuer, cut.value, cut.at)
                else:
                    await asyncio.to_thread(revoke, cut.issuer, cut.value, cut.at)
        except StoreError as exc:
            logger.warning("set not applied, the revocation store failed: %s", type(exc).__name__)
            raise SETRefused(
                503, None, "store_failed", "The revocation store is unavailable; retry", _RETRY
            ) from None
