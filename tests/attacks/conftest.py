"""Fixtures for the attack suite: a fresh Authenticator and app per test, on a fake clock."""

from __future__ import annotations

import pytest

from jwt_middleware.testing import FakeClock

from .corpus import NOW
from .harness import Harness, make_authenticator


@pytest.fixture
def attack_clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def harness(attack_clock: FakeClock) -> Harness:
    """The real ASGI middleware around a Starlette app that counts its calls."""
    return Harness(make_authenticator(attack_clock))
