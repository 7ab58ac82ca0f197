"""SETReceiver (jwt_middleware/revocation/caep.py and its caep_* parts): push-delivered SETs (RFC 8935) into cut-offs.

The transmitter is independent of our code: SETs are signed here with joserfc's own
``jws.serialize_compact`` (and, when node and tests/interop/op's npm ``jose`` are installed, by
``tests/interop/op/sign.mjs``); they are pushed over real HTTP to the receiver served by uvicorn
(and once mounted in Starlette); the effect is read from the real store's mirror, as the
pipeline reads it.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from jwt_middleware.config import KeyPolicy
from jwt_middleware.errors import ConfigError
from jwt_middleware.keys.sources import JWKSUrl, OIDCDiscovery, StaticKeys
from jwt_middleware.revocation import MemoryRevocationStore, Revocation
from jwt_middleware.revocation.caep import (
    CREDENTIAL_CHANGE,
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_PURGED,
    RISC_CREDENTIAL_COMPROMISE,
    SESSION_REVOKED_EVENT,
    TOKEN_CLAIMS_CHANGE,
    SETReceiver,
    Transmitter,
)
from jwt_middleware.testing import FakeClock, public_jwks

from ..support.jwks_server import JWKSServer
from ..support.uvicorn_server import serve

IDP = "https://idp.example"
OTHER = "https://other-idp.example"
AUD = "https://api.example/caep"
NOW = 1_800_000_000.0
SET_TYPE = "secevent+jwt"
MEDIA = "application/secevent+jwt"
OP_DIR = Path(__file__).resolve().parents[1] / "interop" / "op"
PUSH_TOKEN = "p" * 40


class Switch:
    """One uvicorn for the module; each test puts its own receiver behind it."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def switch() -> Iterator[tuple[Switch, str]]:
    holder = Switch()
    with serve(holder) as port:
        yield holder, f"http://127.0.0.1:{port}/caep"


@pytest.fixture(scope="module")
def idp_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "idp-1", "use": "sig", "alg": "ES256"})


class Setup:
    def __init__(self, switch: tuple[Switch, str], idp_key: ECKey) -> None:
        self.holder, self.url = switch
        self.key = idp_key
        self.clock = FakeClock(NOW)
        self.store = MemoryRevocationStore(clock=self.clock)
        self.changes: list[Revocation] = []
        self.store.mirror.add_listener(self.changes.append)
        self.counter = 0

    def receiver(self, *transmitters: Transmitter, **options: Any) -> SETReceiver:
        default = Transmitter(IDP, StaticKeys(public_jwks(self.key)), AUD, ["ES256"])
        receiver = SETReceiver(self.store, list(transmitters) or [default], **options)
        self.holder.app = receiver
        return receiver

    def claims(self, events: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self.counter += 1
        claims: dict[str, Any] = {
            "iss": IDP,
            "aud": AUD,
            "iat": int(self.clock()),
            "jti": f"set-{self.counter}",
        }
        claims["events"] = events
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: Key | None = None, **header: Any) -> str:
        protected = {"alg": "ES256", "typ": SET_TYPE, "kid": "idp-1", **header}
        protected = {k: v for k, v in protected.items() if v is not None}
        return jws.serialize_compact(protected, json.dumps(claims).encode(), key or self.key)

    def push(self, body: str | bytes, content_type: str = MEDIA, **headers: str) -> httpx.Response:
        headers = {"content-type": content_type, **headers}
        return httpx.post(self.url, content=body, headers=headers, timeout=10)

    def check(
        self, *, sub: str | None = "alice", sid: str | None = None, iat: float | None, iss: str = IDP
    ) -> str | None:
        return self.store.mirror.check(iss, None, sub, sid, None, iat, self.clock())


@pytest.fixture
def setup(switch: tuple[Switch, str], idp_key: ECKey) -> Setup:
    return Setup(switch, idp_key)


def iss_sub(sub: str = "alice", iss: str = IDP) -> dict[str, str]:
    return {"format": "iss_sub", "iss": iss, "sub": sub}


