"""Identity: who the verified token says the caller is (a read-only value)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

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
    found: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        found.update(scp.split())
    elif isinstance(scp, list):
        found.update(s for s in scp if isinstance(s, str))
    return frozenset(found)


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def identity_from_claims(claims: Claims, issuer: str) -> Identity:
    """Build the Identity of checked claims (types were verified by the claim checks)."""
    amr = claims.get("amr")
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    acr = claims.get("acr")
    return Identity(
        subject=claims.get("sub"),
        issuer=issuer,
        scopes=_scopes(claims),
        claims=MappingProxyType(claims),
        token_id=claims.get("jti"),
        expires_at=_number(claims.get("exp")),
        issued_at=_number(claims.get("iat")),
        auth_time=_number(claims.get("auth_time")),
        acr=acr if isinstance(acr, str) else None,
        amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        binding=jkt if isinstance(jkt, str) else None,
    )
