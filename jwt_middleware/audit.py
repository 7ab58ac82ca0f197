"""One structured audit event per decision; tokens appear only as a short fingerprint."""

from __future__ import annotations

import hashlib
import logging
from typing import Final

from .core.pipeline import Trace
from .errors import Refusal

__all__ = ["fingerprint", "record_decision", "record_revocation"]

logger: Final = logging.getLogger("jwt_middleware.audit")

_memo = getattr(logger, "_cache", None)
#: logging's own per-level memo of the audit logger (``Logger._cache``; every ``setLevel``,
#: ``disable`` and ``dictConfig`` clears it in place): ``_LEVEL_MEMO.get(INFO) is False`` says
#: exactly what ``logger.isEnabledFor(INFO)`` would. Anything else: the full check.
#: Why: on a cached token the method call was 1.5k of the ~18k instructions the middleware
#: adds to a request. An interpreter without the attribute gets an empty memo: full checks.
_LEVEL_MEMO: Final[dict[int, bool]] = _memo if isinstance(_memo, dict) else {}
#: refusals of a request that carried no token (``MissingToken``, and ``DPoPRequired`` on a
#: DPoP-only route): the ordinary first step of a challenge, logged at INFO like an allow
_ROUTINE_REASONS: Final = frozenset({"missing_token"})


def fingerprint(token: str) -> str:
    """A short, non-reversible handle for a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


def record_decision(trace: Trace, refusal: Refusal | None) -> None:
    """Log ``jwt_middleware.audit`` with an ``audit`` dict: INFO for an allow and for a request
    that carried no token, WARNING for every other refusal.

    An allow under ``store_failure="open"`` that skipped a check (the revocation mirror was
    stale) is a WARNING with that reason (``revocation_state_stale``) instead of ``ok``.

    Why a missing token is not a warning: browsers, health checks and clients probing for the
    challenge send none, on every first request; at WARNING they drowned the refusals that
    mean something (a forged, expired or replayed token). Costs one dict lookup when the
    logger is off.
    """
    degraded = trace.degraded
    if refusal is None:
        # an allow that skipped a check (store_failure="open") is a warning
        level = logging.INFO if degraded is None else logging.WARNING
    else:
        level = logging.INFO if refusal.reason in _ROUTINE_REASONS else logging.WARNING
    if not _LEVEL_MEMO.get(level, True) or not logger.isEnabledFor(level):
        return
    identity = trace.identity
    event = {
        "outcome": "allow" if refusal is None else "deny",
        "reason": (degraded or "ok") if refusal is None else refusal.reason,
        "status": 200 if refusal is None else refusal.status,
        "issuer": identity.issuer if identity else trace.issuer,
        "subject": identity.subject if identity else None,
        "token": fingerprint(token) if (token := trace.token_text()) else None,
    }
    logger.log(level, "jwt %(outcome)s reason=%(reason)s fp=%(token)s", event, extra={"audit": event})


def record_revocation(kind: str, issuer: str, value: str, time: float, *, stored: bool) -> None:
    """Log one ``jwt_middleware.audit`` event per revocation: outcome ``revoke``, INFO; WARNING
    when the store failed (``stored`` False: it holds in this process only, until the store
    writes it on reconnect).

    The value (jti, sub, sid or client_id) is shown only as :func:`fingerprint` of it. Why:
    a jti or sid can be a handle an attacker replays elsewhere (front-channel logout URLs,
    IdP session lookups), and an audit trail is read by more people than the IdP's admins;
    whoever holds the value can compute its fingerprint to find the event.
    """
    level = logging.INFO if stored else logging.WARNING
    if not logger.isEnabledFor(level):
        return
    event = {
        "outcome": "revoke",
        "kind": kind,
        "issuer": issuer,
        "value": fingerprint(value),
        # a token entry lasts until this time; a cut-off refuses tokens issued at or before it
        "until" if kind == "token" else "at": time,
        "stored": stored,
    }
    logger.log(level, "jwt revoke kind=%(kind)s value=%(value)s", event, extra={"audit": event})