def session(sid: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    subject: dict[str, Any] = {"format": "complex", "session": {"format": "opaque", "id": sid}}
    if user is not None:
        subject["user"] = user
    return subject


def refused(response: httpx.Response, status: int, err: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body.get("err") == err
    assert isinstance(body["description"], str) and body["description"]
    return body


# --- events to cut-offs -------------------------------------------------------------------------
def test_session_revoked_cuts_off_the_session_at_the_event_time_not_the_arrival(setup: Setup) -> None:
    setup.receiver()
    event_time = NOW - 300  # it happened five minutes before the SET arrives
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": event_time}}
    token = setup.sign(setup.claims(events, sub_id=session("sid-7", iss_sub())))
    response = setup.push(token)
    assert response.status_code == 202 and response.content == b""
    assert setup.check(sub=None, sid="sid-7", iat=event_time - 10) == "session_revoked"
    assert setup.check(sub=None, sid="sid-7", iat=event_time) == "session_revoked"  # same second: safe side
    # minted after the event, before the SET arrived: the user's new, legitimate login
    assert setup.check(sub=None, sid="sid-7", iat=event_time + 1) is None
    assert setup.check(sub="alice", sid="sid-8", iat=event_time - 10) is None  # the user's other sessions
    assert [(c.kind, c.issuer, c.value, c.at) for c in setup.changes] == [  # type: ignore[union-attr]
        ("session", IDP, "sid-7", event_time)
    ]


def test_session_revoked_without_a_session_cuts_off_the_user(setup: Setup) -> None:
    setup.receiver()
    event_time = NOW - 120
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": event_time}}
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub("bob")))).status_code == 202
    assert setup.check(sub="bob", iat=event_time - 1) == "subject_revoked"
    assert setup.check(sub="bob", iat=None) == "subject_revoked"  # no iat: cannot show it came later
    assert setup.check(sub="bob", iat=event_time + 1) is None
    assert setup.check(sub="alice", iat=event_time - 1) is None


def test_the_subject_in_the_event_payload_is_read_too(setup: Setup) -> None:
    """CAEP drafts (and RISC) carry the subject inside the event, SSF 1.0 in sub_id."""
    setup.receiver()
    events = {SESSION_REVOKED_EVENT: {"subject": iss_sub("carol"), "event_timestamp": NOW - 5}}
    assert setup.push(setup.sign(setup.claims(events))).status_code == 202
    assert setup.check(sub="carol", iat=NOW - 6) == "subject_revoked"


def test_without_event_timestamp_the_toe_then_the_iat_is_the_time(setup: Setup) -> None:
    setup.receiver()
    events: dict[str, Any] = {SESSION_REVOKED_EVENT: {}}
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub("t1"), toe=NOW - 50))).status_code == 202
    assert setup.check(sub="t1", iat=NOW - 50) == "subject_revoked"
    assert setup.check(sub="t1", iat=NOW - 49) is None
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub("t2"), iat=NOW - 20))).status_code == 202
    assert setup.check(sub="t2", iat=NOW - 20) == "subject_revoked"
    assert setup.check(sub="t2", iat=NOW - 19) is None


@pytest.mark.parametrize("change", ["revoke", "update", "delete"])
def test_a_credential_change_that_kills_the_credential_cuts_off_the_user(setup: Setup, change: str) -> None:
    setup.receiver()
    payload = {"change_type": change, "credential_type": "password", "event_timestamp": NOW - 60}
    token = setup.sign(setup.claims({CREDENTIAL_CHANGE: payload}, sub_id=session("s1", iss_sub("dave"))))
    assert setup.push(token).status_code == 202
    assert setup.check(sub="dave", sid="s9", iat=NOW - 61) == "subject_revoked"  # every session
    assert setup.check(sub="dave", iat=NOW - 59) is None


def test_a_credential_created_changes_nothing(setup: Setup) -> None:
    setup.receiver()
    payload = {"change_type": "create", "credential_type": "fido2-roaming", "event_timestamp": NOW - 60}
    assert (
        setup.push(setup.sign(setup.claims({CREDENTIAL_CHANGE: payload}, sub_id=iss_sub()))).status_code
        == 202
    )
    assert setup.changes == []


def test_token_claims_change_cuts_off_the_session_else_the_user(setup: Setup) -> None:
    setup.receiver()
    payload = {"claims": {"role": "ro-admin"}, "event_timestamp": NOW - 30}
    events = {TOKEN_CLAIMS_CHANGE: payload}
    assert (
        setup.push(setup.sign(setup.claims(events, sub_id=session("s-claims", iss_sub("erin"))))).status_code
        == 202
    )
    assert setup.check(sub="erin", sid="s-claims", iat=NOW - 31) == "session_revoked"
    assert setup.check(sub="erin", sid="other", iat=NOW - 31) is None
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub("frank")))).status_code == 202
    assert setup.check(sub="frank", iat=NOW - 31) == "subject_revoked"


