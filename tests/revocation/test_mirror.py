"""The in-process check: each kind of revocation, cut-offs (same second, no iat, only forward),
token entries forgotten after their time, listeners, staleness; memory per entry, measured."""

from __future__ import annotations

import math
import timeit
import tracemalloc
import uuid
from functools import partial

import pytest

from jwt_middleware.revocation import (
    CLIENT_REVOKED,
    SESSION_REVOKED,
    SUBJECT_REVOKED,
    TOKEN_REVOKED,
    CutOff,
    Revocation,
    RevocationMirror,
    RevokedToken,
)

ISS = "https://issuer.test"
OTHER_ISS = "https://other.test"
NOW = 1_800_000_000.0


def check(
    mirror: RevocationMirror,
    *,
    issuer: str = ISS,
    jti: str | None = "jti-1",
    sub: str | None = "alice",
    sid: str | None = "session-1",
    client_id: str | None = "app-1",
    iat: float | None = NOW - 60,
    now: float = NOW,
) -> str | None:
    return mirror.check(issuer, jti, sub, sid, client_id, iat, now)


def test_empty_mirror_admits_every_token() -> None:
    mirror = RevocationMirror()
    assert check(mirror) is None
    assert check(mirror, iat=None, jti=None) is None


def test_revoked_jti_is_refused_until_its_time_and_only_for_its_issuer() -> None:
    mirror = RevocationMirror()
    mirror.apply(RevokedToken(ISS, "jti-1", NOW + 300))
    assert check(mirror) == TOKEN_REVOKED
    assert check(mirror, now=NOW + 300) == TOKEN_REVOKED  # the last instant still refused
    assert check(mirror, jti="jti-2") is None
    assert check(mirror, issuer=OTHER_ISS) is None  # the same jti from another issuer is another token
    assert check(mirror, jti=None) is None


@pytest.mark.parametrize(
    ("kind", "reason", "field"),
    [("subject", SUBJECT_REVOKED, "sub"), ("session", SESSION_REVOKED, "sid"), ("client", CLIENT_REVOKED, "client_id")],
)
def test_cut_off_refuses_tokens_issued_at_or_before_it(kind: str, reason: str, field: str) -> None:
    value = {"sub": "alice", "sid": "session-1", "client_id": "app-1"}[field]
    mirror = RevocationMirror()
    mirror.apply(CutOff(kind, ISS, value, NOW - 10.0))  # type: ignore[arg-type]
    assert check(mirror, iat=NOW - 60) == reason  # issued before: refused
    assert check(mirror, iat=NOW - 10.0) == reason  # issued at the cut-off: refused
    assert check(mirror, iat=NOW - 9) is None  # issued after: admitted
    assert check(mirror, issuer=OTHER_ISS) is None  # another issuer's subject/session/client
    assert check(mirror, **{field: value + "-other"}) is None  # type: ignore[arg-type]
    assert check(mirror, **{field: None}) is None  # type: ignore[arg-type]


def test_token_minted_in_the_same_second_as_the_cut_off_is_refused() -> None:
    # Revoked at 12.7 s past the second; a token minted 0.2 s later carries iat = that whole second.
    mirror = RevocationMirror()
    mirror.apply(CutOff("subject", ISS, "alice", NOW + 12.7))
    assert check(mirror, iat=math.floor(NOW + 12.9)) == SUBJECT_REVOKED
    assert check(mirror, iat=NOW + 13) is None  # the next second is admitted
    mirror.apply(CutOff("subject", ISS, "bob", NOW + 20))  # a cut-off given in whole seconds
    assert check(mirror, sub="bob", iat=NOW + 20) == SUBJECT_REVOKED  # minted that second: refused


@pytest.mark.parametrize("kind", ["subject", "session", "client"])
def test_token_without_iat_is_refused_under_a_cut_off(kind: str) -> None:
    mirror = RevocationMirror()
    value = {"subject": "alice", "session": "session-1", "client": "app-1"}[kind]
    mirror.apply(CutOff(kind, ISS, value, NOW - 3600))  # type: ignore[arg-type]
    assert check(mirror, iat=None) is not None
    assert check(mirror, iat=NOW) is None


def test_cut_off_only_moves_forward() -> None:
    mirror = RevocationMirror()
    assert mirror.apply(CutOff("subject", ISS, "alice", NOW)) is True
    assert mirror.apply(CutOff("subject", ISS, "alice", NOW - 100)) is False  # earlier: no change
    assert check(mirror, iat=NOW - 50) == SUBJECT_REVOKED  # never re-admitted
    assert mirror.apply(CutOff("subject", ISS, "alice", NOW + 100)) is True
    assert check(mirror, iat=NOW + 50) == SUBJECT_REVOKED


def test_merge_in_any_order_gives_the_same_state() -> None:
    changes: list[Revocation] = [CutOff("subject", ISS, "alice", NOW + i) for i in (5, 1, 9, 3)]
    forward, backward = RevocationMirror(), RevocationMirror()
    forward.merge(changes)
    backward.merge(reversed(changes))
    assert forward.entries(NOW) == backward.entries(NOW) == [CutOff("subject", ISS, "alice", NOW + 9)]


