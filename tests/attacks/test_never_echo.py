"""Never echo (STYLE.md §6.12, DESIGN.md errors): token bytes and claim values never appear in
a response body, a response header or a log line, whatever the refusal.

Each token carries ``MARKER-91c2`` in the place its refusal is about (kid, iss, sub, a custom
claim, typ, alg, aud, jku, the raw header JSON) or in the request around it.
"""

from __future__ import annotations

import logging

import pytest

from . import corpus
from .corpus import MARKER
from .harness import Harness, HeaderValue, Reply


def _tokens() -> dict[str, tuple[list[tuple[str, HeaderValue]], int, str | None]]:
    k = corpus.keys()
    bearer = "Bearer "
    marked = {
        "kid-unknown": corpus.make(header={"kid": MARKER}),
        "iss-unknown": corpus.make(claims={"iss": f"https://{MARKER}.test"}),
        "iss-exact-marker": corpus.make(claims={"iss": MARKER}),
        "sub-bad-signature": corpus.make(claims={"sub": MARKER}, key=k.attacker_es),
        "custom-claim-expired": corpus.make(
            claims={
                "note": MARKER,
                "exp": int(corpus.NOW) - 3600,
                "iat": int(corpus.NOW) - 7200,
                "nbf": corpus.DROP,
            }
        ),
        "typ-not-accepted": corpus.make(header={"typ": MARKER}),
        "alg-not-accepted": corpus.make(header={"alg": MARKER}),
        "aud-wrong": corpus.make(claims={"aud": MARKER}),
        "jku-attacker": corpus.make(header={"jku": f"https://{MARKER}.test/jwks"}, key=k.attacker_es),
        "crit-marker": corpus.make(header={"crit": [MARKER], MARKER: 1}),
        "malformed-header-json": corpus.make_raw(
            f'{{"alg":"ES256","kid":"{MARKER}"'.encode(), corpus.claims_bytes()
        ),
        "duplicate-sub": corpus.make_raw(
            corpus.header_bytes(),
            corpus.splice(corpus.claims_bytes(sub=corpus.DROP), f'"sub":"{MARKER}","sub":"x"'),
        ),
        "time-claim-string": corpus.make(claims={"exp": MARKER}),
        "sub-wrong-type": corpus.make(claims={"sub": {"name": MARKER}}),
        "oversize": corpus.make(claims={"pad": MARKER * 800}),
        "refresh-token": corpus.make(corpus.ISSUER_RS, claims={"typ": "Refresh", "sub": MARKER}),
    }
    cases: dict[str, tuple[list[tuple[str, HeaderValue]], int, str | None]] = {
        name: ([("authorization", bearer + token)], 401, "invalid_token") for name, token in marked.items()
    }
    plain = corpus.make(claims={"sub": MARKER})
    cases.update(
        {
            "junk-after-token": ([("authorization", f"Bearer {plain} {MARKER}")], 400, "invalid_request"),
            "two-tokens-header-and-cookie": (
                [
                    ("authorization", f"Bearer {plain}"),
                    ("cookie", f"{corpus.COOKIE}={marked['kid-unknown']}"),
                ],
                400,
                "invalid_request",
            ),
            "two-authorization-headers": (
                [("authorization", f"Bearer {plain}"), ("authorization", f"Bearer {MARKER}")],
                400,
                "invalid_request",
            ),
            "marker-as-credential": ([("authorization", f"Bearer {MARKER}")], 401, "invalid_token"),
            "marker-as-scheme": ([("authorization", f"{MARKER} {plain}")], 401, None),
            "cookie-marked-garbage": (
                [("cookie", f"{corpus.COOKIE}={MARKER}.{MARKER}.{MARKER}")],
                401,
                "invalid_token",
            ),
        }
    )
    return cases


CASES = _tokens()


#: The harness's own HTTP client (httpx logs each request line at INFO): not the server under test.
_CLIENT_LOGGERS = ("httpx", "httpcore")


def _leaks(reply: Reply, caplog: pytest.LogCaptureFixture, secrets: list[str]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    places = {"body": reply.text}
    for name, value in reply.headers:
        places[f"header {name}"] = f"{name}: {value}"
    records = [r for r in caplog.records if r.name.split(".")[0] not in _CLIENT_LOGGERS]
    for index, record in enumerate(records):
        text = formatter.format(record)  # includes any traceback
        places[f"log {index} {record.name}"] = text + " " + repr(record.__dict__)
    return [
        f"{secret[:24]}… in {place}" for place, text in places.items() for secret in secrets if secret in text
    ]


@pytest.mark.parametrize(("headers", "status", "error"), list(CASES.values()), ids=list(CASES))
def test_refusal_never_echoes_token_or_claims(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    headers: list[tuple[str, HeaderValue]],
    status: int,
    error: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = harness.request(headers)
    harness.assert_refused(reply, status, error)
    secrets = [MARKER]
    for _, value in headers:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        for credential in text.replace("Bearer ", " ").replace("=", " ").split():
            secrets.append(credential)
            secrets += [segment for segment in credential.split(".") if len(segment) >= 16]
    assert any(r.name.startswith("jwt_middleware") for r in caplog.records), "the refusal should be audited"
    assert not _leaks(reply, caplog, secrets)


def test_accepted_request_logs_no_token(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = corpus.make(claims={"note": MARKER})
    reply = harness.bearer(token)
    harness.assert_accepted(reply)
    assert not _leaks(Reply(200, [], b""), caplog, [MARKER, token, *token.split(".")])


def test_leak_detector_finds_a_marker_in_logs_headers_and_body(caplog: pytest.LogCaptureFixture) -> None:
    """The detector above must really see each place, or the tests prove nothing."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("jwt_middleware.audit").debug("x", extra={"audit": {"kid": MARKER}})
    assert _leaks(Reply(401, [], b""), caplog, [MARKER])
    caplog.clear()
    assert _leaks(
        Reply(401, [("www-authenticate", f'Bearer error_description="{MARKER}"')], b""), caplog, [MARKER]
    )
    assert _leaks(Reply(401, [], MARKER.encode()), caplog, [MARKER])
    try:
        raise ValueError(MARKER)
    except ValueError:
        logging.getLogger("jwt_middleware").exception("boom")
    assert _leaks(Reply(401, [], b""), caplog, [MARKER])
