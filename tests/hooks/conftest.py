"""The hooks tests' clock: one fixed instant, advanced by the tests that expire a memo."""

from __future__ import annotations

import pytest

from jwt_middleware.testing import FakeClock

from ._support import NOW


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)
