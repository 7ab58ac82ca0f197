"""The logging setup as it stood after collection, put back around every test.

Frameworks configure logging when an app starts: Litestar sets the root logger to INFO with a
queue handler, Django's ``dictConfig`` configures its loggers (and may disable existing ones).
Left in place, a test that ran earlier decides what later tests log and capture: with the root
at INFO, httpx's "HTTP Request: GET ...?access_token=..." lines land in a never-echo test's
capture. Restoring this baseline makes each test see the same logging whatever ran before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import _pytest.logging

#: Handlers pytest adds and removes itself around each test phase (capture, live logs, log file).
_PYTEST_HANDLERS = (
    _pytest.logging.LogCaptureHandler,
    _pytest.logging._LiveLoggingNullHandler,
    _pytest.logging._LiveLoggingStreamHandler,
    _pytest.logging._FileHandler,
)


@dataclass(frozen=True, slots=True)
class _LoggerState:
    level: int
    propagate: bool
    disabled: bool
    handlers: tuple[logging.Handler, ...]
    filters: tuple[logging.Filter | logging.Filterer, ...]

    @classmethod
    def of(cls, logger: logging.Logger) -> _LoggerState:
        return cls(logger.level, logger.propagate, logger.disabled, tuple(logger.handlers),
                   tuple(logger.filters))  # type: ignore[arg-type]

    def apply(self, logger: logging.Logger) -> None:
        logger.level = self.level  # caches are cleared once, at the end of LoggingBaseline.restore
        logger.propagate = self.propagate
        logger.disabled = self.disabled
        logger.handlers[:] = self.handlers
        logger.filters[:] = self.filters


def _loggers() -> list[tuple[str, logging.Logger]]:
    return [(name, obj) for name, obj in list(logging.Logger.manager.loggerDict.items())
            if isinstance(obj, logging.Logger)]


def _is_pytests(handler: logging.Handler) -> bool:
    return isinstance(handler, _PYTEST_HANDLERS)


class LoggingBaseline:
    """Levels, handlers, filters, ``propagate`` and ``disabled`` of every logger, taken now."""

    def __init__(self) -> None:
        self._loggers = {name: _LoggerState.of(logger) for name, logger in _loggers()}
        root = logging.getLogger()
        self._root_level = root.level
        self._root_handlers = tuple(h for h in root.handlers if not _is_pytests(h))
        #: pytest's handlers are the same objects in every phase; restore runs inside one
        self._pytest_handlers = tuple(h for h in root.handlers if _is_pytests(h))
        self._root_filters = tuple(root.filters)
        self._disable = logging.root.manager.disable
        self._factory = logging.getLogRecordFactory()

    def restore(self) -> None:
        """Put every logger back; loggers made since get fresh defaults (NullHandlers kept)."""
        for name, logger in _loggers():
            saved = self._loggers.get(name)
            if saved is not None:
                saved.apply(logger)
                continue
            logger.level, logger.propagate, logger.disabled = logging.NOTSET, True, False
            logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
        root = logging.getLogger()
        # pytest's own handlers stay, and come back if a dictConfig dropped them; others: baseline's
        present = [h for h in root.handlers if _is_pytests(h)]
        dropped = [h for h in self._pytest_handlers if h not in present]
        root.handlers[:] = [*self._root_handlers, *present, *dropped]
        root.filters[:] = self._root_filters
        logging.disable(self._disable)
        logging.setLogRecordFactory(self._factory)
        root.setLevel(self._root_level)  # last: clears every logger's level cache (audit's memo too)
