"""Configuration as frozen dataclasses, validated when built (ConfigError names the option and the fix)."""

from __future__ import annotations

import inspect
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from ._types import Clock
from .errors import ConfigError, Refusal
from .keys.sources import JWKSFile, JWKSUrl, KeySource, OIDCDiscovery, SharedSecret, StaticKeys
from .proxies import AUTHORITY, TrustedProxies

if TYPE_CHECKING:
    from .identity import Identity
    from .request import RequestView
    from .revocation.status_list import StatusListPolicy

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
#: RFC 9449 §5: proofs are asymmetric; this is the default allowlist. Ed25519 is the fully
#: specified name of EdDSA over Ed25519 (RFC 9864 §2.2), which access tokens accept too
DPOP_ALGORITHMS: Final = ("ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), so no space, quote or backslash
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _tuple(obj: object, name: str, kind: type | tuple[type, ...], example: str) -> None:
    """Store any iterable of ``kind`` as a tuple, so the frozen value is really immutable.

    A lone string stands for a one-item list where ``kind`` is ``str`` (``audience="api"``).

    :raises ConfigError: a lone value where a list belongs, or an item of another type, naming
        the option and the fix (a raw TypeError or a value that silently matches nothing otherwise)
    """
    value = getattr(obj, name)
    if value is None:
        return
    option = f"{type(obj).__name__}.{name}"
    if isinstance(value, str) and kind is str:
        value = (value,)
    elif isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{option}: a lone {type(value).__name__} given; put it in a list, e.g. {name}={example}"
        )
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, kind)]
    if bad:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(
            f"{option}: {bad[0]!r} is a {type(bad[0]).__name__}, each item must be a {names}; "
            f"write e.g. {name}={example}"
        )
    object.__setattr__(obj, name, items)


def _check_instance(obj: object, name: str, kind: type | UnionType, example: str) -> None:
    """An option that takes one settings object: refuse a dict or anything else in its place."""
    value = getattr(obj, name)
    if not isinstance(value, kind):
        raise ConfigError(
            f"{type(obj).__name__}.{name}: {type(value).__name__} given; write {name}={example}"
        )


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
    """Who may pass a route. Rules are tried in order; the first whose path and method match wins.

    ``path`` is matched against the request's canonical path below ``root_path`` /
    ``SCRIPT_NAME`` (``Config.match_full_path`` for the whole path), ``/admin`` and ``/admin/``
    alike, in the frameworks' own syntax:

    - ``/health``: that path exactly;
    - ``/items/{id}``: ``{name}`` is one non-empty segment; ``{name:int}``, ``{name:float}``,
      ``{name:uuid}`` only what Starlette's convertor of that name routes;
    - ``/admin/*`` or ``/files/{rest:path}``: the prefix and everything below it (also ``/admin``).

    ``methods`` (None: every method) are upper-cased; a rule listing GET also covers HEAD,
    which Starlette, Flask and Django answer with the GET handler.
    """

    path: str
    access: Access = "required"
    methods: Sequence[str] | None = None
    scopes: Sequence[str] = ()
    #: seconds ``iat`` may lie from now, independent of ``exp`` (a token minted for this request)
    iat_window: float | None = None
    #: each token is good for one request: ``jti`` required and consumed atomically
    one_time: bool = False
    #: "allowed": Bearer or DPoP; "required": DPoP only (RFC 9449 §7.1). Needs Config.dpop.
    dpop: DPoPMode = "allowed"

    def __post_init__(self) -> None:
        _tuple(self, "methods", str, "('GET', 'POST')")
        _tuple(self, "scopes", str, "('read', 'write')")
        pattern_segments(self.path)
        if self.access not in ("public", "optional", "required"):
            raise ConfigError("Rule.access: use 'public', 'optional' or 'required'")
        if self.methods is not None:
            object.__setattr__(self, "methods", _methods(self.methods))
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