RISC = "https://schemas.openid.net/secevent/risc/event-type/"


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (RISC + "account-disabled", {"reason": "hijacking"}),
        (RISC + "account-purged", {}),
        (RISC + "credential-compromise", {"credential_type": "password", "reason_admin": {"en": "leak"}}),
    ],
)
def test_a_risc_account_or_credential_event_cuts_off_every_session_of_the_user(
    setup: Setup, event_type: str, payload: dict[str, Any]
) -> None:
    """RISC 1.0 §2.1-2.3: the subject is in the event; a named session does not narrow the cut-off."""
    setup.receiver()
    event_time = NOW - 90
    subject = session("s-risc", iss_sub("rob"))
    events = {event_type: {"subject": subject, "event_timestamp": event_time, **payload}}
    assert setup.push(setup.sign(setup.claims(events))).status_code == 202
    assert setup.check(sub="rob", sid="s-risc", iat=event_time - 1) == "subject_revoked"
    assert setup.check(sub="rob", sid="another", iat=event_time - 1) == "subject_revoked"  # every session
    assert setup.check(sub="rob", iat=None) == "subject_revoked"
    assert setup.check(sub="rob", iat=event_time + 1) is None  # his login after the event
    assert setup.check(sub="alice", iat=event_time - 1) is None
    assert [(c.kind, c.value, c.at) for c in setup.changes] == [("subject", "rob", event_time)]  # type: ignore[union-attr]


def test_the_risc_event_names_are_the_spec_ones() -> None:
    assert RISC_ACCOUNT_DISABLED == RISC + "account-disabled"
    assert RISC_ACCOUNT_PURGED == RISC + "account-purged"
    assert RISC_CREDENTIAL_COMPROMISE == RISC + "credential-compromise"


@pytest.mark.parametrize(
    "name", ["account-enabled", "account-credential-change-required", "identifier-changed"]
)
def test_risc_events_that_end_nothing_are_ignored(setup: Setup, name: str) -> None:
    setup.receiver()
    events = {RISC + name: {"subject": iss_sub("ron"), "event_timestamp": NOW - 5}}
    assert setup.push(setup.sign(setup.claims(events))).status_code == 202
    assert setup.changes == []


def test_unknown_event_types_are_accepted_and_ignored(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.receiver()
    events = {
        "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change": {
            "previous_status": "compliant",
            "current_status": "not-compliant",
            "event_timestamp": NOW - 1,
        }
    }
    with caplog.at_level(logging.INFO, "jwt_middleware.revocation.caep"):
        assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub()))).status_code == 202
    assert setup.changes == []
    assert any("ignored" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_an_iss_sub_of_an_issuer_the_transmitter_may_not_revoke_changes_nothing(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    setup.receiver()
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    with caplog.at_level(logging.WARNING, "jwt_middleware.revocation.caep"):
        assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub(iss=OTHER)))).status_code == 202
    assert setup.changes == []
    assert setup.check(sub="alice", iat=NOW - 10, iss=OTHER) is None
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_token_issuers_lets_a_transmitter_revoke_another_issuers_tokens(setup: Setup) -> None:
    keys = StaticKeys(public_jwks(setup.key))
    setup.receiver(Transmitter(IDP, keys, AUD, ["ES256"], token_issuers=[IDP, OTHER]))
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub(iss=OTHER)))).status_code == 202
    assert setup.check(sub="alice", iat=NOW - 10, iss=OTHER) == "subject_revoked"
    assert setup.check(sub="alice", iat=NOW - 10, iss=IDP) is None


def test_aliases_are_each_mapped(setup: Setup) -> None:
    setup.receiver()
    subject = {
        "format": "aliases",
        "identifiers": [{"format": "email", "email": "g@example.com"}, iss_sub("gina")],
    }
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    assert setup.push(setup.sign(setup.claims(events, sub_id=subject))).status_code == 202
    assert setup.check(sub="gina", iat=NOW - 2) == "subject_revoked"


