"""Shared timing harness: best-of-rounds per-call cost, bounded in count and time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROUNDS = 5


def best_us(fn: Callable[[int], Any], n: int, rounds: int = ROUNDS) -> float:
    """Microseconds per call of the best round; ``fn(i)`` does one call."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def best_us_async(
    make_call: Callable[[int], Awaitable[Any]], n: int, rounds: int = ROUNDS, *, fresh: bool = False
) -> float:
    """Like best_us for coroutines. ``fresh``: round r calls indices r*n .. r*n+n-1 (new inputs each round)."""

    async def run() -> float:
        best = float("inf")
        for r in range(rounds):
            offset = r * n if fresh else 0
            start = time.perf_counter()
            for i in range(offset, offset + n):
                await make_call(i)
            best = min(best, time.perf_counter() - start)
        return best

    return asyncio.run(run()) / n * 1e6


def asgi_caller(app: Any, scope: dict[str, Any]) -> Callable[[int], Awaitable[None]]:
    """One in-process HTTP request per call: fresh scope copy and header values, no server, no TestClient."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    headers = scope.get("headers", [])

    async def call(_i: int) -> None:
        request = dict(scope)
        # A server parses new bytes objects for every request, so nothing can reuse a hash the
        # previous request computed (a cache keyed by header bytes pays it each time here too).
        request["headers"] = [(name, bytes(memoryview(value))) for name, value in headers]
        await app(request, receive, send)

    call.statuses = statuses  # type: ignore[attr-defined]
    return call


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
    }