#: RFC 9110 §9.1: a method is a token (§5.6.2)
_METHOD: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Upper-case methods, HEAD added next to GET (RFC 9110 §9.3.2: HEAD is GET without a body)."""
    if not methods:
        raise ConfigError(
            "Rule.methods: an empty list matches no request; leave methods=None for every method "
            "or list them, e.g. methods=('GET', 'POST')"
        )
    bad = [m for m in methods if not isinstance(m, str) or _METHOD.fullmatch(m) is None]
    if bad:
        raise ConfigError(f"Rule.methods: {bad[0]!r} is not an HTTP method token (RFC 9110 §9.1), e.g. 'GET'")
    upper = tuple(dict.fromkeys(m.upper() for m in methods))
    return (*upper, "HEAD") if "GET" in upper and "HEAD" not in upper else upper


#: ``("literal", text)``, ``("param", convertor)`` or ``("rest", "")`` (the prefix's remainder)
Segment = tuple[Literal["literal", "param", "rest"], str]
#: a path parameter as Starlette, FastAPI and Litestar write it: ``{name}`` or ``{name:convertor}``
_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
#: Starlette's convertor regexes (starlette/convertors.py): a rule covers exactly what the route does
PARAM_CONVERTORS: Final[dict[str, str | None]] = {
    "str": None,  # any non-empty segment
    "int": "[0-9]+",
    "float": r"[0-9]+(\.[0-9]+)?",
    "uuid": "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
}
#: characters a pattern cannot hold: regex syntax, other routers' parameter syntax, escapes, controls
_UNHONOURED: Final = re.compile(r"[()\[\]^$+?|\\<>%#\s\x00-\x1f\x7f]")


def pattern_segments(path: str) -> tuple[Segment, ...]:
    """The segments of a :class:`Rule` path; ``/`` is none, a trailing ``/`` counts for nothing.

    :raises ConfigError: a pattern the matcher could not honour, naming the fix (a silent
        no-op rule would leave the route to the default)
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"Rule.path: {path!r} must start with '/', e.g. '/health'")
    bad = _UNHONOURED.search(path)
    if bad:
        raise ConfigError(_unhonoured(path, bad.group()))
    if "*" in path and (not path.endswith("/*") or "*" in path[:-1]):
        prefix = path.split("*", 1)[0].rstrip("/")
        raise ConfigError(
            f"Rule.path: {path!r}: '*' stands only for the rest of the path, right after a final '/' "
            f"(write {prefix + '/*'!r} for {prefix or '/'} and below)"
        )
    parts = path[1:].split("/")
    if parts[-1] == "":
        parts.pop()
    segments = tuple(_segment(path, part) for part in parts)
    names = [match.group(1) for part in parts if (match := _PARAM.fullmatch(part))]
    if len(set(names)) != len(names):
        raise ConfigError(f"Rule.path: {path!r} names a parameter twice")
    if any(kind == "rest" for kind, _ in segments[:-1]):
        raise ConfigError(f"Rule.path: {path!r}: {{name:path}} takes the rest, so it must come last")
    return segments


def _segment(path: str, part: str) -> Segment:
    if part in ("", ".", ".."):
        raise ConfigError(
            f"Rule.path: {path!r} can never match: request paths are canonical (no '//', '.' or '..' "
            "segments); write the path as the router sees it, e.g. '/admin/users'"
        )
    if part == "*":
        return ("rest", "")
    if part.startswith(":"):
        raise ConfigError(f"Rule.path: {path!r}: write the parameter {part!r} as {{{part[1:]}}}")
    if "{" not in part and "}" not in part:
        return ("literal", part)
    match = _PARAM.fullmatch(part)
    if match is None:
        raise ConfigError(
            f"Rule.path: {path!r}: a parameter is a whole segment with a name, '{{id}}' or '{{id:int}}'"
        )
    convertor = match.group(2) or "str"
    if convertor == "path":
        return ("rest", "")
    if convertor not in PARAM_CONVERTORS:
        raise ConfigError(
            f"Rule.path: {path!r}: unknown convertor {convertor!r}; use str, int, float, uuid or path"
        )
    return ("param", convertor)


