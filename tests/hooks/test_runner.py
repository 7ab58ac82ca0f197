"""How an async hook runs under a sync driver: on an event loop kept per thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from jwt_middleware.hooks import Hook, prepare_hook, run_to_completion


async def running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_one_loop_per_thread_kept_between_calls() -> None:
    first, second = run_to_completion(running_loop()), run_to_completion(running_loop())
    assert first is second and not first.is_running()
    with ThreadPoolExecutor(2) as pool:
        others = list(pool.map(lambda _: run_to_completion(running_loop()), range(2)))
    assert all(loop is not first for loop in others)


def test_inside_a_running_loop_the_awaitable_runs_on_a_helper_thread() -> None:
    async def outer() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop, str]:
        inner = run_to_completion(running_loop())
        return asyncio.get_running_loop(), inner, threading.current_thread().name

    outer_loop, inner_loop, _ = asyncio.run(outer())
    assert inner_loop is not outer_loop


def test_a_future_like_awaitable_runs_too() -> None:
    class Later:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield from asyncio.sleep(0).__await__()
            return 42

    assert run_to_completion(Later()) == 42


def test_async_is_decided_once_at_construction() -> None:
    async def coroutine_function(claims: object) -> None:
        return None

    class AsyncCall:
        async def __call__(self, claims: object) -> None:
            return None

    assert prepare_hook("claims_validator", None) is None
    assert prepare_hook("h", coroutine_function) == Hook("h", coroutine_function, True)
    assert prepare_hook("h", AsyncCall()).is_async  # type: ignore[union-attr]
    assert not prepare_hook("h", lambda claims: None).is_async  # type: ignore[union-attr]
