"""Type aliases shared across the package; no logic lives here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Raw claim or header JSON of a token; values are untrusted until checked.
Claims = dict[str, Any]
#: Returns seconds since the epoch; injected so tests never sleep.
Clock = Callable[[], float]
#: One raw header as ASGI carries it: lower-case name, value, both bytes.
RawHeader = tuple[bytes, bytes]
