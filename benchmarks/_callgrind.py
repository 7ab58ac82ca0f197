"""Instruction counts of one request under valgrind callgrind: the parent's counting, the child's loops.

A callgrind script is both sides. Run plainly, it is the parent: for each case it starts itself
twice under callgrind (``--case NAME 1`` and ``--case NAME 301``) and reads the "Collected"
total valgrind prints; the difference divided by 300 is one request with interpreter start-up,
imports and app construction cancelled out. Run with ``--case``, it is the child: it builds the
case's app and sends its requests in process (``_harness.asgi_caller``: no server, no client).

Why PYTHONHASHSEED=0 in every child: string hashes steer dict and set probing, so a random
seed moves a count by thousands of instructions between runs; a fixed one makes the figures
repeatable (and the two runs of a case comparable).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from _harness import asgi_caller, http_scope

#: requests of the long run; the short run sends one, so their difference is ``REQUESTS - 1`` requests
REQUESTS = 301


def require_valgrind() -> None:
    """Exit with the install command when valgrind is missing (before any case is started)."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")


def instructions(script: str, *case: str) -> int:
    """Instructions callgrind counted for ``python script --case *case`` (a fresh interpreter)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script, "--case", *case],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    ).stderr
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count for {script} --case {' '.join(case)}:\n{out}")
    return int(found.group(1))


def per_request(script: str, case: str) -> float:
    """Instructions of one request of ``case``: the 301-request run minus the 1-request run, / 300."""
    return (instructions(script, case, str(REQUESTS)) - instructions(script, case, "1")) / (REQUESTS - 1)


def dispatch(argv: Sequence[str], run_case: Callable[[str, int], None], main: Callable[[], None]) -> None:
    """The child (``--case NAME N``: ``run_case(NAME, N)``) or else the parent (``main()``)."""
    if len(argv) == 4 and argv[1] == "--case":
        run_case(argv[2], int(argv[3]))
    else:
        main()


def send_repeated(app: Any, token: str, n: int) -> None:
    """``n`` in-process ``GET /me`` requests with the same bearer token (through our middleware,
    every one after the first is a verified-cache hit)."""
    call = asgi_caller(app, http_scope("/me", [(b"authorization", f"Bearer {token}".encode())]))

    async def repeat() -> None:
        for i in range(n):
            await call(i)

    asyncio.run(repeat())


def send_each(app: Any, tokens: Iterable[str]) -> None:
    """One ``GET /me`` per bearer token; the callers are built before the loop, as the scripts always did
    (their cost per token is part of the figure, the same in every case of a script)."""
    callers = [asgi_caller(app, http_scope("/me", [(b"authorization", f"Bearer {t}".encode())])) for t in tokens]

    async def unique() -> None:
        for i, caller in enumerate(callers):
            await caller(i)

    asyncio.run(unique())
