"""``jwt-middleware revoke``: write revocations to a Redis that the middleware's workers follow.

Each revocation goes through :class:`~jwt_middleware.revocation.RedisRevocationStore`'s own
``revoke_*`` call (its Lua merge, sequence number and PUBLISH), so every worker whose store
follows the same Redis and prefix refuses the token on its next request. The command never
starts a follower: it writes, prints one JSON line per revocation and exits.

Exit codes as ``verify``'s: 0 every revocation written, 1 Redis failed (the lines printed
before the failure were written), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._cli_config import seconds
from ._cli_explain import unverified_segments
from ._cli_keys import UsageError
from .config import Config
from .errors import StoreError
from .revocation import _redis_ops as ops

if TYPE_CHECKING:
    from .revocation.redis import RedisClient, RedisRevocationStore

__all__ = ["RevokeFailed", "add_revoke"]

#: Where the Redis URL comes from when ``--redis-url`` is not given (a URL with a password
#: belongs here: the process list and the shell history show every argument).
REDIS_URL_ENV: Final = "JWT_MIDDLEWARE_REDIS_URL"
#: Seconds one revocation may take against Redis, its one retry included (default).
DEFAULT_TIMEOUT: Final = 2.0
MAX_TIMEOUT: Final = 30.0
#: ``until`` for ``--token`` is its ``exp`` plus this (Config.leeway's default): the middleware
#: accepts a token until ``exp + leeway``, so the entry must last that long too.
DEFAULT_LEEWAY: Final = Config.__dataclass_fields__["leeway"].default
#: Largest epoch accepted (year 5138): anything above is milliseconds given as seconds.
MAX_EPOCH: Final = 1e11
#: How far ahead of this host's clock a cut-off may lie (seconds): room for an IdP clock
#: running ahead. A cut-off never moves back, so one far in the future would refuse every new
#: token of the subject until then, with no way to undo it.
MAX_AT_AHEAD: Final = 300.0
#: Longest token read by ``--token`` (a JWT the middleware accepts is at most 8 KiB).
MAX_TOKEN_BYTES: Final = 64 * 1024
NEEDS_REDIS: Final = (
    "revoke needs the redis client: pip install 'asgi-wsgi-jwt-guard[redis]' "
    "(from a checkout: pip install '.[redis]')"
)

Handler = Callable[[argparse.Namespace], int]


class RevokeFailed(Exception):
    """Redis could not be reached or refused the write; printed as one line, exit code 1."""


@dataclass(frozen=True, slots=True)
class _CutOffCommand:
    """One cut-off subcommand: the claim it names (option, JSON field) and the store's call."""

    kind: str
    option: str
    field: str
    revoke: Callable[[RedisRevocationStore, str, str, float], None]


_CUT_OFFS: Final = (
    _CutOffCommand("subject", "--subject", "subject", lambda store, *change: store.revoke_subject(*change)),
    _CutOffCommand("session", "--sid", "sid", lambda store, *change: store.revoke_session(*change)),
    _CutOffCommand("client", "--client-id", "client_id", lambda store, *change: store.revoke_client(*change)),
)


# --- argument parsing ----------------------------------------------------------------------
def add_revoke(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    usage: Callable[[argparse.ArgumentParser], Handler],
) -> None:
    """Add ``revoke token|subject|session|client``; ``usage`` answers the bare group."""
    group = commands.add_parser(
        "revoke",
        help="revoke tokens in the Redis the middleware's revocation stores follow",
        description="Write revocations through RedisRevocationStore; every worker following the "
        "same Redis and prefix refuses them on its next request. One JSON line per revocation. "
        "Exit 0 when all were written, 1 when Redis failed, 2 on a usage error.",
    )
    group.set_defaults(handler=usage(group))
    kinds = group.add_subparsers(title="commands", metavar="COMMAND")
    p = kinds.add_parser(
        "token",
        parents=[_redis_options()],
        help="refuse one token (iss, jti) until it expires",
        description="Refuse the tokens (issuer, jti) until --until, or until the exp of --token "
        "plus --leeway.",
    )
    p.add_argument("--issuer", help="the iss claim (default with --token: the token's)")
    p.add_argument("--jti", action="append", default=[], metavar="JTI",
                   help="the jti claim (repeatable; at most one with --token)")
    ends = p.add_mutually_exclusive_group(required=True)
    ends.add_argument("--until", type=_epoch, metavar="EPOCH", help="refuse them until this Unix time")
    ends.add_argument(
        "--token",
        metavar="TOKEN",
        help="read iss, jti and exp from this token ('-': one line of stdin); unverified, which "
        "is safe here: a revocation can only refuse more, and exp bounds how long it is kept",
    )
    p.add_argument("--leeway", type=_leeway, default=DEFAULT_LEEWAY,
                   help=f"with --token: seconds kept past exp, the middleware's Config.leeway "
                   f"(default {DEFAULT_LEEWAY:g})")
    p.set_defaults(handler=_cmd_token)
    for command in _CUT_OFFS:
        p = kinds.add_parser(
            command.kind,
            parents=[_redis_options()],
            help=f"refuse every token of a {command.kind} issued at or before a time",
            description=f"Refuse every token of each {command.field} (with this iss) whose iat is "
            "at or before --at, or that has no iat. A cut-off only moves forward: it is never undone.",
        )
        p.add_argument("--issuer", required=True, help="the iss claim")
        p.add_argument(command.option, dest="values", action="append", required=True,
                       metavar=command.field.upper(), help=f"the {command.field} claim (repeatable)")
        p.add_argument("--at", type=_epoch, metavar="EPOCH",
                       help=f"the cut-off, a Unix time (default now; at most {MAX_AT_AHEAD:g} s ahead)")
        p.set_defaults(handler=_cut_off_handler(command))


