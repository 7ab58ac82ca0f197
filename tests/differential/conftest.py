"""Fixtures of the differential matrix: one key, three credentials, every server started once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import Running, serve_all
from .tokens import Credential, Signer, credentials


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "differential: the rule matcher and every framework's router, fed one table of requests"
    )


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def matrix_credentials(signer: Signer) -> dict[str, Credential]:
    return credentials(signer)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("differential-runs")


@pytest.fixture(scope="module")
def servers(signer: Signer, runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    with serve_all(signer.jwks(), runs_dir, tmp_path_factory.mktemp("differential-logs")) as running:
        yield running
