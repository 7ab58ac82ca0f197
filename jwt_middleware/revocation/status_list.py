"""Token Status List checks (draft-ietf-oauth-status-list): the token's reference, the list, its status.

Pure: no sockets, no clock read, no locks, so the sans-I/O core may import it. A referenced
token carries ``status: {status_list: {idx, uri}}`` (draft §6.2); the Status List Token found
at ``uri`` is a JWT (``typ: statuslist+jwt``, §5.1) whose ``status_list`` claim holds ``bits``
per entry and ``lst``, the base64url of the zlib-deflated byte array (§4.1), read from the
least significant bit of each byte (§4.1 step 3). Status 0 passes, 1 (INVALID) and 2
(SUSPENDED) refuse, and so does every other value, fail closed (§7.1).

Why our own caps: the draft's size table (§A) reaches millions of entries, far past
joserfc's 128 KB payload default, so the caps on the compressed and decompressed bytes are
ours, and a zlib stream that is truncated or followed by other bytes is refused (the list an
issuer signed is exactly one stream; anything else is a list we would be guessing at).

Where a list may be fetched from is decided before anything is fetched: https only (plain
http on loopback, for tests), no userinfo, no dot segments, and only under the issuer's own
origin unless ``StatusListPolicy.allowed_uri_prefixes`` lists other homes. The issuer signed
the ``uri``; the allowlist makes sure an issuer can only point us at places we agreed to.
"""

from __future__ import annotations

import base64
import math
import re
import ssl
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple
from urllib.parse import SplitResult, urlsplit

from ..errors import ConfigError, InvalidToken
from ..keys.sources import is_loopback_host

__all__ = [
    "DEFAULT_POLICY",
    "STATUS_INVALID",
    "STATUS_SUSPENDED",
    "STATUS_VALID",
    "StatusList",
    "StatusListError",
    "StatusListPolicy",
    "StatusListRules",
    "StatusReference",
    "VerifiedStatusList",
    "VerifyListToken",
    "check_status_list_token",
    "check_token_status",
    "decode_status_list",
    "read_status_list_token",
    "reference_of",
]

#: Status Type values (draft §7.2)
STATUS_VALID: Final = 0x00
STATUS_INVALID: Final = 0x01
STATUS_SUSPENDED: Final = 0x02

_MIB: Final = 1024 * 1024
_MAX_URI_CHARS: Final = 2048
_ALLOWED_BITS: Final = frozenset({1, 2, 4, 8})
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
#: a path segment that is, or decodes to, a dot segment or a separator (RFC 3986 §5.2.4)
_UNSAFE_PATH: Final = re.compile(r"(?:^|/)\.{1,2}(?:/|$)|%2[eEfF]|%5[cC]|\\")
_TYP: Final = "statuslist+jwt"

_MALFORMED_CLAIM: Final = "The access token's status claim is malformed"
_UNSUPPORTED: Final = "The access token's status mechanism is not supported"
_OUT_OF_RANGE: Final = "The access token's status index is out of range"
_URI_REFUSED: Final = "The access token's status list location is not accepted"


class StatusListError(Exception):
    """A fetched Status List Token cannot be used: bad signature, wrong issuer, malformed, too big.

    Never shown to a client: the cache turns it into ``status_list_invalid`` for the tokens
    that reference the list. ``str(exc)`` is a constant cause, safe to log.
    """


#: ``verify(compact) -> (protected header, claims)``: checks the signature with a key of the
#: referenced token's issuer (alg pinned, no jku/jwk/x5u); raises InvalidToken when it fails
VerifyListToken = Callable[[str], tuple[Mapping[str, Any], Mapping[str, Any]]]