def _redis_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("Redis")
    where.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"redis://, rediss:// or unix:// URL (default: ${REDIS_URL_ENV}; a URL with a "
        "password only there, never on the command line)",
    )
    where.add_argument("--cluster", action="store_true", help="the URL names a node of a Redis Cluster")
    where.add_argument("--prefix", default=ops.DEFAULT_PREFIX,
                       help=f"the stores' key prefix, with its {{hash tag}} (default {ops.DEFAULT_PREFIX})")
    where.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help="longest one revocation may take, its retry included "
                       f"(default {DEFAULT_TIMEOUT:g})")
    return options


def _epoch(text: str) -> float:
    value = seconds(text)
    if not 0 <= value <= MAX_EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r}: give a Unix time in seconds (not milliseconds)")
    return value


def _timeout(text: str) -> float:
    value = seconds(text)
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: use more than 0 and at most {MAX_TIMEOUT:g} seconds")
    return value


def _leeway(text: str) -> float:
    value = seconds(text)
    if not 0 <= value <= 300:
        raise argparse.ArgumentTypeError(f"{text!r}: use 0..300 seconds, as Config.leeway")
    return value


# --- the commands --------------------------------------------------------------------------
def _cmd_token(args: argparse.Namespace) -> int:
    now = time.time()
    issuer, jtis, until = _token_target(args)
    if until <= now:
        option = "--until" if args.token is None else "--token: its exp plus --leeway"
        raise UsageError(f"{option}: that time has passed; the middleware refuses the token as expired")
    with _opened_store(args) as store:
        for jti in jtis:
            store.revoke_token(issuer, jti, until)
            _print({"revoked": "token", "issuer": issuer, "jti": jti, "until": until})
    return 0


def _cut_off_handler(command: _CutOffCommand) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        now = time.time()
        at = now if args.at is None else args.at
        if at > now + MAX_AT_AHEAD:
            raise UsageError(
                f"--at: {at - now:.0f} s ahead of this host's clock; a cut-off is never undone, so a "
                "future one would refuse every new token until then; give a time at or before now"
            )
        _nonempty(args.issuer, "--issuer")
        for value in args.values:
            _nonempty(value, command.option)
        with _opened_store(args) as store:
            for value in args.values:
                command.revoke(store, args.issuer, value, at)
                _print({"revoked": command.kind, "issuer": args.issuer, command.field: value, "at": at})
        return 0

    return handler


def _token_target(args: argparse.Namespace) -> tuple[str, list[str], float]:
    """``(issuer, jtis, until)`` from the options, or from the claims of ``--token``."""
    if args.token is None:
        if not args.jti:
            raise UsageError("--jti: give the jti to revoke (or --token, to read it from the token)")
        issuer = _nonempty(args.issuer, "--issuer")
        return issuer, [_nonempty(jti, "--jti") for jti in args.jti], args.until
    if len(args.jti) > 1:
        raise UsageError("--jti: give at most one with --token (a token has one jti)")
    claims = _unverified_claims(_token_text(args.token))
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise UsageError("--token: it has no numeric exp; give --until EPOCH instead")
    issuer = _agreeing(args.issuer, claims.get("iss"), "--issuer", "iss")
    jti = _agreeing(args.jti[0] if args.jti else None, claims.get("jti"), "--jti", "jti")
    return issuer, [jti], float(exp) + args.leeway