def test_an_email_needs_the_subject_resolver(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    email = {"format": "email", "email": "h@example.com"}
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    setup.receiver()
    with caplog.at_level(logging.WARNING, "jwt_middleware.revocation.caep"):
        assert setup.push(setup.sign(setup.claims(events, sub_id=email))).status_code == 202
    assert setup.changes == []
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and all("h@example.com" not in m for m in warned)  # the format, never the value

    seen: list[tuple[dict[str, Any], str]] = []

    async def resolver(subject: Any, issuer: str) -> list[tuple[str, str]]:
        seen.append((dict(subject), issuer))
        return [(IDP, "user-h"), (OTHER, "dropped")]

    setup.receiver(subject_resolver=resolver)
    assert setup.push(setup.sign(setup.claims(events, sub_id=email))).status_code == 202
    assert seen == [(email, IDP)]
    assert setup.check(sub="user-h", iat=NOW - 2) == "subject_revoked"
    assert setup.check(sub="dropped", iat=NOW - 2, iss=OTHER) is None  # not this transmitter's to revoke


def test_a_failing_resolver_is_a_503_the_transmitter_retries(setup: Setup) -> None:
    def resolver(subject: Any, issuer: str) -> list[tuple[str, str]]:
        raise LookupError("directory down")

    setup.receiver(subject_resolver=resolver)
    claims = setup.claims({SESSION_REVOKED_EVENT: {}}, sub_id={"format": "opaque", "id": "x"})
    response = setup.push(setup.sign(claims))
    refused(response, 503, None)
    assert response.headers["retry-after"] == "1"


# --- re-delivery --------------------------------------------------------------------------------
def test_a_redelivered_set_gets_202_and_changes_nothing_twice(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    setup.receiver(remember_for=3600)
    token = setup.sign(
        setup.claims({SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 9}}, sub_id=iss_sub("ivy"))
    )
    assert setup.push(token).status_code == 202
    assert len(setup.changes) == 1
    with caplog.at_level(logging.INFO, "jwt_middleware.revocation.caep"):
        assert setup.push(token).status_code == 202
        setup.clock.advance(1800)
        assert setup.push(token).status_code == 202
    assert len(setup.changes) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("re-delivered" in m for m in messages) == 2 and not any("set applied" in m for m in messages)
    setup.clock.advance(3600)  # forgotten: applied again, and the monotonic cut-off moves nothing
    with caplog.at_level(logging.INFO, "jwt_middleware.revocation.caep"):
        assert setup.push(token).status_code == 202
    assert len(setup.changes) == 1
    assert any("set applied" in r.getMessage() for r in caplog.records)


def test_the_same_jti_from_another_transmitter_is_its_own_set(setup: Setup) -> None:
    other_key = ECKey.generate_key("P-256", parameters={"kid": "other-1", "alg": "ES256"})
    setup.receiver(
        Transmitter(IDP, StaticKeys(public_jwks(setup.key)), AUD, ["ES256"]),
        Transmitter(OTHER, StaticKeys(public_jwks(other_key)), AUD, ["ES256"]),
    )
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    assert setup.push(setup.sign(setup.claims(events, sub_id=iss_sub("j"), jti="same"))).status_code == 202
    claims = setup.claims(events, sub_id=iss_sub("j", iss=OTHER), jti="same", iss=OTHER)
    assert setup.push(setup.sign(claims, other_key, kid="other-1")).status_code == 202
    assert setup.check(sub="j", iat=NOW - 2, iss=OTHER) == "subject_revoked"


def test_a_store_failure_is_a_503_and_the_set_is_not_remembered(setup: Setup) -> None:
    setup.store = MemoryRevocationStore(maxsize=1, clock=setup.clock)
    setup.store.revoke_subject(IDP, "filler", NOW)
    setup.receiver()
    token = setup.sign(
        setup.claims({SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}, sub_id=iss_sub("k"))
    )
    for _ in range(2):  # not remembered as done: the retry is applied again, not answered 202
        response = setup.push(token)
        refused(response, 503, None)
        assert response.headers["retry-after"] == "1"


# --- refusals -----------------------------------------------------------------------------------
def test_each_bad_set_gets_400_with_the_rfc_8935_code_and_never_echoes_it(setup: Setup) -> None:
    setup.receiver()
    good_events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}

    def claims(**extra: Any) -> dict[str, Any]:
        return setup.claims(extra.pop("events", good_events), sub_id=iss_sub(), **extra)

    stranger = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})
    header_b64 = jws.serialize_compact({"alg": "ES256", "typ": SET_TYPE}, b"{}", setup.key).split(".")[0]
    payload = json.dumps(claims()).encode()
    b64 = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    crit = b'{"alg":"ES256","typ":"secevent+jwt","kid":"idp-1","crit":["urn:x"],"urn:x":1}'
    crit_header = base64.urlsafe_b64encode(crit).rstrip(b"=").decode()
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"secevent+jwt"}').rstrip(b"=").decode()
    cases: list[tuple[str, str, str, str]] = [
        ("unsigned", f"{none_header}.{b64}.", "invalid_request", MEDIA),
        ("alg none with a signature", f"{none_header}.{b64}.AAAA", "invalid_request", MEDIA),
        ("empty signature", f"{header_b64}.{b64}.", "invalid_request", MEDIA),
        ("wrongly signed", setup.sign(claims(), stranger), "invalid_key", MEDIA),
        ("unknown kid", setup.sign(claims(), kid="nope"), "invalid_key", MEDIA),
        (
            "an alg not pinned",
            setup.sign(claims(), RSAKey.generate_key(2048), alg="RS256"),
            "invalid_key",
            MEDIA,
        ),
        (
            "an embedded key",
            setup.sign(claims(), jwk=dict(setup.key.as_dict(private=False))),
            "invalid_key",
            MEDIA,
        ),
        ("wrong iss", setup.sign(claims(iss="https://evil.example")), "invalid_issuer", MEDIA),
        ("no iss", setup.sign(claims(iss=None)), "invalid_issuer", MEDIA),
        ("wrong aud", setup.sign(claims(aud="https://elsewhere")), "invalid_audience", MEDIA),
        ("no aud", setup.sign(claims(aud=None)), "invalid_audience", MEDIA),
        ("top-level sub", setup.sign(claims(sub="alice")), "invalid_request", MEDIA),
        ("top-level exp", setup.sign(claims(exp=NOW + 60)), "invalid_request", MEDIA),
        ("no events", setup.sign(claims(events=None)), "invalid_request", MEDIA),
        ("empty events", setup.sign(claims(events={})), "invalid_request", MEDIA),
        (
            "event not an object",
            setup.sign(claims(events={SESSION_REVOKED_EVENT: []})),
            "invalid_request",
            MEDIA,
        ),
        ("no jti", setup.sign(claims(jti=None)), "invalid_request", MEDIA),
        ("no iat", setup.sign(claims(iat=None)), "invalid_request", MEDIA),
        ("iat in the future", setup.sign(claims(iat=NOW + 3600)), "invalid_request", MEDIA),
        (
            "event time in milliseconds",
            setup.sign(claims(events={SESSION_REVOKED_EVENT: {"event_timestamp": NOW * 1000}})),
            "invalid_request",
            MEDIA,
        ),
        (
            "event time as text",
            setup.sign(claims(events={SESSION_REVOKED_EVENT: {"event_timestamp": "yesterday"}})),
            "invalid_request",
            MEDIA,
        ),
        (
            "credential-change without change_type",
            setup.sign(claims(events={CREDENTIAL_CHANGE: {"event_timestamp": NOW - 1}})),
            "invalid_request",
            MEDIA,
        ),
        ("no subject", setup.sign(setup.claims(good_events)), "invalid_request", MEDIA),
        (
            "a subject without format",
            setup.sign(setup.claims(good_events, sub_id={"id": "x"})),
            "invalid_request",
            MEDIA,
        ),
        ("wrong typ", setup.sign(claims(), typ="JWT"), "invalid_request", MEDIA),
        ("no typ", setup.sign(claims(), typ=None), "invalid_request", MEDIA),
        ("crit", f"{crit_header}.{b64}.AAAA", "invalid_request", MEDIA),
        ("garbage", "not a jwt at all", "invalid_request", MEDIA),
        ("a JWE", "a.b.c.d.e", "invalid_request", MEDIA),
        ("not ascii", "é.é.é", "invalid_request", MEDIA),
        ("wrong content type", setup.sign(claims()), "invalid_request", "application/json"),
    ]
    for name, body, err, media in cases:
        response = setup.push(body.encode(), content_type=media)
        refused(response, 400, err)
        if len(body) > 20:
            assert body[-20:] not in response.text, name
    assert setup.changes == []