def _seconds(obj: object, *names: str) -> None:
    """Finite and not negative: NaN would turn every comparison, and so the check, off."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"StatusListPolicy.{name}: must be a finite number of seconds")
        if value < 0:
            raise ConfigError(f"StatusListPolicy.{name}: must not be negative")


def _byte_cap(obj: object, name: str, floor: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < floor:
        raise ConfigError(f"StatusListPolicy.{name}: must be an int of at least {floor} bytes")


@dataclass(frozen=True, slots=True)
class StatusListPolicy:
    """How Status List Tokens are located, fetched, bounded and cached (durations in seconds).

    :param allowed_uri_prefixes: https URL prefixes the lists of an issuer may live under,
        e.g. ``("https://status.example/lists/",)``; None: the issuer identifier's own origin
    :param max_token_bytes: the response body (after content decoding) is read up to this
    :param max_compressed_bytes: cap on the decoded ``lst`` (the zlib stream)
    :param max_decompressed_bytes: cap on the byte array; 8 MiB holds 67 M one-bit entries.
        Memory held is at most ``max_lists`` times this
    :param tls: trust for fetches: True (system CAs), a CA bundle path, or an SSLContext
    :param required: refuse a token of this issuer that carries no ``status`` claim
        (``status_claim_missing``); off: such a token is not checked (draft §6.2 makes the
        claim optional, so an issuer may mint tokens without one)
    """

    allowed_uri_prefixes: Sequence[str] | None = None
    default_ttl: float = 300.0  # seconds a list without ``ttl`` is used before a refetch
    min_ttl: float = 30.0  # seconds, lower clamp of the list's ttl (no refetch storm)
    max_ttl: float = 3600.0  # seconds, upper clamp of the list's ttl
    stale_if_error: float = 300.0  # seconds past freshness a list serves while refetches fail; never past exp
    failure_backoff: float = 5.0  # seconds between fetch attempts of a failing list
    fetch_timeout: float = 5.0  # seconds for one whole fetch, redirects included
    leeway: float = 30.0  # seconds of clock skew allowed on the list's iat, nbf and exp
    max_token_bytes: int = 4 * _MIB
    max_compressed_bytes: int = 2 * _MIB
    max_decompressed_bytes: int = 8 * _MIB
    max_lists: int = 16  # lists remembered at once; a full cache forgets the least useful
    tls: ssl.SSLContext | str | bool = True
    required: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.required, bool):
            raise ConfigError(
                "StatusListPolicy.required: True or False (True refuses tokens without a status claim)"
            )
        _seconds(
            self,
            "default_ttl",
            "min_ttl",
            "max_ttl",
            "stale_if_error",
            "failure_backoff",
            "fetch_timeout",
            "leeway",
        )
        if not 0 < self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ConfigError("StatusListPolicy: need 0 < min_ttl <= default_ttl <= max_ttl")
        if self.fetch_timeout == 0:
            raise ConfigError("StatusListPolicy.fetch_timeout: must be > 0 seconds, e.g. 5.0")
        _byte_cap(self, "max_compressed_bytes", 64)
        _byte_cap(self, "max_decompressed_bytes", 1)
        # Why: base64url makes the stream 4/3 longer; a smaller body cap would make the
        # compressed cap an option that can never be reached.
        _byte_cap(self, "max_token_bytes", -(-self.max_compressed_bytes * 4 // 3) + 256)
        if isinstance(self.max_lists, bool) or not isinstance(self.max_lists, int) or self.max_lists < 1:
            raise ConfigError("StatusListPolicy.max_lists: must be an int of at least 1")
        prefixes = self.allowed_uri_prefixes
        if prefixes is not None:
            if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
                raise ConfigError(
                    "StatusListPolicy.allowed_uri_prefixes: a list of URL prefixes, e.g. "
                    "('https://status.example/lists/',)"
                )
            object.__setattr__(self, "allowed_uri_prefixes", tuple(prefixes))
            for prefix in self.allowed_uri_prefixes or ():
                _Prefix.parse(prefix)
        if isinstance(self.tls, str):
            try:
                ssl.create_default_context(cafile=self.tls)
            except (OSError, ssl.SSLError):
                raise ConfigError(
                    f"StatusListPolicy.tls: cannot load CA certificates from {self.tls!r}"
                ) from None

    @property
    def max_index(self) -> int:
        """The largest ``idx`` any list within the caps can hold (one-bit entries)."""
        return self.max_decompressed_bytes * 8 - 1


DEFAULT_POLICY: Final = StatusListPolicy()


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # a bad IPv6 literal
        return None


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    """(scheme, host, effective port) of an https URL or an http URL on loopback; else None."""
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None
    if not host or "@" in parts.netloc:
        return None
    if parts.scheme == "https":
        return "https", host, 443 if port is None else port
    if parts.scheme == "http" and is_loopback_host(host):
        return "http", host, 80 if port is None else port
    return None


@dataclass(frozen=True, slots=True)
class _Prefix:
    origin: tuple[str, str, int]
    path: str  # "" matches every path on the origin

    @classmethod
    def parse(cls, prefix: str) -> _Prefix:
        parts = _split(prefix)
        origin = None if parts is None else _origin(parts)
        if (
            parts is None
            or origin is None
            or parts.query
            or parts.fragment
            or _UNSAFE_PATH.search(parts.path)
        ):
            raise ConfigError(
                f"StatusListPolicy.allowed_uri_prefixes: {prefix!r} is not an https URL prefix "
                "(no userinfo, query, fragment or dot segments; http only on loopback), e.g. "
                "'https://status.example/lists/'"
            )
        return cls(origin, parts.path.rstrip("/"))

    def covers(self, origin: tuple[str, str, int], path: str) -> bool:
        if origin != self.origin:
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True, slots=True)
class StatusListRules:
    """One issuer's status-list rules, compiled once at construction: its policy and where its
    lists may live. Build with :meth:`for_issuer`."""

    issuer: str
    policy: StatusListPolicy
    prefixes: tuple[_Prefix, ...] = field(repr=False)

    @classmethod
    def for_issuer(cls, issuer: str, policy: StatusListPolicy = DEFAULT_POLICY) -> StatusListRules:
        """:raises ConfigError: no prefixes given and the issuer identifier is no https URL"""
        if policy.allowed_uri_prefixes is not None:
            return cls(issuer, policy, tuple(_Prefix.parse(p) for p in policy.allowed_uri_prefixes))
        parts = _split(issuer)
        origin = None if parts is None else _origin(parts)
        if origin is None:
            raise ConfigError(
                f"Issuer {issuer!r}: StatusListPolicy.allowed_uri_prefixes: the issuer identifier is not "
                "an https URL, so its status lists have no default home; list the https prefixes they "
                "are served under, e.g. allowed_uri_prefixes=('https://status.example/lists/',)"
            )
        return cls(issuer, policy, (_Prefix(origin, ""),))

    def allows(self, url: str) -> bool:
        """``url`` is a place this issuer's lists may be fetched from (also each redirect target)."""
        if len(url) > _MAX_URI_CHARS or not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
            return False
        parts = _split(url)
        origin = None if parts is None else _origin(parts)
        if parts is None or origin is None or _UNSAFE_PATH.search(parts.path):
            return False
        return any(prefix.covers(origin, parts.path) for prefix in self.prefixes)


