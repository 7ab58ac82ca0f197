"""One structured audit event per decision: outcome, reason, fingerprint; never the token."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware.audit import fingerprint
from jwt_middleware.core import pipeline
from jwt_middleware.testing import FakeClock, make_key, mint

from .conftest import ISSUER


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.audit for r in caplog.records if r.name == "jwt_middleware.audit"]  # type: ignore[attr-defined]


@pytest.fixture
def audit_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="jwt_middleware")
    return caplog


async def test_allow_event(
    client: httpx.AsyncClient, audit_log: pytest.LogCaptureFixture, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, {"sub": "alice"}, now=clock.now)
    await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    (event,) = audit_events(audit_log)
    assert event == {"outcome": "allow", "reason": "ok", "status": 200, "issuer": ISSUER, "subject": "alice",
                     "token": fingerprint(token)}
    assert re.fullmatch(r"[0-9a-f]{16}", event["token"])
    (record,) = [r for r in audit_log.records if r.name == "jwt_middleware.audit"]
    assert record.levelno == logging.INFO and token not in record.getMessage()


async def test_cached_decision_is_audited_again(
    client: httpx.AsyncClient, audit_log: pytest.LogCaptureFixture, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, now=clock.now)
    for _ in range(3):
        await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    events = audit_events(audit_log)
    assert len(events) == 3 and {e["token"] for e in events} == {fingerprint(token)}


@pytest.mark.parametrize(
    ("kind", "reason", "status"),
    [("forged", "bad_signature", 401), ("expired", "token_expired", 401), ("missing", "missing_token", 401),
     ("two-headers", "multiple_authorization_headers", 400), ("scope", "insufficient_scope", 403),
     ("unknown-issuer", "unknown_issuer", 401)],
)
async def test_deny_event(
    client: httpx.AsyncClient, audit_log: pytest.LogCaptureFixture, es256_key: Key, clock: FakeClock,
    kind: str, reason: str, status: int,
) -> None:
    token = {
        "forged": mint(make_key("ES256", kid="es-1"), now=clock.now),
        "expired": mint(es256_key, now=clock.now - 3600),
        "missing": None,
        "two-headers": mint(es256_key, now=clock.now),
        "scope": mint(es256_key, {"scope": "read"}, now=clock.now),
        "unknown-issuer": mint(es256_key, issuer="https://evil.test", now=clock.now),
    }[kind]
    headers = [] if token is None else [("authorization", f"Bearer {token}")] * (2 if kind == "two-headers" else 1)
    response = await client.get("/admin" if kind == "scope" else "/whoami", headers=headers)
    assert response.status_code == status
    (event,) = audit_events(audit_log)
    assert (event["outcome"], event["reason"], event["status"]) == ("deny", reason, status)
    if token is None or kind == "two-headers":
        assert event["token"] is None  # refused before a token was taken
    else:
        assert event["token"] == fingerprint(token)
    assert event["issuer"] == (None if kind in ("unknown-issuer", "missing", "two-headers") else ISSUER)
    (record,) = [r for r in audit_log.records if r.name == "jwt_middleware.audit"]
    # a request without a token is routine (INFO); every other refusal is worth a look (WARNING)
    assert record.levelno == (logging.INFO if kind == "missing" else logging.WARNING)
    for r in audit_log.records:
        assert token is None or token not in r.getMessage()


async def test_internal_error_is_one_deny_event(
    client: httpx.AsyncClient, audit_log: pytest.LogCaptureFixture, es256_key: Key, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(pipeline, "check_claims", broken)
    token = mint(es256_key, now=clock.now)
    response = await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 503
    (event,) = audit_events(audit_log)
    assert (event["outcome"], event["reason"], event["status"]) == ("deny", "internal_error", 503)
    assert event["token"] == fingerprint(token)


def test_fingerprint_is_16_hex_and_stable() -> None:
    assert fingerprint("a.b.c") == fingerprint("a.b.c")
    assert fingerprint("a.b.c") != fingerprint("a.b.d")
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint("\ud800 lone surrogate"))


async def test_audit_follows_log_level_changes_at_run_time(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, es256_key: Key, clock: FakeClock
) -> None:
    """The cached-token path skips the audit call while logging says INFO is off, and only then."""
    audit = logging.getLogger("jwt_middleware.audit")
    token = mint(es256_key, now=clock.now)
    seen = []
    for level in (logging.INFO, logging.WARNING, logging.INFO, logging.ERROR, logging.DEBUG):
        caplog.clear()
        caplog.set_level(level, logger="jwt_middleware.audit")
        for _ in range(2):  # the second request of each round is a verified-cache hit
            assert (await client.get("/whoami", headers={"authorization": f"Bearer {token}"})).status_code == 200
        seen.append(len(audit_events(caplog)))
    assert seen == [2, 0, 2, 0, 2]
    audit.disabled = True  # logging.config's disable_existing_loggers does this
    try:
        caplog.clear()
        caplog.set_level(logging.INFO, logger="jwt_middleware.audit")
        await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
        assert audit_events(caplog) == []
    finally:
        audit.disabled = False
