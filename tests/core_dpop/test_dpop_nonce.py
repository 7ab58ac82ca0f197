"""Stateless DPoP server nonces (RFC 9449 §8, §9): valid this step and the next, never forgeable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from jwt_middleware.core.dpop_nonce import DPoPNonces
from jwt_middleware.errors import ConfigError

SECRET = bytes(range(32))
NOW = 1_800_000_000.0  # a multiple of 300: the start of a step
STEP = 300.0


@pytest.fixture
def nonces() -> DPoPNonces:
    return DPoPNonces(SECRET, step=STEP)


def test_nonce_is_opaque_nqchar_text(nonces: DPoPNonces) -> None:
    """RFC 9449 §8.1: nonce = 1*NQCHAR; base64url is a subset."""
    nonce = nonces.issue(NOW)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", nonce)
    assert nonce == nonces.issue(NOW + STEP - 0.001)
    assert nonce != nonces.issue(NOW + STEP)


def test_any_instance_with_the_secret_accepts_any_other_instances_nonce() -> None:
    assert DPoPNonces(SECRET).is_valid(DPoPNonces(SECRET).issue(NOW), NOW + 1)


@pytest.mark.parametrize("age", [0.0, 1.0, STEP - 0.001, STEP, 2 * STEP - 0.001])
def test_accepts_current_and_previous_step(nonces: DPoPNonces, age: float) -> None:
    assert nonces.is_valid(nonces.issue(NOW), NOW + age)


@pytest.mark.parametrize("age", [2 * STEP, 3 * STEP, 10 * STEP, -STEP, -0.001])
def test_refuses_nonce_two_steps_back_or_from_the_future(nonces: DPoPNonces, age: float) -> None:
    assert not nonces.is_valid(nonces.issue(NOW), NOW + age)


def test_refuses_nonce_of_another_secret(nonces: DPoPNonces) -> None:
    assert not nonces.is_valid(DPoPNonces(b"x" * 32).issue(NOW), NOW)


def test_refuses_forged_nonce_with_current_step_and_guessed_mac(nonces: DPoPNonces) -> None:
    step = int(NOW // STEP).to_bytes(8, "big")
    for mac in (bytes(16), b"\xff" * 16, hashlib.sha256(step).digest()[:16]):
        forged = base64.urlsafe_b64encode(step + mac).rstrip(b"=").decode()
        assert not nonces.is_valid(forged, NOW)


def test_refuses_nonce_whose_step_was_changed(nonces: DPoPNonces) -> None:
    """The MAC covers the step: moving an old nonce forward breaks it."""
    raw = base64.urlsafe_b64decode(nonces.issue(NOW - 10 * STEP))
    moved = int(NOW // STEP).to_bytes(8, "big") + raw[8:]
    assert not nonces.is_valid(base64.urlsafe_b64encode(moved).rstrip(b"=").decode(), NOW)


def test_mac_is_keyed_hmac_sha256(nonces: DPoPNonces) -> None:
    """An independent check of the construction: a 16-byte truncated HMAC-SHA256 after the step."""
    raw = base64.urlsafe_b64decode(nonces.issue(NOW))
    step = raw[:8]
    assert int.from_bytes(step, "big") == int(NOW // STEP)
    assert not hmac.compare_digest(raw[8:], hmac.digest(b"y" * 32, step, "sha256")[:16])


@pytest.mark.parametrize(
    "garbage",
    ["", "a", "!" * 32, "A" * 31, "A" * 33, "A" * 32 + "=", " " * 32, "é" * 32, "AAAA.AAAA" * 4],
)
def test_garbage_is_invalid_and_never_raises(nonces: DPoPNonces, garbage: str) -> None:
    assert nonces.is_valid(garbage, NOW) is False


def test_non_string_is_invalid(nonces: DPoPNonces) -> None:
    assert nonces.is_valid(None, NOW) is False  # type: ignore[arg-type]
    assert nonces.is_valid(b"A" * 32, NOW) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 31, "s" * 64])
def test_refuses_short_or_text_secret(secret: bytes) -> None:
    with pytest.raises(ConfigError):
        DPoPNonces(secret)


@pytest.mark.parametrize("step", [0.0, -1.0, float("nan"), float("inf")])
def test_refuses_non_positive_step(step: float) -> None:
    with pytest.raises(ConfigError):
        DPoPNonces(SECRET, step=step)


def test_repr_hides_the_secret(nonces: DPoPNonces) -> None:
    assert SECRET.hex() not in repr(nonces) and repr(SECRET) not in repr(nonces)