def test_the_rfc_8935_example_media_type_with_parameters_is_accepted(setup: Setup) -> None:
    setup.receiver()
    token = setup.sign(setup.claims({SESSION_REVOKED_EVENT: {}}, sub_id=iss_sub("m")))
    assert setup.push(token, content_type="Application/SecEvent+JWT; charset=us-ascii").status_code == 202
    token = setup.sign(
        setup.claims({SESSION_REVOKED_EVENT: {}}, sub_id=iss_sub("n")), typ="application/secevent+jwt"
    )
    assert setup.push(token).status_code == 202
    assert setup.check(sub="n", iat=NOW) == "subject_revoked"


def test_an_oversized_set_is_413_unread(setup: Setup) -> None:
    setup.receiver(max_bytes=4096)
    big = setup.sign(setup.claims({SESSION_REVOKED_EVENT: {"pad": "x" * 5000}}, sub_id=iss_sub()))
    refused(setup.push(big), 413, "invalid_request")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds on the stream itself
        yield big[:3000].encode()
        yield big[3000:].encode()

    response = httpx.post(setup.url, content=chunks(), headers={"content-type": MEDIA}, timeout=10)
    refused(response, 413, "invalid_request")
    assert setup.changes == []


def test_only_post_is_answered(setup: Setup) -> None:
    setup.receiver()
    response = httpx.get(setup.url, timeout=10)
    refused(response, 405, None)
    assert response.headers["allow"] == "POST"


