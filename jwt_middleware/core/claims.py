"""Registered claim checks (RFC 7519 §4.1, RFC 9068 §4) against an injected ``now``.

Each check is a pure function of the claims, the policy and ``now``; it returns nothing or
raises InvalidToken with a constant description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .._types import Claims
from ..errors import InvalidToken

__all__ = ["ClaimPolicy", "check_audience", "check_claims", "check_times", "time_claim"]

#: Largest time we accept: the largest integer a JSON number holds exactly in every language.
_MAX_TIME: Final = float(2**53)
_EXPIRED: Final = "The access token expired"


@dataclass(frozen=True, slots=True)
class ClaimPolicy:
    """What one issuer's tokens must satisfy (built once from Config and Issuer)."""

    issuer: str
    audiences: frozenset[str]
    leeway: float
    require_exp: bool = True
    require_iat: bool = False
    max_age: float | None = None
    max_lifetime: float | None = None
    required: tuple[str, ...] = ()


def time_claim(claims: Claims, name: str) -> float | None:
    """A NumericDate (RFC 7519 §2): a finite, non-negative JSON number, never a bool or a string."""
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise InvalidToken(f"invalid_{name}", "A time claim of the access token is invalid")
        return None
    # Why a tuple, not ``int | float``: the union would be built anew on every call.
    if value.__class__ is bool or not isinstance(value, (int, float)) or not 0 <= value <= _MAX_TIME:
        # NaN and ±Infinity fail the range comparison too (the gate refuses their literals anyway).
        raise InvalidToken(f"invalid_{name}", "A time claim of the access token is invalid")
    return float(value)


def check_times(claims: Claims, policy: ClaimPolicy, now: float) -> None:
    """exp (§4.1.4), nbf (§4.1.5), iat (§4.1.6) with leeway, plus max age and max lifetime."""
    leeway = policy.leeway
    # Why inline: an integer in range is what IdPs send; anything else (absent, null, float,
    # bool, string, out of range) takes time_claim's full rules.
    exp = claims.get("exp")
    if exp.__class__ is not int or not 0 <= exp <= _MAX_TIME:
        exp = time_claim(claims, "exp")
    nbf = claims.get("nbf")
    if nbf.__class__ is not int or not 0 <= nbf <= _MAX_TIME:
        # usually absent: only a present nbf (an explicit null too) needs the full rules
        nbf = time_claim(claims, "nbf") if nbf is not None or "nbf" in claims else None
    iat = claims.get("iat")
    if iat.__class__ is not int or not 0 <= iat <= _MAX_TIME:
        iat = time_claim(claims, "iat")
    if exp is None:
        if policy.require_exp:
            raise InvalidToken("missing_exp", "The access token has no expiry")
    elif now >= exp + leeway:
        raise InvalidToken("token_expired", _EXPIRED)
    if nbf is not None and now + leeway < nbf:
        raise InvalidToken("token_not_yet_valid", "The access token is not valid yet")
    if iat is None:
        if policy.require_iat or policy.max_age is not None:
            raise InvalidToken("missing_iat", "The access token has no issue time")
    else:
        if iat > now + leeway:
            raise InvalidToken("iat_in_future", "The access token was issued in the future")
        if exp is not None and exp <= iat:
            raise InvalidToken("exp_before_iat", "The access token expired before it was issued")
        if policy.max_age is not None and now - iat > policy.max_age + leeway:
            raise InvalidToken("token_too_old", _EXPIRED)
    if policy.max_lifetime is not None and exp is not None:
        _check_lifetime(exp, iat, now, policy.max_lifetime, leeway)


def _check_lifetime(exp: float, iat: float | None, now: float, max_lifetime: float, leeway: float) -> None:
    """``exp - iat`` (RFC 7519 §4.1.4, §4.1.6) at most ``max_lifetime``; without iat,
    ``exp - now`` at most ``max_lifetime + leeway``.

    Why no leeway with iat: both ends come from the token (the issuer's clock), so skew between
    hosts does not enter, and a leeway would only let every token live that much longer.
    ``exp - now`` mixes the issuer's clock with ours, so there the skew allowance applies.
    """
    if iat is not None:
        too_long = exp - iat > max_lifetime
    else:
        too_long = exp - now > max_lifetime + leeway
    if too_long:
        raise InvalidToken("lifetime_too_long", "The access token lives too long")


def check_audience(claims: Claims, audiences: frozenset[str]) -> None:
    """``aud`` must be a string or an array of strings holding one of ours (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        if aud in audiences:
            return
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if not audiences.isdisjoint(aud):
            return
    raise InvalidToken("invalid_audience", "The access token is not meant for this API")


_STRING_CLAIMS: Final = frozenset({"sub", "jti", "scope", "acr", "client_id"})
#: identifiers: an empty or whitespace-only value names nobody (``iss`` must equal a configured,
#: non-blank issuer, so it cannot be blank either)
_NON_BLANK: Final = frozenset({"sub", "jti", "client_id"})
_TYPED_CLAIMS: Final = _STRING_CLAIMS | {"scp", "amr", "cnf", "auth_time"}


def _check_types(claims: Claims) -> None:
    """Present means well-typed: an explicit ``null`` is no string (RFC 7519 §4.1)."""
    # sorted: with two mistyped claims the reason is the same in every process
    for name in sorted(_TYPED_CLAIMS.intersection(claims)):
        value = claims[name]
        if name in _STRING_CLAIMS:
            ok = isinstance(value, str)
            if ok and name in _NON_BLANK and not value.strip():
                raise InvalidToken(f"invalid_{name}", "A claim of the access token is empty")
        elif name == "scp":
            ok = isinstance(value, str) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            )
        elif name == "amr":
            ok = isinstance(value, list) and all(isinstance(a, str) for a in value)
        elif name == "cnf":
            ok = isinstance(value, dict) and isinstance(value.get("jkt", ""), str)
            # RFC 7800 §3.1: cnf binds the token to a key the sender must prove; only jkt (RFC 9449
            # §6.1) is checked here, so any other member (x5t#S256, RFC 8705 §3.1) cannot be
            if ok and (not value or len(value) > 1 or "jkt" not in value):
                raise InvalidToken("unsupported_confirmation", "The access token's binding cannot be checked")
        else:
            time_claim(claims, name)  # auth_time
            continue
        if not ok:
            raise InvalidToken(f"invalid_{name}", "A claim of the access token has the wrong type")


def check_claims(claims: Claims, policy: ClaimPolicy, now: float) -> None:
    """All claim checks for one issuer's policy.

    :raises InvalidToken: the first failed check, with a reason code
    """
    if claims.get("iss") != policy.issuer:
        raise InvalidToken("invalid_issuer", "The access token's issuer is not trusted")
    check_times(claims, policy, now)
    check_audience(claims, policy.audiences)
    _check_types(claims)
    for name in policy.required:
        value = claims.get(name)
        # Why blank strings too: a required "" or "  " would pass as present yet say nothing
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InvalidToken("missing_claim", "The access token lacks a required claim")
