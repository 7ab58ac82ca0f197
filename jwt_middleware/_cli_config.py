"""The ``verify`` command's Config: one option (and one TOML key) per Config, Issuer and KeyPolicy field.

On the command line one issuer is described (``--issuer`` and the options below); a TOML file
given by ``--config`` describes several, with the fields' own names::

    audience = "api"                 # Config fields at the top level
    max_lifetime = 3600
    [keys]                           # KeyPolicy (Config.keys)
    fetch_timeout = 2
    [[issuer]]                       # one table per Issuer
    issuer = "https://idp.example"
    algorithms = ["ES256"]
    jwks = "jwks.json"               # Issuer.keys: jwks, hs_secret_file or hs_secret_env (+ hs_kid)

:data:`OPTIONS` lists every field the command line sets; :data:`NOT_ON_COMMAND_LINE` every
field it leaves out, and why. A test keeps the two covering every field of the dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

from ._cli_keys import KeySpec, Label, UsageError, key_source, read_text, tls_context
from ._types import Clock
from .config import Config, Issuer, KeyPolicy

__all__ = [
    "NOT_ON_COMMAND_LINE",
    "OPTIONS",
    "Built",
    "add_verify_options",
    "build",
    "seconds",
]

Owner = Literal["Config", "Issuer", "KeyPolicy"]
#: strings: repeatable on the command line, a string or list in TOML; seconds_or_none: "none" turns
#: the check off; bool: --name / --no-name; count: a whole number; ca_file: KeyPolicy.tls
Kind = Literal["strings", "seconds", "seconds_or_none", "bool", "count", "ca_file"]


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One dataclass field as a command-line option; the TOML key is the field's own name."""

    owner: Owner
    name: str
    kind: Kind
    help: str
    #: the option when it is not ``--`` + the kebab-case name (a repeatable one is singular)
    flag: str | None = None
    metavar: str | None = None

    @property
    def cli(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return f"{self.owner.lower()}_{self.name}"


OPTIONS: Final = (
    Option("Issuer", "algorithms", "strings", "an accepted JWS alg, e.g. ES256 (repeatable)", "--algorithm",
           "ALG"),
    Option("Issuer", "typ", "strings", "an accepted 'typ' header, e.g. at+jwt (repeatable)", None, "TYP"),
    Option("Issuer", "required_claims", "strings", "a claim every token must carry (repeatable)",
           "--required-claim", "CLAIM"),
    Option("Issuer", "require_kid", "bool", "refuse tokens without a kid"),
    Option("Issuer", "allow_key_headers", "bool", "accept (never read) jku/jwk/x5u/x5c headers"),
    Option("Config", "audience", "strings", "this API's identifier (repeatable)", None, "AUD"),
    Option("Config", "leeway", "seconds", "seconds of clock skew allowed"),
    Option("Config", "max_age", "seconds_or_none", "seconds since iat after which a token is too old"),
    Option("Config", "max_lifetime", "seconds_or_none",
           "longest exp - iat in seconds; none: off"),
    Option("Config", "require_exp", "bool", "refuse tokens without exp"),
    Option("Config", "require_iat", "bool", "refuse tokens without iat"),
    Option("Config", "max_token_bytes", "count", "size cap before parsing"),
    Option("KeyPolicy", "tls", "ca_file", "PEM CA bundle trusted for https key fetches; default: system CAs",
           "--ca-file"),
    Option("KeyPolicy", "fetch_timeout", "seconds", "seconds for one key fetch"),
    Option("KeyPolicy", "max_jwks_bytes", "count", "largest JWKS document fetched"),
    Option("KeyPolicy", "max_keys", "count", "keys read from one JWKS"),
    Option("KeyPolicy", "default_ttl", "seconds", "key-set lifetime without Cache-Control"),
    Option("KeyPolicy", "min_ttl", "seconds", "lower clamp of max-age"),
    Option("KeyPolicy", "max_ttl", "seconds", "upper clamp of max-age"),
    Option("KeyPolicy", "refresh_ahead", "seconds", "refresh this long before expiry"),
    Option("KeyPolicy", "kid_miss_cooldown", "seconds", "between refetches for an unknown kid"),
    Option("KeyPolicy", "stale_if_error", "seconds", "how long stale keys serve while fetches fail"),
    Option("KeyPolicy", "failure_backoff", "seconds", "between attempts while the issuer fails"),
)

#: fields set by other means than an entry of OPTIONS
SET_OTHERWISE: Final = {
    "Config.issuers": "--issuer with the Issuer options, or [[issuer]] tables in --config",
    "Config.keys": "the KeyPolicy options, or the [keys] table in --config",
    "Config.clock": "--now EPOCH pins it; else the system clock",
    "Issuer.issuer": "--issuer, or issuer = in an [[issuer]] table",
    "Issuer.keys": "--jwks, --hs-secret-file or --hs-secret-env (and --hs-kid); default OIDC discovery",
    "Issuer.audiences": "audiences = in an [[issuer]] table; on the command line --audience",
}

#: fields that never change whether a token is accepted, so verify has no option for them
NOT_ON_COMMAND_LINE: Final = {
    "Config.sources": "verify presents every token as an Authorization Bearer credential",
    "Config.allow_query_token": "verify presents every token as an Authorization Bearer credential",
    "Config.rules": "route policy: verify decides a token for a route that requires any valid token",
    "Config.default_access": "route policy: verify decides a token for a route that requires any valid token",
    "Config.path_normalization": "request paths: verify sends no path of its own",
    "Config.preflight": "CORS preflights carry no token",
    "Config.match_full_path": "route policy: verify sends no path of its own",
    "Config.realm": "shapes the challenge only",
    "Config.verified_cache_size": "a speed-up that never changes a decision",
    "Config.strip_failure_body": "shapes the response only",
    "Config.dpop": "a proof belongs to a request (method, URL, DPoP header); a bound token sent as "
    "Bearer is refused, as the middleware refuses it",
    "Config.trusted_proxies": "request addressing, not the token",
    "Config.store_failure": "verify uses no store: no one-time rule, no DPoP proof",
    "Config.claims_validator": "the app's own Python code: verify decides with the standard checks only, "
    "so a token it accepts may still be refused by the app's validator",
    "Config.identity_loader": "runs after the decision (the app's users), not part of it",
    "Config.identity_loader_ttl": "runs after the decision (the app's users), not part of it",
    "Config.on_refusal": "shapes the response body only",
    "Issuer.status_list": "verify fetches no Token Status List: a token it accepts may still be refused by "
    "its issuer's list (revoked or suspended) in the middleware",
}

_ISSUER_TABLE_KEYS: Final = ("issuer", "audiences", "jwks", "hs_secret_file", "hs_secret_env", "hs_kid")


class Built(NamedTuple):
    """The Config, and per issuer where its keys came from (for ``--explain``; never a secret)."""

    config: Config
    keys: dict[str, dict[str, Any]]


# --- argument parsing ----------------------------------------------------------------------
def add_verify_options(p: argparse.ArgumentParser) -> None:
    """The verify command's configuration options (one per :data:`OPTIONS` entry and the rest)."""
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file describing one or more issuers "
                   "(then give no configuration option here)")
    p.add_argument("--issuer", help="the exact 'iss' the tokens carry")
    p.add_argument("--jwks", metavar="FILE_OR_URL", help="JWKS or PEM public key file, or a JWKS https:// "
                   "URL (http:// on loopback only); default: OIDC discovery at the issuer")
    p.add_argument("--hs-secret-file", metavar="PATH", help="HS* shared secret: the file's exact bytes, or "
                   "an oct JWK (as keys generate writes it)")
    p.add_argument("--hs-secret-env", metavar="NAME", help="HS* shared secret from this environment variable")
    p.add_argument("--hs-kid", metavar="KID", help="the shared secret's key id (default: the JWK's, or none)")
    p.add_argument("--hs-secret", type=_refuse_secret, help=argparse.SUPPRESS)
    for option in OPTIONS:
        kind = _argparse_kind(option.kind)
        if option.metavar or option.kind != "bool":
            kind["metavar"] = option.metavar or _METAVARS[option.kind]
        # Why SUPPRESS: an option not given leaves no attribute, so "--max-lifetime none" (None,
        # the check turned off) is told apart from leaving the field at its default.
        p.add_argument(option.cli, dest=option.dest, help=option.help + _default_of(option),
                       default=argparse.SUPPRESS, **kind)
    p.add_argument("--now", type=_epoch, metavar="EPOCH", help="decide as at this Unix time (pins the clock)")


