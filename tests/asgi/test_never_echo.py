"""Never echo (STYLE §6.12): a marker in kid, iss, sub and a custom claim shows up nowhere:
not in the body, not in a header, not in any log record (message, arguments or extras)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware.testing import FakeClock, make_key, mint, sign_raw

from ._app import Recorder
from .conftest import ISSUER

MARKER = "MARKER-7f3a"


def _tokens(key: Key, now: float) -> dict[str, str]:
    stranger = make_key("ES256", kid="es-1")
    marked = {"sub": f"{MARKER}-sub", "custom": f"{MARKER}-custom", "nested": {"deep": [MARKER]}}
    raw_header = {"alg": "ES256", "typ": "at+jwt", "kid": "es-1", "x-note": MARKER}
    return {
        "bad-signature": mint(stranger, marked, header={"x-note": MARKER}, now=now),
        "unknown-issuer": mint(key, marked, issuer=f"https://{MARKER}.example", kid=f"{MARKER}-kid", now=now),
        "expired": mint(key, marked, now=now - 3600),
        "wrong-audience": mint(key, marked, audience=f"{MARKER}-aud", now=now),
        "unknown-kid": mint(key, marked, kid=f"{MARKER}-kid", now=now),
        "kid-with-control-chars": mint(key, marked, kid=f"{MARKER}\r\nX-Injected: 1", now=now),
        "refresh-token": mint(key, {**marked, "typ": "Refresh"}, now=now),
        "duplicate-member": sign_raw(raw_header, json.dumps({"iss": ISSUER, "aud": "api"}).encode()[:-1]
                                     + f', "sub": "{MARKER}", "sub": "{MARKER}2"}}'.encode(), key, "ES256"),
        "wrong-type-sub": mint(key, {"sub": [MARKER]}, now=now),
        "not-json": f"{MARKER}.{MARKER}.{MARKER}",
    }


#: The test's own HTTP client. httpx logs each request URL at INFO, so a token sent in the query
#: is in its log line: that is the client's log (and why RFC 6750 §5.3 keeps tokens out of URLs
#: and the middleware refuses them there), not the server under test, whose records are checked.
_CLIENT_LOGGERS = ("httpx", "httpcore")


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every captured record but the test client's own."""
    return [r for r in caplog.records if r.name.split(".")[0] not in _CLIENT_LOGGERS]


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler or formatter could print: message, args, extras, exception text."""
    parts = [record.getMessage(), repr(record.args)]
    parts += [repr(v) for k, v in vars(record).items() if k not in ("msg", "args")]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


KINDS = ["bad-signature", "unknown-issuer", "expired", "wrong-audience", "unknown-kid", "kid-with-control-chars",
         "refresh-token", "duplicate-member", "wrong-type-sub", "not-json"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transport", ["header", "query"])
async def test_marker_is_never_echoed(
    client: httpx.AsyncClient, recorder: Recorder, es256_key: Key, clock: FakeClock,
    caplog: pytest.LogCaptureFixture, kind: str, transport: str,
) -> None:
    token = _tokens(es256_key, clock.now)[kind]
    with caplog.at_level(logging.DEBUG, logger="jwt_middleware"):
        if transport == "header":
            response = await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
        else:
            response = await client.get("/whoami", params={"access_token": token})
    assert response.status_code in (400, 401)
    assert recorder.calls == 0
    records = _server_records(caplog)
    assert any(r.name.startswith("jwt_middleware") for r in records), "the refusal should at least be audited"
    for record in records:
        text = _record_text(record)
        assert MARKER not in text, record.name
        assert token not in text
    assert MARKER not in response.text
    for name, value in response.headers.multi_items():
        assert MARKER not in name and MARKER not in value
    body = response.json()
    assert set(body) == {"error", "error_description"}


async def test_marker_in_an_accepted_token_is_not_logged(
    client: httpx.AsyncClient, es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Even on success only the verified subject is audited, never custom claims or the token."""
    token = mint(es256_key, {"custom": MARKER}, now=clock.now)
    with caplog.at_level(logging.DEBUG, logger="jwt_middleware"):
        response = await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    for record in _server_records(caplog):
        assert MARKER not in _record_text(record) and token not in _record_text(record)


def test_marker_cases_cover_several_refusal_kinds(es256_key: Key) -> None:
    assert list(_tokens(es256_key, 0)) == KINDS
    assert {"bad-signature", "unknown-issuer", "expired", "wrong-audience"} <= set(KINDS)


async def test_marker_in_an_internal_error_message_is_not_logged(
    client: httpx.AsyncClient, es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jwt_middleware.core import pipeline

    def buggy(claims: dict[str, Any], *args: Any) -> None:
        int(claims["custom"])  # ValueError: invalid literal for int() with base 10: 'MARKER-7f3a'

    monkeypatch.setattr(pipeline, "check_claims", buggy)
    token = mint(es256_key, {"custom": MARKER}, now=clock.now)
    with caplog.at_level(logging.DEBUG, logger="jwt_middleware"):
        response = await client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 503 and MARKER not in response.text
    for record in _server_records(caplog):
        assert MARKER not in _record_text(record)
