"""A web server run as a child process on 127.0.0.1 (gunicorn, uvicorn from the command line),
waited for until it answers and stopped however the test ended; ``stop_process`` is that stop,
used for every server process the tests start (redis-server, uvicorn, gunicorn, node)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def server_process(
    argv: Sequence[str], *, port: int, log: Path, cwd: Path, env: Mapping[str, str], probe: str = "/",
    name: str = "server", start_within: float = 30.0,
) -> Iterator[str]:
    """Start ``argv`` (bound to ``port``), yield its base URL once ``probe`` answers anything.

    The output goes to ``log``, a file and not a pipe: a chatty server never blocks on a full pipe,
    and the file's tail is in the error when it exits or does not answer within ``start_within``.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_within
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                httpx.get(base + probe, timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start within {start_within:g} s") from None
                time.sleep(0.1)
        yield base
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], within: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``within`` seconds; a no-op once it exited.

    Why SIGCONT first: a process a test stopped (SIGSTOP, to stall a server) keeps SIGTERM pending
    until continued, so without it every stalled server would cost the whole ``within`` and a kill.
    """
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)
    process.terminate()
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