_OWNERS: Final = {"Config": Config, "Issuer": Issuer, "KeyPolicy": KeyPolicy}


def _default_of(option: Option) -> str:
    """`` (default …)`` read from the dataclass itself, so the help cannot drift from it."""
    found = next(f for f in dataclasses.fields(_OWNERS[option.owner]) if f.name == option.name)
    default = found.default
    if default is dataclasses.MISSING or default in ((), None) or option.kind == "ca_file":
        return ""
    if isinstance(default, bool):
        return f" (default {'on' if default else 'off'})"
    return f" (default {default:g})" if isinstance(default, float) else f" (default {default})"


_METAVARS: Final = {"seconds": "SECONDS", "seconds_or_none": "SECONDS", "count": "N", "ca_file": "FILE"}


def _argparse_kind(kind: Kind) -> dict[str, Any]:
    if kind == "strings":
        return {"action": "append"}
    if kind == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if kind == "count":
        return {"type": int}
    if kind == "ca_file":
        return {}
    return {"type": seconds if kind == "seconds" else _seconds_or_none}


def seconds(text: str) -> float:
    """A finite number of seconds (NaN or infinity would silently turn a time check off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def _seconds_or_none(text: str) -> float | None:
    return None if text == "none" else seconds(text)


def _epoch(text: str) -> float:
    value = seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a Unix time (seconds since 1970)")
    return value


def _refuse_secret(text: str) -> str:
    # Why never: the process list and the shell history show every argument to anyone on the host.
    raise argparse.ArgumentTypeError(
        "a secret is never given on the command line (ps and shell history show it); "
        "use --hs-secret-file PATH or --hs-secret-env NAME"
    )


# --- building the Config -------------------------------------------------------------------
def build(args: argparse.Namespace) -> Built:
    """The Config the options or the ``--config`` file describe.

    :raises UsageError: a missing or contradictory option, an unreadable file, an unknown TOML key
    :raises ConfigError: what Config itself refuses (naming the field and the fix)
    """
    clock: Clock = time.time if args.now is None else _pinned(args.now)
    if args.config is not None:
        _refuse_beside_config(args)
        return _from_toml(args.config, clock)
    return _from_args(args, clock)


def _pinned(now: float) -> Clock:
    def clock() -> float:
        return now

    return clock


def _refuse_beside_config(args: argparse.Namespace) -> None:
    flags = [("--issuer", args.issuer), ("--jwks", args.jwks), ("--hs-secret-file", args.hs_secret_file),
             ("--hs-secret-env", args.hs_secret_env), ("--hs-kid", args.hs_kid)]
    given = [flag for flag, value in flags if value is not None]
    given += [o.cli for o in OPTIONS if hasattr(args, o.dest)]
    for flag in given:
            raise UsageError(
                f"{flag}: give it in the --config file, not beside it (one place for the configuration)"
            )


def _from_args(args: argparse.Namespace, clock: Clock) -> Built:
    if args.issuer is None:
        raise UsageError("--issuer: required (the exact 'iss' your tokens carry), or describe issuers "
                         "with --config FILE.toml")
    values = {o.dest: getattr(args, o.dest) for o in OPTIONS if hasattr(args, o.dest)}
    for option in (_option("Config", "audience"), _option("Issuer", "algorithms")):
        if option.dest not in values:
            raise UsageError(f"{option.cli}: required ({option.help})")
    spec = KeySpec(args.jwks, args.hs_secret_file, args.hs_secret_env, args.hs_kid)
    fields = _by_owner(values)
    if fields["KeyPolicy"].get("tls") is not None:
        fields["KeyPolicy"]["tls"] = tls_context(fields["KeyPolicy"]["tls"], "--ca-file")
    label = Label(flags={o.name: o.cli for o in OPTIONS if o.owner == "Issuer"})
    issuer = (args.issuer, fields["Issuer"], spec, label)
    return _assemble(fields["Config"], fields["KeyPolicy"], [issuer], clock)


def _option(owner: Owner, name: str) -> Option:
    return next(o for o in OPTIONS if o.owner == owner and o.name == name)


def _by_owner(values: Mapping[str, Any]) -> dict[Owner, dict[str, Any]]:
    """The option values given, by dataclass; lists as tuples."""
    fields: dict[Owner, dict[str, Any]] = {"Config": {}, "Issuer": {}, "KeyPolicy": {}}
    for option in OPTIONS:
        if option.dest in values:
            value = values[option.dest]
            fields[option.owner][option.name] = tuple(value) if isinstance(value, list) else value
    return fields


def _assemble(
    config: dict[str, Any],
    policy: dict[str, Any],
    issuers: list[tuple[str, dict[str, Any], KeySpec, Label]],
    clock: Clock,
) -> Built:
    built: list[Issuer] = []
    keys: dict[str, dict[str, Any]] = {}
    for name, fields, spec, label in issuers:
        source, described = key_source(name, fields.get("algorithms", ()), spec, label)
        built.append(Issuer(name, keys=source, **fields))
        keys[name] = described
    return Built(Config(issuers=tuple(built), keys=KeyPolicy(**policy), clock=clock, **config), keys)


# --- TOML ----------------------------------------------------------------------------------
def _from_toml(path: str, clock: Clock) -> Built:
    """``--config FILE.toml``: top-level Config fields, ``[keys]``, ``[[issuer]]`` tables.

    Relative paths in the file are read from the file's own directory.
    """
    try:
        data = tomllib.loads(read_text(path, "--config"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    toml = _Toml(path)
    toml.known(data, "", [o.name for o in OPTIONS if o.owner == "Config"] + ["keys", "issuer"])
    config = toml.fields(data, "Config", "")
    policy = toml.fields(toml.table(data.get("keys", {}), "keys"), "KeyPolicy", "[keys] ")
    if isinstance(policy.get("tls"), str):
        policy["tls"] = tls_context(toml.path(policy["tls"]), f"--config {path}: [keys] tls")
    tables = data.get("issuer")
    if not isinstance(tables, list) or not tables:
        raise UsageError(f"--config {path}: describe at least one issuer in an [[issuer]] table")
    issuers = [toml.issuer(table, number) for number, table in enumerate(tables, 1)]
    return _assemble(config, policy, issuers, clock)


class _Toml:
    """Reading one TOML file: every message names the file and the key."""

    def __init__(self, path: str) -> None:
        self.file = path
        self.base = Path(path).parent
        self.where = ""

    def label(self, name: str) -> str:
        return f"--config {self.file}: {self.where}{name}"

    def path(self, value: str) -> str:
        return str(self.base / value)

    def known(self, data: Mapping[str, Any], where: str, names: list[str]) -> None:
        for key in data:
            if key not in names:
                known = ", ".join(names)
                raise UsageError(f"--config {self.file}: {where}unknown key {key!r}; known: {known}")

    def table(self, value: object, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise UsageError(f"--config {self.file}: {name} must be a table ([{name}])")
        self.known(value, f"[{name}] ", [o.name for o in OPTIONS if o.owner == "KeyPolicy"])
        return value

    def fields(self, data: Mapping[str, Any], owner: Owner, where: str) -> dict[str, Any]:
        return {o.name: _typed(data[o.name], o.kind, f"--config {self.file}: {where}{o.name}")
                for o in OPTIONS if o.owner == owner and o.name in data}

    def issuer(self, table: object, number: int) -> tuple[str, dict[str, Any], KeySpec, Label]:
        self.where = f"[[issuer]] #{number} "
        if not isinstance(table, dict):
            raise UsageError(f"--config {self.file}: issuer must be an array of tables ([[issuer]])")
        names = [o.name for o in OPTIONS if o.owner == "Issuer"] + list(_ISSUER_TABLE_KEYS)
        self.known(table, self.where, names)
        text = {n: _typed(table[n], "string", self.label(n)) for n in _ISSUER_TABLE_KEYS[2:] if n in table}
        if "issuer" not in table:
            raise UsageError(f"{self.label('issuer')}: required (the exact 'iss' its tokens carry)")
        name = _typed(table["issuer"], "string", self.label("issuer"))
        if "algorithms" not in table:
            raise UsageError(f"{self.label('algorithms')}: required, e.g. algorithms = [\"ES256\"]")
        fields = self.fields(table, "Issuer", self.where)
        if "audiences" in table:
            fields["audiences"] = _typed(table["audiences"], "strings", self.label("audiences"))
        if "jwks" in text and not text["jwks"].startswith(("https://", "http://")):
            text["jwks"] = self.path(text["jwks"])
        if "hs_secret_file" in text:
            text["hs_secret_file"] = self.path(text["hs_secret_file"])
        return name, fields, KeySpec(**text), Label(f"--config {self.file}: {self.where}", flags=None)


_EXPECTED: Final = {
    "strings": "a string or a list of strings",
    "string": "a string",
    "seconds": "a number of seconds",
    "seconds_or_none": 'a number of seconds, or "none"',
    "bool": "true or false",
    "count": "a whole number",
    "ca_file": "a CA bundle path, or true/false",
}


def _typed(value: object, kind: str, label: str) -> Any:
    """``value`` when it is of ``kind`` (lists as tuples).

    :raises UsageError: naming the key and the type it takes
    """
    if kind == "strings" and isinstance(value, str):
        return (value,)
    if kind == "strings" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if kind == "seconds_or_none" and value == "none":
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("seconds", "seconds_or_none") and number and math.isfinite(value):  # type: ignore[arg-type]
        return value
    if (kind == "string" and isinstance(value, str)) or (kind == "bool" and isinstance(value, bool)):
        return value
    if kind == "count" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "ca_file" and isinstance(value, str | bool):
        return value
    raise UsageError(f"{label}: must be {_EXPECTED[kind]}")
