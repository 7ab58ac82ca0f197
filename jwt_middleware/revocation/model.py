"""What can be revoked: one token, or every token of a subject, session or client issued up to a time.

Values only; the mirror checks them and the stores share them. A revocation is never undone:
a token entry lasts until the token could no longer pass its own ``exp`` check, a cut-off for
as long as the store holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "CLIENT_REVOKED",
    "CUT_OFF_KINDS",
    "SESSION_REVOKED",
    "SUBJECT_REVOKED",
    "TOKEN_REVOKED",
    "CutOff",
    "CutOffKind",
    "Revocation",
    "RevokedToken",
]

#: Refusal reasons the check returns, one per kind (``InvalidToken(reason)``, RFC 6750 §3.1).
TOKEN_REVOKED: Final = "token_revoked"
SUBJECT_REVOKED: Final = "subject_revoked"
SESSION_REVOKED: Final = "session_revoked"
CLIENT_REVOKED: Final = "client_revoked"

#: Whose tokens a cut-off covers: ``sub`` (RFC 7519 §4.1.2), ``sid`` (OpenID Connect Front-Channel
#: Logout §3, the session), ``client_id`` (RFC 9068 §2.2).
CutOffKind: TypeAlias = Literal["subject", "session", "client"]
CUT_OFF_KINDS: Final[tuple[CutOffKind, ...]] = ("subject", "session", "client")


@dataclass(frozen=True, slots=True)
class RevokedToken:
    """One token, named by ``(issuer, jti)`` (RFC 7519 §4.1.7), refused until ``until``.

    ``until`` is epoch seconds on the app's clock: the token's ``exp`` plus the leeway, after
    which its own expiry check refuses it and the entry is forgotten.

    :raises ValueError: an empty issuer or jti, or an ``until`` that is not finite
    """

    issuer: str
    jti: str
    until: float

    def __post_init__(self) -> None:
        _check_text("issuer", self.issuer)
        _check_text("jti", self.jti)
        _check_time("until", self.until)


@dataclass(frozen=True, slots=True)
class CutOff:
    """Every token of one subject, session or client issued at or before ``at`` is refused.

    "At or before": a token whose ``iat`` equals ``at`` is refused. ``iat`` is usually whole
    seconds (RFC 7519 §2 NumericDate), so a token minted later in the very second of the
    cut-off carries ``iat == floor(at)`` and is refused too; that is the safe side, since
    nothing tells it apart from one minted just before. A token without ``iat`` cannot show it
    was issued after, so it is refused under any cut-off that covers it. A cut-off only moves
    forward: a later one with an earlier ``at`` changes nothing.

    ``at`` is compared with the issuer's ``iat``: pass the time the revocation took effect
    (not floored), on a clock in step with the issuer's.

    :raises ValueError: an unknown kind, an empty issuer or value, or an ``at`` that is not finite
    """

    kind: CutOffKind
    issuer: str
    value: str
    at: float

    def __post_init__(self) -> None:
        if self.kind not in CUT_OFF_KINDS:
            raise ValueError(f"kind must be one of {CUT_OFF_KINDS}")
        _check_text("issuer", self.issuer)
        _check_text(self.kind, self.value)
        _check_time("at", self.at)


#: One change of revocation state, as listeners receive it.
Revocation: TypeAlias = RevokedToken | CutOff


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")


def _check_time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite epoch time in seconds")
