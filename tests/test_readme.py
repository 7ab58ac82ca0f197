"""Every fenced code block of README.md and examples/README.md runs as a reader would run it.

A reader pastes a block and expects it to work, so each block is run as written, by the
language its fence names:

- ``python``: executed in a fresh namespace (``__name__ == "__main__"``) with an empty
  working directory, under pytest as the reader's own test would be. A block that builds an
  app must show it protecting something: with ``assert`` lines of its own, or through its
  framework's test client here (:data:`EXERCISES`), so "runs" means "protects", not "imports";
- ``sh``/``bash``/``console``: the shell blocks of one section run in order in one ``bash``
  (they share files and variables: ``keys generate`` → ``token mint`` → ``verify``), in an empty
  directory with the venv's ``bin`` first on the PATH, as the README asks; what the README says
  they print is asserted (:data:`OUTPUTS`). The commands of a table's ``run`` column are
  alternatives: the section runs once per command, each a server started in the background
  and sent the section's requests;
- ``toml``/``json``: parsed.

Nothing else is changed. The only edits are in one table, :data:`SUBSTITUTIONS` (a reader's
IdP URL, Redis host and port 8000 become the test's own), plus :data:`ENVIRONMENT` (what a
reader exports) and :data:`WORKDIR_LINKS` (what of the repository root the reader stands in).
A block that cannot run here is in :data:`EXCLUDED` with its reason, and the demo block, which
serves until stopped, has a test of its own (:data:`RUN_ELSEWHERE`). A new block is run
whatever its section. A block nobody can run fails :func:`test_every_block_is_run_or_listed`,
and so does a table entry whose block has gone.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import queue
import re
import shlex
import signal
import string
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from jwt_middleware import JWTMiddleware, RequestView, WSGIJWTMiddleware
from jwt_middleware.proxies import effective_origin
from jwt_middleware.testing import dpop_proof, jkt, make_key, mint, public_jwks

from .support.jwks_server import JWKSServer
from .support.redis_server import RedisServer, free_port

ROOT: Final = Path(__file__).resolve().parent.parent
DOCUMENTS: Final = ("README.md", "examples/README.md")
VENV: Final = Path(sys.prefix)
BIN: Final = Path(sys.executable).parent
START_TIMEOUT: Final = 30.0  # seconds a server may take to listen
RUN_TIMEOUT: Final = 120.0  # seconds for one section's shell session

PYTHON: Final = frozenset({"python", "py"})
SHELL: Final = frozenset({"sh", "bash", "shell", "console"})
DATA: Final[Mapping[str, Callable[[str], object]]] = {"toml": tomllib.loads, "json": json.loads}
#: fence languages that say "not code": shown, never run
PROSE: Final = frozenset({"text", "txt"})
#: a step whose command starts with one of these serves until stopped: it runs in the background
SERVER_PROGRAMS: Final = ("uvicorn ", "gunicorn ")


# --- the documents' blocks ------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its fence language and its text."""

    document: str
    section: str
    ordinal: int  # among the blocks of its section, from 1
    line: int  # of the opening fence
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.document} § {self.section} #{self.ordinal}"

    @property
    def section_id(self) -> str:
        return f"{self.document} § {self.section}"

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")


@dataclass(frozen=True)
class TableCommand:
    """One command in a Markdown table's ``run`` column (inline code): one alternative to run."""

    document: str
    section: str
    line: int
    code: str

    @property
    def section_id(self) -> str:
        return f"{self.document} § {self.section}"

    @property
    def id(self) -> str:
        return f"{self.section_id}: {self.code}"


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t#]*$")
_INLINE_CODE = re.compile(r"`([^`]+)`")


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def parse_blocks(document: str) -> list[Block]:
    """Every fenced block of ``document`` (CommonMark fences: ``` or ~~~, any indent)."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section, counts, index = "(top)", Counter[str](), 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            heading = _HEADING.match(lines[index])
            section = heading["title"] if heading else section
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not _closes(lines[end], opening["fence"]):
            end += 1
        assert end < len(lines), f"{document}:{index + 1}: a code fence is never closed"
        indent = len(opening["indent"])
        body = [line[indent:] if line[:indent].strip() == "" else line for line in lines[index + 1 : end]]
        counts[section] += 1
        blocks.append(Block(document, section, counts[section], index + 1, opening["info"].lower(),
                            "\n".join(body) + "\n"))
        index = end + 1
    return blocks


def parse_table_commands(document: str) -> list[TableCommand]:
    """The inline-code commands in the ``run`` column of each table of ``document``."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    found: list[TableCommand] = []
    section, column = "(top)", None
    for number, line in enumerate(lines, 1):
        heading = _HEADING.match(line)
        if heading:
            section = heading["title"]
        if not line.startswith("|"):
            column = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if column is None:
            column = cells.index("run") if "run" in cells else -1
        elif column >= 0 and not set("".join(cells)) <= set("-: "):
            found += [TableCommand(document, section, number, code) for code in _INLINE_CODE.findall(cells[column])]
    return found


