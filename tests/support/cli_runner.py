"""The jwt-middleware command run two ways: as a real process (``python -m jwt_middleware.cli``)
and in-process through ``main(argv)``, both giving back the exit code and the two streams.

The ``cli`` fixture runs each test once per way (the process proves the entry point, stdin and
exit status are real; in-process is fast and shows a traceback's line); ``inproc`` is in-process
only, for the cases that need not pay a process per call. A test module imports the fixtures
under their own names (``cli as cli``) so pytest finds them there.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from jwt_middleware.cli import main


@dataclass
class Result:
    """What one run of the command left: its exit code and what it wrote on stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        """stdout as the JSON lines the command prints, one object per line."""
        return [json.loads(line) for line in self.out.splitlines()]


#: ``cli(*argv, stdin=b"")``: one run of the command
Cli = Callable[..., Result]


def run_subprocess(argv: Sequence[str | bytes], stdin: bytes = b"") -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "jwt_middleware.cli", *argv],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def run_in_process(
    argv: Sequence[str], stdin: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Result:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture(params=["subprocess", "in-process"])
def cli(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    def call(*argv: str, stdin: bytes = b"") -> Result:
        if request.param == "subprocess":
            return run_subprocess(argv, stdin)
        return run_in_process(argv, stdin, monkeypatch, capsys)

    return call


@pytest.fixture
def inproc(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def call(*argv: str, stdin: bytes = b"") -> Result:
        return run_in_process(argv, stdin, monkeypatch, capsys)

    return call
