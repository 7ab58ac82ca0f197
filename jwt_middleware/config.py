"""Configuration as frozen dataclasses, validated when built (ConfigError names the option and the fix)."""

from __future__ import annotations

import math
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from ._types import Clock
from .errors import ConfigError
from .keys.sources import JWKSFile, JWKSUrl, KeySource, OIDCDiscovery, SharedSecret, StaticKeys

__all__ = [
    "Config",
    "CookieSource",
    "DPoPSettings",
    "HeaderSource",
    "Issuer",
    "KeyPolicy",
    "Rule",
    "TokenSource",
]

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
Access = Literal["public", "optional", "required"]
DPoPMode = Literal["allowed", "required"]
#: RFC 9449 §5: proofs are asymmetric; this is the default allowlist
DPOP_ALGORITHMS: Final = ("ES256", "ES384", "EdDSA", "RS256", "PS256")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), so no space, quote or backslash
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _tuple(obj: object, name: str) -> None:
    """Let users pass lists; store tuples so the frozen value is really immutable."""
    value = getattr(obj, name)
    if isinstance(value, str):
        value = (value,)
    if value is not None and not isinstance(value, tuple):
        object.__setattr__(obj, name, tuple(value))
    elif isinstance(value, tuple) and getattr(obj, name) is not value:
        object.__setattr__(obj, name, value)


def _finite(obj: object, *names: str) -> None:
    """Refuse NaN and infinity: every comparison with NaN is False, so it would turn checks off."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            raise ConfigError(f"{type(obj).__name__}.{name}: must be a finite number of seconds")


@dataclass(frozen=True, slots=True)
class HeaderSource:
    """The ``Authorization`` header: ``Bearer`` (RFC 6750 §2.1) or ``DPoP`` (RFC 9449 §7.1)."""


@dataclass(frozen=True, slots=True)
class CookieSource:
    """A cookie holding the access token. Set it ``__Host-``, HttpOnly, Secure, SameSite."""

    name: str = "__Host-access_token"

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in ' =;,"\t\r\n'):
            raise ConfigError(f"CookieSource.name: {self.name!r} is not a valid cookie name")


TokenSource = HeaderSource | CookieSource


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may pass a route. ``path`` is exact (``/health``) or a prefix ending in ``*`` (``/admin/*``).

    Rules are tried in order; the first whose path and method match wins.
    """

    path: str
    access: Access = "required"
    methods: tuple[str, ...] | None = None
    scopes: tuple[str, ...] = ()
    #: seconds ``iat`` may lie from now, independent of ``exp`` (a token minted for this request)
    iat_window: float | None = None
    #: each token is good for one request: ``jti`` required and consumed atomically
    one_time: bool = False
    #: "allowed": Bearer or DPoP; "required": DPoP only (RFC 9449 §7.1). Needs Config.dpop.
    dpop: DPoPMode = "allowed"

    def __post_init__(self) -> None:
        _tuple(self, "methods")
        _tuple(self, "scopes")
        if not self.path.startswith("/"):
            raise ConfigError(f"Rule.path: {self.path!r} must start with '/'")
        if "*" in self.path[:-1]:
            raise ConfigError(f"Rule.path: {self.path!r} may hold '*' only as its last character")
        if self.access not in ("public", "optional", "required"):
            raise ConfigError("Rule.access: use 'public', 'optional' or 'required'")
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))
        bad = [s for s in self.scopes if not isinstance(s, str) or _SCOPE_TOKEN.fullmatch(s) is None]
        if bad:
            raise ConfigError(
                f"Rule.scopes: {bad[0]!r} is not one scope token (RFC 6749 §3.3); list each scope, "
                "e.g. scopes=('read', 'write')"
            )
        if self.scopes and self.access == "public":
            raise ConfigError("Rule.scopes: a public rule checks no token, so it cannot require scopes")
        _finite(self, "iat_window")
        if self.iat_window is not None and self.iat_window <= 0:
            raise ConfigError("Rule.iat_window: must be positive seconds, or None")
        if self.dpop not in ("allowed", "required"):
            raise ConfigError("Rule.dpop: use 'allowed' or 'required'")


