"""Effects the pipeline yields when it needs the outside world; a driver answers each."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

__all__ = ["ConsumeNonce", "Effect", "FetchKeys", "FetchStatusList", "ValidateClaims"]


@dataclass(frozen=True, slots=True)
class FetchKeys:
    """Fetch the issuer's key set. ``blocking``: the request waits; else refresh in the background.

    The driver answers with None; the result lands in the KeyCache.
    """

    issuer: str
    blocking: bool


@dataclass(frozen=True, slots=True)
class ConsumeNonce:
    """Use a one-time value. The driver answers True (first use) or False (replay), or raises StoreError."""

    key: str
    until: float  # epoch seconds the value must be remembered at least until


@dataclass(frozen=True, slots=True)
class ValidateClaims:
    """Finish the app's ``claims_validator`` for a newly verified token: ``pending`` is what the
    validator left to await (an async validator's coroutine). The driver awaits it (ASGI) or runs
    it to completion (WSGI) and answers None, or raises the validator's Refusal.
    """

    pending: Awaitable[object]


@dataclass(frozen=True, slots=True)
class FetchStatusList:
    """Fetch the Status List Token at ``uri`` for ``issuer`` (draft-ietf-oauth-status-list §8).
    ``blocking``: the request waits for it; else it is judged by the stale list and the fetch
    runs in the background.

    The driver answers with None; the verified list (or the failure) lands in that issuer's
    StatusListCache, which the flow reads again.
    """

    issuer: str
    uri: str
    blocking: bool


Effect = FetchKeys | ConsumeNonce | ValidateClaims | FetchStatusList
