"""The audit events the library logs while a block runs (``jwt_middleware.audit``, DEBUG and up),
each as its ``audit`` dict plus the record's level name."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def audit_events() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(dict(record.__dict__.get("audit", {}), level=record.levelname))

    logger = logging.getLogger("jwt_middleware.audit")
    handler = Catch(logging.DEBUG)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