# --- push authentication ------------------------------------------------------------------------
def test_a_push_token_is_required_when_configured(setup: Setup) -> None:
    other_key = ECKey.generate_key("P-256", parameters={"kid": "other-1", "alg": "ES256"})
    other_token = "o" * 40
    setup.receiver(
        Transmitter(IDP, StaticKeys(public_jwks(setup.key)), AUD, ["ES256"], push_token=PUSH_TOKEN),
        Transmitter(OTHER, StaticKeys(public_jwks(other_key)), AUD, ["ES256"], push_token=other_token),
    )
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    token = setup.sign(setup.claims(events, sub_id=iss_sub()))
    missing = setup.push(token)
    refused(missing, 401, "authentication_failed")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = setup.push(token, authorization="Bearer " + "x" * 40)
    refused(wrong, 401, "authentication_failed")
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert PUSH_TOKEN not in wrong.text
    refused(setup.push(token, authorization=f"Bearer {other_token}"), 403, "access_denied")
    refused(setup.push(token, authorization=f"Basic {PUSH_TOKEN}"), 401, "authentication_failed")
    assert setup.changes == []
    assert setup.push(token, authorization=f"Bearer {PUSH_TOKEN}").status_code == 202
    assert setup.check(iat=NOW - 2) == "subject_revoked"


# --- keys from the transmitter's JWKS, a framework, an independent signer ---------------------------
def test_keys_from_the_transmitters_ssf_metadata_over_https(
    setup: Setup, jwks_server: JWKSServer, key_policy: KeyPolicy
) -> None:
    issuer = jwks_server.url
    jwks_server.behaviour.jwks = public_jwks(setup.key)
    metadata = OIDCDiscovery(url=jwks_server.url + "/.well-known/openid-configuration")
    setup.receiver(Transmitter(issuer, metadata, AUD, ["ES256"]), key_policy=key_policy)
    events = {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 1}}
    claims = setup.claims(events, iss=issuer, sub_id=iss_sub(iss=issuer))
    assert setup.push(setup.sign(claims)).status_code == 202
    assert setup.check(iss=issuer, iat=NOW - 2) == "subject_revoked"
    assert jwks_server.behaviour.hits("/jwks") == 1
    setup.receiver(Transmitter(issuer, JWKSUrl(jwks_server.jwks_url), AUD, ["ES256"]), key_policy=key_policy)
    jwks_server.behaviour.mode = "503"
    response = setup.push(setup.sign(setup.claims(events, iss=issuer, sub_id=iss_sub(iss=issuer))))
    refused(response, 503, None)  # keys unavailable: the transmitter retries
    assert int(response.headers["retry-after"]) >= 1