BLOCKS: Final = [block for document in DOCUMENTS for block in parse_blocks(document)]
TABLE_COMMANDS: Final = [command for document in DOCUMENTS for command in parse_table_commands(document)]


# --- the tables: everything the test does differently from a reader ------------------------
#: blocks not run, keyed by their first line, each with the reason
EXCLUDED: Final[Mapping[str, str]] = {
    "pip install asgi-wsgi-jwt-guard                # WSGIJWTMiddleware, Flask, Django under WSGI, the CLI": (
        "installs the published package from PyPI; tests/test_packaging.py installs the wheel built from this "
        "checkout without starlette, and test_install_commands_name_what_the_venv_has checks every extra named"
    ),
    "bash scripts/test.sh": "the test-suite command itself: run here, it would run this test again",
    "pip install '.[server,fastapi,flask,django,litestar]' gunicorn": (
        "installs into the reader's venv; this test runs in the venv scripts/test.sh installed, and "
        "test_install_commands_name_what_the_venv_has checks it holds every extra and package named"
    ),
}

#: blocks run by a test of their own, keyed by their first line
RUN_ELSEWHERE: Final[Mapping[str, str]] = {
    "python3 -m venv .venv && .venv/bin/pip install -q '.[server]' && .venv/bin/jwt-middleware demo": (
        "test_the_demo_command_serves_and_its_printed_commands_work: it serves until stopped"
    ),
}


@dataclass(frozen=True)
class Substitution:
    """``old`` → ``new`` in one block before it runs; ``new`` may name {issuer}, {redis_port}, {port}."""

    block: str
    old: str
    new: str
    reason: str


_IDP = "the reader's IdP: our JWKS/OIDC server on 127.0.0.1 (tests/support/jwks_server.py), keys by discovery"
SUBSTITUTIONS: Final = (
    Substitution("README.md § Quickstart (Starlette / any ASGI app) #1", "https://idp.example.com", "{issuer}", _IDP),
    Substitution("README.md § WSGI (Flask, Django, …) and framework helpers #1", "https://idp.example.com",
                 "{issuer}", _IDP),
    Substitution("README.md § WSGI (Flask, Django, …) and framework helpers #2", "https://idp.example.com",
                 "{issuer}", _IDP),
    Substitution("README.md § Replay protection: DPoP, one-time tokens, iat windows, Redis #1",
                 "https://idp.example.com", "{issuer}", _IDP),
    Substitution("README.md § Hooks: your checks, your users, your error bodies #1", "https://idp.example.com",
                 "{issuer}", _IDP),
    Substitution("README.md § Revocation: a stolen or logged-out token stops everywhere #1", "https://idp.example.com", "{issuer}", _IDP),
    Substitution("README.md § Revocation: a stolen or logged-out token stops everywhere #1", 'host="redis"', 'host="127.0.0.1", port={redis_port}',
                 "the reader's Redis: our redis-server on a free port"),
    Substitution("README.md § Replay protection: DPoP, one-time tokens, iat windows, Redis #1", 'host="redis"',
                 'host="127.0.0.1", port={redis_port}', "the reader's Redis: our redis-server on a free port"),
    Substitution("README.md § The two commands #1", "python3 -m venv .venv && .venv/bin/pip install -q '.[server]' && ",
                 "", "the install: the test's venv is that venv, linked as .venv (WORKDIR_LINKS); "
                 "test_install_commands_name_what_the_venv_has checks the extra"),
    Substitution("README.md § The two commands #1", ".venv/bin/jwt-middleware demo",
                 ".venv/bin/jwt-middleware demo --port 0", "port 8000 may be another test's; the demo prints the one it got"),
    Substitution("examples/README.md § Examples #3", "http://127.0.0.1:8000", "http://127.0.0.1:{port}",
                 "port 8000 may be another test's: the server listens on {port} (ENVIRONMENT)"),
)

