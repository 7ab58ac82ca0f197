"""The logging baseline restored around every test (tests/conftest.py) undoes what a framework's
start-up does to logging, so no test depends on which tests ran before it."""

from __future__ import annotations

import logging
import logging.config

import pytest

from .support.logging_state import LoggingBaseline


def framework_start_up() -> None:
    """What Litestar and Django do at start-up, at their worst: root at INFO with a handler of
    their own, existing loggers disabled, a library logger at DEBUG."""
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": True,
        "handlers": {"console": {"class": "logging.StreamHandler", "level": "DEBUG"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {"httpx": {"level": "DEBUG"}, "framework.new": {"level": "DEBUG", "propagate": False}},
    })


def test_restore_undoes_a_framework_logging_set_up() -> None:
    ours, httpx_logger = logging.getLogger("jwt_middleware"), logging.getLogger("httpx")
    before = (logging.getLogger().level, ours.disabled, ours.handlers[:], httpx_logger.level)
    baseline = LoggingBaseline()
    framework_start_up()
    assert ours.disabled and logging.getLogger().level == logging.INFO  # the leak, as it was
    baseline.restore()
    assert (logging.getLogger().level, ours.disabled, ours.handlers[:], httpx_logger.level) == before
    assert not httpx_logger.isEnabledFor(logging.INFO)  # its request lines are not emitted
    assert ours.isEnabledFor(logging.WARNING)  # refusals are audited again
    new = logging.getLogger("framework.new")
    assert (new.level, new.propagate, new.handlers) == (logging.NOTSET, True, [])
    root_handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert root_handlers == []


def test_restore_keeps_pytests_own_capture(caplog: pytest.LogCaptureFixture) -> None:
    baseline = LoggingBaseline()
    framework_start_up()
    baseline.restore()
    logging.getLogger("jwt_middleware.audit").warning("still captured")
    assert [r.getMessage() for r in caplog.records] == ["still captured"]


def test_restore_clears_the_level_memo_the_audit_reads(caplog: pytest.LogCaptureFixture) -> None:
    """audit.py reads logging's per-logger level cache: a restore must not leave it stale."""
    audit = logging.getLogger("jwt_middleware.audit")
    baseline = LoggingBaseline()
    assert not audit.isEnabledFor(logging.INFO)  # memoized False under the WARNING root
    logging.getLogger().setLevel(logging.INFO)
    assert audit.isEnabledFor(logging.INFO)
    baseline.restore()
    assert not audit.isEnabledFor(logging.INFO)
