"""Which tokens a verified security event ends: CAEP and RISC events mapped to revocation cut-offs.

Why pure: the mapping is policy (which event ends whose tokens, and from when), decided from
the event alone; the only outside help it needs, an app's ``subject_resolver`` for an email
or opaque user, is called by ``caep_delivery`` between :func:`plan_event` and
:func:`cut_offs_of`. Cut-offs are set at the event's own time (``SecurityEvent.at``), never
the arrival time: a token minted after the event but before the SET arrived is the user's
new, legitimate one.

What each event does:

- CAEP 1.0 §3.1 ``session-revoked``: the subject's session (``sid``) when the subject names one
  (a ``complex`` subject's ``session``), else every token of the user;
- CAEP 1.0 §3.2 ``credential-change`` with ``change_type`` ``revoke``, ``delete`` or ``update``:
  every token of the user (the old credential is dead, and what it authenticated with it);
  ``create`` changes nothing; a missing or unknown ``change_type`` is refused;
- CAEP 1.0 §3.3 ``token-claims-change``: the session's tokens, else the user's: a token issued
  before the change carries the claims that were taken away, and which claims it carries we
  cannot know here. The cost is one refresh, which brings the new claims;
- RISC 1.0 §2.3 ``account-disabled``, §2.2 ``account-purged`` and §2.1 ``credential-compromise``:
  every token of the user, whatever session the subject names: the account (or a credential
  anyone may now hold) can no longer vouch for any of them;
- every other event type: accepted, ignored, logged at INFO.

Subjects (RFC 9493): ``iss_sub`` is ``(iss, sub)``, used only when ``iss`` is one of the
transmitter's ``token_issuers``; ``aliases`` and the ``user`` of a ``complex`` subject are read
the same way; a ``complex`` subject's ``session`` in ``opaque`` format is the tokens' ``sid``.
``email``, ``phone_number``, ``opaque``, ``account``, ``did`` and ``uri`` users need the app's
resolver, or the event changes nothing and a WARNING names the format, never the value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .caep_set import SecurityEvent, Transmitter, bad_set, is_text
from .model import CutOff

__all__ = [
    "CREDENTIAL_CHANGE",
    "RISC_ACCOUNT_DISABLED",
    "RISC_ACCOUNT_PURGED",
    "RISC_CREDENTIAL_COMPROMISE",
    "SESSION_REVOKED_EVENT",
    "TOKEN_CLAIMS_CHANGE",
    "EventPlan",
    "cut_offs_of",
    "iss_sub_pair",
    "needs_resolver",
    "plan_event",
]

#: the receiver's logger, one for all its modules: operators filter on one name
logger: Final = logging.getLogger("jwt_middleware.revocation.caep")

_CAEP: Final = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED_EVENT: Final = _CAEP + "session-revoked"
CREDENTIAL_CHANGE: Final = _CAEP + "credential-change"
TOKEN_CLAIMS_CHANGE: Final = _CAEP + "token-claims-change"
_RISC: Final = "https://schemas.openid.net/secevent/risc/event-type/"
RISC_ACCOUNT_DISABLED: Final = _RISC + "account-disabled"
RISC_ACCOUNT_PURGED: Final = _RISC + "account-purged"
RISC_CREDENTIAL_COMPROMISE: Final = _RISC + "credential-compromise"

#: events that end the named session, else the user's tokens
_SESSION_SCOPED: Final = frozenset({SESSION_REVOKED_EVENT, TOKEN_CLAIMS_CHANGE})
#: events that end every token of the user, named session or not
_SUBJECT_SCOPED: Final = frozenset({RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED, RISC_CREDENTIAL_COMPROMISE})
#: CAEP 1.0 §3.2: the change types; these three leave the old credential unusable
_CHANGE_TYPES: Final = frozenset({"create", "revoke", "update", "delete"})
_KILLING_CHANGES: Final = frozenset({"revoke", "update", "delete"})
#: RFC 9493 §3.2 formats that name a user but not its ``sub``: only the app can map them
_RESOLVER_FORMATS: Final = frozenset({"email", "phone_number", "opaque", "account", "did", "uri"})
_MAX_ALIASES: Final = 16

Reach = Literal["session", "subject"]


@dataclass(frozen=True, slots=True)
class EventPlan:
    """What one event ends, before its users are mapped to ``(token issuer, sub)`` pairs.

    ``reach`` ``session``: the ``sessions`` if any, else the users; ``subject``: the users.
    """

    event: SecurityEvent
    reach: Reach
    users: tuple[Mapping[str, Any], ...]
    sessions: tuple[str, ...]


def plan_event(event: SecurityEvent) -> EventPlan | None:
    """The event's plan, or None for an event that ends nothing (logged at INFO).

    :raises SETRefused: a credential-change without a known ``change_type`` (CAEP 1.0 §3.2), a
        revoking event without a subject, or a malformed subject identifier (RFC 9493)
    """
    reach = _reach_of(event)
    if reach is None:
        logger.info("set event ignored (type not acted on): %r", event.type[:200])
        return None
    if event.subject is None:
        raise bad_set("missing_subject", "The event needs a subject (sub_id)")
    users, sessions = _identify(event.subject)
    return EventPlan(event, reach, tuple(users), tuple(sessions))


def _reach_of(event: SecurityEvent) -> Reach | None:
    if event.type in _SESSION_SCOPED:
        return "session"
    if event.type in _SUBJECT_SCOPED:
        return "subject"
    if event.type == CREDENTIAL_CHANGE:
        change = event.payload.get("change_type")
        if change not in _CHANGE_TYPES:
            raise bad_set(
                "bad_change_type", "credential-change needs change_type create, revoke, update or delete"
            )
        return "subject" if change in _KILLING_CHANGES else None
    return None


def _identify(subject: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """User identifiers and session ids named by an RFC 9493 / SSF subject."""
    kind = subject.get("format")
    if kind == "aliases":
        identifiers = subject.get("identifiers")
        if not isinstance(identifiers, list) or not identifiers or len(identifiers) > _MAX_ALIASES:
            raise bad_set("bad_aliases", "An aliases subject needs a list of identifiers")
        if not all(isinstance(i, dict) and i.get("format") != "aliases" for i in identifiers):
            raise bad_set("bad_aliases", "Each alias must be a non-alias subject identifier")
        return list(identifiers), []
    if kind == "complex":
        user, session = subject.get("user"), subject.get("session")
        users, sessions = ([], []) if user is None else _identify(_object(user))
        if session is not None:
            session = _object(session)
            if session.get("format") == "opaque":
                sid = session.get("id")
                if not is_text(sid):
                    raise bad_set("bad_session", "An opaque session identifier needs an id string")
                sessions.append(sid)
        return users, sessions
    if not isinstance(kind, str):
        raise bad_set("bad_subject", "A subject identifier needs a format")
    return [subject], []


def _object(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise bad_set("bad_subject", "A subject identifier must be a JSON object")
    return value


def iss_sub_pair(user: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(iss, sub)`` of an ``iss_sub`` identifier (RFC 9493 §3.2.4); None for other formats.

    :raises SETRefused: an ``iss_sub`` without ``iss`` and ``sub`` strings
    """
    if user.get("format") != "iss_sub":
        return None
    iss, sub = user.get("iss"), user.get("sub")
    if not (is_text(iss) and is_text(sub)):
        raise bad_set("bad_iss_sub", "An iss_sub subject needs iss and sub strings")
    return iss, sub