def test_token_entry_extended_not_shortened() -> None:
    mirror = RevocationMirror()
    mirror.apply(RevokedToken(ISS, "jti-1", NOW + 300))
    assert mirror.apply(RevokedToken(ISS, "jti-1", NOW + 10)) is False
    assert check(mirror, now=NOW + 200) == TOKEN_REVOKED


def test_jti_is_forgotten_after_its_time() -> None:
    mirror = RevocationMirror()
    mirror.merge([RevokedToken(ISS, f"jti-{i}", NOW + i) for i in range(10)])
    mirror.apply(CutOff("subject", ISS, "alice", NOW))
    assert len(mirror) == 11
    assert check(mirror, jti="jti-5", now=NOW + 5.5, sub=None) is None  # past its time: not refused
    assert mirror.forget_expired(NOW + 5.5) == 6
    assert len(mirror) == 5  # four live tokens and the cut-off, which never expires
    assert check(mirror, jti="jti-9", now=NOW + 5.5, sub=None) == TOKEN_REVOKED
    assert mirror.forget_expired(NOW + 100) == 4
    assert len(mirror) == 1
    assert check(mirror, iat=NOW - 1, jti=None) == SUBJECT_REVOKED


def test_extended_token_entry_survives_the_expiry_of_its_first_time() -> None:
    mirror = RevocationMirror()
    mirror.apply(RevokedToken(ISS, "jti-1", NOW + 10))
    mirror.apply(RevokedToken(ISS, "jti-1", NOW + 100))
    assert mirror.forget_expired(NOW + 50) == 0
    assert check(mirror, now=NOW + 50) == TOKEN_REVOKED


def test_listener_hears_each_change_once() -> None:
    mirror = RevocationMirror()
    heard: list[Revocation] = []
    mirror.add_listener(heard.append)
    first = CutOff("session", ISS, "session-1", NOW)
    mirror.apply(first)
    mirror.apply(first)  # the echo of our own change: nothing new
    mirror.merge([first, RevokedToken(ISS, "jti-1", NOW + 5)])
    assert heard == [first, RevokedToken(ISS, "jti-1", NOW + 5)]


def test_failing_listener_does_not_stop_the_change_or_the_others(caplog: pytest.LogCaptureFixture) -> None:
    mirror = RevocationMirror()
    heard: list[Revocation] = []

    def broken(change: Revocation) -> None:
        raise RuntimeError("secret-marker")

    mirror.add_listener(broken)
    mirror.add_listener(heard.append)
    mirror.apply(CutOff("subject", ISS, "alice", NOW))
    assert check(mirror) == SUBJECT_REVOKED and len(heard) == 1
    assert "RuntimeError" in caplog.text and "secret-marker" not in caplog.text


def test_in_process_mirror_is_never_stale() -> None:
    mirror = RevocationMirror()
    assert mirror.staleness(NOW) == 0.0 and mirror.trusted(NOW + 10**9)


def test_followed_mirror_is_untrusted_until_confirmed_and_after_its_bound() -> None:
    mirror = RevocationMirror(max_staleness=1.0)
    assert not mirror.trusted(NOW) and mirror.staleness(NOW) == math.inf
    mirror.confirm(NOW)
    assert mirror.trusted(NOW + 1.0) and mirror.staleness(NOW + 0.4) == pytest.approx(0.4)
    assert not mirror.trusted(NOW + 1.01)
    mirror.invalidate()
    assert not mirror.trusted(NOW)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: RevokedToken("", "j", NOW),
        lambda: RevokedToken(ISS, "", NOW),
        lambda: RevokedToken(ISS, "j", math.nan),
        lambda: CutOff("subject", ISS, "alice", math.inf),
        lambda: CutOff("tenant", ISS, "alice", NOW),  # type: ignore[arg-type]
        lambda: CutOff("subject", ISS, "alice", True),
    ],
)
def test_malformed_revocation_is_refused_when_built(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_memory_per_revoked_jti_is_bounded_and_reported() -> None:
    """tracemalloc over 20,000 uuid jti entries (the jti text included); asserts a size, no timing."""
    count = 20_000
    mirror = RevocationMirror()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for index in range(count):
            mirror.apply(RevokedToken(ISS, str(uuid.uuid4()), NOW + index))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_entry = grown / count
    print(f"\nmemory per revoked jti (36-char uuid jti): {per_entry:.0f} bytes")
    assert 100 < per_entry < 1000
    mirror.forget_expired(NOW + count)
    assert len(mirror) == 0


def test_check_cost_is_reported() -> None:
    """Measured, reported, never asserted: the empty case and a mirror holding 10,000 entries."""
    empty = RevocationMirror()
    full = RevocationMirror()
    full.merge([RevokedToken(ISS, f"jti-{i}", NOW + 3600) for i in range(5000)])
    full.merge([CutOff("subject", ISS, f"user-{i}", NOW) for i in range(5000)])
    args = (ISS, "jti-x", "alice", "session-1", "app-1", NOW - 60, NOW)
    figures = []
    for name, mirror in (("empty", empty), ("10k entries, no match", full)):
        runs = timeit.repeat(partial(mirror.check, *args), number=100_000, repeat=5)
        figures.append(f"{name}: {min(runs) / 100_000 * 1e9:.0f} ns")
    print("\ncheck() per call: " + "; ".join(figures))
    assert full.check(*args) is None
