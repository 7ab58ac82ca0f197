"""Differential matrix: every request variant through every framework on a real server agrees with the rules.

One table (tests/differential/matrix.py), one parametrized test, one judgement: the request was
refused before the app, or the handler that ran is one whose protecting rule the credential
satisfies (STYLE.md §13). Ids read ``server-variant-METHOD-credential-mode``. A new framework
joins ``servers.SERVERS``; a new rule feature joins ``matrix.RULES``/``VARIANTS``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.raw_http import Answer, send, websocket_headers

from .apps import MODE_HEADER, PROBE_HEADER
from .matrix import MODES, PREFIX_VARIANTS, VARIANTS, Mode, Run, Variant, disagreements
from .servers import SERVERS, Running, ServerSpec
from .tokens import Credential

pytestmark = pytest.mark.differential

CREDENTIALS = ("none", "read", "full")


def place(prefix: str, target: str) -> str:
    """The target under the server's mount point (an absolute-form target keeps its authority)."""
    if target.startswith("/"):
        return prefix + target
    scheme, _, rest = target.partition("://")
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority}{prefix}/{path}"


def rows() -> Iterator[Any]:
    for spec in SERVERS:
        for variant in VARIANTS + (PREFIX_VARIANTS if spec.prefix else ()):
            if variant.websocket and not spec.websocket:
                continue
            target = variant.target if variant in PREFIX_VARIANTS else place(spec.prefix, variant.target)
            for mode in MODES if variant.preflight_sensitive else MODES[:2]:
                for credential in CREDENTIALS:
                    yield pytest.param(spec, variant, target, mode, credential,
                                       id=f"{spec.name}-{variant.name}-{variant.method}-{credential}-{mode.name}")


def read_run(runs: Path, probe: str) -> Run | None:
    path = runs / probe
    if not path.exists():
        return None
    recorded = json.loads(path.read_text())
    return Run(recorded["handler"], recorded["subject"], recorded["path"])


def describe(method: str, target: str, answer: Answer, run: Run | None) -> str:
    challenge = answer.header_values("www-authenticate")
    ran = f"{run.handler} ran (sub={run.subject!r}, app path={run.path!r})" if run else "no handler ran"
    return f"{method} {target!r}: {answer.status} {challenge} {answer.body[:160]!r}; {ran}"


@pytest.mark.parametrize(("spec", "variant", "target", "mode", "credential"), list(rows()))
def test_router_and_rules_agree(
    servers: dict[str, Running], matrix_credentials: dict[str, Credential], runs_dir: Path,
    spec: ServerSpec, variant: Variant, target: str, mode: Mode, credential: str,
) -> None:
    running = servers[spec.name]
    assert running.error is None, running.error
    sent = matrix_credentials[credential]
    probe = uuid.uuid4().hex
    headers = {**sent.headers(), **variant.headers, MODE_HEADER: mode.name, PROBE_HEADER: probe}
    if variant.websocket:
        headers |= websocket_headers()
    answer = send(running.port, variant.method, target, headers)
    run = read_run(runs_dir, probe)
    problems = disagreements(variant, mode, sent, answer, run)
    assert not problems, f"{'; '.join(problems)}\n  {describe(variant.method, target, answer, run)}"
