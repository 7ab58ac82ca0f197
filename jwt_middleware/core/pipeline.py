"""The decision pipeline as a generator: it yields effects, receives answers, returns an Identity.

Steps, in order (DESIGN.md): policy → extract → verified-token cache → gate and parse →
issuer → header → keys → signature → claims → the app's claims_validator → sender (DPoP proof,
bound-token downgrade) → iat window → revocation → token status list → scopes → one-time jti. The
pipeline owns the order, never the logic of a step. The revocation and status-list checks run on
verified-cache hits too. One-time values are consumed last, so a refusal for revocation, status
or scope never burns a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, cast

from ..config import Config, Issuer, Rule
from ..errors import DPoPRequired, InsufficientScope, InvalidRequest, InvalidToken, MissingToken
from ..identity import Identity, identity_from_claims
from ..keys.cache import KeyCache, PinnedKey
from ..request import RequestView
from .claims import ClaimPolicy, check_claims
from .dpop import DPoPPolicy, ProofKeyCache
from .dpop_nonce import DPoPNonces
from .effects import Effect, FetchKeys, ValidateClaims
from .extract import Extractor, Token, check_credentials_syntax, token_from_authorization
from .gate import ParsedToken, parse_token
from .policy import Matcher
from .replay import check_iat_window, consume_once, token_key
from .revocation import STALE_REASON, RevocationCheck, check_revocation
from .sender import SenderPolicy, check_sender
from .status import UNAVAILABLE_REASON, StatusCheck, StatusDue, finish_status, status_due
from .verified import VerifiedCache
from .verify import check_header, check_signature

__all__ = ["Context", "Flow", "Pending", "Trace", "authenticate", "build_context", "finish", "prepare"]

#: Yields effects, receives their answers, returns the Identity (None: anonymous allowed).
Flow = Generator[Effect, object, Identity | None]
#: the app's claims_validator as the core calls it: None when it accepted, else what is left to
#: await (the driver finishes it); raises the Refusal (jwt_middleware.hooks.ClaimsCheck)
ClaimsCheck = Callable[[Mapping[str, Any]], Awaitable[object] | None]


class Trace:
    """What the flow learned, for the audit event; filled as the steps run.

    Why class attributes and no ``__init__``: one Trace is made per request, and the
    defaults serve every attribute a step did not set.
    """

    token: str | None = None
    #: the Authorization value a cached token was found by (only its token is shown, hashed)
    raw: bytes | None = None
    issuer: str | None = None
    identity: Identity | None = None
    #: the token came with the DPoP scheme (RFC 9449 §7.1): a refusal's error then sits on the
    #: DPoP challenge, whichever step raised it
    dpop: bool = False
    #: an allow that skipped a check under ``store_failure="open"`` (the reason code), for the audit
    degraded: str | None = None

    def token_text(self) -> str | None:
        """The token, to fingerprint; never logged or shown as it is."""
        if self.token is None and self.raw is not None:
            token = token_from_authorization(self.raw)  # accepted before: it was a cache key
            return None if token is None else token.value
        return self.token


@dataclass(frozen=True, slots=True)
class Context:
    """Everything the pipeline reads, built once per Authenticator."""

    matcher: Matcher
    extractor: Extractor
    issuers: dict[str, Issuer]
    policies: dict[str, ClaimPolicy]
    keys: KeyCache
    verified: VerifiedCache
    max_token_bytes: int
    leeway: float
    max_age: float | None
    sender: SenderPolicy | None
    fail_open: bool
    #: how long a one-time token without exp is remembered (seconds)
    max_remember: float
    #: run on the claims of each newly verified token, before it is cached (None: no validator)
    claims_check: ClaimsCheck | None = None
    #: the revocation mirror every request is checked against (None: no revocation store)
    revocation: RevocationCheck | None = None
    #: per issuer with a ``status_list`` policy, its list cache (None: no issuer has one)
    status_lists: Mapping[str, StatusCheck] | None = None
    #: a check runs on every request whatever the rule (revocation or status lists): cache hits
    #: read this one attribute instead of two
    every_request: bool = False


def build_context(
    config: Config,
    keys: KeyCache,
    claims_check: ClaimsCheck | None = None,
    revocation: RevocationCheck | None = None,
    status_lists: Mapping[str, StatusCheck] | None = None,
) -> Context:
    """The pipeline's state for ``config``; ``claims_check`` is the app's claims_validator as the
    Authenticator wraps it (the core never calls an app's hook unwrapped); ``revocation`` the
    revocation store's mirror; ``status_lists`` each status-list issuer's cache (empty: None)."""
    issuers = {i.issuer: i for i in config.issuers}
    policies = {
        name: ClaimPolicy(
            issuer=name,
            audiences=frozenset(config.audiences_for(issuer)),
            leeway=config.leeway,
            require_exp=config.require_exp,
            require_iat=config.require_iat,
            max_age=config.max_age,
            max_lifetime=config.max_lifetime,
            required=tuple(issuer.required_claims),
        )
        for name, issuer in issuers.items()
    }
    return Context(
        matcher=Matcher(tuple(config.rules), config.default_access, preflight=config.preflight,
                        match_full_path=config.match_full_path),
        extractor=Extractor(tuple(config.sources), allow_query=config.allow_query_token),
        issuers=issuers,
        policies=policies,
        keys=keys,
        verified=VerifiedCache(config.verified_cache_size),
        max_token_bytes=config.max_token_bytes,
        leeway=config.leeway,
        max_age=config.max_age,
        sender=_sender_policy(config),
        fail_open=config.store_failure == "open",
        max_remember=config.max_lifetime or 86400.0,
        claims_check=claims_check,
        revocation=revocation,
        status_lists=status_lists or None,
        every_request=revocation is not None or bool(status_lists),
    )


def _sender_policy(config: Config) -> SenderPolicy | None:
    settings = config.dpop
    if settings is None:
        return None
    return SenderPolicy(
        proof=DPoPPolicy(
            algorithms=tuple(settings.algorithms),
            iat_window=settings.iat_window,
            leeway=settings.leeway,
            max_proof_bytes=settings.max_proof_bytes,
        ),
        nonces=DPoPNonces(settings.nonce_secret, step=settings.nonce_step) if settings.nonce_secret else None,
        external_base_url=settings.external_base_url,
        proxies=config.trusted_proxies,
        # lower-case, default ports refused by DPoPSettings: already request_url.host_key forms
        allowed_hosts=frozenset(settings.allowed_hosts) if settings.external_base_url is None else None,
        key_cache=ProofKeyCache(),
    )


class _Checked(NamedTuple):
    """A token that passed the gate and the header policy: what is left is key and signature."""

    parsed: ParsedToken
    issuer: Issuer
    alg: str
    kid: str | None


class Pending(NamedTuple):
    """What :func:`prepare` hands to :func:`finish` when effects may be needed."""

    rule: Rule
    token: Token
    identity: Identity | None  # None: not verified yet
    #: the parse and header checks :func:`prepare` already ran (None: not run yet)
    checked: _Checked | None = None
    #: the claims_validator of a token :func:`prepare` verified, left to finish; the token is
    #: cached (under ``generation``) only once it passed
    validation: ValidateClaims | None = None
    generation: int = 0
    #: the status list :func:`prepare` found absent or due, after the checks before it passed
    status: StatusDue | None = None


def authenticate(request: RequestView, ctx: Context, now: float, trace: Trace) -> Flow:
    """Decide one request.

    :raises MissingToken: a protected route and no token (RFC 6750 §3.1: no error code)
    :raises InvalidRequest: two tokens, a malformed header, a token in the URL
    :raises InvalidToken: any failed token check
    :raises InsufficientScope: a valid token without the rule's scopes (RFC 6750 §3.1)
    :raises Unavailable: keys cannot be had
    """
    step = prepare(request, ctx, now, trace)
    if not isinstance(step, Pending):
        return step
    return (yield from finish(request, step, ctx, now, trace))


def prepare(request: RequestView, ctx: Context, now: float, trace: Trace) -> Identity | Pending | None:
    """The effect-free start of :func:`authenticate`: policy, extraction, verified-token cache,
    and the whole verification when the key cache can answer without a fetch.

    Returns the decision itself when nothing can need an effect (a cached or freshly verified
    bearer token on a route without sender or one-time rules: no generator), else a
    :class:`Pending`.
    """
    rule = ctx.matcher.match(request)
    if rule.access == "public":
        return None
    generation = ctx.keys.generation
    raw = ctx.extractor.lone_bearer(request)
    identity = None
    if raw is not None:
        # The hot path: a repeated bearer token, found by its Authorization bytes.
        identity = ctx.verified.get(raw, now, generation)
        if (identity is not None and identity.binding is None and not rule.one_time
                and rule.dpop != "required"):
            trace.raw = raw
            trace.identity = identity
            if rule.scopes or rule.iat_window is not None or ctx.every_request:
                due = _check_rule(identity, rule, ctx, now, trace)
                if due is not None:  # the list is absent or due: finish() yields the fetch
                    return Pending(rule, _token_of(raw), identity, status=due)
            return identity
    # lone_bearer found the only place a token can be: what extract() would read, minus the scan
    token = token_from_authorization(raw) if raw is not None else ctx.extractor.extract(request)
    if token is None:
        if rule.access == "optional":
            return None
        if rule.dpop == "required":
            raise DPoPRequired("missing_token")
        raise MissingToken("missing_token")
    trace.token = token.value
    if token.scheme == "dpop":
        if ctx.sender is None:
            raise InvalidRequest("dpop_not_enabled", "DPoP-bound tokens are not accepted here")
        trace.dpop = True
    effects_due = rule.one_time or token.scheme == "dpop" or rule.dpop == "required"
    if raw is None:
        identity = ctx.verified.get(token.raw or token.value, now, generation)
    if identity is None:
        if effects_due:
            return Pending(rule, token, None)
        checked = _check_token(token, ctx, trace)
        key = ctx.keys.ready(checked.issuer.issuer, checked.kid, checked.alg, now)
        if key is None:  # a fetch is due (cold, refresh-ahead, kid miss): finish() yields it
            return Pending(rule, token, None, checked)
        identity = _accept(checked, key, ctx, now)
        if ctx.claims_check is not None:
            validation = _start_validation(identity, ctx.claims_check)
            if validation is not None:
                return Pending(rule, token, identity, None, validation, generation)
        _remember(token, identity, generation, ctx)  # read before ready(): see _key
    if effects_due or identity.binding is not None:
        return Pending(rule, token, identity)
    trace.identity = identity
    if rule.scopes or rule.iat_window is not None or ctx.every_request:
        due = _check_rule(identity, rule, ctx, now, trace)
        if due is not None:
            return Pending(rule, token, identity, status=due)
    return identity


def finish(request: RequestView, pending: Pending, ctx: Context, now: float, trace: Trace) -> Flow:
    """The rest of :func:`authenticate`: verify, sender constraint, rule checks, one-time use."""
    rule, token, identity, checked, validation, generation, due = pending
    fresh = validation is not None
    if identity is None:
        if checked is None:
            checked = _check_token(token, ctx, trace)
        key, generation = yield from _key(ctx.keys, checked.issuer.issuer, checked.kid, checked.alg, now)
        identity = _accept(checked, key, ctx, now)
        if ctx.claims_check is not None:
            validation = _start_validation(identity, ctx.claims_check)
        fresh = True
    if validation is not None:
        yield validation  # the driver finishes the validator, or raises its refusal
    if fresh:
        _remember(token, identity, generation, ctx)
    trace.identity = identity
    if _needs_sender_check(token, identity, rule):
        yield from check_sender(request, token, identity, rule, ctx.sender, now, fail_open=ctx.fail_open)
    if due is None:  # else prepare() ran the checks up to the status list
        due = _check_rule(identity, rule, ctx, now, trace)
    if due is not None:
        yield due.effect
        if finish_status(due, now, ctx.fail_open):
            trace.degraded = UNAVAILABLE_REASON
        _check_scopes(identity, rule)
    if rule.one_time:
        # Why exp + leeway: a shorter memory than the token's life would be a replay gap.
        until = (
            identity.expires_at + ctx.leeway if identity.expires_at is not None else now + ctx.max_remember
        )
        yield from consume_once(token_key(identity), until, fail_open=ctx.fail_open)
    return identity


def _needs_sender_check(token: Token, identity: Identity, rule: Rule) -> bool:
    return token.scheme == "dpop" or identity.binding is not None or rule.dpop == "required"


def _check_rule(identity: Identity, rule: Rule, ctx: Context, now: float, trace: Trace) -> StatusDue | None:
    """The checks every request of a verified token runs, cache hits included: iat window,
    revocation, token status, scopes (in DESIGN.md's order; one-time use comes after, in
    :func:`finish`). Returns the status-list fetch that must come first (scopes not checked
    yet: :func:`finish` yields it, judges the status, then checks them)."""
    if rule.iat_window is not None:
        check_iat_window(identity, now, rule.iat_window)
    revocation = ctx.revocation
    # Why the mirror is asked here and check_revocation only when it refuses or is stale: this
    # runs on every verified-cache hit, and the call it saves is a measurable share of the
    # step's cost (see benchmarks/README.md, "revocation").
    if revocation is not None and (
        revocation.check(identity.issuer, identity.token_id, identity.subject, identity.session_id,
                         identity.client_id, identity.issued_at, now) is not None
        or now > revocation.trusted_until
    ) and check_revocation(identity, revocation, now, ctx.fail_open):
        trace.degraded = STALE_REASON
    lists = ctx.status_lists
    if lists is not None:
        check = lists.get(identity.issuer)
        if check is not None:
            due = status_due(identity, check, now, ctx.fail_open)
            if isinstance(due, StatusDue):
                return due
            if due:
                trace.degraded = UNAVAILABLE_REASON
    _check_scopes(identity, rule)
    return None


def _check_scopes(identity: Identity, rule: Rule) -> None:
    if rule.scopes and not identity.scopes.issuperset(rule.scopes):
        raise InsufficientScope("insufficient_scope", params={"scope": " ".join(rule.scopes)})


def _check_token(token: Token, ctx: Context, trace: Trace) -> _Checked:
    """Gate and parse, choose the issuer from configuration, apply its header policy."""
    try:
        parsed = parse_token(token.value, ctx.max_token_bytes)
    except InvalidToken:
        check_credentials_syntax(token)  # junk in the header is the request's fault: 400, not 401
        raise
    iss = parsed.claims.get("iss")
    issuer = ctx.issuers.get(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise InvalidToken("unknown_issuer", "The access token's issuer is not trusted")
    trace.issuer = issuer.issuer
    alg, kid = check_header(parsed.header, parsed.claims, issuer)
    return _TUPLE_NEW(_Checked, (parsed, issuer, alg, kid))


def _accept(checked: _Checked, key: PinnedKey, ctx: Context, now: float) -> Identity:
    """Signature, then claims; the Identity of a token that passed both."""
    parsed = checked.parsed
    check_signature(parsed, key)
    name = checked.issuer.issuer
    check_claims(parsed.claims, ctx.policies[name], now)
    return identity_from_claims(parsed.claims, name)


def _start_validation(identity: Identity, check: ClaimsCheck) -> ValidateClaims | None:
    """Run the app's claims_validator on a newly verified token's (read-only) claims: None when
    it accepted inline, else the effect that finishes it.

    Why after the standard checks and before the cache: the app judges only claims that passed
    ours, and a token it refuses is never filed as verified (refused again next time, the
    validator asked again), while an accepted one is not asked again until it leaves the cache.

    :raises Refusal: the validator's own (``ClaimsRejected``: 401, ``InsufficientScope``: 403),
        or ``Unavailable`` (503) when it failed
    """
    pending = check(identity.claims)
    return None if pending is None else ValidateClaims(pending)


def _remember(token: Token, identity: Identity, generation: int, ctx: Context) -> None:
    """File a verified token in the cache until the claim checks would refuse it again (exp,
    max age) or its key set lapses, whichever comes first."""
    until = ctx.keys.verified_until(identity.issuer)
    expires_at = identity.expires_at
    if expires_at is not None and expires_at + ctx.leeway < until:
        until = expires_at + ctx.leeway
    if ctx.max_age is not None and identity.issued_at is not None:
        until = min(until, identity.issued_at + ctx.max_age + ctx.leeway)
    ctx.verified.put(token.raw or token.value, identity, until, generation)


_TUPLE_NEW: Final = tuple.__new__


def _token_of(raw: bytes) -> Token:
    """The Token of an Authorization value the verified cache found: it was filed from one."""
    return cast(Token, token_from_authorization(raw))


def _key(
    keys: KeyCache, issuer: str, kid: str | None, alg: str, now: float
) -> Generator[Effect, object, tuple[PinnedKey, int]]:
    """The key for the token, and the key-set generation read just before it was looked up.

    Why before: a refresh that lands between the lookup and the cache write (another thread,
    or the background refresh this flow asked for while it was suspended) retires the key, and
    an entry filed under the later generation would keep accepting the token as current. Filed
    under the earlier one, it is stale as soon as the set changes (``KeyCache.store`` installs
    the keys before it bumps the generation). After a blocking fetch the generation is read
    again, so a token verified with the freshly fetched set is still reused.
    """
    generation = keys.generation
    key, need = keys.select(issuer, kid, alg, now)
    if need is not None:
        yield FetchKeys(issuer, blocking=need.blocking)
    if key is None:
        generation = keys.generation
        key = keys.select_after_fetch(issuer, kid, alg, now)
    return key, generation
