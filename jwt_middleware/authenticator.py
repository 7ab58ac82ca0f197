"""Authenticator: one object that decides; the ASGI and WSGI adapters only deliver its answer."""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple, cast

from ._drive import drive_async, drive_sync
from ._revoking import Revoker, check_revocation_store
from ._status_lists import StatusLists
from .audit import fingerprint, record_decision
from .challenge import Answer, render_challenge, with_body
from .config import Config
from .core.effects import ConsumeNonce, Effect, FetchStatusList, ValidateClaims
from .core.pipeline import Flow, Pending, Trace, authenticate, build_context, finish, prepare
from .errors import AuthError, ConfigError, Refusal, Unavailable
from .hooks import ClaimsCheck, Hook, RefusalBody, UserLoader, prepare_hook, shaped_body
from .identity import Identity
from .keys.cache import KeyCache
from .keys.loader import KeyLoader
from .request import RequestView
from .revocation import AsyncRevocationStore, RevocationStore
from .stores import AsyncNonceStore, NonceStore
from .warmup import IssuerWarmup
from .warmup import awarm as _awarm
from .warmup import warm as _warm

__all__ = ["Authenticator", "Resume"]

logger = logging.getLogger("jwt_middleware")


class Resume(NamedTuple):
    """A decision that needs effects (a fetch, a store): finish it with resume/aresume."""

    flow: Flow
    trace: Trace


def _mark_presented_scheme(trace: Trace, refusal: Refusal) -> None:
    """A token sent with the DPoP scheme gets its error on the DPoP challenge (RFC 9449 §7.1),
    whichever step refused it (an expired token, a wrong audience), not only the sender step."""
    if trace.dpop and isinstance(refusal, AuthError) and refusal.scheme == "Bearer":
        refusal.presented_scheme = "DPoP"


def _with_shaped(answer: Answer, shaped: RefusalBody | None) -> Answer:
    """The rendered answer with ``on_refusal``'s body (None: the default body stays)."""
    if shaped is None:
        return answer
    return with_body(answer, shaped.payload, shaped.content_type, shaped.headers)


def _record_user_refusal(identity: Identity, refusal: Refusal) -> None:
    """Audit a refusal by the identity_loader, after the allow the decision itself recorded.

    A DPoP-bound token was presented with the DPoP scheme (a bound token sent as Bearer is
    refused before this), so the error goes on that challenge (RFC 9449 §7.1).
    """
    if identity.binding is not None and isinstance(refusal, AuthError) and refusal.scheme == "Bearer":
        refusal.presented_scheme = "DPoP"
    trace = Trace()
    trace.identity = identity
    trace.issuer = identity.issuer
    record_decision(trace, refusal)


def _check_store_clock(store: object, config: Config, option: str = "nonce_store") -> None:
    """A store that reads another clock than the pipeline would keep one-time values or
    revocations for the wrong span (a fake clock in tests, an offset clock in production), or
    judge a revocation mirror's staleness on another time: refuse it.

    :raises ConfigError: naming both options
    """
    clock = getattr(store, "clock", None)
    if clock is not None and clock is not config.clock:
        raise ConfigError(
            f"{option}: {type(store).__name__} reads another clock than Config.clock; build it "
            "with clock=config.clock (the same object), so entries live as long as the token"
        )