def test_mounted_in_starlette(setup: Setup) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    receiver = setup.receiver()
    app = Starlette(routes=[Mount("/events", receiver)])
    token = setup.sign(setup.claims({SESSION_REVOKED_EVENT: {}}, sub_id=iss_sub("mounted")))
    with TestClient(app) as client:
        assert client.post("/events", content=token, headers={"content-type": MEDIA}).status_code == 202
    assert setup.check(sub="mounted", iat=NOW) == "subject_revoked"


def _node_jose() -> str | None:
    node = shutil.which("node")
    return node if node and (OP_DIR / "node_modules" / "jose").is_dir() else None


@pytest.mark.skipif(_node_jose() is None, reason="node or tests/interop/op's npm jose is not installed")
def test_sets_signed_by_npm_jose(setup: Setup) -> None:
    """tests/interop/op/sign.mjs signs with panva's jose; none of our code touches the SET."""
    rsa: Any = {"kid": "rsa-1", "alg": "RS256", "use": "sig"}
    keys: list[tuple[str, Key]] = [
        ("ES256", setup.key),
        ("RS256", RSAKey.generate_key(2048, parameters=rsa)),
        ("EdDSA", OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1", "alg": "EdDSA", "use": "sig"})),
    ]
    jwks = {"keys": [k.as_dict(private=False) for _, k in keys]}
    setup.receiver(Transmitter(IDP, StaticKeys(jwks), AUD, ["ES256", "RS256", "EdDSA"]))
    jobs = []
    for alg, key in keys:
        claims = setup.claims(
            {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 3}}, sub_id=iss_sub(f"node-{alg}")
        )
        header = {"alg": alg, "typ": SET_TYPE, "kid": key.kid}
        jobs.append({"alg": alg, "jwk": key.as_dict(private=True), "header": header, "payload": claims})
    done = subprocess.run(
        [_node_jose() or "node", str(OP_DIR / "sign.mjs")],
        input=json.dumps({"jobs": jobs}).encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    tokens = json.loads(done.stdout)["tokens"]
    for (alg, _), token in zip(keys, tokens, strict=True):
        assert setup.push(token).status_code == 202, alg
        assert setup.check(sub=f"node-{alg}", iat=NOW - 4) == "subject_revoked"
    forged = tokens[0][:-4] + ("AAAA" if not tokens[0].endswith("AAAA") else "BBBB")
    refused(setup.push(forged), 400, "invalid_key")


# --- configuration ------------------------------------------------------------------------------
def test_configuration_mistakes_are_config_errors(setup: Setup) -> None:
    keys = StaticKeys(public_jwks(setup.key))
    mistakes: list[tuple[Any, str]] = [
        (lambda: Transmitter(IDP, keys, AUD, ["HS256"]), "algorithms"),
        (lambda: Transmitter(IDP, keys, AUD, ["none"]), "none"),
        (lambda: Transmitter(IDP, keys, AUD, []), "algorithms"),
        (lambda: Transmitter(IDP, keys, [], ["ES256"]), "audience"),
        (lambda: Transmitter(IDP, "https://idp/jwks", AUD, ["ES256"]), "keys"),  # type: ignore[arg-type]
        (lambda: Transmitter(IDP, keys, AUD, ["ES256"], push_token="short"), "push_token"),
        (lambda: Transmitter("", keys, AUD, ["ES256"]), "issuer"),
        (lambda: SETReceiver(setup.store, []), "transmitters"),
        (lambda: SETReceiver(setup.store, Transmitter(IDP, keys, AUD, ["ES256"])), "transmitters"),  # type: ignore[arg-type]
        (lambda: SETReceiver(setup.store, [Transmitter(IDP, keys, AUD, ["ES256"])] * 2), "once"),
        (
            lambda: SETReceiver(setup.store, [Transmitter(IDP, keys, AUD, ["ES256"])], max_bytes=10),
            "max_bytes",
        ),
        (lambda: SETReceiver(setup.store, [Transmitter(IDP, keys, AUD, ["ES256"])], leeway=-1), "leeway"),
        (lambda: SETReceiver(object(), [Transmitter(IDP, keys, AUD, ["ES256"])]), "store"),  # type: ignore[arg-type]
    ]
    for build, named in mistakes:
        with pytest.raises(ConfigError, match=named):
            build()
    assert "p" * 40 not in repr(Transmitter(IDP, keys, AUD, ["ES256"], push_token=PUSH_TOKEN))
