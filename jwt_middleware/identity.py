"""Identity: who the verified token says the caller is (a read-only value)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Final

from ._types import Claims

__all__ = ["Identity", "identity_from_claims"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified caller. ``claims`` is a read-only view of the whole payload."""

    subject: str | None
    issuer: str
    scopes: frozenset[str]
    claims: Mapping[str, Any]
    token_id: str | None = None
    expires_at: float | None = None
    issued_at: float | None = None
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    #: RFC 7800 confirmation: the JWK SHA-256 thumbprint a DPoP-bound token names (RFC 9449 §6)
    binding: str | None = None

    def has_scopes(self, required: tuple[str, ...] | frozenset[str]) -> bool:
        return self.scopes.issuperset(required)


def _scopes(claims: Claims) -> frozenset[str]:
    """``scope`` (RFC 8693 §4.2, RFC 9068 §2.2.3: space-separated) and ``scp`` (string or list)."""
    scope = claims.get("scope")
    scp = claims.get("scp")
    if scp is None:  # the usual case: straight to the frozenset, no set in between
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    found: set[str] = set(scope.split()) if isinstance(scope, str) else set()
    if isinstance(scp, str):
        found.update(scp.split())
    elif isinstance(scp, list):
        found.update(s for s in scp if isinstance(s, str))
    return frozenset(found)


def _number(value: object) -> float | None:
    # (a tuple, not int | float: that builds a union object on every call)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _setter(name: str) -> Callable[[Identity, Any], None]:
    setter: Callable[[Identity, Any], None] = Identity.__dict__[name].__set__
    return setter


# Why slot setters on a bare instance, not Identity(...): the frozen dataclass's __init__ sets
# each field through object.__setattr__ (its own __setattr__ refuses), more than half the cost
# of building the identity on every request; a slot's member descriptor is the C setter behind
# it. Identity itself is unchanged: Identity(...) and dataclasses.replace() work as ever. In
# field order: a field added to Identity makes the unpacking below fail loudly (and
# tests/core/test_identity_fast.py compares the result with Identity(...) field by field).
_SETTERS: Final = tuple(_setter(f.name) for f in fields(Identity))
_NEW: Final = object.__new__


def identity_from_claims(claims: Claims, issuer: str) -> Identity:
    """Build the Identity of checked claims (types were verified by the claim checks)."""
    (
        set_subject,
        set_issuer,
        set_scopes,
        set_claims,
        set_token_id,
        set_expires_at,
        set_issued_at,
        set_auth_time,
        set_acr,
        set_amr,
        set_binding,
    ) = _SETTERS
    get = claims.get
    amr = get("amr")
    cnf = get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    acr = get("acr")
    identity: Identity = _NEW(Identity)
    set_subject(identity, get("sub"))
    set_issuer(identity, issuer)
    set_scopes(identity, _scopes(claims))
    set_claims(identity, MappingProxyType(claims))
    set_token_id(identity, get("jti"))
    set_expires_at(identity, _number(get("exp")))
    set_issued_at(identity, _number(get("iat")))
    set_auth_time(identity, _number(get("auth_time")))
    set_acr(identity, acr if isinstance(acr, str) else None)
    set_amr(identity, tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else ())
    set_binding(identity, jkt if isinstance(jkt, str) else None)
    return identity