class Authenticator:
    """Holds the configuration, the key cache and the stores; decides each request.

    :param config: a validated :class:`~jwt_middleware.Config`
    :param nonce_store: one-time values (DPoP proofs, one-time rules); default: in memory
    :param revocation_store: turns on the revocation check (``jwt_middleware.revocation``:
        ``MemoryRevocationStore``, ``RedisRevocationStore``, ``AsyncRedisRevocationStore``);
        every request, verified-cache hits included, is checked against its in-process mirror
    """

    def __init__(
        self,
        config: Config,
        *,
        nonce_store: NonceStore | AsyncNonceStore | None = None,
        revocation_store: RevocationStore | AsyncRevocationStore | None = None,
    ) -> None:
        if not isinstance(config, Config):
            raise ConfigError(
                f"config: {type(config).__name__} given; build it with Config(...) "
                "(a dict of options: Config(**options))"
            )
        self.config = config
        issuers = {i.issuer: i for i in config.issuers}
        self.keys = KeyCache(issuers, config.keys)
        self.loader = KeyLoader(self.keys, issuers, config.keys, config.clock)
        validator = prepare_hook("claims_validator", config.claims_validator)
        self._claims_check = ClaimsCheck(validator) if validator is not None else None
        self.revocation_store = revocation_store
        self._revoker: Revoker | None = None
        mirror = None
        if revocation_store is not None:
            check_revocation_store(revocation_store)
            _check_store_clock(revocation_store, config, "revocation_store")
            mirror = revocation_store.mirror
        # Token Status Lists (issue 12): per issuer with a status_list policy, checked on every request
        self._status_lists: StatusLists | None = None
        if any(issuer.status_list is not None for issuer in config.issuers):
            self._status_lists = StatusLists(config, self.keys, self.loader)
        checks = self._status_lists.checks if self._status_lists is not None else None
        self._ctx = build_context(config, self.keys, self._claims_check, mirror, checks)
        if revocation_store is not None:
            self._revoker = Revoker(revocation_store, config, self._ctx.verified)
        self._clock = config.clock
        loader = prepare_hook("identity_loader", config.identity_loader)
        self._users = UserLoader(loader, config.identity_loader_ttl, config.clock) if loader else None
        self._on_refusal: Hook | None = prepare_hook("on_refusal", config.on_refusal)
        needs_store = config.dpop is not None or any(rule.one_time for rule in config.rules)
        if nonce_store is None and needs_store:
            from .stores import MemoryNonceStore

            # One process only: several workers need a shared store (RedisNonceStore).
            nonce_store = MemoryNonceStore(clock=config.clock)
        _check_store_clock(nonce_store, config)
        self.nonce_store = nonce_store
        self._nonce_is_async = nonce_store is not None and inspect.iscoroutinefunction(nonce_store.consume)
        self._schemes: tuple[str, ...] = ("Bearer", "DPoP") if config.dpop else ("Bearer",)
        self._dpop_algs = " ".join(config.dpop.algorithms) if config.dpop else None

    def check_driver(self, driver: Literal["asgi", "wsgi"]) -> None:
        """Refuse a store that would block the event loop (ASGI) or cannot be awaited (WSGI).

        :raises ConfigError: naming the store class to use instead
        """
        revoker = self._revoker
        if driver == "wsgi" and revoker is not None and revoker.is_async:
            # Why only this one: the check reads the mirror in-process under both drivers, but
            # an async store's follower is a task that needs an event loop to run on.
            raise ConfigError(
                f"revocation_store: {type(revoker.store).__name__} follows Redis on an event loop, "
                "which a WSGI server does not run; under WSGI use RedisRevocationStore or "
                "MemoryRevocationStore"
            )
        store = self.nonce_store
        if store is None or getattr(store, "non_blocking", False):
            return
        if driver == "asgi" and not self._nonce_is_async:
            raise ConfigError(
                f"nonce_store: {type(store).__name__} blocks the event loop; under ASGI use "
                "AsyncRedisNonceStore (redis.asyncio) or MemoryNonceStore"
            )
        if driver == "wsgi" and self._nonce_is_async:
            raise ConfigError(
                f"nonce_store: {type(store).__name__} is async; "
                "under WSGI use RedisNonceStore or MemoryNonceStore"
            )

    def flow(self, request: RequestView, trace: Trace | None = None) -> Flow:
        """The sans-I/O decision for ``request``; step it yourself or use a driver below."""
        return authenticate(request, self._ctx, self._clock(), trace or Trace())

    def begin(self, request: RequestView) -> Identity | Resume | None:
        """Decide without I/O when possible: the Identity (None: anonymous access the rule
        allows), or a :class:`Resume` to finish with :meth:`resume` / :meth:`aresume`.

        Why a split: a cached token needs no effect, so an adapter answers it without
        creating a coroutine or a generator (the hot path).

        :raises Refusal: the answer to send; never any other exception
        """
        trace = Trace()
        revoker = self._revoker
        if revoker is not None and revoker.pending and not revoker.is_async:
            revoker.start()  # first use in this process (WSGI, CLI): see Revoker
        try:
            now = self._clock()
            step = prepare(request, self._ctx, now, trace)
        except Refusal as refusal:
            _mark_presented_scheme(trace, refusal)
            record_decision(trace, refusal)
            raise
        except Exception as exc:
            raise self._internal(trace, exc) from None
        if isinstance(step, Pending):
            return Resume(finish(request, step, self._ctx, now, trace), trace)
        record_decision(trace, None)
        return step

    def resume(self, pending: Resume) -> Identity | None:
        """Finish a :meth:`begin` synchronously (WSGI, CLI)."""
        with self._audited(pending.trace):
            identity = drive_sync(pending.flow, self._answer_sync)
        return identity  # type: ignore[return-value]

    async def aresume(self, pending: Resume) -> Identity | None:
        """Finish a :meth:`begin` with await (ASGI)."""
        with self._audited(pending.trace):
            identity = await drive_async(pending.flow, self._answer_async)
        return identity  # type: ignore[return-value]

    @contextmanager
    def _audited(self, trace: Trace) -> Iterator[None]:
        """Record the decision; a refusal passes through, any other exception becomes 503."""
        try:
            yield
        except Refusal as refusal:
            _mark_presented_scheme(trace, refusal)
            record_decision(trace, refusal)
            raise
        except Exception as exc:
            raise self._internal(trace, exc) from None
        record_decision(trace, None)

    def authenticate(self, request: RequestView) -> Identity | None:
        """Decide synchronously (WSGI, CLI). None: anonymous access the rule allows.

        :raises Refusal: the answer to send; never any other exception
        """
        step = self.begin(request)
        return self.resume(step) if isinstance(step, Resume) else step

    async def aauthenticate(self, request: RequestView) -> Identity | None:
        """The async twin of :meth:`authenticate` (ASGI)."""
        if self._revoker is not None and self._revoker.pending:
            await self._revoker.astart()
        step = self.begin(request)
        return await self.aresume(step) if isinstance(step, Resume) else step

    def warm(self, *, strict: bool = True, timeout: float | None = None) -> tuple[IssuerWarmup, ...]:
        """Fetch every remote issuer's keys now (WSGI, CLI start-up): one report per issuer
        (:func:`jwt_middleware.warmup.warm`).

        :raises WarmupError: ``strict`` and an issuer's keys could not be loaded
        """
        return _warm(self, strict=strict, timeout=timeout)

    async def awarm(self, *, strict: bool = True, timeout: float | None = None) -> tuple[IssuerWarmup, ...]:
        """The async twin of :meth:`warm` (ASGI; the adapter's ``warm_keys`` calls it at start-up)."""
        return await _awarm(self, strict=strict, timeout=timeout)

    # -- revocation (issue 12): the store's lifecycle and the revoke calls

    @property
    def starting(self) -> bool:
        """True while the revocation store still has to be started in this process (the
        adapters start it on ``lifespan.startup`` or on the first request)."""
        return self._revoker is not None and self._revoker.pending

    def start(self) -> None:
        """Start the revocation store now (a sync one; WSGI workers, CLI), not on the first
        request: for instance in gunicorn's ``post_fork``. Idempotent; no store: nothing.

        :raises TypeError: the store is async: ``await astart()``
        """
        if self._revoker is not None:
            self._revoker.start()

    async def astart(self) -> None:
        """Start the revocation store from the event loop (``JWTMiddleware`` calls it on
        ``lifespan.startup`` and, without lifespan, on the first request); a sync store starts
        in a thread. Returns after its first sync attempt."""
        if self._revoker is not None:
            await self._revoker.astart()

    def close(self) -> None:
        """Stop a sync revocation store's follower (shutdown); the next request starts it again."""
        if self._revoker is not None:
            self._revoker.close()

    async def aclose(self) -> None:
        """The async twin of :meth:`close` (``JWTMiddleware`` calls it on ``lifespan.shutdown``)."""
        if self._revoker is not None:
            await self._revoker.aclose()

    def revoke_token(self, issuer: str, jti: str, *, until: float | None = None) -> None:
        """Refuse the token ``(issuer, jti)`` from its next request on, in every worker that
        shares the store (RFC 7009 §2.2: a revoked token is invalid), until ``until``.

        :param until: epoch seconds the entry is kept; default ``now + Config.max_lifetime +
            leeway``, the longest an accepted token can live (see :meth:`revoke_identity` for
            a token at hand)
        :raises ValueError: an issuer not configured; no ``until`` with ``max_lifetime=None``
        :raises StoreError: the store failed (the revocation holds in this process only)
        :raises TypeError: the store is async: :meth:`arevoke_token`
        """
        self._revoking().revoke("token", issuer, jti, until)

    def revoke_identity(self, identity: Identity) -> None:
        """Refuse exactly this verified token (its ``jti``) until its ``exp`` plus leeway.

        :raises ValueError: the token has no ``jti`` (revoke its session or subject instead)
        """
        jti, until = self._revoking().until_of(identity)
        self.revoke_token(identity.issuer, jti, until=until)

    def revoke_subject(self, issuer: str, subject: str, *, at: float | None = None) -> None:
        """Refuse every token of ``(issuer, sub)`` issued at or before ``at`` (default now;
        a token without ``iat`` is refused too). Same errors as :meth:`revoke_token`."""
        self._revoking().revoke("subject", issuer, subject, at)

    def revoke_session(self, issuer: str, sid: str, *, at: float | None = None) -> None:
        """Refuse every token of the OpenID session ``sid`` issued at or before ``at`` (default
        now): a logout. Same errors as :meth:`revoke_token`."""
        self._revoking().revoke("session", issuer, sid, at)

    def revoke_client(self, issuer: str, client_id: str, *, at: float | None = None) -> None:
        """Refuse every token issued to ``client_id`` (``client_id``, else ``azp``) at or before
        ``at`` (default now). Same errors as :meth:`revoke_token`."""
        self._revoking().revoke("client", issuer, client_id, at)

    async def arevoke_token(self, issuer: str, jti: str, *, until: float | None = None) -> None:
        """The async twin of :meth:`revoke_token` (any store: a sync Redis one runs in a thread)."""
        await self._revoking().arevoke("token", issuer, jti, until)

    async def arevoke_identity(self, identity: Identity) -> None:
        """The async twin of :meth:`revoke_identity`."""
        jti, until = self._revoking().until_of(identity)
        await self.arevoke_token(identity.issuer, jti, until=until)

    async def arevoke_subject(self, issuer: str, subject: str, *, at: float | None = None) -> None:
        """The async twin of :meth:`revoke_subject`."""
        await self._revoking().arevoke("subject", issuer, subject, at)

    async def arevoke_session(self, issuer: str, sid: str, *, at: float | None = None) -> None:
        """The async twin of :meth:`revoke_session`."""
        await self._revoking().arevoke("session", issuer, sid, at)

    async def arevoke_client(self, issuer: str, client_id: str, *, at: float | None = None) -> None:
        """The async twin of :meth:`revoke_client`."""
        await self._revoking().arevoke("client", issuer, client_id, at)

    def _revoking(self) -> Revoker:
        if self._revoker is None:
            raise TypeError("no revocation store: Authenticator(config, revocation_store=...)")
        return self._revoker

    @property
    def loads_users(self) -> bool:
        """True when ``Config.identity_loader`` is set: the adapters then attach its user."""
        return self._users is not None

    def load_user(self, identity: Identity) -> object:
        """The app's user for ``identity`` from ``Config.identity_loader`` (an async loader is run
        to completion); reused for the same verified token within ``identity_loader_ttl``.
        None when no loader is configured.

        :raises InvalidToken: the loader found no user (None): reason ``unknown_user``
        :raises Refusal: the loader's own refusal, or ``Unavailable`` (503) when it failed
        """
        users = self._users
        if users is None:
            return None
        try:
            return users.load(identity)
        except Refusal as refusal:
            _record_user_refusal(identity, refusal)
            raise

    async def aload_user(self, identity: Identity) -> object:
        """The async twin of :meth:`load_user` (ASGI); a sync loader is called inline."""
        users = self._users
        if users is None:
            return None
        try:
            return await users.aload(identity)
        except Refusal as refusal:
            _record_user_refusal(identity, refusal)
            raise

    def render(self, refusal: Refusal, request: RequestView | None = None) -> Answer:
        """Status, headers and body for a refusal (RFC 6750 §3); ``Config.on_refusal`` shapes the
        body (an async hook is run to completion), never the challenge.

        :param request: the refused request, for the hook (None where it is not known)
        """
        answer = self.challenge(refusal)  # Why first: what the hook does to ``refusal`` cannot reach it
        hook = self._on_refusal
        if hook is None:
            return answer
        try:
            shaped = shaped_body(hook.name, hook.call(refusal, request))
        except Refusal as failed:  # the hook's bug (503, logged), or a refusal it raised instead
            return self.challenge(failed)
        return _with_shaped(answer, shaped)

    async def arender(self, refusal: Refusal, request: RequestView | None = None) -> Answer:
        """The async twin of :meth:`render` (ASGI); a sync ``on_refusal`` is called inline."""
        answer = self.challenge(refusal)
        hook = self._on_refusal
        if hook is None:
            return answer
        try:
            shaped = shaped_body(hook.name, await hook.acall(refusal, request))
        except Refusal as failed:
            return self.challenge(failed)
        return _with_shaped(answer, shaped)

    def challenge(self, refusal: Refusal) -> Answer:
        """The answer with the default body, ``on_refusal`` not asked (its headers are every
        refusal's: what a framework's own error handler needs to keep)."""
        return render_challenge(
            refusal,
            realm=self.config.realm,
            schemes=self._schemes,
            dpop_algs=self._dpop_algs,
            strip_body=self.config.strip_failure_body,
        )

    def _answer_sync(self, effect: Effect) -> object:
        if isinstance(effect, ConsumeNonce):
            store = cast(NonceStore, self.nonce_store)
            return store.consume(effect.key, effect.until)
        if isinstance(effect, ValidateClaims):
            cast(ClaimsCheck, self._claims_check).finish(effect.pending)
            return None
        if isinstance(effect, FetchStatusList):
            cast(StatusLists, self._status_lists).answer(effect)
            return None
        if effect.blocking:
            self.loader.load(effect.issuer)
        else:
            self.loader.refresh_in_background(effect.issuer)
        return None

    async def _answer_async(self, effect: Effect) -> object:
        if isinstance(effect, ConsumeNonce):
            if self._nonce_is_async:
                return await cast(AsyncNonceStore, self.nonce_store).consume(effect.key, effect.until)
            return cast(NonceStore, self.nonce_store).consume(effect.key, effect.until)
        if isinstance(effect, ValidateClaims):
            await cast(ClaimsCheck, self._claims_check).afinish(effect.pending)
            return None
        if isinstance(effect, FetchStatusList):
            await cast(StatusLists, self._status_lists).aanswer(effect)
            return None
        if effect.blocking:
            await self.loader.aload(effect.issuer)
        else:
            self.loader.arefresh_in_background(effect.issuer)
        return None

    def _internal(self, trace: Trace, exc: Exception) -> Unavailable:
        """A bug in our code must not become a 500 or an accept: log it and answer 503."""
        token = fingerprint(text) if (text := trace.token_text()) else None
        # Why no exc_info: an exception's message may quote claim values; the frames locate the bug.
        frames = " <- ".join(
            f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(traceback.extract_tb(exc.__traceback__))
        )
        logger.error(
            "internal error while authenticating (token %s): %s at %s", token, type(exc).__name__, frames
        )
        refusal = Unavailable("internal_error", retry_after=1)
        record_decision(trace, refusal)
        return refusal