#: environment variables set for every block of a section: what the reader exports
ENVIRONMENT: Final[Mapping[str, Mapping[str, str]]] = {
    "README.md § Replay protection: DPoP, one-time tokens, iat windows, Redis": {
        "DPOP_NONCE_SECRET": "{secret}",  # the README says how the reader makes one
    },
    "README.md § Revoking from the command line": {
        "JWT_MIDDLEWARE_REDIS_URL": "redis://127.0.0.1:{redis_port}/0",  # the reader's Redis, as the README says
    },
    "examples/README.md § Examples": {
        "UVICORN_PORT": "{port}",  # uvicorn's own variable for --port: the commands stay as written
        "GUNICORN_CMD_ARGS": "--bind 127.0.0.1:{port}",  # gunicorn's own variable for its options
    },
}

#: what of the repository root a section's working directory holds (the reader runs it there)
WORKDIR_LINKS: Final[Mapping[str, Mapping[str, Path]]] = {
    "README.md § The two commands": {".venv": VENV},
    "examples/README.md § Examples": {"examples": ROOT / "examples"},
}


# --- the reader's world, stood in for ------------------------------------------------------
class Reader:
    """What a reader has and the test provides: an IdP with a key, a Redis, a free port."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.key = make_key("ES256", kid="idp-1")

    @cached_property
    def idp(self) -> JWKSServer:
        server = JWKSServer(None).start()  # http: allowed on loopback, so discovery needs no CA
        server.behaviour.jwks = public_jwks(self.key)
        self._request.addfinalizer(server.stop)
        return server

    @cached_property
    def redis(self) -> RedisServer:
        server: RedisServer = self._request.getfixturevalue("redis_server")
        return server

    @cached_property
    def port(self) -> int:
        return free_port()

    @cached_property
    def secret(self) -> str:
        return os.urandom(32).hex()

    def value(self, name: str) -> str:
        values: dict[str, Callable[[], object]] = {
            "issuer": lambda: self.idp.url, "redis_port": lambda: self.redis.port,
            "port": lambda: self.port, "secret": lambda: self.secret,
        }
        return str(values[name]())

    def fill(self, template: str) -> str:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        return template.format(**{name: self.value(name) for name in names})

    def token(self, audience: str, **claims: Any) -> str:
        """A token from the reader's IdP for alice."""
        return mint(self.key, {"sub": "alice", **claims}, issuer=self.idp.url, audience=audience)


@pytest.fixture
def reader(request: pytest.FixtureRequest) -> Reader:
    return Reader(request)


def as_run(block: Block | TableCommand, reader: Reader) -> str:
    """The block's text with its listed substitutions made."""
    code = block.code
    for substitution in SUBSTITUTIONS:
        if substitution.block == block.id:
            code = code.replace(substitution.old, reader.fill(substitution.new))
    return code


def environment(section_id: str, reader: Reader) -> dict[str, str]:
    return {name: reader.fill(value) for name, value in ENVIRONMENT.get(section_id, {}).items()}


def workdir(tmp_path: Path, section_id: str) -> Path:
    for name, target in WORKDIR_LINKS.get(section_id, {}).items():
        (tmp_path / name).symlink_to(target)
    return tmp_path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- what is asserted of each python block's objects ---------------------------------------
# A block that builds an app and has ``assert`` lines of its own (as "Testing your app" does) is
# its own exercise and needs no entry here; one that builds an app without them needs one.
def exercise_quickstart(namespace: dict[str, Any], reader: Reader) -> None:
    client = TestClient(namespace["app"])
    refused = client.get("/me")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="api"'
    read = reader.token("https://api.example.com", scope="read")
    assert client.get("/me", headers=bearer(read)).json() == {"sub": "alice", "scopes": ["read"]}
    assert client.get("/admin/panel", headers=bearer(read)).status_code == 403
    admin = reader.token("https://api.example.com", scope="read admin")
    assert client.get("/admin/panel", headers=bearer(admin)).json() == {"ok": True}
    assert client.get("/health").status_code == 404  # public: it reaches the router, which has no /health


