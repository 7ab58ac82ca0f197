"""Status Lists written by other code: npm @sd-jwt/jwt-status-list (openwallet-foundation's
sd-jwt-js) builds and compresses them, npm jose signs the Status List Token
(tests/interop/statuslist/encode.mjs). We must read every entry as they wrote it; and their
decoder must read the draft's vectors as ours does (three implementations, one answer).

Needs node and ``npm ci --prefix tests/interop/statuslist`` (skipped, saying so, without them).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from jwt_middleware.revocation.status_list import StatusListRules, decode_status_list, read_status_list_token
from tests.revocation.test_status_list_support import joserfc_verifier
from tests.revocation.test_status_list_vectors import LONG

NODE_DIR = Path(__file__).resolve().parents[1] / "interop" / "statuslist"
NODE = shutil.which("node")
ISSUER = "https://issuer.test"
URI = "https://issuer.test/statuslists/7"
NOW = 1_800_000_000


def _node_missing() -> str:
    if NODE is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@sd-jwt" / "jwt-status-list").is_dir():
        return (
            "tests/interop/statuslist/node_modules is missing: run npm ci --prefix tests/interop/statuslist"
        )
    return ""


pytestmark = pytest.mark.skipif(bool(_node_missing()), reason=_node_missing() or "ready")


def run_node(request: dict[str, Any]) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(NODE_DIR / "encode.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", {"kid": "sd-jwt-js"})


def test_lists_written_by_sd_jwt_js_are_read_entry_for_entry(key: ECKey) -> None:
    rng = random.Random(2024)
    jobs: list[dict[str, Any]] = []
    for bits in (1, 2, 4, 8):
        size = 3000 + 7 * bits  # a partly used last byte
        statuses = {i: rng.randrange(1 << bits) for i in rng.sample(range(size), 700)}
        payload = {"sub": URI, "iss": ISSUER, "iat": NOW, "exp": NOW + 3600, "ttl": 300}
        jobs.append({"bits": bits, "size": size, "statuses": statuses, "payload": payload})
    tokens = run_node({"jwk": key.as_dict(private=True), "jobs": jobs})["tokens"]
    rules = StatusListRules.for_issuer(ISSUER)
    for job, token in zip(jobs, tokens, strict=True):
        verified = read_status_list_token(token, URI, rules, joserfc_verifier(key), NOW + 10)
        status_list = verified.status_list
        assert status_list.bits == job["bits"]
        assert verified.fresh_until == NOW + 300
        expected = {int(i): v for i, v in job["statuses"].items()}
        assert [status_list.status(i) for i in range(job["size"])] == [
            expected.get(i, 0) for i in range(job["size"])
        ]


def test_sd_jwt_js_reads_the_draft_vectors_as_we_do() -> None:
    lists = []
    for bits, (parts, statuses) in sorted(LONG.items()):
        indices = [*sorted(statuses), 1, 2, 2**20 - 1]
        lists.append({"bits": bits, "lst": "".join(parts), "indices": indices})
    decoded = run_node({"jwk": ECKey.generate_key("P-256").as_dict(private=True), "decode": lists})["decoded"]
    for entry, theirs in zip(lists, decoded, strict=True):
        ours = decode_status_list({"status_list": {"bits": entry["bits"], "lst": entry["lst"]}})
        assert [ours.status(i) for i in entry["indices"]] == theirs