@dataclass(frozen=True, slots=True)
class Issuer:
    """One trusted issuer: its keys, algorithms, audiences and token type rule.

    The token's ``iss`` selects the issuer by exact string match before any key is looked up;
    keys never come from the token itself (``jku``, ``jwk``, ``x5u``, ``x5c``; RFC 8725 §3.10).
    """

    issuer: str
    algorithms: tuple[str, ...]
    #: default: OIDC discovery at ``<issuer>/.well-known/openid-configuration``
    keys: KeySource | None = None
    #: overrides Config.audience for this issuer
    audiences: tuple[str, ...] | None = None
    #: accepted ``typ`` header values, e.g. ("at+jwt",) (RFC 9068 §2.1); None: no typ is required,
    #: but types that are never access tokens are still refused
    typ: tuple[str, ...] | None = None
    required_claims: tuple[str, ...] = ()
    #: refuse tokens without ``kid`` even when one key could verify them
    require_kid: bool = False

    def __post_init__(self) -> None:
        for name in ("algorithms", "audiences", "typ", "required_claims"):
            _tuple(self, name)
        if not self.issuer:
            raise ConfigError("Issuer.issuer: give the exact 'iss' value your tokens carry")
        if any(not isinstance(a, str) or not a for a in self.audiences or ()):
            raise ConfigError("Issuer.audiences: each must be a non-empty string (this API's identifier)")
        self._check_algorithms()
        if self.keys is None:
            if any(a in HMAC_ALGORITHMS for a in self.algorithms):
                raise ConfigError("Issuer.keys: HS algorithms need keys=SharedSecret(...)")
            object.__setattr__(self, "keys", OIDCDiscovery())
        self._check_keys_match_algorithms()

    def _check_algorithms(self) -> None:
        if not self.algorithms:
            raise ConfigError("Issuer.algorithms: pin at least one algorithm, e.g. ('ES256',)")
        for alg in self.algorithms:
            if alg.lower() == "none":
                raise ConfigError("Issuer.algorithms: 'none' is never accepted; list e.g. ('ES256',)")
            if alg not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS:
                raise ConfigError(f"Issuer.algorithms: {alg!r} is not a supported JWS algorithm")
        kinds = {a in HMAC_ALGORITHMS for a in self.algorithms}
        if len(kinds) > 1:
            raise ConfigError(
                "Issuer.algorithms: HS* and asymmetric algorithms may not be mixed for one issuer "
                "(RFC 8725 §2.1: key confusion); configure two issuers or pick one family"
            )

    def _check_keys_match_algorithms(self) -> None:
        hmac = self.algorithms[0] in HMAC_ALGORITHMS
        if hmac and not isinstance(self.keys, SharedSecret):
            raise ConfigError("Issuer.keys: HS algorithms verify only with keys=SharedSecret(...)")
        if not hmac and isinstance(self.keys, SharedSecret):
            raise ConfigError("Issuer.keys: a SharedSecret needs algorithms=('HS256',) (or HS384/HS512)")
        if isinstance(self.keys, OIDCDiscovery) and self.keys.url is None:
            from .keys.sources import check_fetch_url

            check_fetch_url(self.issuer, "Issuer.issuer (used for OIDC discovery)")

    @property
    def remote(self) -> bool:
        """True when keys are fetched and cached (URL, discovery, file), False for keys given in code."""
        return isinstance(self.keys, JWKSUrl | OIDCDiscovery | JWKSFile)

    @property
    def static(self) -> bool:
        return isinstance(self.keys, StaticKeys | SharedSecret)


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """How remote key sets are fetched and cached (all durations in seconds)."""

    default_ttl: float = 600.0  # seconds, when the response has no Cache-Control max-age
    min_ttl: float = 60.0  # seconds, lower clamp of max-age
    max_ttl: float = 86400.0  # seconds, upper clamp of max-age
    refresh_ahead: float = 30.0  # seconds before expiry a background refresh starts
    kid_miss_cooldown: float = 30.0  # seconds between refetches caused by an unknown kid
    stale_if_error: float = 6 * 3600.0  # seconds past expiry the last good set serves while fetches fail
    failure_backoff: float = 5.0  # seconds between attempts while the issuer fails
    fetch_timeout: float = 5.0  # seconds for one whole fetch
    max_jwks_bytes: int = 256 * 1024
    max_keys: int = 64
    #: TLS trust for fetches: True (system CAs), a CA bundle path, or an SSLContext
    tls: ssl.SSLContext | str | bool = True

    def __post_init__(self) -> None:
        _finite(self, "default_ttl", "min_ttl", "max_ttl", "refresh_ahead", "kid_miss_cooldown",
                "stale_if_error", "failure_backoff", "fetch_timeout")
        if isinstance(self.tls, str):
            try:
                ssl.create_default_context(cafile=self.tls)
            except (OSError, ssl.SSLError):
                raise ConfigError(f"KeyPolicy.tls: cannot load CA certificates from {self.tls!r}") from None
        if not 0 < self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ConfigError("KeyPolicy: need 0 < min_ttl <= default_ttl <= max_ttl")
        if self.refresh_ahead < 0 or self.refresh_ahead >= self.min_ttl:
            raise ConfigError("KeyPolicy.refresh_ahead: must be >= 0 and below min_ttl")
        for name in ("kid_miss_cooldown", "stale_if_error", "failure_backoff", "fetch_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"KeyPolicy.{name}: must not be negative")
        if self.fetch_timeout == 0 or self.max_jwks_bytes < 1024:
            raise ConfigError("KeyPolicy: fetch_timeout must be > 0 and max_jwks_bytes >= 1024")


@dataclass(frozen=True, slots=True, repr=False)
class DPoPSettings:
    """Accept DPoP-bound tokens (RFC 9449). Given to ``Config(dpop=...)``.

    :param nonce_secret: turns on server nonces (§8, §9): stateless (a keyed MAC over a time
        step) so every instance sharing the secret accepts every other's; at least 32 bytes
    :param external_base_url: the public origin (and path prefix) clients use, for ``htu``
        behind a proxy, e.g. ``"https://api.example.com"``
    :param trust_forwarded: take scheme and host from ``Forwarded``/``X-Forwarded-*``; only
        behind a proxy that sets them
    """

    algorithms: tuple[str, ...] = DPOP_ALGORITHMS
    iat_window: float = 60.0  # seconds a proof's iat may lie from now
    leeway: float = 5.0  # seconds
    max_proof_bytes: int = 4096
    nonce_secret: bytes | None = None
    nonce_step: float = 300.0  # seconds one nonce stays current (and one more step valid)
    external_base_url: str | None = None
    trust_forwarded: bool = False

    def __repr__(self) -> str:
        return f"DPoPSettings(algorithms={self.algorithms!r}, nonces={self.nonce_secret is not None})"

    def __post_init__(self) -> None:
        _finite(self, "iat_window", "leeway", "nonce_step")
        _tuple(self, "algorithms")
        bad = [a for a in self.algorithms if a in HMAC_ALGORITHMS or a.lower() == "none"]
        if bad or not self.algorithms or not set(self.algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ConfigError(
                "DPoPSettings.algorithms: proofs use asymmetric algorithms only, e.g. ('ES256',)"
            )
        if self.nonce_secret is not None and len(self.nonce_secret) < 32:
            raise ConfigError(
                "DPoPSettings.nonce_secret: use at least 32 random bytes (secrets.token_bytes(32))"
            )
        if self.iat_window <= 0 or self.nonce_step <= 0:
            raise ConfigError("DPoPSettings: iat_window and nonce_step must be positive seconds")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the Authenticator decides with.

    :param issuers: the trusted issuers; a token's ``iss`` must equal one exactly
    :param audience: this API's identifier(s); a token's ``aud`` must contain one (RFC 7519 §4.1.3)
    :param sources: where tokens are looked for, in order (header, then cookie, by default header only)
    """

    issuers: tuple[Issuer, ...]
    audience: tuple[str, ...] | str | None = None
    sources: tuple[TokenSource, ...] = (HeaderSource(),)
    #: RFC 6750 §2.3 query tokens leak into logs and Referer; off unless you must
    allow_query_token: bool = False
    rules: tuple[Rule, ...] = ()
    #: access for a route no rule matches
    default_access: Access = "required"
    leeway: float = 30.0  # seconds of clock skew allowed on exp/nbf/iat
    max_age: float | None = None  # seconds since iat after which a token is too old
    max_lifetime: float | None = 86400.0  # seconds; exp - iat (or exp - now) above this is refused
    require_exp: bool = True
    require_iat: bool = False
    max_token_bytes: int = 8192
    realm: str = "api"
    keys: KeyPolicy = field(default_factory=KeyPolicy)
    #: verified tokens remembered until their exp; 0 turns the cache off
    verified_cache_size: int = 10_000
    #: answer refusals with an empty body (headers only)
    strip_failure_body: bool = False
    #: accept DPoP-bound tokens (RFC 9449); None: DPoP requests are refused
    dpop: DPoPSettings | None = None
    #: when the nonce store fails: "closed" answers 503 (default); "open" lets the request pass
    store_failure: Literal["closed", "open"] = "closed"
    clock: Clock = time.time

    def __post_init__(self) -> None:
        for name in ("issuers", "sources", "rules"):
            _tuple(self, name)
        if isinstance(self.audience, str):
            object.__setattr__(self, "audience", (self.audience,))
        elif self.audience is not None:
            object.__setattr__(self, "audience", tuple(self.audience))
        self._check()

    def _check(self) -> None:
        if not self.issuers:
            raise ConfigError("Config.issuers: configure at least one Issuer")
        if any(not isinstance(a, str) or not a for a in self.audience or ()):
            raise ConfigError("Config.audience: each must be a non-empty string (this API's identifier)")
        names = [i.issuer for i in self.issuers]
        if len(set(names)) != len(names):
            raise ConfigError("Config.issuers: each issuer may appear once")
        for issuer in self.issuers:
            if not (issuer.audiences or self.audience):
                raise ConfigError(
                    f"Config.audience: issuer {issuer.issuer!r} has no audience; set Config.audience "
                    "or Issuer.audiences to this API's identifier (RFC 9068 §4 requires the check)"
                )
        if not self.sources:
            raise ConfigError("Config.sources: list HeaderSource() and/or CookieSource(...)")
        _finite(self, "leeway", "max_age", "max_lifetime")
        if self.leeway < 0 or self.leeway > 300:
            raise ConfigError("Config.leeway: use 0..300 seconds (RFC 8725 suggests a few minutes at most)")
        if self.max_token_bytes < 256:
            raise ConfigError("Config.max_token_bytes: must be at least 256")
        if self.verified_cache_size < 0:
            raise ConfigError("Config.verified_cache_size: must be >= 0")
        if self.dpop is None and any(r.dpop == "required" for r in self.rules):
            raise ConfigError("Rule.dpop='required' needs Config(dpop=DPoPSettings(...))")
        if self.store_failure not in ("closed", "open"):
            raise ConfigError("Config.store_failure: use 'closed' (503 when the store is down) or 'open'")
        for name in ("max_age", "max_lifetime"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"Config.{name}: must be positive, or None to turn the check off")

    def audiences_for(self, issuer: Issuer) -> tuple[str, ...]:
        return issuer.audiences or self.audience or ()  # type: ignore[return-value]
