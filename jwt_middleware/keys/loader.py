"""KeyLoader: the driver side of the key cache: fetch, single-flight, background refresh.

Locks live here, not in the core: a ``threading.Lock`` per issuer for WSGI and an
``asyncio.Lock`` per issuer and event loop for ASGI. N concurrent misses cause one fetch:
each caller notes the cache's attempt counter before taking the lock and skips the fetch
when another caller finished one meanwhile.

A failed fetch logs one WARNING on ``jwt_middleware.keys`` naming the issuer, the URL and the
cause (also as ``extra`` fields ``issuer``, ``url``, ``cause``). Fetches, and so these lines,
come at most once per ``KeyPolicy.failure_backoff`` while an issuer is down (the cache's
backoff), never once per request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from .._types import Clock
from ..config import Issuer, KeyPolicy
from ..errors import ConfigError
from .cache import KeyCache
from .fetch import (
    Fetched,
    FetchError,
    afetch_document,
    describe_exception,
    fetch_document,
    loggable_url,
    parse_discovery,
)
from .pinning import PinnedKey, SkippedKey, read_keys
from .sources import JWKSFile, JWKSUrl, OIDCDiscovery, SharedSecret, StaticKeys

__all__ = ["KeyLoader", "LoadFailure"]

logger = logging.getLogger("jwt_middleware.keys")


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """Why an issuer's last fetch failed; safe to log and show (no body, no key material).

    :param url: the URL (or file path) that failed: the discovery document or the JWKS
    :param cause: e.g. ``ConnectError: [Errno -2] Name or service not known``, ``HTTP 503``
    """

    issuer: str
    url: str
    cause: str

    def __str__(self) -> str:
        return f"issuer {self.issuer!r}: {self.url}: {self.cause}"


def static_jwks(source: StaticKeys | SharedSecret) -> dict[str, Any]:
    """A JWKS for keys given in code (PEM, JWK, JWKS, JSON text, or an HMAC secret)."""
    if isinstance(source, SharedSecret):
        k = base64.urlsafe_b64encode(source.as_bytes()).rstrip(b"=").decode()
        jwk: dict[str, Any] = {"kty": "oct", "k": k}
        if source.kid is not None:
            jwk["kid"] = source.kid
        return {"keys": [jwk]}
    value: Any = source.keys
    if isinstance(value, bytes | str):
        text = value.decode() if isinstance(value, bytes) else value
        if text.lstrip().startswith("-----BEGIN"):
            value = _pem_to_jwk(text)
        else:
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError("StaticKeys: give a JWKS/JWK mapping, its JSON text, or a PEM") from exc
    if isinstance(value, Mapping) and "keys" in value:
        return dict(value)
    if isinstance(value, Mapping) and "kty" in value:
        return {"keys": [dict(value)]}
    raise ConfigError("StaticKeys: give a JWKS/JWK mapping, its JSON text, or a PEM")


def import_pem(text: str) -> Key:
    """A PEM key (public or private). joserfc reads a PEM only when told its key type, so the
    asymmetric types are tried in turn (never "oct").

    :raises ValueError: not an EC, RSA or OKP key in PEM
    """
    for kty in ("EC", "RSA", "OKP"):
        try:
            return JWKRegistry.import_key(text, kty)
        except (JoseError, ValueError, TypeError):
            continue
    raise ValueError("not an EC, RSA or OKP PEM key")


def _pem_to_jwk(text: str) -> dict[str, Any]:
    try:
        return dict(import_pem(text).as_dict(private=False))
    except ValueError:
        raise ConfigError("StaticKeys: the PEM could not be read as a public key") from None


class KeyLoader:
    """Fills a :class:`KeyCache` from each issuer's source."""

    def __init__(self, cache: KeyCache, issuers: Mapping[str, Issuer], policy: KeyPolicy, clock: Clock):
        self.cache = cache
        self._issuers = dict(issuers)
        self._policy = policy
        self._clock = clock
        self._thread_locks = {name: threading.Lock() for name in issuers}
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
        self._loop_locks = weakref.WeakKeyDictionary()
        self._jwks_urls: dict[str, str] = {}
        self._tasks: set[asyncio.Task[LoadFailure | None]] = set()
        #: what the last warning about an issuer's unusable keys said, to say it once per change
        self._skipped: dict[str, tuple[SkippedKey, ...]] = {}
        #: why each failing issuer's last fetch failed; dropped when a fetch succeeds
        self._failures: dict[str, LoadFailure] = {}
        for name, issuer in issuers.items():
            if isinstance(issuer.keys, StaticKeys | SharedSecret):
                self._install_static(name, issuer, issuer.keys)
            elif isinstance(issuer.keys, JWKSFile):
                self._install_file_at_start(name, issuer, issuer.keys)

    def _install_static(self, name: str, issuer: Issuer, source: StaticKeys | SharedSecret) -> None:
        keys = self._checked(issuer, static_jwks(source), type(source).__name__, copied=False)
        self.cache.store(name, keys, None, self._clock())

    def _install_file_at_start(self, name: str, issuer: Issuer, source: JWKSFile) -> None:
        """Read a JWKS file once at construction: it is configuration, so its mistakes are ConfigErrors."""
        try:
            fetched = _read_file(source.path, self._policy.max_jwks_bytes)
        except FetchError as exc:
            raise ConfigError(
                f"Issuer {issuer.issuer!r}: JWKSFile {source.path!r}: {exc.cause}; give the path of a JWKS "
                "document (a JSON object with a 'keys' list)"
            ) from None
        keys = self._checked(issuer, fetched.document, f"JWKSFile {source.path!r}", copied=True)
        self.cache.store(name, keys, fetched.max_age, self._clock())

    def _checked(
        self, issuer: Issuer, jwks: Mapping[str, Any], option: str, *, copied: bool
    ) -> list[PinnedKey]:
        """Keys given in configuration: every one must be able to verify (STYLE §6.14).

        Why ``copied``: a JWKS file is often a copy of the set an IdP publishes, which holds
        encryption keys and keys for other algorithms beside this issuer's; those are skipped
        with a warning naming them. A weak or broken key is refused from a file too.

        :raises ConfigError: naming each key that never could, and why
        """
        pinned, skipped = read_keys(jwks, tuple(issuer.algorithms), self._policy.max_keys)
        if copied:
            self._warn_skipped(issuer.issuer, tuple(s for s in skipped if s.other_purpose))
            skipped = [s for s in skipped if not s.other_purpose]
        if skipped:
            listed = "; ".join(str(s) for s in skipped)
            raise ConfigError(
                f"Issuer {issuer.issuer!r}: {option}: {listed}. Such a key can never verify a token; "
                "remove it, or fix Issuer.algorithms or the key"
            )
        if not pinned:
            raise ConfigError(
                f"Issuer {issuer.issuer!r}: none of the given keys can verify {list(issuer.algorithms)}; "
                "check the key type, curve, size (RSA >= 2048 bits) and 'use'"
            )
        return pinned

    # --- sync ------------------------------------------------------------------------------
    def load(self, issuer: str) -> LoadFailure | None:
        """Fetch the issuer's keys now unless a concurrent caller just did (single-flight).

        :returns: why the keys could not be had, or None when the fetch (this one, or the one a
            concurrent caller finished meanwhile) installed them
        """
        seen = self.cache.attempts(issuer)
        with self._thread_locks[issuer]:
            if self.cache.attempts(issuer) != seen:
                return self._failures.get(issuer)
            try:
                fetched = self._fetch_sync(issuer)
            except FetchError as exc:
                self._failed(issuer, exc)
            else:
                self._install(issuer, fetched)
            return self._failures.get(issuer)

    def refresh_in_background(self, issuer: str) -> None:
        threading.Thread(target=self.load, args=(issuer,), name="jwt-keys-refresh", daemon=True).start()

    def _fetch_sync(self, issuer: str) -> Fetched:
        source = self._issuers[issuer].keys
        if isinstance(source, JWKSFile):
            return _read_file(source.path, self._policy.max_jwks_bytes)
        url = self._jwks_urls.get(issuer)
        if url is None:
            url = self._jwks_url_sync(issuer, source)
        try:
            return fetch_document(url, self._policy)
        except FetchError:
            self._jwks_urls.pop(issuer, None)  # rediscover next time
            raise

    def _jwks_url_sync(self, issuer: str, source: object) -> str:
        if isinstance(source, JWKSUrl):
            return source.url
        assert isinstance(source, OIDCDiscovery)
        url = parse_discovery(fetch_document(_discovery_url(issuer, source), self._policy), issuer)
        self._jwks_urls[issuer] = url
        return url

    # --- async -----------------------------------------------------------------------------
    async def aload(self, issuer: str) -> LoadFailure | None:
        """The async twin of :meth:`load`."""
        seen = self.cache.attempts(issuer)
        async with self._async_lock(issuer):
            if self.cache.attempts(issuer) != seen:
                return self._failures.get(issuer)
            try:
                fetched = await self._fetch_async(issuer)
            except FetchError as exc:
                self._failed(issuer, exc)
            else:
                self._install(issuer, fetched)
            return self._failures.get(issuer)

    def arefresh_in_background(self, issuer: str) -> None:
        task = asyncio.get_running_loop().create_task(self.aload(issuer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _async_lock(self, issuer: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        locks = self._loop_locks.get(loop)
        if locks is None:
            locks = self._loop_locks[loop] = {name: asyncio.Lock() for name in self._issuers}
        return locks[issuer]

    async def _fetch_async(self, issuer: str) -> Fetched:
        source = self._issuers[issuer].keys
        if isinstance(source, JWKSFile):
            return await asyncio.to_thread(_read_file, source.path, self._policy.max_jwks_bytes)
        url = self._jwks_urls.get(issuer)
        if url is None:
            if isinstance(source, JWKSUrl):
                url = source.url
            else:
                assert isinstance(source, OIDCDiscovery)
                discovery = await afetch_document(_discovery_url(issuer, source), self._policy)
                url = self._jwks_urls[issuer] = parse_discovery(discovery, issuer)
        try:
            return await afetch_document(url, self._policy)
        except FetchError:
            self._jwks_urls.pop(issuer, None)
            raise

    # --- shared ----------------------------------------------------------------------------
    def remote_issuers(self) -> tuple[str, ...]:
        """The issuers whose keys are fetched (URL, discovery, file): the ones a warm-up loads."""
        return tuple(name for name, issuer in self._issuers.items() if issuer.remote)

    def source_of(self, issuer: str) -> str:
        """Where the issuer's keys come from: the JWKS URL once known, else the configured
        JWKS URL, discovery URL or file path."""
        source = self._issuers[issuer].keys
        if isinstance(source, JWKSFile):
            return source.path
        if isinstance(source, JWKSUrl):
            return loggable_url(source.url)
        known = self._jwks_urls.get(issuer)
        if known is not None:
            return loggable_url(known)
        assert isinstance(source, OIDCDiscovery)
        return loggable_url(_discovery_url(issuer, source))

    def _install(self, issuer: str, fetched: Fetched) -> None:
        config = self._issuers[issuer]
        pinned, skipped = read_keys(fetched.document, tuple(config.algorithms), self._policy.max_keys)
        self._warn_skipped(issuer, tuple(skipped))
        if not pinned:
            cause = f"none of the {len(skipped)} keys in the set can verify {list(config.algorithms)}"
            self._failed(issuer, FetchError(cause, fetched.url))
            return
        self.cache.store(issuer, pinned, fetched.max_age, self._clock())
        self._failures.pop(issuer, None)
        url = fetched.url or self.source_of(issuer)
        logger.info(
            "jwks loaded for issuer %r from %s (keys: %d)",
            issuer,
            url,
            len(pinned),
            extra={"issuer": issuer, "url": url, "keys": len(pinned)},
        )

    def _warn_skipped(self, issuer: str, skipped: tuple[SkippedKey, ...]) -> None:
        """One bad published key must not take the issuer down: skip it, and say so once per change."""
        if skipped == self._skipped.get(issuer, ()):
            return
        self._skipped[issuer] = skipped
        for key in skipped:
            logger.warning("jwks key skipped for issuer %r: %s", issuer, key, extra={"issuer": issuer})

    def _failed(self, issuer: str, exc: FetchError) -> None:
        """Keep the last good set and back off (the cache), and say once what failed and where."""
        failure = LoadFailure(issuer, exc.url or self.source_of(issuer), exc.cause)
        self._failures[issuer] = failure
        self.cache.record_failure(issuer, self._clock())
        logger.warning(
            "jwks fetch failed for issuer %r from %s: %s",
            issuer,
            failure.url,
            failure.cause,
            extra={"issuer": issuer, "url": failure.url, "cause": failure.cause},
        )


def _discovery_url(issuer: str, source: OIDCDiscovery) -> str:
    return source.url or issuer.rstrip("/") + "/.well-known/openid-configuration"


def _read_file(path: str, max_bytes: int) -> Fetched:
    try:
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"JWKS file unreadable ({describe_exception(exc)})", path) from exc
    if len(body) > max_bytes:
        raise FetchError(f"JWKS file over the size cap (KeyPolicy.max_jwks_bytes={max_bytes})", path)
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise FetchError(f"JWKS file is not JSON ({describe_exception(exc)})", path) from exc
    if not isinstance(document, dict):
        raise FetchError("JWKS file is not a JSON object", path)
    return Fetched(document, None, path)