def exercise_wsgi(namespace: dict[str, Any], reader: Reader) -> None:
    flask = namespace["flask_app"].test_client()
    assert flask.get("/me").status_code == 401
    plain = reader.token("https://api.example.com")
    assert flask.get("/me", headers=bearer(plain)).get_json() == {"sub": "alice"}
    refused = flask.delete("/items/7", headers=bearer(plain))
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    allowed = reader.token("https://api.example.com", scope="items:delete")
    assert flask.delete("/items/7", headers=bearer(allowed)).get_json() == {"deleted": 7}

    from werkzeug.test import Client

    assert isinstance(namespace["wsgi_app"], WSGIJWTMiddleware)
    hello = Client(namespace["wsgi_app"])
    assert hello.get("/").status_code == 401
    assert hello.get("/", headers=bearer(plain)).get_data() == b"hello alice"


def exercise_docs_rules(namespace: dict[str, Any], reader: Reader) -> None:
    api = TestClient(namespace["api_app"])
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        assert api.get(path).status_code == 200, path
    assert api.get("/admin/x").status_code == 401
    litestar = TestClient(namespace["litestar_app"])
    schema = litestar.get("/schema/openapi.json")
    assert schema.status_code == 200 and "bearerAuth" in schema.text
    assert litestar.get("/me").status_code == 401
    token = reader.token("https://api.example.com")
    assert litestar.get("/me", headers=bearer(token)).json() == {"hello": "you"}
    assert litestar.get("/admin/x", headers=bearer(token)).status_code == 403


def exercise_redis_replay(namespace: dict[str, Any], reader: Reader) -> None:
    """``/pay``: DPoP with server nonces and one-time tokens, its state in the real Redis."""

    async def pay(request: Request) -> JSONResponse:
        return JSONResponse({"paid": True})

    app = JWTMiddleware(Starlette(routes=[Route("/pay", pay, methods=["POST"])]), namespace["auth"])
    client_key = make_key("ES256")
    token = reader.token("https://api.example.com", cnf={"jkt": jkt(client_key)})

    def headers(nonce: str | None) -> dict[str, str]:
        proof = dpop_proof(client_key, "POST", "https://api.example.com/pay", access_token=token, nonce=nonce)
        return {"Authorization": f"DPoP {token}", "DPoP": proof}

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            first = await client.post("/pay", headers=headers(None))
            assert first.status_code == 401 and 'error="use_dpop_nonce"' in first.headers["www-authenticate"]
            nonce = first.headers["dpop-nonce"]
            paid = await client.post("/pay", headers=headers(nonce))
            assert paid.status_code == 200, paid.text
            replayed = await client.post("/pay", headers=headers(nonce))
            assert replayed.status_code == 401 and 'error="invalid_token"' in replayed.headers["www-authenticate"]
        await namespace["redis_client"].aclose()

    asyncio.run(run())
    with redis.Redis(port=reader.redis.port) as direct:
        assert direct.keys("jwtmw:*"), "the one-time jti and the proof's jti are kept in Redis"


