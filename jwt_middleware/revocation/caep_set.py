"""The checks a pushed Security Event Token passes before any of its events is acted on (RFC 8417, RFC 8935).

Why a module of its own: these are pure functions of the body, the trusted transmitters and
``now``, with no socket, store or key fetch, so they read and test like the core's checks
and a WSGI or polling receiver (RFC 8936) could reuse them unchanged. ``caep_delivery`` runs
them in order: :func:`read_set` (strict decode, ``typ``, the transmitter named by ``iss``),
:func:`check_pusher` (push authentication against that transmitter), :func:`check_key_header`
and :func:`check_set_signature` around the key cache, :func:`check_set_claims`, then
:func:`read_events`. Each refusal is a :class:`SETRefused` carrying its HTTP answer; its
description is a constant, so nothing of the SET is ever echoed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from .._types import Claims
from ..config import HMAC_ALGORITHMS, Issuer
from ..core.gate import ParsedToken, parse_token
from ..core.verify import check_signature, normalize_typ
from ..errors import ConfigError, InvalidToken
from ..keys.cache import PinnedKey
from ..keys.sources import KeySource

__all__ = [
    "MAX_TEXT",
    "SETRefused",
    "SecurityEvent",
    "Transmitter",
    "bad_set",
    "check_key_header",
    "check_pusher",
    "check_set_claims",
    "check_set_signature",
    "is_text",
    "key_refused",
    "read_events",
    "read_set",
]

MAX_TEXT: Final = 1024  # longest jti, kid, sub or sid taken from a SET
_MAX_EVENTS: Final = 16  # RFC 8417 allows several related events; SSF sends one
_KEY_HEADERS: Final = frozenset({"jku", "jwk", "x5u", "x5c"})


@dataclass(frozen=True, slots=True, repr=False)
class Transmitter:
    """One SET transmitter this receiver trusts.

    :param issuer: the exact ``iss`` its SETs carry
    :param keys: where its verification keys come from: ``JWKSUrl`` (SSF metadata's
        ``jwks_uri``), ``OIDCDiscovery(url=".../.well-known/ssf-configuration")`` (its
        ``jwks_uri`` is read; its ``issuer`` must equal ``issuer``), ``JWKSFile`` or ``StaticKeys``
    :param audience: the ``aud`` values that name this receiver (the SSF stream's ``aud``)
    :param algorithms: the asymmetric algorithms its SETs may use, each key pinned to one
    :param token_issuers: the access-token ``iss`` values its events may revoke; default: its own
    :param push_token: a shared secret (at least 32 characters) it must send as
        ``Authorization: Bearer`` (SSF stream ``delivery.authorization_header``); None: SETs
        from it need no push authentication beyond their signature
    :raises ConfigError: a missing or malformed option, naming it and the fix
    """

    issuer: str
    keys: KeySource
    audience: Sequence[str]
    algorithms: Sequence[str]
    token_issuers: Sequence[str] | None = None
    push_token: str | None = None

    def __repr__(self) -> str:  # never print the push token
        token = None if self.push_token is None else "<secret>"
        return f"Transmitter(issuer={self.issuer!r}, audience={self.audience!r}, push_token={token})"

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer.strip():
            raise ConfigError("Transmitter.issuer: give the exact 'iss' value its SETs carry")
        if not isinstance(self.keys, KeySource):
            raise ConfigError(
                f"Transmitter {self.issuer!r}: keys: give a key source, e.g. keys=JWKSUrl('https://"
                "idp.example/jwks') or OIDCDiscovery(url='https://idp.example/.well-known/ssf-configuration')"
            )
        object.__setattr__(self, "audience", _texts(self.audience, "audience", self.issuer))
        object.__setattr__(self, "algorithms", _texts(self.algorithms, "algorithms", self.issuer))
        issuers = (self.issuer,) if self.token_issuers is None else self.token_issuers
        object.__setattr__(self, "token_issuers", _texts(issuers, "token_issuers", self.issuer))
        if any(alg in HMAC_ALGORITHMS for alg in self.algorithms):
            raise ConfigError(
                f"Transmitter {self.issuer!r}: algorithms: SETs are verified with the transmitter's "
                "public keys; list asymmetric algorithms, e.g. algorithms=['RS256', 'ES256']"
            )
        token = self.push_token
        if token is not None and (not isinstance(token, str) or len(token) < 32 or not token.isprintable()):
            raise ConfigError(
                f"Transmitter {self.issuer!r}: push_token: use at least 32 random printable characters, "
                "e.g. secrets.token_urlsafe(32), or None"
            )
        self.as_issuer()  # the key source and algorithms, checked now

    def as_issuer(self) -> Issuer:
        """The key-cache view of this transmitter: its keys pinned to its algorithms."""
        try:
            return Issuer(self.issuer, self.algorithms, self.keys)
        except ConfigError as exc:
            raise ConfigError(f"Transmitter {self.issuer!r}: {exc}") from None


def _texts(value: object, option: str, issuer: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, bytes | Mapping):
        raise ConfigError(f"Transmitter {issuer!r}: {option}: give a list of strings")
    found = tuple(items)
    if not found or any(not isinstance(item, str) or not item for item in found):
        raise ConfigError(f"Transmitter {issuer!r}: {option}: give at least one non-empty string")
    return found


class SETRefused(Exception):
    """A push answered with an error; ``err`` is RFC 8935 §2.4's code (None: not a SET error).

    Why the answer rides on the exception: every check, pure or not, can end the push, and the
    ASGI shell is the one place that turns it into a response.
    """

    def __init__(
        self,
        status: int,
        err: str | None,
        reason: str,
        description: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.err = err
        self.reason = reason
        self.description = description
        self.headers = list(headers)


def bad_set(reason: str, description: str = "The request body is not a valid SET") -> SETRefused:
    """RFC 8935 §2.4 ``invalid_request``: the transmitter must not retry this SET."""
    return SETRefused(400, "invalid_request", reason, description)


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One event of a verified SET: its type, payload, subject and the time the cut-off is set at."""

    type: str
    payload: Mapping[str, Any]
    at: float
    subject: Mapping[str, Any] | None


def read_set(
    body: bytes, transmitters: Mapping[str, Transmitter], max_bytes: int
) -> tuple[ParsedToken, Transmitter]:
    """Decode the SET strictly and find its transmitter by ``iss``; nothing in it is trusted yet.

    :raises SETRefused: not ASCII, unsigned or ``alg: none``, not a compact JWS, a ``typ`` other
        than ``secevent+jwt`` (RFC 8417 §2.3), ``crit``/``b64``, or an issuer not listed
    """
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise bad_set("not_ascii") from None
    if text.count(".") == 2 and text.endswith("."):
        raise bad_set("unsigned_set", "The SET must be signed")
    try:
        parsed = parse_token(text, max_bytes)
    except InvalidToken as exc:
        raise bad_set(exc.reason) from None
    header = parsed.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise bad_set("unsigned_set", "The SET must be signed")
    typ = header.get("typ")
    if not isinstance(typ, str) or normalize_typ(typ) != "secevent+jwt":
        raise bad_set("wrong_typ", "The SET's typ must be secevent+jwt")
    if "crit" in header or "b64" in header:
        raise bad_set("unsupported_crit", "The SET uses an unsupported JWS extension")
    issuer = parsed.claims.get("iss")
    transmitter = transmitters.get(issuer) if isinstance(issuer, str) else None
    if transmitter is None:
        raise SETRefused(400, "invalid_issuer", "unknown_issuer", "The SET's issuer is not trusted here")
    return parsed, transmitter


def check_pusher(transmitter: Transmitter, pushed_by: Transmitter | None) -> None:
    """The push came from the SET's own transmitter, when it has a ``push_token``.

    :param pushed_by: the transmitter whose push token the request carried, if any
    :raises SETRefused: 401 without a token the transmitter requires; 403 with another's token
    """
    if transmitter.push_token is not None and pushed_by is None:
        raise SETRefused(
            401,
            "authentication_failed",
            "push_token_missing",
            "The push could not be authenticated",
            [(b"www-authenticate", b"Bearer")],
        )
    if pushed_by is not None and pushed_by is not transmitter:
        raise SETRefused(
            403, "access_denied", "push_token_other_issuer", "This transmitter may not send this SET"
        )


def key_refused(reason: str = "key_refused") -> SETRefused:
    """RFC 8935 §2.4 ``invalid_key``: the SET's key or signature is not acceptable."""
    return SETRefused(400, "invalid_key", reason, "The SET's signing key is not acceptable")


def check_key_header(parsed: ParsedToken, transmitter: Transmitter) -> tuple[str, str | None]:
    """The header's ``(alg, kid)``, pinned to the transmitter's algorithms; keys are never taken from
    the SET (RFC 8725 §3.10: no ``jku``, ``jwk``, ``x5u``, ``x5c``).

    :raises SETRefused: ``invalid_key`` for an alg not pinned, a key header, or a malformed kid
    """
    header = parsed.header
    alg = header["alg"]
    if alg not in transmitter.algorithms or not _KEY_HEADERS.isdisjoint(header):
        raise key_refused()
    kid = header.get("kid")
    if "kid" in header and (
        not isinstance(kid, str) or not 0 < len(kid) <= MAX_TEXT or not kid.isprintable()
    ):
        raise key_refused()
    return alg, kid


def check_set_signature(parsed: ParsedToken, key: PinnedKey) -> None:
    """The signature, with the key's pinned algorithm (``core.verify.check_signature``).

    :raises SETRefused: ``invalid_key`` with the verifier's reason
    """
    try:
        check_signature(parsed, key)
    except InvalidToken as exc:
        raise key_refused(exc.reason) from None


def check_set_claims(claims: Claims, transmitter: Transmitter, now: float, leeway: float) -> str:
    """RFC 8417 §2.2 and RFC 8935 §2: the SET's own claims. Returns its ``jti``.

    :raises SETRefused: ``invalid_audience`` for an ``aud`` not naming this receiver;
        ``invalid_request`` for a top-level ``sub`` or ``exp``, no ``jti``, or an ``iat``
        missing or later than ``now + leeway``
    """
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in transmitter.audience for a in audiences):
        raise SETRefused(
            400, "invalid_audience", "wrong_audience", "The SET is not addressed to this receiver"
        )
    if "sub" in claims:  # SSF 1.0 §4.1.2: the subject is sub_id; a sub makes it look like a JWT login
        raise bad_set("top_level_sub", "A SET carries its subject in sub_id or the event, not sub")
    if "exp" in claims:  # RFC 8417 §2.2 / §4.5: no exp, so a SET is never taken for an access token
        raise bad_set("top_level_exp", "A SET must not carry exp")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_TEXT:
        raise bad_set("missing_jti", "The SET needs a jti")
    iat = _number(claims.get("iat"))
    if iat is None:
        raise bad_set("missing_iat", "The SET needs a numeric iat")
    if iat > now + leeway:
        raise bad_set("iat_in_future", "The SET's iat lies in the future")
    return jti


