"""Token Status Lists for the Authenticator: per issuer, the cache the core reads, the loader the
drivers answer ``FetchStatusList`` with, and the list verifier built from the issuer's own keys.

Why the issuer's own keys, through our KeyCache: a Status List Token is signed by the issuer of
the tokens it judges (draft-ietf-oauth-status-list §5.1, §8.3 step 4), so the keys, the pinned
algorithms and the kid rules are that issuer's, as for its access tokens; but not the access
tokens' header policy (``core.verify.check_header``), whose ``typ`` rules refuse
``statuslist+jwt`` on purpose (RFC 8725 §3.11). The list's own ``typ``, ``sub``, ``iss`` and
times are checked by ``revocation.status_list.check_status_list_token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._types import Clock
from .config import Config, Issuer
from .core.effects import FetchStatusList
from .core.gate import parse_token
from .core.status import StatusCheck
from .core.verify import check_signature
from .errors import InvalidToken, Unavailable
from .keys.cache import KeyCache, PinnedKey
from .keys.loader import KeyLoader
from .revocation.status_list import StatusListRules, VerifyListToken
from .revocation.status_list_cache import StatusListCache
from .revocation.status_list_loader import StatusListLoader

__all__ = ["StatusLists", "list_verifier"]

#: header members that carry or name a key (RFC 7515 §4.1.2-4.1.6): never read
_KEY_HEADERS: Final = frozenset({"jku", "jwk", "x5u", "x5c"})
_MAX_KID: Final = 256


class StatusLists:
    """Every status-list issuer's cache (for the core) and loaders (for the drivers).

    Why a loader per driver over one cache: the loader runs ``verify`` inline, in a thread
    under the sync driver (where a key fetch for a kid the cache lacks may block too) and on
    the event loop under the async one (where it must not). One Authenticator serves one
    driver in practice; one serving both still answers right (both fill the same cache), at
    worst with two fetches of one list overlapping once.

    :param keys: the Authenticator's key cache; the lists are verified with its keys
    :param key_loader: fetches an issuer's keys when a list names a kid the cache lacks
    """

    def __init__(self, config: Config, keys: KeyCache, key_loader: KeyLoader) -> None:
        self.checks: dict[str, StatusCheck] = {}
        self.loaders: dict[str, StatusListLoader] = {}
        self.aloaders: dict[str, StatusListLoader] = {}
        clock = config.clock
        for issuer in config.issuers:
            policy = issuer.status_list
            if policy is None:
                continue
            name = issuer.issuer
            rules = StatusListRules.for_issuer(name, policy)
            cache = StatusListCache(rules)  # Why one per issuer: see StatusListCache
            self.checks[name] = StatusCheck(rules, cache)
            for loaders, blocking in ((self.loaders, True), (self.aloaders, False)):
                verify = list_verifier(
                    issuer, keys, key_loader, clock, max_bytes=policy.max_token_bytes, blocking=blocking
                )
                loaders[name] = StatusListLoader(cache, verify, clock)

    def answer(self, effect: FetchStatusList) -> None:
        """Answer the effect synchronously (WSGI, CLI): a blocking fetch waits here, once per list
        for all concurrent requests (the loader's single-flight)."""
        loader = self.loaders[effect.issuer]
        if effect.blocking:
            loader.load(effect.uri)
        else:
            loader.refresh_in_background(effect.uri)

    async def aanswer(self, effect: FetchStatusList) -> None:
        """The async twin of :meth:`answer` (ASGI)."""
        loader = self.aloaders[effect.issuer]
        if effect.blocking:
            await loader.aload(effect.uri)
        else:
            loader.arefresh_in_background(effect.uri)


def list_verifier(
    issuer: Issuer, keys: KeyCache, key_loader: KeyLoader, clock: Clock, *, max_bytes: int, blocking: bool
) -> VerifyListToken:
    """``verify(compact) -> (header, claims)`` for ``issuer``'s Status List Tokens.

    Strict decoding within ``max_bytes`` (the policy's ``max_token_bytes``; ``core.gate``), an
    algorithm on the issuer's allowlist, no ``crit``/``b64``, no key-carrying header unless the
    issuer allows them (never read: RFC 8725 §3.10), then the signature with the issuer's key
    for that kid and alg.

    :param blocking: True (sync driver): a key the cache lacks is fetched here, waiting; False
        (event loop): its fetch starts in the background and the list counts as unavailable
        until the loader's next attempt, one ``failure_backoff`` later

    :raises InvalidToken: malformed, refused header, unknown kid, bad signature (the list is
        then refused: ``status_list_invalid``)
    :raises Unavailable: the issuer's keys cannot be had now (the list counts as unavailable
        and is tried again after the backoff)
    """
    name = issuer.issuer
    algorithms = frozenset(issuer.algorithms)
    allow_key_headers = issuer.allow_key_headers

    def verify(compact: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        parsed = parse_token(compact, max_bytes)
        alg, kid = _list_header(parsed.header, algorithms, allow_key_headers)
        check_signature(parsed, _key_for(keys, key_loader, name, kid, alg, clock, blocking))
        return parsed.header, parsed.claims

    return verify


def _list_header(
    header: Mapping[str, Any], algorithms: frozenset[str], allow_key_headers: bool
) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken("alg_not_allowed", "The status list's algorithm is not accepted")
    if "crit" in header or "b64" in header:
        raise InvalidToken("unsupported_crit", "The status list uses an unsupported JWS extension")
    if not (allow_key_headers or _KEY_HEADERS.isdisjoint(header)):
        raise InvalidToken("key_header_refused", "The status list carries or names a key of its own")
    kid = header.get("kid")
    if kid is not None or "kid" in header:
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID or not kid.isprintable():
            raise InvalidToken("invalid_kid", "The status list's key id is invalid")
    return alg, kid


def _key_for(
    keys: KeyCache,
    key_loader: KeyLoader,
    issuer: str,
    kid: str | None,
    alg: str,
    clock: Clock,
    blocking: bool,
) -> PinnedKey:
    """The issuer's key for the list; the issuer's set is fetched when the key cache asks for it
    (cold, expired, a kid it lacks: once per cooldown, as for access tokens)."""
    now = clock()
    key = keys.ready(issuer, kid, alg, now)
    if key is not None:
        return key
    key, need = keys.select(issuer, kid, alg, now)
    if need is None and key is not None:
        return key
    if key is not None:  # usable now; the set is refreshed without waiting
        (key_loader.refresh_in_background if blocking else key_loader.arefresh_in_background)(issuer)
        return key
    if not blocking:
        key_loader.arefresh_in_background(issuer)  # verify runs on the loop: never wait here
        raise Unavailable("keys_unavailable", retry_after=1)
    key_loader.load(issuer)
    return keys.select_after_fetch(issuer, kid, alg, clock())
