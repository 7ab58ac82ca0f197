"""A real redis-server on a free loopback port, started and stopped by the tests.

Also what a Redis test module needs around it: ``own_server``/``server``, the fixtures of a
module whose tests stop, restart or stall their server (a conftest imports them), and
``stalled(process)``, the SIGSTOP a single server and a cluster node are stalled with.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from .server_process import stop_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="jwtmw-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the README test command installs it")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stalled(self, at_most: float = 10.0) -> AbstractContextManager[None]:
        """The server stopped (SIGSTOP) inside the block: its port accepts, nothing answers."""
        return stalled(self._running(), at_most)

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("redis-server is not running")
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def remove(self) -> None:
        """Stop and delete the data folder (the session fixture calls this at the end)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def stalled(process: subprocess.Popen[bytes], at_most: float = 10.0) -> Iterator[None]:
    """``process`` stopped (SIGSTOP) inside the block: a server's port still accepts, nothing answers.

    Continued (SIGCONT) on the way out whatever the block raised, and after ``at_most`` seconds
    even if the block is still running (a watchdog thread), so no stall outlives its test.
    """
    watchdog = threading.Timer(at_most, os.kill, (process.pid, signal.SIGCONT))
    watchdog.daemon = True
    os.kill(process.pid, signal.SIGSTOP)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        os.kill(process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def own_server() -> Iterator[RedisServer]:
    """A redis-server of the module's own: its tests stop, restart, pause or stall it, so it is
    not the session's shared one (tests/conftest.py ``redis_server``)."""
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture
def server(own_server: RedisServer) -> RedisServer:
    """The module's server, started again if a failed test left it stopped."""
    if own_server.process is None:
        own_server.start()
    return own_server