def read_events(claims: Claims, leeway: float) -> list[SecurityEvent]:
    """Each event with the time it happened: ``event_timestamp``, else ``toe``, else ``iat``.

    Why the SET's ``iat`` bounds it: an event is reported after it happened, so a time in
    milliseconds or in the future is refused, not obeyed (it would lock the subject out for
    millennia). Run after :func:`check_set_claims`, which made sure ``iat`` is a number.

    :raises SETRefused: ``invalid_request`` for missing, empty or too many events, an event that
        is not an object, a bad event time, or a subject that is not an object
    """
    events = claims.get("events")
    if not isinstance(events, dict) or not events or len(events) > _MAX_EVENTS:
        raise bad_set("missing_events", "The SET needs an events object")
    iat = _number(claims.get("iat"))
    if iat is None:
        raise bad_set("missing_iat", "The SET needs a numeric iat")
    toe = claims.get("toe", iat)
    subject = claims.get("sub_id")
    found = []
    for event_type, payload in events.items():
        if not isinstance(payload, dict):
            raise bad_set("event_not_object", "Each event must be a JSON object")
        at = _number(payload.get("event_timestamp", toe))
        if at is None or at < 0 or at > iat + leeway:
            raise bad_set("bad_event_time", "An event's time is not a NumericDate before the SET's iat")
        own = payload.get("subject", subject)  # CAEP drafts and RISC put it in the event, SSF 1.0 in sub_id
        if own is not None and not isinstance(own, dict):
            raise bad_set("bad_subject", "A subject identifier must be a JSON object")
        found.append(SecurityEvent(event_type, payload, at, own))
    return found


def is_text(value: object) -> TypeGuard[str]:
    """A non-empty string no longer than :data:`MAX_TEXT`: what a SET may name a sub, sid or jti."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
