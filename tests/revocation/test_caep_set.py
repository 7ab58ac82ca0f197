"""The receiver's pure parts, called directly with a number for ``now`` (STYLE §6.2):
caep_set's SET checks and caep_events' mapping of events to cut-offs, and that both stay free
of I/O so the sans-I/O core could import them.

SETs are made with joserfc's ``jws.serialize_compact``; nothing here runs a server or a store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from jwt_middleware.keys.sources import StaticKeys
from jwt_middleware.revocation import CutOff
from jwt_middleware.revocation.caep_events import (
    CREDENTIAL_CHANGE,
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_PURGED,
    RISC_CREDENTIAL_COMPROMISE,
    SESSION_REVOKED_EVENT,
    TOKEN_CLAIMS_CHANGE,
    cut_offs_of,
    iss_sub_pair,
    needs_resolver,
    plan_event,
)
from jwt_middleware.revocation.caep_set import (
    SecurityEvent,
    SETRefused,
    Transmitter,
    check_key_header,
    check_pusher,
    check_set_claims,
    read_events,
    read_set,
)
from jwt_middleware.testing import public_jwks

from ..asgi.test_dependency_rule import FORBIDDEN_IN_CORE, PACKAGE, closure, is_within

IDP = "https://idp.example"
OTHER = "https://other.example"
AUD = "https://api.example/caep"
NOW = 1_800_000_000.0
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})
TRANSMITTER = Transmitter(IDP, StaticKeys(public_jwks(KEY)), AUD, ["ES256"], token_issuers=[IDP, OTHER])


def signed(claims: dict[str, Any], **header: Any) -> bytes:
    protected = {"alg": "ES256", "typ": "secevent+jwt", "kid": "k1", **header}
    return jws.serialize_compact(protected, json.dumps(claims).encode(), KEY).encode()


def refusal(call: Any, *args: Any) -> SETRefused:
    with pytest.raises(SETRefused) as caught:
        call(*args)
    return caught.value


def iss_sub(sub: str, iss: str = IDP) -> dict[str, str]:
    return {"format": "iss_sub", "iss": iss, "sub": sub}


def event(event_type: str, subject: dict[str, Any] | None, **payload: Any) -> SecurityEvent:
    return SecurityEvent(event_type, payload, NOW - 10, subject)


@pytest.mark.parametrize("name", ["caep_set.py", "caep_events.py"])
def test_the_pure_parts_reach_no_io(name: str) -> None:
    reached = closure(PACKAGE / "revocation" / name)
    assert not {n: by for n, by in reached.items() if is_within(n, FORBIDDEN_IN_CORE)}
    assert not any(
        is_within(n, ("jwt_middleware.revocation.redis", "jwt_middleware.keys.loader")) for n in reached
    )


# --- caep_set -----------------------------------------------------------------------------------
def test_read_set_finds_the_transmitter_by_iss_and_refuses_other_issuers() -> None:
    transmitters = {IDP: TRANSMITTER}
    parsed, found = read_set(signed({"iss": IDP}), transmitters, 65536)
    assert found is TRANSMITTER and parsed.claims["iss"] == IDP
    assert refusal(read_set, signed({"iss": OTHER}), transmitters, 65536).err == "invalid_issuer"
    assert refusal(read_set, signed({"iss": IDP}, typ="JWT"), transmitters, 65536).reason == "wrong_typ"
    assert refusal(read_set, signed({"iss": IDP}, typ="at+jwt"), transmitters, 65536).reason == "wrong_typ"


def test_check_key_header_refuses_keys_carried_by_the_set() -> None:
    parsed, _ = read_set(signed({"iss": IDP}), {IDP: TRANSMITTER}, 65536)
    assert check_key_header(parsed, TRANSMITTER) == ("ES256", "k1")
    for header in ({"jku": "https://evil/jwks"}, {"x5u": "https://evil/cert"}, {"kid": "x" * 2000}):
        parsed, _ = read_set(signed({"iss": IDP}, **header), {IDP: TRANSMITTER}, 65536)
        assert refusal(check_key_header, parsed, TRANSMITTER).err == "invalid_key"


def test_check_pusher_requires_the_sets_own_transmitter() -> None:
    pushing = Transmitter(IDP, StaticKeys(public_jwks(KEY)), AUD, ["ES256"], push_token="t" * 32)
    other = Transmitter(OTHER, StaticKeys(public_jwks(KEY)), AUD, ["ES256"])
    check_pusher(pushing, pushing)
    check_pusher(other, None)  # no push token configured: the signature is the authentication
    assert refusal(check_pusher, pushing, None).status == 401
    assert refusal(check_pusher, pushing, other).status == 403


def test_check_set_claims_with_now_as_a_number() -> None:
    claims = {"aud": [AUD, "x"], "jti": "j1", "iat": NOW + 30}
    assert check_set_claims(claims, TRANSMITTER, NOW, 60.0) == "j1"  # within the leeway
    assert (
        refusal(check_set_claims, {**claims, "iat": NOW + 61}, TRANSMITTER, NOW, 60.0).reason
        == "iat_in_future"
    )
    assert refusal(check_set_claims, {**claims, "aud": "x"}, TRANSMITTER, NOW, 60.0).err == "invalid_audience"
    assert refusal(check_set_claims, {**claims, "exp": NOW}, TRANSMITTER, NOW, 60.0).reason == "top_level_exp"
    assert refusal(check_set_claims, {**claims, "sub": "a"}, TRANSMITTER, NOW, 60.0).reason == "top_level_sub"


def test_read_events_takes_event_timestamp_then_toe_then_iat_bounded_by_iat() -> None:
    base = {"iat": NOW, "sub_id": iss_sub("a")}
    one = read_events({**base, "events": {SESSION_REVOKED_EVENT: {"event_timestamp": NOW - 5}}}, 0.0)
    assert [(e.type, e.at, e.subject) for e in one] == [(SESSION_REVOKED_EVENT, NOW - 5, iss_sub("a"))]
    assert read_events({**base, "toe": NOW - 7, "events": {SESSION_REVOKED_EVENT: {}}}, 0.0)[0].at == NOW - 7
    assert read_events({**base, "events": {SESSION_REVOKED_EVENT: {}}}, 0.0)[0].at == NOW
    inner = read_events({**base, "events": {RISC_ACCOUNT_PURGED: {"subject": iss_sub("b")}}}, 0.0)
    assert inner[0].subject == iss_sub("b")  # RISC: the event's own subject wins over sub_id
    late = {**base, "events": {SESSION_REVOKED_EVENT: {"event_timestamp": NOW + 1}}}
    assert refusal(read_events, late, 0.0).reason == "bad_event_time"
    assert read_events(late, 1.0)[0].at == NOW + 1


# --- caep_events --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event_type", [RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_PURGED, RISC_CREDENTIAL_COMPROMISE]
)
def test_risc_account_and_credential_events_cut_off_the_subject_not_only_the_session(event_type: str) -> None:
    subject = {"format": "complex", "user": iss_sub("rob"), "session": {"format": "opaque", "id": "s1"}}
    plan = plan_event(event(event_type, subject))
    assert plan is not None and plan.reach == "subject"
    assert cut_offs_of(plan, [("https://idp.example", "rob")], TRANSMITTER) == [
        CutOff("subject", IDP, "rob", NOW - 10)
    ]


def test_session_scoped_events_cut_off_the_named_session_for_each_issuer() -> None:
    subject = {"format": "complex", "user": iss_sub("a"), "session": {"format": "opaque", "id": "s1"}}
    for event_type in (SESSION_REVOKED_EVENT, TOKEN_CLAIMS_CHANGE):
        plan = plan_event(event(event_type, subject))
        assert plan is not None and plan.sessions == ("s1",)
        assert cut_offs_of(plan, [(IDP, "a")], TRANSMITTER) == [CutOff("session", IDP, "s1", NOW - 10)]
        # no user mapped: every issuer the transmitter may revoke
        assert {c.issuer for c in cut_offs_of(plan, [], TRANSMITTER)} == {IDP, OTHER}


def test_credential_change_by_change_type() -> None:
    for change in ("revoke", "update", "delete"):
        plan = plan_event(event(CREDENTIAL_CHANGE, iss_sub("a"), change_type=change))
        assert plan is not None and plan.reach == "subject"
    assert plan_event(event(CREDENTIAL_CHANGE, iss_sub("a"), change_type="create")) is None
    assert refusal(plan_event, event(CREDENTIAL_CHANGE, iss_sub("a"))).reason == "bad_change_type"


def test_an_untrusted_issuer_is_dropped_and_duplicates_kept_once() -> None:
    plan = plan_event(event(RISC_ACCOUNT_DISABLED, iss_sub("a")))
    assert plan is not None
    pairs = [(IDP, "a"), (IDP, "a"), ("https://evil.example", "a")]
    assert cut_offs_of(plan, pairs, TRANSMITTER) == [CutOff("subject", IDP, "a", NOW - 10)]


def test_subjects_that_need_the_app() -> None:
    assert iss_sub_pair(iss_sub("a")) == (IDP, "a")
    assert iss_sub_pair({"format": "email", "email": "a@example.com"}) is None
    assert needs_resolver({"format": "email", "email": "a@example.com"})
    assert not needs_resolver(iss_sub("a"))
    assert refusal(iss_sub_pair, {"format": "iss_sub", "iss": IDP}).reason == "bad_iss_sub"
    assert refusal(plan_event, event(RISC_ACCOUNT_PURGED, None)).reason == "missing_subject"
    assert plan_event(event("https://example/unknown", None)) is None  # ignored before the subject is read
