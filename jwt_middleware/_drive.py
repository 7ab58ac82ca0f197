"""Run a Flow: answer each effect it yields, synchronously or with await.

A StoreError raised while answering is thrown back into the flow, so the core decides
what a failed store means (fail closed with 503 unless configured otherwise).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from .core.effects import Effect
from .core.pipeline import Flow
from .errors import StoreError

__all__ = ["drive_async", "drive_sync"]

T = TypeVar("T")


def drive_sync(flow: Flow, answer: Callable[[Effect], object]) -> object:
    try:
        effect = next(flow)
        while True:
            try:
                result = answer(effect)
            except StoreError as exc:
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as done:
        return done.value


async def drive_async(flow: Flow, answer: Callable[[Effect], Awaitable[object]]) -> object:
    try:
        effect = next(flow)
        while True:
            try:
                result = await answer(effect)
            except StoreError as exc:
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as done:
        return done.value
