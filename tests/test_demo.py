"""The demo app: in-process through create_demo_app(), and as a real `jwt-middleware demo` server."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jwt_middleware.cli import main
from jwt_middleware.demo import DEMO_AUDIENCE, cli_command, create_demo_app, mint_demo_token
from jwt_middleware.testing import make_key, mint

from .support.redis_server import free_port

START_TIMEOUT = 30.0  # seconds for the server to print its banner
HTTP_TIMEOUT = 10.0  # seconds per request


# --- in-process ----------------------------------------------------------------------------
@dataclass
class Demo:
    client: httpx.AsyncClient
    read: str
    admin: str


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    app, key, issuer = create_demo_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Demo(client, mint_demo_token(key, issuer, "read"), mint_demo_token(key, issuer, "read admin"))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_public_routes_need_no_token(demo: Demo) -> None:
    home = await demo.client.get("/")
    assert home.status_code == 200
    assert "Authorization: Bearer" in home.text
    jwks = (await demo.client.get("/.well-known/jwks.json")).json()
    assert [k["kty"] for k in jwks["keys"]] == ["EC"]
    assert all("d" not in k for k in jwks["keys"])


async def test_me_returns_the_verified_identity(demo: Demo) -> None:
    response = await demo.client.get("/me", headers=bearer(demo.read))
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "demo-user"
    assert body["scopes"] == ["read"]
    assert body["issuer"] == "http://127.0.0.1:8000"
    assert isinstance(body["expires_at"], int | float)


async def test_me_without_a_token_is_401(demo: Demo) -> None:
    response = await demo.client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_admin_needs_the_admin_scope(demo: Demo) -> None:
    refused = await demo.client.get("/admin", headers=bearer(demo.read))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert (await demo.client.get("/admin", headers=bearer(demo.admin))).status_code == 200


async def test_tokens_of_another_key_or_audience_are_refused(demo: Demo) -> None:
    stranger = mint_demo_token(make_key("ES256"), "http://127.0.0.1:8000", "read admin")
    assert (await demo.client.get("/me", headers=bearer(stranger))).status_code == 401
    app, key, issuer = create_demo_app(issuer="http://127.0.0.1:9999")
    assert issuer == "http://127.0.0.1:9999"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as own:
        wrong_aud = mint(key, {"scope": "read"}, issuer=issuer, audience="other")
        assert (await own.get("/me", headers=bearer(wrong_aud))).status_code == 401
        right_aud = mint(key, {"scope": "read"}, issuer=issuer, audience=DEMO_AUDIENCE)
        assert (await own.get("/me", headers=bearer(right_aud))).status_code == 200
        other_issuer = mint_demo_token(key, "http://127.0.0.1:8000", "read")
        assert (await own.get("/me", headers=bearer(other_issuer))).status_code == 401


def test_demo_without_uvicorn_exits_2_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` raise ImportError
    assert main(["demo", "--port", "0"]) == 2
    assert "pip install" in capsys.readouterr().err


def test_demo_on_a_busy_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["demo", "--port", str(busy.getsockname()[1])]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_demo_rejects_an_impossible_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--port", "70000"]) == 2


# --- a real server -------------------------------------------------------------------------
@dataclass
class Banner:
    port: int
    url: str
    read: str
    admin: str
    text: str


class DemoProcess:
    """`python -m jwt_middleware.cli demo` with stdout and stderr read by threads (so waits are
    bounded, and a chatty log never fills the pipe and stalls the server)."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jwt_middleware.cli", "demo", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_pump.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self._stderr.append(raw)

    def banner(self) -> Banner:
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no banner within {START_TIMEOUT}s; got {seen!r}")
            if line is None:
                pytest.fail(f"demo exited early ({self.process.wait(5)}): {self.stderr()}")
            seen.append(line)
            if line.startswith("Press Ctrl+C"):
                return _parse_banner("".join(seen))

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)

    def stderr(self) -> str:
        """Everything the process wrote to stderr; call once it has exited."""
        self._stderr_pump.join(timeout=15)
        return b"".join(self._stderr).decode("utf-8", "replace")


def _parse_banner(text: str) -> Banner:
    port = re.search(r"^  port +(\d+)$", text, re.MULTILINE)
    url = re.search(r"^  url +(\S+)$", text, re.MULTILINE)
    read = re.search(r'^READ_TOKEN \(scope "read"\):\n  (\S+)$', text, re.MULTILINE)
    admin = re.search(r'^ADMIN_TOKEN \(scope "read admin"\):\n  (\S+)$', text, re.MULTILINE)
    assert port and url and read and admin, text
    return Banner(int(port.group(1)), url.group(1), read.group(1), admin.group(1), text)


@pytest.fixture
def server() -> Iterator[tuple[DemoProcess, Banner, int]]:
    port = free_port()
    demo = DemoProcess("--port", str(port))
    try:
        yield demo, demo.banner(), port
    finally:
        demo.stop()