def _unhonoured(path: str, char: str) -> str:
    if char in "<>":
        return f"Rule.path: {path!r}: write path parameters as {{id}} (or {{id:int}}), not <id>"
    if char == "%":
        return f"Rule.path: {path!r}: rules match the decoded path; write the character, not its %-escape"
    return (
        f"Rule.path: {path!r}: {char!r} is not pattern syntax here (no regular expressions); "
        "use exact paths, {id} parameters and a final '/*'"
    )


@dataclass(frozen=True, slots=True)
class Issuer:
    """One trusted issuer: its keys, algorithms, audiences and token type rule.

    The token's ``iss`` selects the issuer by exact string match before any key is looked up;
    keys never come from the token itself (``jku``, ``jwk``, ``x5u``, ``x5c``; RFC 8725 §3.10).
    """

    issuer: str
    algorithms: Sequence[str]
    #: default: OIDC discovery at ``<issuer>/.well-known/openid-configuration``
    keys: KeySource | None = None
    #: overrides Config.audience for this issuer
    audiences: Sequence[str] | None = None
    #: accepted ``typ`` header values, e.g. ("at+jwt",) (RFC 9068 §2.1); None: no typ is required,
    #: but types that are never access tokens are still refused
    typ: Sequence[str] | None = None
    required_claims: Sequence[str] = ()
    #: refuse tokens without ``kid`` even when one key could verify them
    require_kid: bool = False
    #: accept tokens whose header carries ``jku``, ``jwk``, ``x5u`` or ``x5c`` (still never read:
    #: keys come from ``keys`` only); off by default, RFC 8725 §3.10
    allow_key_headers: bool = False
    #: check each token's ``status`` claim against the issuer's Token Status List
    #: (draft-ietf-oauth-status-list); None: the claim is not read (RFC 7519 §4: a claim not
    #: understood is ignored). See :class:`~jwt_middleware.revocation.status_list.StatusListPolicy`
    status_list: StatusListPolicy | None = None

    def __post_init__(self) -> None:
        _tuple(self, "algorithms", str, "['ES256']")
        _tuple(self, "audiences", str, "['api']")
        _tuple(self, "typ", str, "['at+jwt']")
        _tuple(self, "required_claims", str, "['sub', 'scope']")
        if not isinstance(self.issuer, str) or not self.issuer.strip():
            raise ConfigError("Issuer.issuer: give the exact 'iss' value your tokens carry")
        if any(not isinstance(a, str) or not a for a in self.audiences or ()):
            raise ConfigError("Issuer.audiences: each must be a non-empty string (this API's identifier)")
        self._check_algorithms()
        if self.keys is not None and not isinstance(self.keys, KeySource):
            raise ConfigError(_wrong_key_source(self.keys))
        if self.keys is None:
            if any(a in HMAC_ALGORITHMS for a in self.algorithms):
                raise ConfigError("Issuer.keys: HS algorithms need keys=SharedSecret(...)")
            object.__setattr__(self, "keys", OIDCDiscovery())
        self._check_keys_match_algorithms()
        if self.status_list is not None:
            self._check_status_list()

    def _check_status_list(self) -> None:
        """The policy's type, and where this issuer's lists may live, at construction (not at the
        first token that references a list)."""
        from .revocation.status_list import StatusListPolicy, StatusListRules

        if not isinstance(self.status_list, StatusListPolicy):
            raise ConfigError(
                f"Issuer.status_list: a {type(self.status_list).__name__} given; write "
                "status_list=StatusListPolicy() (jwt_middleware.revocation.status_list) or leave it None"
            )
        StatusListRules.for_issuer(self.issuer, self.status_list)  # ConfigError naming allowed_uri_prefixes

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


