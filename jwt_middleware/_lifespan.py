"""Warm the issuers' keys when an ASGI server starts the app (the lifespan protocol).

``JWTMiddleware(app, auth, warm_keys=...)`` hands its ``lifespan`` scopes to
:func:`lifespan_with_warmup`. On ``lifespan.startup`` the keys are fetched *before* the app
sees the message.

Why before and not after the app's own start-up: with ``"strict"``, a deployment that cannot
verify tokens should stop before it opens database pools or starts workers, so nothing is
left half started (servers send no ``lifespan.shutdown`` after a failed start-up); the app's
start-up code may also rely on the keys being there. The cost: start-up waits for the fetch
(at most ``KeyPolicy.fetch_timeout`` per fetch) before the app's own, instead of beside it.

An app that does not speak lifespan (it raises on the scope, or returns, without reading a
message) has its error kept from the server: the warm-up has run, and the server carries on
without lifespan events, as the ASGI spec has it for an app that returns. Why: uvicorn's
``--lifespan on`` would otherwise refuse to start an app (Django's ASGIHandler raises on the
scope) that only asked for a warm-up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Literal

from ._types import ASGIApp, Message, Receive, Scope, Send
from .errors import ConfigError
from .warmup import WarmupError, awarm

if TYPE_CHECKING:
    from .authenticator import Authenticator

__all__ = ["WarmKeys", "check_warm_keys", "lifespan_with_warmup"]

#: False: no warm-up; True: warm at start-up, log failures and start anyway; "strict": refuse to start
WarmKeys = bool | Literal["strict"]

logger: Final = logging.getLogger("jwt_middleware.keys")

_WARM_KEYS_HELP: Final = (
    "warm_keys: give False (no warm-up), True (fetch every issuer's keys at start-up, log "
    "failures and start anyway) or 'strict' (refuse to start when an issuer's keys cannot be loaded)"
)


def check_warm_keys(value: object) -> WarmKeys:
    """The middleware's ``warm_keys`` argument, checked at construction.

    :raises ConfigError: anything but True, False or "strict" (a typo must not mean "off")
    """
    if isinstance(value, bool):
        return value
    if value == "strict":
        return "strict"
    raise ConfigError(f"{_WARM_KEYS_HELP}; got {value!r}")


class _FirstMessageAgain:
    """The app's ``receive``: the message already read for the warm-up, then the server's."""

    def __init__(self, first: Message, receive: Receive) -> None:
        self._first: Message | None = first
        self._receive = receive

    @property
    def delivered(self) -> bool:
        return self._first is None

    async def __call__(self) -> Message:
        first, self._first = self._first, None
        return first if first is not None else await self._receive()


async def lifespan_with_warmup(
    app: ASGIApp, authenticator: Authenticator, scope: Scope, receive: Receive, send: Send, *, strict: bool
) -> None:
    """Run ``app``'s lifespan with a key warm-up at start-up.

    A strict failure answers ``lifespan.startup.failed`` with :class:`WarmupError`'s text
    (issuers, URLs, causes) and the app is never started; servers then log it and exit
    (uvicorn: "Application startup failed. Exiting.", exit status 3).
    """
    first = await receive()
    if first["type"] == "lifespan.startup":
        try:
            await awarm(authenticator, strict=strict)
        except WarmupError as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
    app_receive = _FirstMessageAgain(first, receive)
    try:
        await app(scope, app_receive, send)
    except Exception as exc:
        if app_receive.delivered:
            raise  # the app speaks lifespan and failed: its error, not ours to hide
        logger.debug("the app does not speak lifespan (%s); the keys are warm anyway", type(exc).__name__)