class StatusReference(NamedTuple):
    """Where the token's status is: entry ``idx`` of the list at ``uri`` (draft §6.2)."""

    idx: int
    uri: str


def reference_of(claims: Mapping[str, Any], rules: StatusListRules) -> StatusReference | None:
    """The token's status-list reference, checked before anything is fetched; None when the
    token carries no ``status`` claim.

    :raises InvalidToken: ``status_claim_malformed`` (draft §6.2: idx a non-negative integer,
        uri a string), ``status_mechanism_unsupported`` (a ``status`` without ``status_list``:
        a mechanism we cannot check, so fail closed), ``status_index_out_of_range`` (past any
        list the caps allow), ``status_uri_not_allowed`` (not https, or not where this issuer's
        lists may live)
    """
    if "status" not in claims:
        return None
    status = claims["status"]
    if not isinstance(status, Mapping):
        raise InvalidToken("status_claim_malformed", _MALFORMED_CLAIM)
    entry = status.get("status_list")
    if entry is None:
        raise InvalidToken("status_mechanism_unsupported", _UNSUPPORTED)
    if not isinstance(entry, Mapping):
        raise InvalidToken("status_claim_malformed", _MALFORMED_CLAIM)
    idx, uri = entry.get("idx"), entry.get("uri")
    if type(idx) is not int or idx < 0 or not isinstance(uri, str):  # bool is no index
        raise InvalidToken("status_claim_malformed", _MALFORMED_CLAIM)
    if idx > rules.policy.max_index:
        raise InvalidToken("status_index_out_of_range", _OUT_OF_RANGE)
    if not rules.allows(uri):
        raise InvalidToken("status_uri_not_allowed", _URI_REFUSED)
    return StatusReference(idx, uri)