def exercise_trusted_proxies(namespace: dict[str, Any], reader: Reader) -> None:
    proxies = namespace["config"].trusted_proxies
    forwarded = [(b"host", b"api.example.com"), (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
    via_proxy = RequestView("GET", "/", forwarded, client_ip="10.0.0.5")
    assert effective_origin(via_proxy, proxies) == ("https", "api.example.com", "203.0.113.7")
    direct = RequestView("GET", "/", forwarded, client_ip="198.51.100.1")  # not a listed proxy
    assert effective_origin(direct, proxies) == ("http", "api.example.com", "198.51.100.1")


def exercise_hooks(namespace: dict[str, Any], reader: Reader) -> None:
    """The tenant check refuses (401, the problem body, our challenge), the loader's user is
    ``current_user()``, and both frameworks' own handlers answer the helpers' refusals."""
    flask = namespace["flask_app"].test_client()
    outsider = reader.token("https://api.example.com", tenant="initech", scope="reports:read")
    refused = flask.get("/reports", headers=bearer(outsider))
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert refused.get_json() == {"type": "about:blank", "status": 401, "code": "invalid_token"}
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    member = reader.token("https://api.example.com", tenant="acme", scope="reports:read")
    assert flask.get("/reports", headers=bearer(member)).get_json() == {"for": "Alice"}
    reader_only = reader.token("https://api.example.com", tenant="acme")
    helper = flask.get("/reports", headers=bearer(reader_only))
    assert helper.status_code == 403 and helper.get_json() == {"problem": "insufficient_scope"}
    assert 'error="insufficient_scope"' in helper.headers["WWW-Authenticate"]  # put back by JWTFlask

    api = TestClient(namespace["asgi_app"])
    assert api.get("/reports", headers=bearer(outsider)).json()["code"] == "invalid_token"
    assert api.get("/reports", headers=bearer(member)).json() == {"sub": "alice"}
    denied = api.get("/reports", headers=bearer(reader_only))
    assert denied.status_code == 403 and denied.json() == {"problem": "insufficient_scope"}
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]


def exercise_revocation(namespace: dict[str, Any], reader: Reader) -> None:
    """A logout revokes its session in Redis: that session's tokens are refused from the next
    request on (a verified-cache hit included), another session's still pass."""
    with TestClient(namespace["app"]) as client:  # the lifespan starts the store, and closes it
        mine = bearer(reader.token("https://api.example.com", sid="session-1"))
        other = bearer(reader.token("https://api.example.com", sid="session-2"))
        assert client.get("/me", headers=mine).json() == {"sub": "alice"}
        assert client.post("/logout", headers=mine).json() == {"logged_out": True}
        for _ in range(2):  # the second time from the verified-token cache
            refused = client.get("/me", headers=mine)
            assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert client.get("/me", headers=other).status_code == 200
    with redis.Redis(port=reader.redis.port) as direct:
        # the reader's Redis may hold other blocks' revocations too (the CLI section writes there)
        fields = direct.hkeys("{jwt_middleware:revocation}:cutoffs")
        assert any(b"session-1" in field for field in fields), "the cut-off is in Redis for every worker"


def exercise_set_receiver(namespace: dict[str, Any], reader: Reader) -> None:
    """Junk is RFC 8935's 400 invalid_request; a SET of the transmitter pushed without its bearer
    token is 401, before its signature is even looked at."""
    client = TestClient(namespace["events"])
    kind = {"content-type": "application/secevent+jwt"}
    junk = client.post("/caep", content=b"not-a-set", headers=kind)
    assert junk.status_code == 400 and junk.json()["err"] == "invalid_request"

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": "https://idp.example.com", "jti": "set-1", "iat": int(time.time()),
              "aud": "https://api.example.com/caep", "events": {}}
    pushed = f"{segment({'alg': 'RS256', 'typ': 'secevent+jwt'})}.{segment(claims)}.AAAA"
    assert client.post("/caep", content=pushed.encode(), headers=kind).status_code == 401


EXERCISES: Final[Mapping[str, Callable[[dict[str, Any], Reader], None]]] = {
    "README.md § Quickstart (Starlette / any ASGI app) #1": exercise_quickstart,
    "README.md § WSGI (Flask, Django, …) and framework helpers #1": exercise_wsgi,
    "README.md § WSGI (Flask, Django, …) and framework helpers #2": exercise_docs_rules,
    "README.md § Replay protection: DPoP, one-time tokens, iat windows, Redis #1": exercise_redis_replay,
    "README.md § Behind a reverse proxy: one trusted-proxy model #1": exercise_trusted_proxies,
    "README.md § Hooks: your checks, your users, your error bodies #1": exercise_hooks,
    "README.md § Revocation: a stolen or logged-out token stops everywhere #1": exercise_revocation,
    "README.md § Shared Signals (CAEP, RISC): revocations pushed by your identity provider #1": exercise_set_receiver,
}


def builds_an_app(value: object) -> bool:
    """An ASGI/WSGI app object, or a test client around one: what a reader would serve or call."""
    import flask
    import litestar

    return isinstance(value, JWTMiddleware | WSGIJWTMiddleware | Starlette | flask.Flask | litestar.Litestar
                      | TestClient)


# --- what is asserted of each shell block's output -----------------------------------------
def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def verified_es256(output: str) -> None:
    (line,) = json_lines(output)[-1:]
    assert line["valid"] is True and line["claims"]["sub"] == "user" and line["claims"]["scope"] == "read"


def verified_hs256(output: str) -> None:
    (line,) = json_lines(output)
    assert line["valid"] is True and line["claims"]["iss"] == "https://hs.example"