def needs_resolver(user: Mapping[str, Any]) -> bool:
    """Whether only the app's ``subject_resolver`` can map this user identifier to a ``sub``."""
    return user.get("format") in _RESOLVER_FORMATS


def cut_offs_of(plan: EventPlan, pairs: Iterable[tuple[str, str]], transmitter: Transmitter) -> list[CutOff]:
    """The cut-offs of one planned event, given its users as ``(token issuer, sub)`` pairs.

    Pairs of an issuer the transmitter may not revoke (not in ``token_issuers``) are dropped
    with a WARNING; a session's issuer is its users' issuers, else every ``token_issuers``.
    """
    trusted = set(transmitter.token_issuers or ())
    kept: list[tuple[str, str]] = []
    for iss, sub in pairs:
        if iss not in trusted:
            logger.warning("set subject of an issuer this transmitter may not revoke: %r", iss[:200])
        elif (iss, sub) not in kept:
            kept.append((iss, sub))
    at = plan.event.at
    if plan.reach == "session" and plan.sessions:
        issuers = {iss for iss, _ in kept} or trusted
        found = [CutOff("session", iss, sid, at) for iss in sorted(issuers) for sid in plan.sessions]
    else:
        found = [CutOff("subject", iss, sub, at) for iss, sub in kept]
    if not found:
        subject = plan.event.subject or {}
        logger.warning(
            "set event not applied: no subject this receiver can map (format %r); "
            "give SETReceiver a subject_resolver",
            str(subject.get("format"))[:64],
        )
    return found
