"""The jwt-middleware command: verify runs the middleware's pipeline; keys and tokens round-trip.

Each verify case runs twice: as a real subprocess (``python -m jwt_middleware.cli``) and
in-process through ``main(argv)``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import pytest
import trustme
from joserfc.jwk import Key, OctKey

from jwt_middleware.cli import main
from jwt_middleware.testing import b64url, make_key, mint, public_jwks, sign_raw

from .conftest import ISSUER
from .support.jwks_server import JWKSServer

MARKER = "MARKER-8d1c"
BASE = ["--issuer", ISSUER, "--audience", "api", "--algorithm", "ES256"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


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


@pytest.fixture(scope="module")
def key() -> Key:
    return make_key("ES256", kid="cli-1")


@pytest.fixture
def jwks_file(tmp_path: Path, key: Key) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key)))
    return str(path)


def token(key: Key, claims: dict[str, Any] | None = None, **options: Any) -> str:
    return mint(key, {"sub": MARKER, **(claims or {})}, issuer=ISSUER, **options)


def unsigned(signature: str) -> str:
    """An ``alg: none`` token (RFC 7519 §6): the empty signature is refused by the gate already."""
    header = b64url(json.dumps({"alg": "none", "kid": "cli-1"}))
    payload = b64url(json.dumps({"iss": ISSUER, "aud": "api", "sub": MARKER, "exp": 2**31}))
    return f"{header}.{payload}.{signature}"


def assert_clean(result: Result) -> None:
    """No traceback, and no claim value of a refused token (the marker) anywhere."""
    assert "Traceback" not in result.err
    for line in result.lines:
        if not line["valid"]:
            assert set(line) == {"valid", "error", "reason"}
            assert MARKER not in json.dumps(line)


# --- verify: one token ---------------------------------------------------------------------
def test_valid_token_exits_0_and_prints_its_claims(cli: Cli, key: Key, jwks_file: str) -> None:
    value = token(key, {"scope": "read"})
    result = cli("verify", "--jwks", jwks_file, *BASE, value)
    assert result.code == 0, result.err
    [line] = result.lines
    assert line["valid"] is True
    assert line["claims"]["sub"] == MARKER
    assert line["claims"]["scope"] == "read"
    assert value not in result.out + result.err


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        pytest.param(
            lambda k: token(k, now=time.time() - 3600), "invalid_token", "token_expired", id="expired"
        ),
        pytest.param(
            lambda k: token(make_key("ES256", kid="cli-1")), "invalid_token", "bad_signature", id="forged"
        ),
        pytest.param(
            lambda k: token(k, audience="other-api"), "invalid_token", "invalid_audience", id="wrong-aud"
        ),
        pytest.param(
            lambda k: mint(k, {"sub": MARKER}, issuer="https://evil.test"),
            "invalid_token",
            "unknown_issuer",
            id="wrong-iss",
        ),
        pytest.param(lambda k: unsigned(""), "invalid_token", "malformed_token", id="alg-none"),
        pytest.param(lambda k: unsigned("c2ln"), "invalid_token", "alg_not_allowed", id="alg-none-with-sig"),
        pytest.param(
            lambda k: token(make_key("HS256", kid="cli-1"), alg="HS256"),
            "invalid_token",
            "alg_not_allowed",
            id="alg-hs256",
        ),
        pytest.param(lambda k: "not.a.jwt", "invalid_token", "malformed_*", id="garbage"),
        pytest.param(lambda k: "abc", "invalid_token", "malformed_token", id="one-segment"),
        pytest.param(lambda k: "a{b}c", "invalid_request", "malformed_authorization", id="not-b64token"),
        pytest.param(lambda k: "x" * 20_000, "invalid_token", "token_too_large", id="oversize"),
    ],
)
def test_refused_token_exits_1_with_reason(
    cli: Cli, key: Key, jwks_file: str, make: Callable[[Key], str], error: str, reason: str
) -> None:
    result = cli("verify", "--jwks", jwks_file, *BASE, make(key))
    assert result.code == 1
    [line] = result.lines
    assert (line["valid"], line["error"]) == (False, error)
    assert fnmatch(line["reason"], reason)  # "malformed_*": which part the gate blames is its own detail
    assert_clean(result)


def test_typ_is_checked_when_asked(inproc: Cli, key: Key, jwks_file: str) -> None:
    plain = token(key, header={"typ": "JWT"})
    assert inproc("verify", "--jwks", jwks_file, *BASE, plain).code == 0
    result = inproc("verify", "--jwks", jwks_file, *BASE, "--typ", "at+jwt", plain)
    assert (result.code, result.lines[0]["reason"]) == (1, "invalid_typ")


def test_leeway_and_max_age_options(inproc: Cli, key: Key, jwks_file: str) -> None:
    recently_expired = token(key, now=time.time() - 310, lifetime=300)  # expired 10 s ago
    assert inproc("verify", "--jwks", jwks_file, *BASE, recently_expired).code == 0  # default leeway 30 s
    result = inproc("verify", "--jwks", jwks_file, *BASE, "--leeway", "0", recently_expired)
    assert result.lines[0]["reason"] == "token_expired"
    old = token(key, now=time.time() - 600, lifetime=3600)
    result = inproc("verify", "--jwks", jwks_file, *BASE, "--leeway", "0", "--max-age", "60", old)
    assert (result.code, result.lines[0]["reason"]) == (1, "token_too_old")


# --- verify: many tokens -------------------------------------------------------------------
def test_stdin_mix_prints_one_line_per_token_in_order(cli: Cli, key: Key, jwks_file: str) -> None:
    good = token(key)
    expired = token(key, now=time.time() - 3600)
    stdin = f"{good}\n\n   \n{expired}\ngarbage\r\n{good}".encode()
    result = cli("verify", "--jwks", jwks_file, *BASE, stdin=stdin)
    assert result.code == 1
    assert [(line["valid"], line.get("reason")) for line in result.lines] == [
        (True, None),
        (False, "token_expired"),
        (False, "malformed_token"),
        (True, None),
    ]
    assert_clean(result)


def test_all_valid_on_stdin_exits_0(inproc: Cli, key: Key, jwks_file: str) -> None:
    stdin = "\n".join(token(key) for _ in range(3)).encode() + b"\n"
    result = inproc("verify", "--jwks", jwks_file, *BASE, stdin=stdin)
    assert result.code == 0
    assert [line["valid"] for line in result.lines] == [True, True, True]


def test_dash_reads_stdin_between_arguments(inproc: Cli, key: Key, jwks_file: str) -> None:
    result = inproc("verify", "--jwks", jwks_file, *BASE, token(key), "-", "garbage", stdin=b"bad.to.ken\n")
    reasons = [line.get("reason") for line in result.lines]
    assert reasons[0] is None
    assert [fnmatch(str(reason), "malformed_*") for reason in reasons[1:]] == [True, True]


def test_blank_arguments_are_skipped(inproc: Cli, key: Key, jwks_file: str) -> None:
    result = inproc("verify", "--jwks", jwks_file, *BASE, "  ", token(key), "")
    assert (result.code, len(result.lines)) == (0, 1)


def test_no_token_at_all_is_a_usage_error(cli: Cli, jwks_file: str) -> None:
    result = cli("verify", "--jwks", jwks_file, *BASE, stdin=b"\n  \n")
    assert result.code == 2
    assert result.out == ""
    assert "no token given" in result.err


def test_binary_junk_and_huge_lines_never_cause_a_traceback(cli: Cli, key: Key, jwks_file: str) -> None:
    junk = bytes(range(256)).replace(b"\n", b"")
    stdin = b"\n".join(
        [junk, b"\x00\x00", b"\xff\xfe" + token(key).encode(), b"A" * 5_000_000, token(key).encode()]
    )
    result = cli("verify", "--jwks", jwks_file, *BASE, stdin=stdin)
    assert result.code == 1
    reasons = [line.get("reason") for line in result.lines]
    assert reasons == [
        "malformed_authorization",
        "malformed_authorization",
        "malformed_authorization",
        "token_too_large",
        None,
    ]
    assert_clean(result)


def test_undecodable_argument_bytes_are_refused_cleanly(jwks_file: str) -> None:
    result = run_subprocess(["verify", "--jwks", jwks_file, *BASE, b"\xff\xfe\x80"])
    assert result.code == 1
    assert result.lines == [{"valid": False, "error": "invalid_request", "reason": "malformed_authorization"}]
    assert "Traceback" not in result.err


def test_the_token_is_never_echoed(cli: Cli, key: Key, jwks_file: str) -> None:
    forged = token(make_key("ES256", kid="cli-1"), {"scope": MARKER}, header={"x": MARKER})
    result = cli("verify", "--jwks", jwks_file, *BASE, forged, stdin=b"")
    assert MARKER not in result.out + result.err
    assert forged not in result.out + result.err
    assert forged.split(".")[1] not in result.out + result.err


# --- verify: usage and configuration errors ------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["verify", "--audience", "api", "--algorithm", "ES256", "t"], id="no-issuer"),
        pytest.param(["verify", "--issuer", ISSUER, "--algorithm", "ES256", "t"], id="no-audience"),
        pytest.param(["verify", "--issuer", ISSUER, "--audience", "api", "t"], id="no-algorithm"),
        pytest.param([*BASE[:4], "--algorithm", "ES256", "t"], id="no-command"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param([], id="nothing"),
        pytest.param(["keys"], id="keys-without-subcommand"),
        pytest.param(["verify", *BASE, "--leeway", "soon", "t"], id="leeway-not-a-number"),
        pytest.param(["verify", *BASE, "--leeway", "nan", "t"], id="leeway-nan"),
        pytest.param(["verify", *BASE, "--max-age", "inf", "t"], id="max-age-inf"),
    ],
)
def test_usage_error_exits_2(inproc: Cli, argv: list[str]) -> None:
    result = inproc(*argv)
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--algorithm", "none"], "'none' is never accepted", id="alg-none"),
        pytest.param(["--algorithm", "XY512"], "not a supported JWS algorithm", id="alg-unknown"),
        pytest.param(["--algorithm", "HS256"], "HS algorithms", id="alg-hs-with-public-keys"),
        pytest.param(["--leeway", "3600"], "Config.leeway", id="leeway-too-large"),
        pytest.param(["--jwks", "http://keys.example.com/jwks"], "https://", id="plain-http-off-loopback"),
        pytest.param(
            ["--jwks", "/nonexistent/jwks.json"], "--jwks /nonexistent/jwks.json", id="missing-file"
        ),
        pytest.param(["--ca-file", "/nonexistent/ca.pem"], "--ca-file", id="missing-ca-file"),
    ],
)
def test_configuration_error_exits_2_with_one_line(
    cli: Cli, key: Key, jwks_file: str, argv: list[str], message: str
) -> None:
    options = ["--issuer", ISSUER, "--audience", "api"]
    if "--algorithm" not in argv:
        options += ["--algorithm", "ES256"]
    if "--jwks" not in argv:
        options += ["--jwks", jwks_file]
    result = cli("verify", *options, *argv, token(key))
    assert result.code == 2
    assert result.out == ""
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[1, 2]",
        b'{"keys": []}',
        b'{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}',
        b"\xff\xfe\x00",
        b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
    ],
    ids=["empty", "not-json", "array", "no-keys", "weak-rsa", "binary", "bad-pem"],
)
def test_unusable_key_file_exits_2(inproc: Cli, tmp_path: Path, key: Key, content: bytes) -> None:
    path = tmp_path / "keys"
    path.write_bytes(content)
    result = inproc("verify", "--jwks", str(path), *BASE, token(key))
    assert result.code == 2
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


# --- verify: key sources -------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
@pytest.mark.parametrize("private", [False, True], ids=["public-pem", "private-pem"])
def test_pem_key_file(inproc: Cli, tmp_path: Path, alg: str, private: bool) -> None:
    signer = make_key(alg, kid="pem-1")  # type: ignore[arg-type]
    assert not isinstance(signer, OctKey)
    path = tmp_path / "key.pem"
    path.write_bytes(signer.as_pem(private=private))
    options = ["--issuer", ISSUER, "--audience", "api", "--algorithm", alg, "--jwks", str(path)]
    result = inproc("verify", *options, token(signer), token(make_key(alg, kid="pem-1")))  # type: ignore[arg-type]
    assert result.code == 1
    assert [line.get("reason") for line in result.lines] == [None, "bad_signature"]


@pytest.fixture
def ca_file(tmp_path: Path, ca: trustme.CA) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_jwks_from_https_url(cli: Cli, jwks_server: JWKSServer, ca_file: str, key: Key) -> None:
    jwks_server.behaviour.jwks = public_jwks(key)
    forged = token(make_key("ES256", kid="cli-1"))
    result = cli("verify", "--jwks", jwks_server.jwks_url, "--ca-file", ca_file, *BASE, token(key), forged)
    assert result.code == 1, result.err
    assert [line.get("reason") for line in result.lines] == [None, "bad_signature"]
    assert jwks_server.behaviour.hits("/jwks") == 1


def test_https_url_with_an_untrusted_certificate_is_refused(
    inproc: Cli, jwks_server: JWKSServer, key: Key
) -> None:
    jwks_server.behaviour.jwks = public_jwks(key)
    result = inproc("verify", "--jwks", jwks_server.jwks_url, *BASE, token(key))  # system CAs only
    assert result.code == 1
    assert result.lines == [{"valid": False, "error": "unavailable", "reason": "keys_unavailable"}]
    assert "jwks fetch failed" in result.err
    assert "Traceback" not in result.err


def test_keys_by_oidc_discovery_when_no_jwks_is_given(
    inproc: Cli, jwks_server: JWKSServer, ca_file: str, key: Key
) -> None:
    jwks_server.behaviour.jwks = public_jwks(key)
    value = mint(key, issuer=jwks_server.url)
    options = ["--issuer", jwks_server.url, "--audience", "api", "--algorithm", "ES256"]
    result = inproc("verify", "--ca-file", ca_file, *options, value)
    assert result.code == 0, result.err
    assert jwks_server.behaviour.hits("/.well-known/openid-configuration") == 1


def test_jwks_server_down_gives_unavailable_not_a_traceback(
    inproc: Cli, jwks_server: JWKSServer, ca_file: str, key: Key
) -> None:
    jwks_server.behaviour.mode = "garbage"
    result = inproc(
        "verify", "--jwks", jwks_server.jwks_url, "--ca-file", ca_file, *BASE, token(key), token(key)
    )
    assert result.code == 1
    assert [line["reason"] for line in result.lines] == ["keys_unavailable", "keys_unavailable"]
    assert "Traceback" not in result.err


# --- keys generate, token mint -------------------------------------------------------------
@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_generate_mint_verify_round_trip(inproc: Cli, tmp_path: Path, alg: str) -> None:
    private, jwks = tmp_path / "private.json", tmp_path / "jwks.json"
    result = inproc(
        "keys",
        "generate",
        "--alg",
        alg,
        "--kid",
        "round",
        "--out-private",
        str(private),
        "--out-jwks",
        str(jwks),
    )
    assert result.code == 0
    assert result.out == ""
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert json.loads(jwks.read_text())["keys"][0]["kid"] == "round"
    assert "d" not in json.loads(jwks.read_text())["keys"][0]
    minted = inproc(
        "token",
        "mint",
        "--key",
        str(private),
        "--issuer",
        ISSUER,
        "--audience",
        "api",
        "--subject",
        "alice",
        "--scope",
        "read write",
        "--claim",
        "tenant=acme",
        "--claim",
        "level:=3",
        "--claim",
        "flags:=[1, true]",
    )
    assert minted.code == 0, minted.err
    value = minted.out.strip()
    result = inproc(
        "verify",
        "--jwks",
        str(jwks),
        "--issuer",
        ISSUER,
        "--audience",
        "api",
        "--algorithm",
        alg,
        "--typ",
        "at+jwt",
        value,
    )
    assert result.code == 0, result.out
    claims = result.lines[0]["claims"]
    assert (claims["sub"], claims["scope"], claims["tenant"], claims["level"], claims["flags"]) == (
        "alice",
        "read write",
        "acme",
        3,
        [1, True],
    )
    assert claims["exp"] - claims["iat"] == 300


def test_round_trip_through_real_processes(tmp_path: Path) -> None:
    private, jwks = tmp_path / "private.json", tmp_path / "jwks.json"
    assert (
        run_subprocess(
            ["keys", "generate", "--alg", "ES256", "--out-private", str(private), "--out-jwks", str(jwks)]
        ).code
        == 0
    )
    minted = run_subprocess(
        [
            "token",
            "mint",
            "--key",
            str(private),
            "--issuer",
            ISSUER,
            "--audience",
            "api",
            "--audience",
            "other",
            "--lifetime",
            "60",
        ]
    )
    assert minted.code == 0, minted.err
    result = run_subprocess(["verify", "--jwks", str(jwks), *BASE], stdin=minted.out.encode())
    assert result.code == 0, result.err
    assert result.lines[0]["claims"]["aud"] == ["api", "other"]


def test_generate_prints_private_jwk_and_jwks_on_stdout(inproc: Cli) -> None:
    result = inproc("keys", "generate", "--alg", "EdDSA")
    assert result.code == 0
    private, jwks = (json.loads(line) for line in result.out.splitlines())
    assert private["kty"] == "OKP" and "d" in private and private["alg"] == "EdDSA"
    assert jwks == {"keys": [{k: v for k, v in private.items() if k != "d"}]}


def test_generate_never_overwrites_a_private_key(inproc: Cli, tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text("precious")
    result = inproc("keys", "generate", "--alg", "ES256", "--out-private", str(private))
    assert result.code == 2
    assert private.read_text() == "precious"


def test_mint_refuses_a_public_key(inproc: Cli, jwks_file: str) -> None:
    result = inproc("token", "mint", "--key", jwks_file, "--issuer", ISSUER, "--audience", "api")
    assert result.code == 2
    assert "public key cannot sign" in result.err


@pytest.mark.parametrize(
    "extra",
    [
        ["--claim", "novalue"],
        ["--claim", "n:={bad"],
        ["--alg", "RS256"],
        ["--alg", "nope"],
        ["--lifetime", "0"],
    ],
    ids=["claim-syntax", "claim-json", "alg-mismatch", "alg-unknown", "lifetime-zero"],
)
def test_mint_usage_errors(inproc: Cli, tmp_path: Path, extra: list[str]) -> None:
    private = tmp_path / "private.json"
    private.write_text(json.dumps(make_key("ES256").as_dict(private=True)))
    result = inproc("token", "mint", "--key", str(private), "--issuer", ISSUER, "--audience", "api", *extra)
    assert result.code == 2
    assert result.out == ""
    assert "Traceback" not in result.err


def test_mint_from_pem_and_without_typ(inproc: Cli, tmp_path: Path) -> None:
    signer = make_key("ES384")
    assert not isinstance(signer, OctKey)
    pem = tmp_path / "private.pem"
    pem.write_bytes(signer.as_pem(private=True))
    minted = inproc("token", "mint", "--key", str(pem), "--issuer", ISSUER, "--audience", "api", "--typ", "")
    assert minted.code == 0, minted.err
    header = json.loads(_b64decode(minted.out.split(".")[0]))
    assert header == {"alg": "ES384"}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(signer)))
    result = inproc(
        "verify",
        "--jwks",
        str(jwks),
        "--issuer",
        ISSUER,
        "--audience",
        "api",
        "--algorithm",
        "ES384",
        minted.out,
    )
    assert result.code == 0


def test_help_exits_0(inproc: Cli) -> None:
    for argv in (
        ["--help"],
        ["verify", "--help"],
        ["keys", "generate", "--help"],
        ["token", "mint", "--help"],
    ):
        assert inproc(*argv).code == 0


def test_hand_signed_token_with_unknown_kid_is_refused(inproc: Cli, key: Key, jwks_file: str) -> None:
    header = {"alg": "ES256", "kid": "someone-else"}
    payload = {"iss": ISSUER, "aud": "api", "sub": MARKER, "exp": int(time.time()) + 60}
    result = inproc("verify", "--jwks", jwks_file, *BASE, sign_raw(header, payload, key, "ES256"))
    assert (result.code, result.lines[0]["reason"]) == (1, "unknown_kid")
    assert_clean(result)


def _b64decode(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_closed_standard_streams_never_cause_a_traceback(key: Key, jwks_file: str) -> None:
    command = [sys.executable, "-m", "jwt_middleware.cli", "verify", "--jwks", jwks_file, *BASE]
    empty_stdin = subprocess.run([*command], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert empty_stdin.returncode == 2  # nothing to verify
    shell = " ".join(f"'{part}'" for part in command)
    no_stdin = subprocess.run(["sh", "-c", f"{shell} <&-"], capture_output=True, timeout=60)
    assert no_stdin.returncode == 2
    assert b"Traceback" not in no_stdin.stderr
    no_stdout = subprocess.run(["sh", "-c", f"{shell} {token(key)} >&-"], capture_output=True, timeout=60)
    assert no_stdout.returncode == 0  # the exit code still answers
    assert no_stdout.stderr == b""


def test_a_reader_that_goes_away_ends_quietly(key: Key, jwks_file: str) -> None:
    stdin = (token(key) + "\n").encode() * 5000
    process = subprocess.Popen(
        [sys.executable, "-m", "jwt_middleware.cli", "verify", "--jwks", jwks_file, *BASE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    writer = threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True)
    writer.start()
    assert json.loads(process.stdout.readline())["valid"] is True
    process.stdout.close()  # like `| head -1`
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.kill()
    assert b"Traceback" not in process.stderr.read()
    writer.join(timeout=10)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except OSError:  # the process ended first
        pass