def verified_both_by_config(output: str) -> None:
    assert [line["valid"] for line in json_lines(output)] == [True, True]


def refused_with_explanation(output: str) -> None:
    (line,) = json_lines(output)
    assert line["valid"] is False and line["reason"] == "invalid_audience"
    assert "unverified" in line["explain"]
    assert output.strip().endswith("refused: exit 1")


def example_answers(output: str) -> None:
    assert output.count('"user"') >= 2, output  # /me and /admin answer for the token's subject
    assert "HTTP/1.1 401 " in output, output  # curl -i: the status line of the tokenless call


def revocations_written(output: str) -> None:
    kinds = [line["revoked"] for line in json_lines(output)]
    assert kinds == ["subject", "session", "client", "token"], kinds


OUTPUTS: Final[Mapping[str, Callable[[str], None]]] = {
    "README.md § Command line #1": verified_es256,
    "README.md § Command line #2": verified_hs256,
    "README.md § Command line #3": verified_both_by_config,
    "README.md § Command line #4": refused_with_explanation,
    "README.md § Revoking from the command line #1": revocations_written,
    "examples/README.md § Examples #3": example_answers,
}


# --- every block is run, or listed with a reason -------------------------------------------
def _by_first_line(line: str) -> list[Block]:
    return [block for block in BLOCKS if block.first_line == line]


def test_every_block_is_run_or_listed() -> None:
    assert BLOCKS, "no code block found: the parser or the documents moved"
    known = PYTHON | SHELL | PROSE | set(DATA)
    for block in BLOCKS:
        assert block.language in known, (
            f"{block.id} (line {block.line}): fence language {block.language!r} is not one this test runs; "
            f"name one of {sorted(known)} (text only for what is not code)"
        )
    for table in (EXCLUDED, RUN_ELSEWHERE):
        for line in table:
            assert len(_by_first_line(line)) == 1, f"{line!r}: listed, but no single block starts with it any more"
    ids = {block.id for block in BLOCKS}
    for name, entries in (("EXERCISES", EXERCISES), ("OUTPUTS", OUTPUTS)):
        for block_id in entries:
            assert block_id in ids, f"{name}[{block_id!r}]: no such block any more"
    for substitution in SUBSTITUTIONS:
        (block,) = [block for block in BLOCKS if block.id == substitution.block] or [None]
        assert block is not None, f"SUBSTITUTIONS: no block {substitution.block!r} any more"
        assert substitution.old in block.code, f"SUBSTITUTIONS: {substitution.old!r} is no longer in {block.id}"
    sections = {block.section_id for block in BLOCKS} | {command.section_id for command in TABLE_COMMANDS}
    for table in (ENVIRONMENT, WORKDIR_LINKS):
        for section_id in table:
            assert section_id in sections, f"{section_id!r}: no such section any more"
    run = {block.id for block in PYTHON_BLOCKS + DATA_BLOCKS} | {
        block.id for session in SESSIONS for block in session.blocks
    }
    for block in BLOCKS:
        if block.first_line in EXCLUDED or block.first_line in RUN_ELSEWHERE or block.language in PROSE:
            continue
        assert block.id in run, f"{block.id}: no test runs it"
    for command in TABLE_COMMANDS:
        assert any(command in session.steps for session in SESSIONS), f"{command.id}: no test runs it"


def test_the_documents_name_one_helper_each() -> None:
    """One documented name per helper: Flask's JWTFlask, FastAPI's require_scopes / jwt_identity."""
    for document in DOCUMENTS:
        text = (ROOT / document).read_text(encoding="utf-8")
        for retired in ("RequireScopes", "JWTBearer", "install(app"):
            assert retired not in text, f"{document} still names {retired}"


# --- python ---------------------------------------------------------------------------------
PYTHON_BLOCKS: Final = [
    block for block in BLOCKS
    if block.language in PYTHON and block.first_line not in EXCLUDED and block.first_line not in RUN_ELSEWHERE
]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.id)
def test_python_block_runs_as_written(
    block: Block, reader: Reader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in environment(block.section_id, reader).items():
        monkeypatch.setenv(name, value)
    code = as_run(block, reader)
    # Why: the padding puts each line at its own line number, so a traceback names README.md:line.
    compiled = compile("\n" * block.line + code, str(ROOT / block.document), "exec")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compiled, namespace)
    exercise = EXERCISES.get(block.id)
    if exercise is not None:
        exercise(namespace, reader)
        return
    apps = sorted(name for name, value in namespace.items() if builds_an_app(value))
    asserts = any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code)))
    assert asserts or not apps, (
        f"{block.id} builds {apps} and asserts nothing of them: add what a request to it must get, "
        "in the block (assert lines) or in EXERCISES"
    )