def _agreeing(given: str | None, claim: object, option: str, name: str) -> str:
    """The option's value, which must match the token's claim when both are present."""
    if given is not None and claim is not None and given != claim:
        raise UsageError(f"{option}: differs from the token's {name} claim; leave it out or fix it")
    value = given if given is not None else claim
    if not isinstance(value, str):
        raise UsageError(f"{option}: the token has no {name} claim (a string); give {option}")
    return _nonempty(value, option)


def _token_text(value: str) -> bytes:
    if value == "-":
        stream = getattr(sys.stdin, "buffer", None)
        line = stream.readline(MAX_TOKEN_BYTES) if stream is not None else b""
    else:
        line = os.fsencode(value)
    if len(line) >= MAX_TOKEN_BYTES:
        raise UsageError(f"--token: longer than {MAX_TOKEN_BYTES} bytes; not a token")
    return line.strip()


def _unverified_claims(token: bytes) -> dict[str, Any]:
    # Why unverified is safe: a revocation only ever refuses more. The claims choose which
    # (iss, jti) is refused and for how long; a forged token can at worst make the operator
    # revoke a pair nobody holds, or keep an entry shorter than a genuine token with the same
    # jti but a later exp (so paste the token itself, not a lookalike). Verifying would need
    # the whole verify configuration for a decision that cannot admit anything.
    _, claims = unverified_segments(token)
    if claims is None:
        raise UsageError("--token: not a signed JWT (header.payload.signature) with a JSON payload")
    return claims


def _nonempty(value: str | None, option: str) -> str:
    if not value:
        raise UsageError(f"{option}: must not be empty")
    return value


def _print(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


# --- Redis ---------------------------------------------------------------------------------
@contextmanager
def _opened_store(args: argparse.Namespace) -> Iterator[RedisRevocationStore]:
    """A store writing to ``args``' Redis; its client is closed on the way out."""
    url = _redis_url(args.redis_url)
    where = _where(url)
    try:  # here, so that a missing extra is one clear line
        from .revocation.redis import RedisRevocationStore, close_client
    except ModuleNotFoundError as missing:  # the redis extra is optional; verify runs without it
        if (missing.name or "").partition(".")[0] != "redis":
            raise
        raise UsageError(NEEDS_REDIS) from None
    client = _client(url, args.cluster, args.timeout, where)
    try:
        # Why this max_staleness: no follower runs here, so staleness is never read; the store
        # only requires it to exceed heartbeat + timeout.
        store = RedisRevocationStore(
            client, args.prefix, timeout=args.timeout, max_staleness=ops.DEFAULT_HEARTBEAT + args.timeout + 1
        )
        try:
            yield store
        except StoreError as exc:
            raise RevokeFailed(f"Redis at {where} failed: {_cause(exc)}") from None
    finally:
        close_client(client)


def _redis_url(given: str | None) -> str:
    if given is not None:
        if urlsplit(given).password:
            raise UsageError(
                "--redis-url: holds a password, which ps and shell history would show; "
                f"put the URL in ${REDIS_URL_ENV} instead"
            )
        return given
    url = os.environ.get(REDIS_URL_ENV, "")
    if not url:
        raise UsageError(f"--redis-url: give the Redis URL, or set ${REDIS_URL_ENV}")
    return url


def _where(url: str) -> str:
    """The URL without its credentials, path or query, for messages."""
    parts = urlsplit(url)
    try:
        host = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
    except ValueError:  # a port that is not a number
        host = parts.hostname or "?"
    return f"{parts.scheme}://{host}"


def _client(url: str, cluster: bool, timeout: float, where: str) -> RedisClient:
    from .revocation.redis import client_from_url

    try:
        return client_from_url(url, cluster=cluster, timeout=timeout)
    except ValueError:
        raise UsageError(
            f"--redis-url: not a Redis URL ({where}); use redis://host:port/db, rediss:// or unix://"
        ) from None
    except StoreError as exc:
        raise RevokeFailed(f"cannot use the Redis Cluster at {where}: {_cause(exc)}") from None


def _cause(exc: StoreError) -> str:
    return _first_line(exc.original) if isinstance(exc.original, BaseException) else exc.original


def _first_line(exc: BaseException) -> str:
    """redis-py's message names the address and the cause, never a key, a value or a password."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
