"""A real OpenID provider (npm ``oidc-provider``) and an independent DPoP client (npm ``oauth4webapi``
and ``dpop``) as fixtures; both are node scripts under ``op/``, installed by scripts/install-interop.sh."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from ..support.server_process import stop_process

OP_DIR = Path(__file__).parent / "op"
ROOT = Path(__file__).parents[2]
INSTALL = ROOT / "scripts" / "install-interop.sh"
NODE = shutil.which("node")

#: this API's identifier; the provider's default resource indicator
API = "https://api.test"
#: a second resource server the provider knows: its tokens are not for us
OTHER = "https://other.test"
#: the confidential client provider.mjs registers (client_secret_basic, client_credentials only)
CLIENT_ID = "interop-client"
CLIENT_SECRET = "interop-client-secret-0123456789abcdef"

START_TIMEOUT = 20.0  # seconds for the provider to print its ready line
CLIENT_TIMEOUT = 20.0  # seconds for one client.mjs run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dpop_interop: DPoP-bound tokens from the real provider, with proofs from an independent client",
    )


_install_result: str | None = None  # None: not tried; "": ready; else: why not


def _node_ready() -> str:
    """Empty when node and tests/interop/op/node_modules are usable, else the reason they are not."""
    global _install_result
    if NODE is None:
        return "node is not installed (the interop tests run npm oidc-provider)"
    if (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return ""
    if _install_result is None:
        try:
            done = subprocess.run(
                ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _install_result = f"scripts/install-interop.sh failed: {exc}"
        else:
            ok = done.returncode == 0 and (OP_DIR / "node_modules" / "oidc-provider").is_dir()
            why = (done.stderr or done.stdout).strip()[-300:]
            _install_result = "" if ok else (
                f"tests/interop/op/node_modules is missing and scripts/install-interop.sh failed: {why}"
            )
    return _install_result


@pytest.fixture(scope="session")
def node() -> str:
    reason = _node_ready()
    if reason:
        pytest.skip(reason)
    assert NODE is not None
    return NODE


def _pump(stdout: IO[bytes], lines: queue.Queue[bytes]) -> None:
    with stdout:
        for line in stdout:
            lines.put(line)


@dataclass
class Tokens:
    """What client.mjs printed: the access token, its type, and for DPoP the key's thumbprint and proofs."""

    token: str
    token_type: str
    jkt: str | None
    proof: str | None
    proofs: list[dict[str, str]] = field(default_factory=list)


class Provider:
    """One oidc-provider process on 127.0.0.1 (a free port it picks itself); always stopped."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.issuer = ""
        self.kids: list[str] = []
        self._log = tempfile.TemporaryFile()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Provider:
        # stdin is a pipe the provider watches (--exit-with-stdin): it dies with us even on SIGKILL
        self._proc = subprocess.Popen(
            [self.node, str(OP_DIR / "provider.mjs"), "--port", "0", "--exit-with-stdin"],
            cwd=OP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        assert stdout is not None
        threading.Thread(target=_pump, args=(stdout, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            except queue.Empty:
                if self._proc.poll() is None and time.monotonic() < deadline:
                    continue
                self.stop()
                why = f"oidc-provider did not start in {START_TIMEOUT:.0f} s: {self.log()}"
                raise RuntimeError(why) from None
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("ready"):
                self.issuer = ready["issuer"]
                self.kids = ready["kids"]
                return self

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        stop_process(proc, within=5)
        if proc.stdin is not None:
            proc.stdin.close()  # stdout is closed by its reader thread at EOF

    def close(self) -> None:
        self.stop()
        self._log.close()

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    # --- the provider's loopback admin routes (provider.mjs) ---------------------------------
    def admin(self, method: str, path: str) -> dict[str, Any]:
        response = httpx.request(method, self.issuer + path, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def rotate(self) -> str:
        """A new ES256 key signs from now on; the old one stays listed second. Returns the new kid."""
        result = self.admin("POST", "/__rotate")
        self.kids = result["kids"]
        return str(result["kid"])

    def retire(self) -> None:
        """Publish only the current signing key."""
        self.kids = self.admin("POST", "/__retire")["kids"]

    def jwks_requests(self) -> int:
        return int(self.admin("GET", "/__stats")["jwks_requests"])

    # --- tokens, through the independent client (client.mjs) -------------------------------
    def tokens(
        self, *, resource: str | None = API, scope: str = "read", dpop: bool = False,
        requests: tuple[tuple[str, str], ...] = (), nonce: str | None = None,
    ) -> Tokens:
        """A client_credentials token; with ``dpop`` bound to a fresh key, with proofs for ``requests``."""
        argv = [
            self.node, str(OP_DIR / "client.mjs"), "--issuer", self.issuer,
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--scope", scope,
        ]
        if resource is not None:
            argv += ["--resource", resource]
        if dpop:
            argv.append("--dpop")
        for method, url in requests:
            argv += ["--request", f"{method} {url}"]
        if nonce is not None:
            argv += ["--nonce", nonce]
        done = subprocess.run(
            argv, cwd=OP_DIR, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"client.mjs failed: {done.stderr.strip()[-1000:]}\nprovider: {self.log()}")
        out = json.loads(done.stdout)
        return Tokens(out["token"], out["token_type"], out["jkt"], out["proof"], out["proofs"])


@pytest.fixture
def provider(node: str) -> Iterator[Provider]:
    """A fresh provider per test: key rotation in one test cannot leak into another."""
    op = Provider(node)
    try:
        yield op.start()
    finally:
        op.close()