# --- toml, json -----------------------------------------------------------------------------
DATA_BLOCKS: Final = [block for block in BLOCKS if block.language in DATA]


def test_data_blocks_parse() -> None:
    for block in DATA_BLOCKS:
        DATA[block.language](block.code)


# --- shell ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    """The shell blocks of one section, run in order in one bash; with one table command if any."""

    section_id: str
    steps: tuple[Block | TableCommand, ...]

    @property
    def blocks(self) -> list[Block]:
        return [step for step in self.steps if isinstance(step, Block)]

    @property
    def id(self) -> str:
        server = [step.code for step in self.steps if isinstance(step, TableCommand)]
        return self.section_id + (f" with {server[0]}" if server else "")


def _sessions() -> list[Session]:
    shell = [block for block in BLOCKS if block.language in SHELL
             and block.first_line not in EXCLUDED and block.first_line not in RUN_ELSEWHERE]
    sessions: list[Session] = []
    for section_id in dict.fromkeys(block.section_id for block in shell):
        blocks = [block for block in shell if block.section_id == section_id]
        commands = [command for command in TABLE_COMMANDS if command.section_id == section_id]
        for command in commands or [None]:
            steps = sorted([*blocks, *([command] if command else [])], key=lambda step: (step.document, step.line))
            sessions.append(Session(section_id, tuple(steps)))
    return sessions


SESSIONS: Final = _sessions()

_STEP_MARK = "\n@@readme-step {}@@\n"
_PRELUDE = r"""
__servers=()
__stop() { [ ${#__servers[@]} -eq 0 ] || { kill "${__servers[@]}" 2>/dev/null; wait "${__servers[@]}" 2>/dev/null; }; }
trap '__stop || true' EXIT
__listening() {  # port pid log: wait until the server accepts, fail if it exits first
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "server exited:" >&2; cat "$3" >&2; exit 97; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server not listening on $1:" >&2; cat "$3" >&2; exit 98
}
set -eu
"""


def session_script(session: Session, reader: Reader) -> str:
    """One bash script: each step after a marker line; a server step in the background."""
    parts = [_PRELUDE]
    for index, step in enumerate(session.steps):
        mark = _STEP_MARK.format(index)
        parts.append(f"printf %s {shlex.quote(mark)}; printf %s {shlex.quote(mark)} >&2\n")
        code = as_run(step, reader)
        if isinstance(step, TableCommand) or code.startswith(SERVER_PROGRAMS):
            log = f"server-{index}.log"
            parts.append(f"{code.strip()} >{log} 2>&1 &\n__servers+=($!)\n__listening {reader.port} $! {log}\n")
        elif isinstance(step, Block) and step.language == "console":
            parts.append("".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ ")))
        else:
            parts.append(code)
    return "".join(parts)


def console_output_lines(block: Block) -> list[str]:
    """What a ``console`` block shows as output (lines without the ``$ `` prompt)."""
    return [line for line in block.code.splitlines() if line.strip() and not line.startswith("$ ")]


def reader_path(with_venv: bool) -> str:
    """The PATH of a reader: the system's, with the venv's bin first once they activated it."""
    system = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry and Path(entry) != BIN]
    return os.pathsep.join([str(BIN), *system] if with_venv else system)


