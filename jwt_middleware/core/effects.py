"""Effects the pipeline yields when it needs the outside world; a driver answers each."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Effect", "FetchKeys"]


@dataclass(frozen=True, slots=True)
class FetchKeys:
    """Fetch the issuer's key set. ``blocking``: the request waits; else refresh in the background.

    The driver answers with None; the result lands in the KeyCache.
    """

    issuer: str
    blocking: bool


Effect = FetchKeys