def _wrong_key_source(keys: object) -> str:
    """Name the descriptor a bare value was meant to be: a URL string would otherwise be read
    as nothing at all, and every token would fail with ``unknown_kid``."""
    text = keys if isinstance(keys, str) else None
    if text is not None and text.startswith(("https://", "http://")):
        fix = f"keys=JWKSUrl({text!r}) for a JWKS document, or OIDCDiscovery({text!r}) for a discovery URL"
    elif text is not None and not text.lstrip().startswith(("{", "-----BEGIN")):
        fix = f"keys=JWKSFile({text!r}) for a JWKS file on disk"
    elif isinstance(keys, str | bytes | Mapping):
        fix = "keys=StaticKeys(...) for a JWKS, a JWK or a PEM public key given in code"
    else:
        fix = "keys=JWKSUrl(...), OIDCDiscovery(), JWKSFile(...), StaticKeys(...) or SharedSecret(...)"
    return f"Issuer.keys: a bare {type(keys).__name__} is not a key source; write {fix}"


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
        behind a proxy, e.g. ``"https://api.example.com"``; the request's scheme and Host are
        then not read
    :param allowed_hosts: without ``external_base_url``, the hosts this API answers to, e.g.
        ``("api.example.com", "api.example.com:8443")``: the request's host (after
        ``Config.trusted_proxies``) must be one of them, compared case-insensitively, with the
        port when it is not the scheme's default. One of the two is required: otherwise the
        ``Host`` header alone would decide which server a proof is checked for (RFC 9449 §4.3
        check 9, §11.1)
    :raises ConfigError: neither or both of ``external_base_url`` and ``allowed_hosts``, a
        malformed entry, or any of the checks below
    """

    algorithms: Sequence[str] = DPOP_ALGORITHMS
    iat_window: float = 60.0  # seconds a proof's iat may lie from now
    leeway: float = 5.0  # seconds
    max_proof_bytes: int = 4096
    nonce_secret: bytes | None = None
    nonce_step: float = 300.0  # seconds one nonce stays current (and one more step valid)
    external_base_url: str | None = None
    allowed_hosts: Sequence[str] = ()

    def __repr__(self) -> str:
        return f"DPoPSettings(algorithms={self.algorithms!r}, nonces={self.nonce_secret is not None})"

    def __post_init__(self) -> None:
        _finite(self, "iat_window", "leeway", "nonce_step")
        _tuple(self, "algorithms", str, "['ES256']")
        _tuple(self, "allowed_hosts", str, "['api.example.com']")
        bad = [a for a in self.algorithms if a in HMAC_ALGORITHMS or a.lower() == "none"]
        if bad or not self.algorithms or not set(self.algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ConfigError(
                "DPoPSettings.algorithms: proofs use asymmetric algorithms only, e.g. ('ES256',)"
            )
        if self.nonce_secret is not None and not isinstance(self.nonce_secret, bytes):
            raise ConfigError(
                f"DPoPSettings.nonce_secret: give bytes, not {type(self.nonce_secret).__name__}: "
                "secrets.token_bytes(32), or bytes.fromhex(...) of a hex secret from your vault"
            )
        if self.nonce_secret is not None and len(self.nonce_secret) < 32:
            raise ConfigError(
                "DPoPSettings.nonce_secret: use at least 32 random bytes (secrets.token_bytes(32))"
            )
        if self.iat_window <= 0 or self.nonce_step <= 0:
            raise ConfigError("DPoPSettings: iat_window and nonce_step must be positive seconds")
        self._check_origin()

    def _check_origin(self) -> None:
        """Exactly one of external_base_url and allowed_hosts, each well formed."""
        if self.external_base_url is None and not self.allowed_hosts:
            raise ConfigError(_DPOP_ORIGIN_REQUIRED)
        if self.external_base_url is not None and self.allowed_hosts:
            raise ConfigError(
                "DPoPSettings: give external_base_url or allowed_hosts, not both; with "
                "external_base_url the request's Host is never read, so allowed_hosts would do nothing"
            )
        if self.external_base_url is not None:
            _check_base_url(self.external_base_url)
        for host in self.allowed_hosts:
            _check_allowed_host(host)
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))


_DPOP_ORIGIN_REQUIRED: Final = (
    "DPoPSettings: set external_base_url (the public origin clients send to, e.g. "
    "'https://api.example.com') or allowed_hosts (the hosts this API answers to, e.g. "
    "('api.example.com',)); without either, the Host header alone would decide which server "
    "a DPoP proof is checked for, so a proof made for another server could pass here"
)


def _check_base_url(url: object) -> None:
    ok = isinstance(url, str) and "?" not in url and "#" not in url
    if ok:
        parts = urlsplit(str(url))
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc
    if not ok:
        raise ConfigError(
            f"DPoPSettings.external_base_url: {url!r} is not an http(s) origin with an optional "
            "path, e.g. 'https://api.example.com' or 'https://example.com/api'"
        )


def _check_allowed_host(host: object) -> None:
    if not isinstance(host, str) or AUTHORITY.fullmatch(host) is None or host.endswith(":"):
        raise ConfigError(
            f"DPoPSettings.allowed_hosts: {host!r} is not a host[:port], e.g. 'api.example.com' "
            "or 'localhost:8000' (no scheme, path or wildcard)"
        )
    name, sep, port = host.rpartition(":")
    if sep and "]" not in port and port.lstrip("0") in ("80", "443"):
        raise ConfigError(
            f"DPoPSettings.allowed_hosts: list {name!r} without its default "
            "port (80 or 443); the port is compared only when it is not the scheme's default"
        )


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the Authenticator decides with.

    :param issuers: the trusted issuers; a token's ``iss`` must equal one exactly
    :param audience: this API's identifier(s); a token's ``aud`` must contain one (RFC 7519 §4.1.3)
    :param sources: where tokens are looked for, in order (header, then cookie, by default header only)
    """

    issuers: Sequence[Issuer]
    audience: Sequence[str] | str | None = None
    sources: Sequence[TokenSource] = (HeaderSource(),)
    #: RFC 6750 §2.3 query tokens leak into logs and Referer; off unless you must
    allow_query_token: bool = False
    rules: Sequence[Rule] = ()
    #: access for a route no rule matches
    default_access: Access = "required"
    #: a path that is not canonical (``//``, ``.``, ``..``): "refuse" answers 400 invalid_request;
    #: "rewrite" hands the app the canonical path (README "Paths, methods and rules")
    path_normalization: Literal["refuse", "rewrite"] = "refuse"
    #: CORS preflights: "authenticate" decides them like any request; "pass" lets a true
    #: preflight through anonymously, for an app that answers preflights itself (CORSMiddleware inside)
    preflight: Literal["authenticate", "pass"] = "authenticate"
    #: rules see root_path + path (True) instead of the app's path below root_path / SCRIPT_NAME
    match_full_path: bool = False
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
    #: the reverse proxies whose forwarded scheme, host and client address are believed
    #: (jwt_middleware.proxies); None: forwarded headers are ignored everywhere
    trusted_proxies: TrustedProxies | None = None
    #: when the nonce store fails: "closed" answers 503 (default); "open" lets the request pass
    store_failure: Literal["closed", "open"] = "closed"
    clock: Clock = time.time
    # Hooks (jwt_middleware.hooks; each a function or a coroutine function). Typed loosely here
    # so the sans-I/O core, which reads Config, does not import the hooks' machinery.
    #: ``(claims) -> None``, after the standard claim checks, once per newly verified token;
    #: refuses by raising a Refusal (``ClaimsRejected(reason)``: 401, ``InsufficientScope``: 403)
    claims_validator: Callable[[Mapping[str, Any]], Awaitable[None] | None] | None = None
    #: ``(identity) -> user`` after an allow decision: the framework's user (None: 401 unknown_user)
    identity_loader: Callable[[Identity], object] | None = None
    #: how long one loaded user serves the requests bearing the same verified token; 0: load every time
    identity_loader_ttl: float = 0.0  # seconds
    #: ``(refusal, request) -> RefusalBody | mapping | None``: the body of every refusal
    on_refusal: Callable[[Refusal, RequestView | None], object] | None = None

    def __post_init__(self) -> None:
        _tuple(self, "issuers", Issuer, "[Issuer('https://idp.example', algorithms=['ES256'])]")
        _tuple(self, "sources", (HeaderSource, CookieSource), "[HeaderSource(), CookieSource()]")
        _tuple(self, "rules", Rule, "[Rule('/health', access='public')]")
        _tuple(self, "audience", str, "'api' (this API's identifier) or ['api', 'api2']")
        _check_instance(self, "keys", KeyPolicy, "KeyPolicy(...)")
        _check_instance(self, "dpop", DPoPSettings | None, "DPoPSettings(...) or None")
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
        if self.trusted_proxies is not None and not isinstance(self.trusted_proxies, TrustedProxies):
            raise ConfigError("Config.trusted_proxies: use TrustedProxies(networks=(...)), or None")
        if self.dpop is None and any(r.dpop == "required" for r in self.rules):
            raise ConfigError("Rule.dpop='required' needs Config(dpop=DPoPSettings(...))")
        self._check_paths()
        self._check_hooks()
        if self.store_failure not in ("closed", "open"):
            raise ConfigError("Config.store_failure: use 'closed' (503 when the store is down) or 'open'")
        for name in ("max_age", "max_lifetime"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"Config.{name}: must be positive, or None to turn the check off")

    def _check_paths(self) -> None:
        if self.path_normalization not in ("refuse", "rewrite"):
            raise ConfigError(
                "Config.path_normalization: use 'refuse' (400 for a non-canonical path) or 'rewrite'"
            )
        if self.preflight not in ("authenticate", "pass"):
            raise ConfigError(
                "Config.preflight: use 'authenticate' (no bypass) or 'pass' (with CORSMiddleware inside)"
            )
        if not isinstance(self.match_full_path, bool):
            raise ConfigError("Config.match_full_path: use True or False")

    def _check_hooks(self) -> None:
        for name, arguments in _HOOK_ARGUMENTS.items():
            _check_hook(name, getattr(self, name), arguments)
        _finite(self, "identity_loader_ttl")
        if self.identity_loader_ttl < 0:
            raise ConfigError(
                "Config.identity_loader_ttl: must be >= 0 seconds (0: load the user on every request)"
            )
        if self.identity_loader_ttl and self.identity_loader is None:
            raise ConfigError("Config.identity_loader_ttl: set identity_loader too; there is no user to keep")
        if self.strip_failure_body and self.on_refusal is not None:
            raise ConfigError(
                "Config.on_refusal: strip_failure_body answers every refusal with an empty body, so "
                "on_refusal would never shape one; set one of the two"
            )

    def audiences_for(self, issuer: Issuer) -> tuple[str, ...]:
        return issuer.audiences or self.audience or ()  # type: ignore[return-value]


#: each hook option and what it is called with, for the message naming the fix
_HOOK_ARGUMENTS: Final = {
    "claims_validator": ("claims",),
    "identity_loader": ("identity",),
    "on_refusal": ("refusal", "request"),
}


def _check_hook(name: str, hook: object, arguments: tuple[str, ...]) -> None:
    """A hook is None or a callable taking exactly its arguments (a wrong arity would be a 503
    on every request instead of a message at start-up)."""
    if hook is None:
        return
    call = f"{name}({', '.join(arguments)})"
    if not callable(hook):
        raise ConfigError(f"Config.{name}: a {type(hook).__name__} given; give a function {call}, or None")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):  # some builtins have none to read
        return
    try:
        signature.bind(*arguments)
    except TypeError:
        raise ConfigError(f"Config.{name}: {hook!r} cannot be called as {call}") from None