def reader_env(with_venv: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = reader_path(with_venv)
    if with_venv:
        env["VIRTUAL_ENV"] = str(VENV)
    return {**env, **(extra or {})}


def run_bash(script: str, cwd: Path, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """bash in a session of its own, so a timeout stops it and every server it started."""
    process = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, text=True, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"timed out after {timeout}s\n--- stdout\n{out}\n--- stderr\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("session", SESSIONS, ids=lambda session: session.id)
def test_shell_blocks_run_as_written(session: Session, reader: Reader, tmp_path: Path) -> None:
    cwd = workdir(tmp_path, session.section_id)
    env = reader_env(with_venv=True, extra=environment(session.section_id, reader))
    done = run_bash(session_script(session, reader), cwd, env, RUN_TIMEOUT)
    outputs = done.stdout.split("@@readme-step ")
    errors = done.stderr.split("@@readme-step ")
    failed = session.steps[int(errors[-1].split("@@", 1)[0])] if len(errors) > 1 else None
    assert done.returncode == 0, (
        f"{getattr(failed, 'id', session.id)} exits {done.returncode}\n--- stdout\n{done.stdout}\n"
        f"--- stderr\n{done.stderr}"
    )
    by_step = {int(part.split("@@", 1)[0]): part.split("@@\n", 1)[1] for part in outputs[1:]}
    for index, step in enumerate(session.steps):
        if not isinstance(step, Block):
            continue
        if step.id in OUTPUTS:
            OUTPUTS[step.id](by_step[index])
        if step.language == "console":
            for line in console_output_lines(step):
                assert line in by_step[index], f"{step.id}: {line!r} not printed"


# --- the demo: serves until stopped, prints commands that must work as printed -------------
def _demo_block() -> Block:
    (line,) = [line for line in RUN_ELSEWHERE if "jwt-middleware demo" in line]
    (block,) = _by_first_line(line)
    return block


def _read_until(process: subprocess.Popen[str], marker: str, stderr_log: str) -> str:
    """The process's output up to the line starting with ``marker`` (bounded by START_TIMEOUT)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"nothing like {marker!r} within {START_TIMEOUT}s: {''.join(seen)}")
        if line is None:
            stderr = Path(stderr_log).read_text()
            pytest.fail(f"exited ({process.wait(5)}) before {marker!r}: {''.join(seen)}{stderr}")
        seen.append(line)
        if line.startswith(marker):
            return "".join(seen)


def test_the_demo_command_serves_and_its_printed_commands_work(reader: Reader, tmp_path: Path) -> None:
    """The README's first command, then every command the demo prints, pasted into a shell where
    the venv is not active (the command itself never activates it)."""
    block = _demo_block()
    cwd = workdir(tmp_path, block.section_id)
    env = reader_env(with_venv=False)
    log = (tmp_path / "demo-stderr.log").open("w")  # its log lines, apart from the banner on stdout
    process = subprocess.Popen(["bash", "-c", as_run(block, reader)], cwd=cwd, env=env, text=True,
                               start_new_session=True, stdout=subprocess.PIPE, stderr=log)
    try:
        banner = _read_until(process, "Press Ctrl+C", log.name)
        printed = banner.split("\nTry:\n", 1)[1].split("\n\n", 1)[0]
        commands = [line.strip() for line in printed.splitlines() if line.strip()]
        assert any(command.startswith("curl ") for command in commands), banner
        for command in commands:
            done = run_bash(command, cwd, env, timeout=30)
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            stated = re.search(r"#\s*(\d{3})\b", command)  # "# 403 insufficient_scope" says what it answers
            if stated:
                assert re.search(rf"^HTTP/\S+ {stated[1]} ", done.stdout, re.MULTILINE), f"{command}\n{done.stdout}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        log.close()


# --- install commands: what they name is what the venv has ---------------------------------
_PIP_INSTALL = re.compile(r"pip install((?: [^&|;\n]+)+)")


def test_install_commands_name_what_the_venv_has() -> None:
    """The install commands are not run (EXCLUDED, SUBSTITUTIONS); what they would install is checked:
    every extra is one pyproject.toml declares, and it and every package named is installed here."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    commands = [match[1] for block in BLOCKS for match in _PIP_INSTALL.finditer(block.code)]
    assert len(commands) >= 2, "the README's and examples/README's install commands"
    for arguments in commands:
        for word in shlex.split(arguments, comments=True):
            if word.startswith("-"):
                continue
            if word.startswith((".", "asgi-wsgi-jwt-guard")):  # this checkout, or the same project from PyPI
                assert metadata.version("asgi-wsgi-jwt-guard")
                for extra in re.findall(r"[\w-]+", word.partition("[")[2]):
                    assert extra in extras, f"pip install {word}: pyproject.toml has no extra {extra!r}"
                    for requirement in extras[extra]:
                        metadata.version(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
            else:
                metadata.version(word)
