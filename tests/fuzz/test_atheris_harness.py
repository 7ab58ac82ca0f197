"""Run the atheris harness (fuzz/fuzz_verify.py) for a few thousand inputs in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    find_spec("atheris") is None,
    reason="atheris is not importable (pip install atheris); the fuzz harness cannot run",
)
def test_atheris_harness_finds_no_crash_in_a_bounded_run(tmp_path: Path) -> None:
    """A fixed seed keeps the run reproducible; a crash input lands in tmp_path, not the repo."""
    command = [
        sys.executable,
        str(ROOT / "fuzz" / "fuzz_verify.py"),
        "-runs=4000",
        "-seed=1",
        "-max_len=4096",
        f"-artifact_prefix={tmp_path}/",
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    _, marker, crash = result.stdout.partition("=== Uncaught Python exception: ===")
    assert result.returncode == 0, (marker + crash[:4000]) if marker else result.stdout[-3000:]
