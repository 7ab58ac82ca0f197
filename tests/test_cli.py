"""The jwt-middleware command: verify runs the middleware's pipeline; keys and tokens round-trip.

Each verify case runs twice: as a real subprocess (``python -m jwt_middleware.cli``) and
in-process through ``main(argv)``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import pytest
import trustme
from joserfc.jwk import Key, OctKey

from jwt_middleware.config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS
from jwt_middleware.testing import b64url, make_key, mint, public_jwks, sign_raw

from .conftest import ISSUER
from .support.cli_runner import Cli, Result, run_subprocess
from .support.cli_runner import cli as cli  # fixtures: ``x as x`` so pytest finds them here
from .support.cli_runner import inproc as inproc
from .support.jwks_server import JWKSServer

MARKER = "MARKER-8d1c"
BASE = ["--issuer", ISSUER, "--audience", "api", "--algorithm", "ES256"]


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


# --- token mint: the default subject -------------------------------------------------------
def test_mint_gives_a_default_subject_and_can_leave_it_out(inproc: Cli, tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text(json.dumps(make_key("ES256").as_dict(private=True)))
    base = ["token", "mint", "--key", str(private), "--issuer", ISSUER, "--audience", "api"]
    assert json.loads(_b64decode(inproc(*base).out.split(".")[1]))["sub"] == "user"
    assert "sub" not in json.loads(_b64decode(inproc(*base, "--subject", "").out.split(".")[1]))
    assert "default 'user'" in inproc("token", "mint", "--help").out


# --- keys generate: every algorithm verify accepts -----------------------------------------
@pytest.mark.parametrize("alg", sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS))
def test_generate_covers_every_algorithm_verify_accepts(inproc: Cli, tmp_path: Path, alg: str) -> None:
    private = tmp_path / "private.json"
    hmac = alg in HMAC_ALGORITHMS
    outputs = ["--out-private", str(private)] + ([] if hmac else ["--out-jwks", str(tmp_path / "jwks.json")])
    assert inproc("keys", "generate", "--alg", alg, *outputs).code == 0
    minted = inproc("token", "mint", "--key", str(private), "--issuer", ISSUER, "--audience", "api")
    assert minted.code == 0, minted.err
    assert json.loads(_b64decode(minted.out.split(".")[0]))["alg"] == alg
    keys = ["--hs-secret-file", str(private)] if hmac else ["--jwks", str(tmp_path / "jwks.json")]
    options = ["--issuer", ISSUER, "--audience", "api", "--algorithm", alg, "--require-kid", *keys]
    good = inproc("verify", *options, minted.out.strip())
    assert (good.code, good.lines[0]["claims"]["sub"]) == (0, "user"), good.out + good.err
    other = inproc("verify", *options, token(make_key(alg, kid=json.loads(private.read_text())["kid"])))  # type: ignore[arg-type]
    assert other.lines[0]["reason"] == "bad_signature"


def test_generate_refuses_a_public_jwks_for_an_hmac_key(inproc: Cli, tmp_path: Path) -> None:
    result = inproc("keys", "generate", "--alg", "HS256", "--out-jwks", str(tmp_path / "jwks.json"))
    assert (result.code, result.out) == (2, "")
    assert "no public part" in result.err
    assert not (tmp_path / "jwks.json").exists()
    printed = inproc("keys", "generate", "--alg", "HS384")
    [jwk] = [json.loads(line) for line in printed.out.splitlines()]
    assert jwk["kty"] == "oct" and len(_b64decode(jwk["k"])) == 48


# --- verify: shared secrets ----------------------------------------------------------------
SECRET = bytes(range(40, 80))
HS_OPTIONS = ["--issuer", ISSUER, "--audience", "api", "--algorithm", "HS256"]


def hs_token(secret: bytes = SECRET, **options: Any) -> str:
    return token(OctKey.import_key(secret, {"kid": "hs"}), alg="HS256", **options)


def test_hs_secret_from_a_file_holds_its_exact_bytes(inproc: Cli, tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")  # the newline is part of the secret
    assert inproc("verify", *HS_OPTIONS, "--hs-secret-file", str(path), hs_token(SECRET + b"\n")).code == 0
    result = inproc("verify", *HS_OPTIONS, "--hs-secret-file", str(path), hs_token())
    assert result.lines[0]["reason"] == "bad_signature"


def test_hs_secret_from_the_environment(inproc: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_SECRET", SECRET.decode())
    result = inproc("verify", *HS_OPTIONS, "--hs-secret-env", "CLI_TEST_SECRET", "--hs-kid", "hs", "--require-kid",
                    hs_token())
    assert result.code == 0, result.out + result.err
    wrong_kid = inproc("verify", *HS_OPTIONS, "--hs-secret-env", "CLI_TEST_SECRET", "--hs-kid", "other", hs_token())
    assert wrong_kid.lines[0]["reason"] == "unknown_kid"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--hs-secret-env", "CLI_TEST_UNSET"], "CLI_TEST_UNSET: not set", id="env-unset"),
        pytest.param(["--hs-secret-env", "CLI_TEST_EMPTY"], "CLI_TEST_EMPTY: empty", id="env-empty"),
        pytest.param(["--hs-secret-env", "CLI_TEST_WEAK"], "too weak", id="env-weak"),
        pytest.param(["--hs-secret-file", "/nonexistent/secret"], "--hs-secret-file /nonexistent", id="file-missing"),
        pytest.param([], "--algorithm: HS* needs the shared secret; give --hs-secret-file PATH", id="no-secret"),
        pytest.param(["--hs-secret-env", "CLI_TEST_WEAK", "--jwks", "x.json"], "one source of keys", id="two-sources"),
        pytest.param(["--hs-kid", "k"], "names the key id of a shared secret", id="kid-without-secret"),
    ],
)
def test_unusable_secret_options_exit_2(
    inproc: Cli, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.delenv("CLI_TEST_UNSET", raising=False)
    monkeypatch.setenv("CLI_TEST_EMPTY", "")
    monkeypatch.setenv("CLI_TEST_WEAK", "MARKER-8d1c-short")
    result = inproc("verify", *HS_OPTIONS, *argv, hs_token())
    assert (result.code, result.out) == (2, "")
    assert message in result.err
    assert "MARKER-8d1c" not in result.err  # the secret's value is never printed


@pytest.mark.parametrize("form", [["--hs-secret", MARKER], [f"--hs-secret={MARKER}"]], ids=["separate", "joined"])
def test_a_secret_on_the_command_line_is_refused_and_not_echoed(cli: Cli, form: list[str]) -> None:
    result = cli("verify", *HS_OPTIONS, *form, hs_token())
    assert (result.code, result.out) == (2, "")
    assert "a secret is never given on the command line" in result.err
    assert "--hs-secret-file" in result.err and "--hs-secret-env" in result.err
    assert MARKER not in result.err


def test_a_jwk_secret_file_is_read_as_its_key(inproc: Cli, tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(OctKey.import_key(SECRET, {"kid": "hs"}).as_dict(private=True)))
    assert inproc("verify", *HS_OPTIONS, "--hs-secret-file", str(path), "--require-kid", hs_token()).code == 0
    path.write_text('{"kty": "oct", "k": "not base64!"}')
    broken = inproc("verify", *HS_OPTIONS, "--hs-secret-file", str(path), hs_token())
    assert broken.code == 2 and "'k' is not base64url" in broken.err


# --- verify: --now, --explain --------------------------------------------------------------
def test_now_pins_the_clock(inproc: Cli, key: Key, jwks_file: str) -> None:
    old = token(key, now=1_000_000_000)
    assert inproc("verify", "--jwks", jwks_file, *BASE, old).lines[0]["reason"] == "token_expired"
    assert inproc("verify", "--jwks", jwks_file, *BASE, "--now", "1000000100", old).code == 0
    early = inproc("verify", "--jwks", jwks_file, *BASE, "--now", "999999000", old)
    assert early.lines[0]["reason"] == "iat_in_future"


@pytest.mark.parametrize("now", ["nan", "-5", "soon"])
def test_now_must_be_a_unix_time(inproc: Cli, now: str) -> None:
    assert inproc("verify", *BASE, "--now", now, "t").code == 2


def test_explain_shows_the_unverified_token_beside_the_configuration(cli: Cli, key: Key, jwks_file: str) -> None:
    value = token(key, audience=["other", MARKER], now=1_800_000_000, header={"x": "hidden"})
    result = cli("verify", "--jwks", jwks_file, *BASE, "--typ", "at+jwt", "--now", "1800000010", "--explain", value)
    assert result.code == 1
    [line] = result.lines
    assert (line["valid"], line["reason"]) == (False, "invalid_audience")
    unverified = line["explain"]["unverified"]
    assert "without verifying the signature" in unverified["note"]
    assert unverified["header"] == {"alg": "ES256", "kid": "cli-1", "typ": "at+jwt"}
    assert unverified["claims"] == {"iss": ISSUER, "aud": ["other", MARKER], "exp": 1_800_000_300,
                                    "iat": 1_800_000_000}
    configured = line["explain"]["configured"]
    assert configured["now"] == 1_800_000_010
    assert configured["issuer"]["audiences"] == ["api"] and configured["issuer"]["algorithms"] == ["ES256"]
    assert configured["issuer"]["typ"] == ["at+jwt"]
    assert configured["issuer"]["keys"] == {"source": "jwks_file", "from": jwks_file, "kids": ["cli-1"]}
    signature = value.split(".")[2]
    assert signature not in result.out + result.err
    assert "hidden" not in result.out and MARKER + "-8d1c" not in result.out  # only the named members
    assert "sub" not in unverified["claims"] and "jti" not in unverified["claims"]


def test_explain_is_silent_for_valid_tokens_and_off_by_default(inproc: Cli, key: Key, jwks_file: str) -> None:
    good = inproc("verify", "--jwks", jwks_file, *BASE, "--explain", token(key))
    assert "explain" not in good.lines[0]
    refused = inproc("verify", "--jwks", jwks_file, *BASE, token(key, audience="other"))
    assert set(refused.lines[0]) == {"valid", "error", "reason"}
    assert_clean(refused)


def test_explain_for_an_unknown_issuer_lists_the_trusted_ones(inproc: Cli, key: Key, jwks_file: str) -> None:
    value = mint(key, issuer="https://evil.test")
    configured = inproc("verify", "--jwks", jwks_file, *BASE, "--explain", value).lines[0]["explain"]["configured"]
    assert configured["issuers"] == [ISSUER] and "issuer" not in configured


def test_explain_never_shows_a_secret(inproc: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = (MARKER * 4).encode()
    monkeypatch.setenv("CLI_TEST_SECRET", secret.decode())
    result = inproc("verify", *HS_OPTIONS, "--hs-secret-env", "CLI_TEST_SECRET", "--explain", hs_token(SECRET))
    [line] = result.lines
    assert line["reason"] == "bad_signature"
    assert line["explain"]["configured"]["issuer"]["keys"] == {
        "source": "hs_secret", "from": "environment CLI_TEST_SECRET", "kid": None}
    assert MARKER not in result.out + result.err
    assert base64.urlsafe_b64encode(secret).decode().rstrip("=") not in result.out


@pytest.mark.parametrize(
    "value",
    ["garbage", "a.b.c", "e30.e30.", "W10.W10.x", "x" * 20_000, b64url(b"\xff" * 40) + ".e30.x",
     ".".join([b64url(json.dumps({"alg": "ES256", "kid": "k" * 5000})), b64url(json.dumps({"aud": list(range(50))})),
               "sig"])],
    ids=["one-part", "junk", "empty-objects", "arrays", "oversize", "not-utf8", "huge-values"],
)
def test_explain_decodes_junk_without_a_traceback(inproc: Cli, jwks_file: str, value: str) -> None:
    result = inproc("verify", "--jwks", jwks_file, *BASE, "--explain", value)
    assert result.code == 1 and "Traceback" not in result.err
    explained = result.lines[0]["explain"]["unverified"]
    assert len(json.dumps(explained)) < 1500


# --- verify: --config FILE.toml ------------------------------------------------------------
def write_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "verify.toml"
    path.write_text(text)
    return str(path)


ISSUER_TABLE = f'[[issuer]]\nissuer = "{ISSUER}"\nalgorithms = ["ES256"]\njwks = "jwks.json"\n'


def test_config_file_reads_paths_beside_itself(inproc: Cli, tmp_path: Path, key: Key) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    path = write_toml(tmp_path, f'audience = ["api"]\nrequire_iat = true\n{ISSUER_TABLE}')
    result = inproc("verify", "--config", path, token(key), token(key, {"iat": None}))
    assert [line.get("reason") for line in result.lines] == [None, "missing_iat"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(f'audience = "api"\nleway = 3\n{ISSUER_TABLE}', "unknown key 'leway'", id="top-level"),
        pytest.param(f'audience = "api"\n[keys]\nfetch_timout = 2\n{ISSUER_TABLE}', "[keys] unknown key 'fetch_timout'",
                     id="keys-table"),
        pytest.param(f'audience = "api"\n{ISSUER_TABLE}require_kdi = true\n', "[[issuer]] #1 unknown key 'require_kdi'",
                     id="issuer-table"),
        pytest.param(f'audience = "api"\n{ISSUER_TABLE}keys = "jwks.json"\n', "[[issuer]] #1 unknown key 'keys'",
                     id="issuer-keys-is-not-a-key"),
        pytest.param(f'audience = "api"\nclock = 5\n{ISSUER_TABLE}', "unknown key 'clock'", id="clock"),
        pytest.param(f'audience = "api"\nleeway = "30"\n{ISSUER_TABLE}', "leeway: must be a number of seconds",
                     id="leeway-string"),
        pytest.param(f'audience = "api"\nleeway = nan\n{ISSUER_TABLE}', "leeway: must be a number", id="leeway-nan"),
        pytest.param(f'audience = "api"\nrequire_iat = 1\n{ISSUER_TABLE}', "require_iat: must be true or false",
                     id="bool-as-int"),
        pytest.param(f'audience = 5\n{ISSUER_TABLE}', "audience: must be a string or a list", id="audience-number"),
        pytest.param('audience = "api"\n', "at least one issuer", id="no-issuer"),
        pytest.param(f'audience = "api"\nissuer = "{ISSUER}"\n', "at least one issuer", id="issuer-not-a-table"),
        pytest.param('audience = "api"\n[[issuer]]\nalgorithms = ["ES256"]\n', "#1 issuer: required", id="no-iss"),
        pytest.param(f'audience = "api"\n[[issuer]]\nissuer = "{ISSUER}"\n', "#1 algorithms: required", id="no-alg"),
        pytest.param("audience = [\n", "not valid TOML", id="not-toml"),
        pytest.param(f'audience = "api"\nleeway = 3600\n{ISSUER_TABLE}', "Config.leeway", id="config-error"),
        pytest.param(ISSUER_TABLE, "Config.audience", id="no-audience"),
    ],
)
def test_config_file_mistakes_exit_2_naming_the_key(
    inproc: Cli, tmp_path: Path, key: Key, text: str, message: str
) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    result = inproc("verify", "--config", write_toml(tmp_path, text), token(key))
    assert (result.code, result.out) == (2, "")
    assert message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [["--leeway", "3"], ["--issuer", ISSUER], ["--jwks", "j.json"], ["--no-require-exp"],
                                   ["--max-lifetime", "none"]])
def test_configuration_options_beside_a_config_file_are_refused(
    inproc: Cli, tmp_path: Path, key: Key, extra: list[str]
) -> None:
    path = write_toml(tmp_path, f'audience = "api"\n{ISSUER_TABLE}')
    result = inproc("verify", "--config", path, *extra, token(key))
    assert result.code == 2
    assert f"{extra[0].replace('--no-', '--')}: give it in the --config file" in result.err


def test_config_file_with_now_and_explain(inproc: Cli, tmp_path: Path, key: Key) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    path = write_toml(tmp_path, f'audience = "api"\n{ISSUER_TABLE}')
    result = inproc("verify", "--config", path, "--now", "2000000000", "--explain", token(key, now=1_800_000_000))
    line = result.lines[0]
    assert line["reason"] == "token_expired"
    assert line["explain"]["configured"]["issuer"]["keys"]["from"] == str(tmp_path / "jwks.json")


def test_config_file_key_mistakes_name_the_issuer_table(inproc: Cli, tmp_path: Path, key: Key) -> None:
    second = '[[issuer]]\nissuer = "https://hs.test"\nalgorithms = ["HS256"]\n'
    path = write_toml(tmp_path, f'audience = "api"\n{ISSUER_TABLE}{second}')
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    result = inproc("verify", "--config", path, token(key))
    assert result.err.strip().endswith(
        f"--config {path}: [[issuer]] #2 algorithms: HS* needs the shared secret; give hs_secret_file PATH or "
        "hs_secret_env NAME"
    )
    path = write_toml(tmp_path, f'audience = "api"\n{ISSUER_TABLE}hs_secret_env = "X"\n{second}')
    result = inproc("verify", "--config", path, token(key))
    assert "[[issuer]] #1 jwks and hs_secret_env: give one source of keys" in result.err
