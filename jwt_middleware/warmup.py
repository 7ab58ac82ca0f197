"""Load every issuer's keys at start-up, and say plainly which could not be had.

Without a warm-up the first request for each issuer waits for its key fetch, and a
misconfigured issuer (a typo in the URL, an unreachable IdP, a CA the process does not trust)
shows up only as 503s once traffic arrives. ``warm`` (WSGI, CLI) and ``awarm`` (ASGI) fetch
the keys of every issuer that fetches them (JWKS URL, OIDC discovery, JWKS file; keys given in
code need none), each bounded by ``KeyPolicy.fetch_timeout``, and return one
:class:`IssuerWarmup` per issuer. With ``strict=True`` a failure raises :class:`WarmupError`,
so a deployment that cannot verify tokens refuses to start instead of answering 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .errors import ConfigError, JWTMiddlewareError
from .keys.loader import KeyLoader, LoadFailure

if TYPE_CHECKING:
    from .authenticator import Authenticator

__all__ = ["IssuerWarmup", "WarmupError", "awarm", "warm"]

logger: Final = logging.getLogger("jwt_middleware.keys")


@dataclass(frozen=True, slots=True)
class IssuerWarmup:
    """What warming one issuer's keys came to; text that names no key material.

    :param issuer: the configured issuer
    :param source: where its keys were asked for: the URL (discovery or JWKS) or file that
        failed, else the JWKS URL or file path they came from
    :param keys: how many keys the issuer's cached set now holds
    :param error: None when the keys were loaded, else the cause
        (``ConnectError: [Errno -2] Name or service not known``, ``HTTP 404 Not Found``)
    """

    issuer: str
    source: str
    keys: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.error is None:
            return f"issuer {self.issuer!r}: {self.source} (keys: {self.keys})"
        return f"issuer {self.issuer!r}: {self.source}: {self.error}"


class WarmupError(JWTMiddlewareError):
    """The keys of some issuers could not be loaded at start-up (``strict=True``).

    :param results: every warmed issuer's outcome; :attr:`failures` holds the failed ones
    """

    def __init__(self, results: Sequence[IssuerWarmup]) -> None:
        self.results = tuple(results)
        self.failures = tuple(r for r in self.results if not r.ok)
        listed = "; ".join(str(f) for f in self.failures)
        super().__init__(
            f"jwt_middleware key warm-up failed for {len(self.failures)} of {len(self.results)} "
            f"issuers: {listed}"
        )


def warm(
    authenticator: Authenticator, *, strict: bool = True, timeout: float | None = None
) -> tuple[IssuerWarmup, ...]:
    """Fetch every remote issuer's keys now, concurrently (one thread each); for WSGI and CLI.

    :param strict: raise :class:`WarmupError` when any issuer failed; False logs a warning
        and returns (requests for a failed issuer get 503 until a later fetch succeeds)
    :param timeout: seconds for the whole warm-up; an issuer not done by then counts as
        failed. None: each issuer is bounded by its fetches' ``KeyPolicy.fetch_timeout`` alone
    :raises WarmupError: ``strict`` and at least one issuer's keys could not be loaded
    :raises ConfigError: a ``timeout`` that is not a positive number
    """
    deadline = _deadline(timeout)
    loader = authenticator.loader
    names = loader.remote_issuers()
    outcomes: dict[str, LoadFailure | None] = {}

    def work(name: str) -> None:
        outcomes[name] = _load_guarded(loader, name)

    threads = [threading.Thread(target=work, args=(n,), name="jwt-keys-warmup", daemon=True) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return _conclude(loader, names, dict(outcomes), timeout, strict)


async def awarm(
    authenticator: Authenticator, *, strict: bool = True, timeout: float | None = None
) -> tuple[IssuerWarmup, ...]:
    """The async twin of :func:`warm` (ASGI): every issuer fetched concurrently on this loop.

    An issuer still fetching when ``timeout`` ends is cancelled and counts as failed.

    :raises WarmupError: ``strict`` and at least one issuer's keys could not be loaded
    :raises ConfigError: a ``timeout`` that is not a positive number
    """
    _deadline(timeout)
    loader = authenticator.loader
    names = loader.remote_issuers()
    tasks = {name: asyncio.create_task(_aload_guarded(loader, name)) for name in names}
    try:
        if tasks:
            await asyncio.wait(tasks.values(), timeout=timeout)
    finally:
        for task in tasks.values():
            task.cancel()  # a no-op for those done; also when this warm-up itself is cancelled
    outcomes = {name: task.result() for name, task in tasks.items() if task.done() and not task.cancelled()}
    return _conclude(loader, names, outcomes, timeout, strict)


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError(
            f"warm: timeout={timeout!r}; give seconds > 0, or None to bound each issuer by "
            "KeyPolicy.fetch_timeout alone"
        )
    return time.monotonic() + timeout


def _load_guarded(loader: KeyLoader, name: str) -> LoadFailure | None:
    try:
        return loader.load(name)
    except Exception as exc:  # a bug: the warm-up reports it instead of dying in a thread
        return _internal(loader, name, exc)


async def _aload_guarded(loader: KeyLoader, name: str) -> LoadFailure | None:
    try:
        return await loader.aload(name)
    except Exception as exc:
        return _internal(loader, name, exc)


def _internal(loader: KeyLoader, name: str, exc: Exception) -> LoadFailure:
    """Why no message: an exception's text may quote a document; its type locates the bug."""
    logger.error("key warm-up for issuer %r: internal error %s", name, type(exc).__name__)
    return LoadFailure(name, loader.source_of(name), f"internal error ({type(exc).__name__})")


def _conclude(
    loader: KeyLoader,
    names: Sequence[str],
    outcomes: Mapping[str, LoadFailure | None],
    timeout: float | None,
    strict: bool,
) -> tuple[IssuerWarmup, ...]:
    results = tuple(_result(loader, name, outcomes, timeout) for name in names)
    failed = [r for r in results if not r.ok]
    if failed and strict:
        raise WarmupError(results)
    if failed:
        logger.warning(
            "key warm-up: starting without fresh keys for %d of %d issuers (%s); requests fetch "
            "again (503 while an issuer has no keys)",
            len(failed),
            len(results),
            ", ".join(repr(r.issuer) for r in failed),
        )
    elif results:
        logger.info("key warm-up: keys of %d issuers loaded", len(results))
    return results


def _result(
    loader: KeyLoader, name: str, outcomes: Mapping[str, LoadFailure | None], timeout: float | None
) -> IssuerWarmup:
    keys = loader.cache.key_count(name)
    if name not in outcomes:
        within = "" if timeout is None else f" within the warm-up timeout ({timeout:g} s)"
        return IssuerWarmup(name, loader.source_of(name), keys, f"not loaded{within}")
    failure = outcomes[name]
    if failure is None:
        return IssuerWarmup(name, loader.source_of(name), keys)
    return IssuerWarmup(name, failure.url, keys, failure.cause)