def test_demo_server_end_to_end(server: tuple[DemoProcess, Banner, int]) -> None:
    _, banner, port = server
    assert banner.port == port
    assert banner.url == f"http://127.0.0.1:{port}"  # loopback unless --host says otherwise
    assert f"curl -H 'Authorization: Bearer {banner.read}' {banner.url}/me" in banner.text
    with httpx.Client(base_url=banner.url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        assert client.get("/").status_code == 200
        me = client.get("/me", headers=bearer(banner.read))
        assert me.status_code == 200, me.text
        assert me.json()["scopes"] == ["read"]
        assert me.json()["issuer"] == banner.url
        missing = client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
        insufficient = client.get("/admin", headers=bearer(banner.read))
        assert insufficient.status_code == 403
        assert 'scope="admin"' in insufficient.headers["www-authenticate"]
        admin = client.get("/admin", headers=bearer(banner.admin))
        assert admin.status_code == 200
        assert client.get("/me", headers=bearer(banner.read + "x")).status_code == 401


def shell_env_without_the_venv() -> dict[str, str]:
    """The environment of a fresh shell: this venv neither activated nor on PATH, no proxies."""
    venv_bin = os.path.dirname(os.path.abspath(sys.executable))
    dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
            if d and os.path.abspath(d) != venv_bin and shutil.which("jwt-middleware", path=d) is None]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.lower().endswith("_proxy")}
    env["PATH"] = os.pathsep.join(dirs) or "/usr/bin:/bin"
    assert shutil.which("jwt-middleware", path=env["PATH"]) is None  # the bare name would not run
    return env


def run_in_shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], env=shell_env_without_the_venv(), capture_output=True,
                          text=True, timeout=60, check=False)


def printed_commands(banner: Banner) -> list[str]:
    """The lines under "Try:", as a user would paste them (comments included)."""
    block = banner.text.split("\nTry:\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed commands use curl")
def test_printed_commands_run_in_a_shell_without_the_venv(server: tuple[DemoProcess, Banner, int]) -> None:
    _, banner, _ = server
    commands = printed_commands(banner)
    assert len(commands) == 6
    outputs = []
    for command in commands:
        done = run_in_shell(command)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    home, me, not_admin, admin, anonymous, verified = outputs
    assert home.startswith("jwt_middleware demo: this API is protected by JWTMiddleware.")
    assert '"subject":"demo-user"' in me and '"scopes":["read"]' in me
    assert not_admin.startswith("HTTP/1.1 403") and 'error="insufficient_scope"' in not_admin
    assert "welcome to the admin area" in admin
    assert anonymous.startswith("HTTP/1.1 401") and 'www-authenticate: Bearer realm="api"' in anonymous
    assert commands[-1].startswith(f"{cli_command()} verify ") and os.path.isabs(commands[-1].split()[0])
    assert [line.count('"valid": true') for line in verified.splitlines()] == [1]


def test_cli_command_falls_back_to_this_interpreter_when_no_script_is_installed(tmp_path: Path) -> None:
    """A ``pip install --user`` or an unusual layout: no script beside the interpreter."""
    command = cli_command(scripts_dir=str(tmp_path))
    assert command == f"{sys.executable} -m jwt_middleware.cli"
    done = run_in_shell(f"{command} keys generate --alg ES256")
    assert done.returncode == 0, done.stderr
    assert '"kty": "EC"' in done.stdout or '"kty":"EC"' in done.stdout


def test_cli_command_is_the_installed_script_by_absolute_path(tmp_path: Path) -> None:
    script = tmp_path / "jwt-middleware"
    script.write_text("#!/bin/sh\necho installed\n")
    script.chmod(0o755)
    assert cli_command(scripts_dir=str(tmp_path)) == str(script)
    assert run_in_shell(cli_command(scripts_dir=str(tmp_path))).stdout == "installed\n"


def test_demo_shows_its_audit_lines_on_stderr(server: tuple[DemoProcess, Banner, int]) -> None:
    demo, banner, _ = server
    with httpx.Client(base_url=banner.url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        assert client.get("/me", headers=bearer(banner.read)).status_code == 200
        assert client.get("/me").status_code == 401
        assert client.get("/admin", headers=bearer(banner.read)).status_code == 403
    assert demo.stop(signal.SIGINT) == 130
    stderr = demo.stderr()
    audit = [line for line in stderr.splitlines() if " jwt_middleware.audit: " in line]
    assert [re.sub(r"fp=\w+", "fp=…", line) for line in audit] == [
        "INFO:     jwt_middleware.audit: jwt allow reason=ok fp=…",
        "INFO:     jwt_middleware.audit: jwt deny reason=missing_token fp=…",
        "WARNING:  jwt_middleware.audit: jwt deny reason=insufficient_scope fp=…",
    ]
    assert banner.read not in stderr and banner.admin not in stderr
    assert "INFO:     Application startup complete." in stderr  # uvicorn's own lines are still there


def test_importing_the_demo_configures_no_logging() -> None:
    """Only run_demo() turns the library's lines on; importing the module leaves logging alone."""
    script = (
        "import logging, jwt_middleware\n"
        "lg = logging.getLogger('jwt_middleware')\n"
        "state = lambda: (list(lg.handlers), lg.level, lg.propagate, logging.getLogger().handlers[:])\n"
        "before = state()\n"
        "import jwt_middleware.demo\n"
        "print(state() == before, lg.level)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "True 0", done.stderr


@pytest.mark.parametrize(
    ("how", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)],  # uvicorn re-raises SIGTERM after shutdown
    ids=["ctrl-c", "terminate"],
)
def test_demo_shuts_down_gracefully(
    server: tuple[DemoProcess, Banner, int], how: signal.Signals, code: int
) -> None:
    demo, _, _ = server
    assert demo.stop(how) == code
    stderr = demo.stderr()
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr
