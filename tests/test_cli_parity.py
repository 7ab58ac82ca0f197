"""The CLI and the middleware decide alike (STYLE.md §13): one table of tokens by configurations,
decided by Authenticator.authenticate and by ``jwt-middleware verify`` (in-process and as a real
process); and every Config, Issuer and KeyPolicy field is an option or has a stated reason not to be.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from joserfc.jwk import OctKey

from jwt_middleware import (
    Authenticator,
    Config,
    Issuer,
    KeyPolicy,
    Refusal,
    RequestView,
    SharedSecret,
    StaticKeys,
)
from jwt_middleware._cli_config import NOT_ON_COMMAND_LINE, OPTIONS, SET_OTHERWISE, Option, build
from jwt_middleware.cli import _parser
from jwt_middleware.testing import FakeClock, b64url, make_key, mint, public_jwks, sign_raw

from .support.cli_runner import run_in_process, run_subprocess

NOW = 1_800_000_000
ISS_ES = "https://es.example"
ISS_RS = "https://rs.example"
ISS_HS = "https://hs.example"
HS384_ENV = "PARITY_HS384_SECRET"
ES = make_key("ES256", kid="es-1")
RS = make_key("RS256", kid="rs-1")
SECRET_256 = bytes(range(32, 64))
SECRET_384 = b"env-secret-" + bytes(range(65, 102))  # 48 bytes, printable: it travels in the environment
HS256 = OctKey.import_key(SECRET_256, {"kid": "hs-1", "alg": "HS256"})
HS384 = OctKey.import_key(SECRET_384, {"alg": "HS384"})


class Case(NamedTuple):
    """One configuration, said twice: as Config objects and as the command line."""

    name: str
    config: Callable[[Path], Config]
    argv: Callable[[Path], list[str]]


def es_issuer(**fields: Any) -> Issuer:
    return Issuer(ISS_ES, algorithms=("ES256",), keys=StaticKeys(public_jwks(ES)), **fields)


def config(*issuers: Issuer, **fields: Any) -> Config:
    fields.setdefault("audience", "api")
    return Config(issuers=issuers, clock=FakeClock(NOW), **fields)


ES_ARGS = ["--issuer", ISS_ES, "--algorithm", "ES256", "--audience", "api"]


def es_argv(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: [*ES_ARGS, "--jwks", str(d / "es.json"), *extra]


TWO_ISSUERS_TOML = f"""
leeway = 5
max_lifetime = 3600

[keys]
fetch_timeout = 2

[[issuer]]
issuer = "{ISS_ES}"
algorithms = ["ES256"]
audiences = ["api"]
jwks = "es.json"
require_kid = true

[[issuer]]
issuer = "{ISS_HS}"
algorithms = "HS256"
audiences = "hs-api"
hs_secret_file = "secret256.bin"
hs_kid = "hs-1"
"""

CASES = [
    Case("es-defaults", lambda d: config(es_issuer()), es_argv()),
    Case(
        "es-header-rules",
        lambda d: config(es_issuer(require_kid=True, required_claims=("scope",), typ=("at+jwt",))),
        es_argv("--require-kid", "--required-claim", "scope", "--typ", "at+jwt"),
    ),
    Case(
        "es-time-rules",
        lambda d: config(es_issuer(), leeway=0, max_age=120, max_lifetime=600, require_iat=True),
        es_argv("--leeway", "0", "--max-age", "120", "--max-lifetime", "600", "--require-iat"),
    ),
    Case(
        "es-lenient",
        lambda d: config(es_issuer(allow_key_headers=True), require_exp=False, max_lifetime=None),
        es_argv("--no-require-exp", "--max-lifetime", "none", "--allow-key-headers"),
    ),
    Case(
        "es-small-two-audiences",
        lambda d: config(es_issuer(), audience=("api", "other"), max_token_bytes=700),
        es_argv("--max-token-bytes", "700", "--audience", "other"),
    ),
    Case(
        "rs-pem",
        lambda d: config(Issuer(ISS_RS, algorithms=("RS256",), keys=StaticKeys(public_jwks(RS)))),
        lambda d: ["--issuer", ISS_RS, "--algorithm", "RS256", "--audience", "api", "--jwks", str(d / "rs.pem")],
    ),
    Case(
        "hs256-secret-file",
        lambda d: config(
            Issuer(ISS_HS, algorithms=("HS256",), keys=SharedSecret(SECRET_256, kid="hs-1"), require_kid=True)
        ),
        lambda d: ["--issuer", ISS_HS, "--algorithm", "HS256", "--audience", "api",
                   "--hs-secret-file", str(d / "secret256.bin"), "--hs-kid", "hs-1", "--require-kid"],
    ),
    Case(
        "hs384-secret-env",
        lambda d: config(Issuer(ISS_HS, algorithms=("HS384",), keys=SharedSecret(SECRET_384))),
        lambda d: ["--issuer", ISS_HS, "--algorithm", "HS384", "--audience", "api", "--hs-secret-env", HS384_ENV],
    ),
    Case(
        "toml-two-issuers",
        lambda d: Config(
            issuers=(
                es_issuer(audiences=("api",), require_kid=True),
                Issuer(ISS_HS, algorithms=("HS256",), keys=SharedSecret(SECRET_256, kid="hs-1"),
                       audiences=("hs-api",)),
            ),
            leeway=5,
            max_lifetime=3600,
            keys=KeyPolicy(fetch_timeout=2),
            clock=FakeClock(NOW),
        ),
        lambda d: ["--config", str(d / "two.toml")],
    ),
]


def tokens() -> dict[str, str]:
    """Tokens made by our minting and by hand, each aimed at one check (or at none)."""
    hs: dict[str, Any] = {"issuer": ISS_HS, "now": NOW}
    es: dict[str, Any] = {"issuer": ISS_ES, "now": NOW}
    return {
        "es-good": mint(ES, **es),
        "es-scoped": mint(ES, {"scope": "read"}, **es),
        "es-no-kid": mint(ES, {"scope": "read"}, kid=False, **es),
        "es-typ-jwt": mint(ES, {"scope": "read"}, header={"typ": "JWT"}, **es),
        "es-expired": mint(ES, issuer=ISS_ES, now=NOW - 3600),
        "es-expired-10s-ago": mint(ES, issuer=ISS_ES, now=NOW - 310, lifetime=300),
        "es-not-yet-valid": mint(ES, {"nbf": NOW + 60}, **es),
        "es-issued-10-min-ago": mint(ES, issuer=ISS_ES, now=NOW - 600, lifetime=3600),
        "es-lives-2h": mint(ES, lifetime=7200, **es),
        "es-lives-3-days": mint(ES, lifetime=3 * 86400, **es),
        "es-no-iat": mint(ES, {"iat": None}, **es),
        "es-no-exp": mint(ES, {"exp": None}, **es),
        "es-aud-other": mint(ES, audience="other", **es),
        "es-aud-elsewhere": mint(ES, audience="elsewhere", **es),
        "es-jku-header": mint(ES, header={"jku": "https://evil.example/jwks"}, **es),
        "es-forged": mint(make_key("ES256", kid="es-1"), **es),
        "es-big": mint(ES, {"pad": "x" * 700}, **es),
        "es-unknown-issuer": mint(ES, issuer="https://evil.example", now=NOW),
        "es-by-hand": sign_raw({"alg": "ES256", "kid": "es-1"},
                               {"iss": ISS_ES, "aud": ["api", "x"], "exp": NOW + 60}, ES, "ES256"),
        "rs-good": mint(RS, issuer=ISS_RS, now=NOW),
        "rs-es-alg-confusion": mint(ES, issuer=ISS_RS, now=NOW),
        "hs256-good": mint(HS256, **hs),
        "hs256-hs-api": mint(HS256, audience="hs-api", **hs),
        "hs256-no-kid": mint(HS256, kid=False, **hs),
        "hs256-wrong-secret": mint(OctKey.import_key(os.urandom(32), {"kid": "hs-1"}), alg="HS256", **hs),
        "hs384-good": mint(HS384, kid=False, **hs),
        "hs-with-es-public-key": sign_raw({"alg": "HS256", "kid": "es-1"},
                                          {"iss": ISS_ES, "aud": "api", "exp": NOW + 60},
                                          OctKey.import_key(json.dumps(public_jwks(ES)).encode()), "HS256"),
        "alg-none": ".".join([b64url('{"alg":"none"}'), b64url(json.dumps({"iss": ISS_ES, "aud": "api"})), "c2ln"]),
        "garbage": "not.a.jwt",
    }


TOKENS = tokens()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("parity")
    (d / "es.json").write_text(json.dumps(public_jwks(ES)))
    assert not isinstance(RS, OctKey)
    (d / "rs.pem").write_bytes(RS.as_pem(private=False))
    (d / "secret256.bin").write_bytes(SECRET_256)
    (d / "two.toml").write_text(TWO_ISSUERS_TOML)
    return d


@pytest.fixture
def hs384_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HS384_ENV, SECRET_384.decode())


def kind(refusal: Refusal) -> str:
    return refusal.error or re.sub(r"(?<!^)(?=[A-Z])", "_", type(refusal).__name__).lower()


def middleware_decisions(cfg: Config) -> list[dict[str, Any]]:
    """Each token as the middleware decides it for ``GET /`` with ``Authorization: Bearer``."""
    auth = Authenticator(cfg)
    found = []
    for value in TOKENS.values():
        request = RequestView("GET", "/", [(b"authorization", f"Bearer {value}".encode())])
        try:
            identity = auth.authenticate(request)
        except Refusal as refusal:
            found.append({"valid": False, "error": kind(refusal), "reason": refusal.reason})
        else:
            assert identity is not None
            found.append({"valid": True, "claims": identity.to_dict()["claims"]})
    return found


def table(decisions: list[dict[str, Any]]) -> dict[str, tuple[bool, str | None]]:
    return {name: (d["valid"], d.get("reason")) for name, d in zip(TOKENS, decisions, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_decides_every_token_as_the_middleware(
    case: Case, files: Path, hs384_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = middleware_decisions(case.config(files))
    result = run_in_process(["verify", *case.argv(files), "--now", str(NOW), *TOKENS.values()], b"", monkeypatch, capsys)
    assert table(result.lines) == table(expected)
    assert result.lines == expected  # the error codes and the accepted tokens' claims too
    assert result.code == 1  # every configuration refuses some token of the table
    accepted = [d for d in expected if d["valid"]]
    assert accepted, f"{case.name}: the table must hold a token this configuration accepts"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_as_a_real_process_decides_as_the_middleware(case: Case, files: Path, hs384_env: None) -> None:
    """The tokens on stdin this time, the HS384 secret in the inherited environment."""
    expected = middleware_decisions(case.config(files))
    result = run_subprocess(["verify", *case.argv(files), "--now", str(NOW)], "\n".join(TOKENS.values()).encode())
    assert result.code == 1, result.err
    assert result.lines == expected


def test_the_table_exercises_many_distinct_refusals(files: Path, hs384_env: None) -> None:
    reasons = {d["reason"] for case in CASES for d in middleware_decisions(case.config(files)) if not d["valid"]}
    assert {
        "token_expired", "token_not_yet_valid", "token_too_old", "lifetime_too_long", "missing_iat",
        "missing_exp", "invalid_audience", "key_header_refused", "bad_signature", "token_too_large",
        "unknown_issuer", "alg_not_allowed", "invalid_typ", "kid_required", "missing_claim",
    } <= reasons, reasons


def test_every_config_field_is_an_option_or_has_a_reason() -> None:
    """A field added to Config, Issuer or KeyPolicy must be given an option here or a reason not
    to be one (STYLE.md §13: the CLI reproduces every token decision the middleware makes)."""
    fields = {f"{cls.__name__}.{f.name}" for cls in (Config, Issuer, KeyPolicy) for f in dataclasses.fields(cls)}
    options = {f"{o.owner}.{o.name}" for o in OPTIONS}
    covered = options | set(SET_OTHERWISE) | set(NOT_ON_COMMAND_LINE)
    assert fields - covered == set(), "give these an option in _cli_config.OPTIONS or a reason"
    assert covered - fields == set(), "these name no field any more"
    assert not options & set(NOT_ON_COMMAND_LINE)


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory, ca: Any) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def changed_value(option: Option, ca_file: str) -> list[str]:
    """Arguments setting ``option`` to a valid value other than the field's default."""
    owner = {"Config": Config, "Issuer": Issuer, "KeyPolicy": KeyPolicy}[option.owner]
    default = next(f.default for f in dataclasses.fields(owner) if f.name == option.name)
    if option.kind == "bool":
        return ["--no-" + option.cli[2:] if default else option.cli]
    if option.kind == "ca_file":
        return [option.cli, ca_file]
    if option.kind == "strings":
        return [option.cli, "ES384" if option.name == "algorithms" else "x-value"]
    if option.kind == "seconds_or_none" and default is not None:
        return [option.cli, "none"]
    if default is None or default is dataclasses.MISSING:
        return [option.cli, "100"]
    return [option.cli, str(default - 1 if option.name == "min_ttl" else default + 1)]


@pytest.mark.parametrize("option", OPTIONS, ids=[o.cli for o in OPTIONS])
def test_each_option_sets_its_own_field(option: Option, files: Path, ca_file: str) -> None:
    """Not a silent no-op (STYLE.md §14): the option changes the field it is named for."""

    argv = ["verify", *ES_ARGS, "--jwks", str(files / "es.json")]
    baseline = build(_parser().parse_args(argv)).config
    built = build(_parser().parse_args([*argv, *changed_value(option, ca_file)])).config
    assert field_of(built, option) != field_of(baseline, option)


def field_of(config: Config, option: Option) -> Any:
    owner: object = {"Config": config, "Issuer": config.issuers[0], "KeyPolicy": config.keys}[option.owner]
    return getattr(owner, option.name)
