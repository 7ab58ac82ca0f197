"""The decision pipeline as a generator: it yields effects, receives answers, returns an Identity.

Steps, in order (DESIGN.md): policy → extract → verified-token cache → gate and parse →
issuer → header → keys → signature → claims → sender (DPoP proof, bound-token downgrade) →
iat window → scopes → one-time jti. The pipeline owns the order, never the logic of a step.
One-time values are consumed last, so a refusal for scope never burns a token.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import NamedTuple

from ..config import Config, Issuer, Rule
from ..errors import DPoPRequired, InsufficientScope, InvalidRequest, InvalidToken, MissingToken
from ..identity import Identity, identity_from_claims
from ..keys.cache import KeyCache, PinnedKey
from ..request import RequestView
from .claims import ClaimPolicy, check_claims
from .dpop import DPoPPolicy, ProofKeyCache
from .dpop_nonce import DPoPNonces
from .effects import Effect, FetchKeys
from .extract import Extractor, Token, check_credentials_syntax
from .gate import parse_token
from .policy import Matcher
from .replay import check_iat_window, consume_once, token_key
from .sender import SenderPolicy, check_sender
from .verified import VerifiedCache
from .verify import check_header, check_signature

__all__ = ["Context", "Flow", "Pending", "Trace", "authenticate", "build_context", "finish", "prepare"]

#: Yields effects, receives their answers, returns the Identity (None: anonymous allowed).
Flow = Generator[Effect, object, Identity | None]


class Trace:
    """What the flow learned, for the audit event; filled as the steps run."""

    __slots__ = ("identity", "issuer", "token")

    def __init__(self) -> None:
        self.token: str | None = None
        self.issuer: str | None = None
        self.identity: Identity | None = None


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


def build_context(config: Config, keys: KeyCache) -> Context:
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
            required=issuer.required_claims,
        )
        for name, issuer in issuers.items()
    }
    return Context(
        matcher=Matcher(config.rules, config.default_access),
        extractor=Extractor(config.sources, allow_query=config.allow_query_token),
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
    )


def _sender_policy(config: Config) -> SenderPolicy | None:
    settings = config.dpop
    if settings is None:
        return None
    return SenderPolicy(
        proof=DPoPPolicy(
            algorithms=settings.algorithms,
            iat_window=settings.iat_window,
            leeway=settings.leeway,
            max_proof_bytes=settings.max_proof_bytes,
        ),
        nonces=DPoPNonces(settings.nonce_secret, step=settings.nonce_step) if settings.nonce_secret else None,
        external_base_url=settings.external_base_url,
        trust_forwarded=settings.trust_forwarded,
        key_cache=ProofKeyCache(),
    )


class Pending(NamedTuple):
    """What :func:`prepare` hands to :func:`finish` when effects may be needed."""

    rule: Rule
    token: Token
    identity: Identity | None  # None: not in the verified-token cache


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
    """The effect-free start of :func:`authenticate`: policy, extraction, verified-token cache.

    Returns the decision itself when nothing can need an effect (a cached token on a route
    without sender or one-time rules: the hot path, no generator), else a :class:`Pending`.
    """
    rule = ctx.matcher.match(request)
    if rule.access == "public":
        return None
    token = ctx.extractor.extract(request)
    if token is None:
        if rule.access == "optional":
            return None
        if rule.dpop == "required":
            raise DPoPRequired("missing_token")
        raise MissingToken("missing_token")
    trace.token = token.value
    if token.scheme == "dpop" and ctx.sender is None:
        raise InvalidRequest("dpop_not_enabled", "DPoP-bound tokens are not accepted here")
    identity = ctx.verified.get(token.value, now, ctx.keys.generation)
    # Inlined _needs_sender_check: this line runs for every request.
    if (identity is None or rule.one_time or token.scheme == "dpop" or identity.binding is not None
            or rule.dpop == "required"):
        return Pending(rule, token, identity)
    trace.identity = identity
    if rule.scopes or rule.iat_window is not None:
        _check_rule(identity, rule, now)
    return identity


def finish(request: RequestView, pending: Pending, ctx: Context, now: float, trace: Trace) -> Flow:
    """The rest of :func:`authenticate`: verify, sender constraint, rule checks, one-time use."""
    rule, token, identity = pending
    if identity is None:
        identity, generation = yield from _verify(token, ctx, now, trace)
        until = min(_valid_until(identity, ctx), ctx.keys.verified_until(identity.issuer))
        ctx.verified.put(token.value, identity, until, generation)
    trace.identity = identity
    if _needs_sender_check(token, identity, rule):
        yield from check_sender(request, token, identity, rule, ctx.sender, now, fail_open=ctx.fail_open)
    _check_rule(identity, rule, now)
    if rule.one_time:
        # Why exp + leeway: a shorter memory than the token's life would be a replay gap.
        until = (
            identity.expires_at + ctx.leeway if identity.expires_at is not None else now + ctx.max_remember
        )
        yield from consume_once(token_key(identity), until, fail_open=ctx.fail_open)
    return identity


def _needs_sender_check(token: Token, identity: Identity, rule: Rule) -> bool:
    return token.scheme == "dpop" or identity.binding is not None or rule.dpop == "required"


def _check_rule(identity: Identity, rule: Rule, now: float) -> None:
    if rule.iat_window is not None:
        check_iat_window(identity, now, rule.iat_window)
    if rule.scopes and not identity.scopes.issuperset(rule.scopes):
        raise InsufficientScope("insufficient_scope", params={"scope": " ".join(rule.scopes)})


def _verify(
    token: Token, ctx: Context, now: float, trace: Trace
) -> Generator[Effect, object, tuple[Identity, int]]:
    """Verify a token; also return the key-set generation its key came from.

    Why read the generation after the key lookup: a cold or kid-miss fetch inside this flow
    changes it, and an entry stored under the earlier value would never be reused; a change
    after this point (another request's fetch) makes the entry stale, as it should.
    """
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
    key = yield from _key(ctx.keys, issuer.issuer, kid, alg, now)
    generation = ctx.keys.generation
    check_signature(parsed, key)
    check_claims(parsed.claims, ctx.policies[issuer.issuer], now)
    return identity_from_claims(parsed.claims, issuer.issuer), generation


def _key(
    keys: KeyCache, issuer: str, kid: str | None, alg: str, now: float
) -> Generator[Effect, object, PinnedKey]:
    key, need = keys.select(issuer, kid, alg, now)
    if need is not None:
        yield FetchKeys(issuer, blocking=need.blocking)
    if key is None:
        key = keys.select_after_fetch(issuer, kid, alg, now)
    return key


def _valid_until(identity: Identity, ctx: Context) -> float:
    """The first moment the claim checks would refuse this token again."""
    until = math.inf if identity.expires_at is None else identity.expires_at + ctx.leeway
    if ctx.max_age is not None and identity.issued_at is not None:
        until = min(until, identity.issued_at + ctx.max_age + ctx.leeway)
    return until