@dataclass(frozen=True, slots=True)
class StatusList:
    """The decompressed byte array and its entry width (draft §4.1)."""

    bits: int
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """How many entries the array holds."""
        return len(self.data) * (8 // self.bits)

    def status(self, idx: int) -> int:
        """Entry ``idx``: ``bits`` wide, packed from the least significant bit of each byte.

        :raises InvalidToken: ``status_index_out_of_range``: no statement can be made, so the
            token is refused (draft §8.3 step 6)
        """
        per_byte = 8 // self.bits
        if not 0 <= idx < len(self.data) * per_byte:
            raise InvalidToken("status_index_out_of_range", _OUT_OF_RANGE)
        byte = self.data[idx // per_byte]
        return (byte >> ((idx % per_byte) * self.bits)) & ((1 << self.bits) - 1)


def decode_status_list(claims: Mapping[str, Any], policy: StatusListPolicy = DEFAULT_POLICY) -> StatusList:
    """Read the ``status_list`` claim of a Status List Token (draft §4.2) within the caps.

    :raises StatusListError: no object, ``bits`` not 1, 2, 4 or 8, ``lst`` not unpadded
        base64url, a stream over ``max_compressed_bytes``, not zlib (RFC 1950), truncated,
        followed by other bytes, or inflating past ``max_decompressed_bytes``
    """
    entry = claims.get("status_list")
    if not isinstance(entry, Mapping):
        raise StatusListError("status_list claim missing or not an object")
    bits, lst = entry.get("bits"), entry.get("lst")
    if type(bits) is not int or bits not in _ALLOWED_BITS:
        raise StatusListError("bits is not 1, 2, 4 or 8")
    if not isinstance(lst, str):
        raise StatusListError("lst is not a string")
    if len(lst) > -(-policy.max_compressed_bytes * 4 // 3):
        raise StatusListError("lst over the compressed size cap")
    if len(lst) % 4 == 1 or not _BASE64URL.fullmatch(lst):
        raise StatusListError("lst is not unpadded base64url")
    compressed = base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))
    return StatusList(bits, _inflate(compressed, policy.max_decompressed_bytes))


def _inflate(compressed: bytes, cap: int) -> bytes:
    """Exactly one complete zlib stream, inflated to at most ``cap`` bytes (no zip bomb)."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, cap + 1)
    except zlib.error:
        raise StatusListError("lst is not a zlib stream") from None
    if len(data) > cap:
        raise StatusListError("lst inflates past the decompressed size cap")
    if not inflater.eof:
        raise StatusListError("lst is a truncated zlib stream")
    if inflater.unused_data:
        raise StatusListError("lst has bytes after the end of its zlib stream")
    return data


@dataclass(frozen=True, slots=True)
class VerifiedStatusList:
    """A list whose token passed every check, and how long it may be used."""

    status_list: StatusList
    #: refetch after this (epoch seconds): iat + ttl, clamped, never past ``expires_at``
    fresh_until: float
    #: never judge by it after this: the token's ``exp`` plus leeway (draft §12.7), or inf
    expires_at: float


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StatusListError(f"{name} is not a number")
    return float(value)


def read_status_list_token(
    compact: str | bytes, uri: str, rules: StatusListRules, verify: VerifyListToken, now: float
) -> VerifiedStatusList:
    """Verify and decode the Status List Token fetched from ``uri`` (draft §5.1, §8.3): the
    signature is ``verify``'s (a key of the referenced token's issuer), the rest is
    :func:`check_status_list_token`'s.

    :raises StatusListError: on any failure, the signature's included
    """
    try:
        text = compact.decode("ascii") if isinstance(compact, bytes) else compact
    except UnicodeDecodeError:
        raise StatusListError("body is not a compact JWS") from None
    try:
        header, claims = verify(text.strip())
    except InvalidToken:
        raise StatusListError("signature or key refused") from None
    return check_status_list_token(header, claims, uri, rules, now)


def check_status_list_token(
    header: Mapping[str, Any], claims: Mapping[str, Any], uri: str, rules: StatusListRules, now: float
) -> VerifiedStatusList:
    """The checks on a Status List Token whose signature was verified (draft §5.1, §8.3 step 4).

    ``typ`` is ``statuslist+jwt`` (explicit typing, RFC 8725 §3.11), ``sub`` is ``uri``,
    ``iss`` (when present) is the referenced token's issuer, ``iat`` is present and not in the
    future, ``nbf`` and ``exp`` hold, ``aud`` is absent (a status list has no audience we could
    be; RFC 7519 §4.1.3), ``ttl`` is positive; then the list is decoded within the caps.

    :raises StatusListError: on any failure
    """
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != _TYP:
        raise StatusListError("typ is not statuslist+jwt")
    if "crit" in header:
        raise StatusListError("crit header present")
    if claims.get("sub") != uri:
        raise StatusListError("sub is not the uri the token references")
    if "iss" in claims and claims["iss"] != rules.issuer:
        raise StatusListError("iss is not the referenced token's issuer")
    if "aud" in claims:
        raise StatusListError("aud present")
    policy = rules.policy
    return VerifiedStatusList(decode_status_list(claims, policy), *_lifetime(claims, policy, now))


def _lifetime(claims: Mapping[str, Any], policy: StatusListPolicy, now: float) -> tuple[float, float]:
    """(fresh_until, expires_at): iat + ttl clamped to [min_ttl, max_ttl] from now, capped by exp."""
    iat, exp, nbf, ttl = (_number(claims, name) for name in ("iat", "exp", "nbf", "ttl"))
    if iat is None:
        raise StatusListError("iat missing")
    if iat > now + policy.leeway or (nbf is not None and nbf > now + policy.leeway):
        raise StatusListError("iat or nbf in the future")
    expires_at = math.inf if exp is None else exp + policy.leeway
    if now >= expires_at:
        raise StatusListError("expired")
    if ttl is not None and ttl <= 0:
        raise StatusListError("ttl is not positive")
    wanted = policy.default_ttl if ttl is None else iat + ttl - now
    return min(now + min(max(wanted, policy.min_ttl), policy.max_ttl), expires_at), expires_at


def check_token_status(status_list: StatusList, reference: StatusReference) -> None:
    """Pass a token whose entry is VALID; refuse every other value (draft §7).

    :raises InvalidToken: ``token_revoked`` (INVALID), ``token_suspended`` (SUSPENDED),
        ``token_status_unknown`` (any other value: application-specific or unregistered, so
        fail closed), ``status_index_out_of_range``
    """
    value = status_list.status(reference.idx)
    if value == STATUS_VALID:
        return
    if value == STATUS_INVALID:
        raise InvalidToken("token_revoked", "The access token has been revoked")
    if value == STATUS_SUSPENDED:
        raise InvalidToken("token_suspended", "The access token is suspended")
    raise InvalidToken("token_status_unknown", "The access token's status does not allow its use")
