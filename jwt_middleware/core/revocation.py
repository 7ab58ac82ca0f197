"""The revocation step: refuse a verified token the revocation mirror holds revoked (issue 12).

Runs on every request, verified-cache hits included, after the sender and replay checks and
before scopes (DESIGN.md), against an in-process mirror: nothing is awaited, no effect is
yielded. The mirror is read through :class:`RevocationCheck`, so the core imports no store.
"""

from __future__ import annotations

from typing import Final, Protocol

from ..errors import InvalidToken, Unavailable
from ..identity import Identity

__all__ = ["REVOKED_DESCRIPTION", "STALE_REASON", "RevocationCheck", "check_revocation"]

#: one constant text for every kind: the reason code says which (never a claim value)
REVOKED_DESCRIPTION: Final = "The access token was revoked"
#: the mirror has not been confirmed current within its bound (503, or an audited pass when open)
STALE_REASON: Final = "revocation_state_stale"


class RevocationCheck(Protocol):
    """What the step reads: ``jwt_middleware.revocation.RevocationMirror`` satisfies it."""

    def check(
        self,
        issuer: str,
        jti: str | None,
        subject: str | None,
        sid: str | None,
        client_id: str | None,
        issued_at: float | None,
        now: float,
    ) -> str | None: ...

    def trusted(self, now: float) -> bool: ...

    #: ``trusted(now)`` is ``now <= trusted_until``: one attribute for the hot path
    trusted_until: float


def check_revocation(identity: Identity, mirror: RevocationCheck, now: float, fail_open: bool) -> bool:
    """Refuse a revoked token; say whether it passed on a mirror that may be behind.

    Why the refusal comes first: a mirror that is stale still holds every revocation it has
    seen, and a token it refuses is revoked whatever else it may have missed, so it gets the
    401, never the 503 (nor a pass under ``store_failure="open"``).

    :returns: True when the token passed only because ``fail_open`` (the mirror is stale: the
        caller audits it), False when the mirror is current and does not refuse it
    :raises InvalidToken: ``token_revoked``, ``subject_revoked``, ``session_revoked`` or
        ``client_revoked`` (RFC 6750 §3.1 ``invalid_token``; RFC 7009 §2.2: a revoked token
        is invalid)
    :raises Unavailable: the mirror is stale and the config fails closed (503, Retry-After)
    """
    reason = mirror.check(
        identity.issuer,
        identity.token_id,
        identity.subject,
        identity.session_id,
        identity.client_id,
        identity.issued_at,
        now,
    )
    if reason is not None:
        raise InvalidToken(reason, REVOKED_DESCRIPTION)
    if mirror.trusted(now):
        return False
    if fail_open:
        return True
    raise Unavailable(STALE_REASON, retry_after=1)
