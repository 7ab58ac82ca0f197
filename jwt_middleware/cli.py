"""The ``jwt-middleware`` command: verify tokens, generate keys, mint test tokens, revoke, run the demo.

``verify`` decides each token with the very pipeline the middleware runs (an
:class:`~jwt_middleware.Authenticator` asked about ``GET /`` with the token as a Bearer
credential), so a token it accepts is one the middleware would accept with the same options.
Its options are the Config, Issuer and KeyPolicy fields (:mod:`jwt_middleware._cli_config`),
or a TOML file of them (``--config``); ``--explain`` adds :mod:`jwt_middleware._cli_explain`'s
account of each refusal. ``revoke`` (:mod:`jwt_middleware._cli_revoke`) writes revocations to
the Redis the middleware's revocation stores follow.

Exit codes: 0 every token valid (or the command succeeded), 1 a token was refused (or the
command failed), 2 a usage or configuration error. No input ever produces a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Final, cast

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from ._cli_config import Built, add_verify_options, build, seconds
from ._cli_explain import explain
from ._cli_keys import UsageError, import_pem_key, read_text
from ._cli_revoke import RevokeFailed, add_revoke
from .authenticator import Authenticator
from .config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS
from .errors import ConfigError, Refusal
from .request import RequestView
from .testing import Alg, b64url, make_key, public_jwks, sign_raw, signing_alg

__all__ = ["main"]

PROG: Final = "jwt-middleware"
#: longest stdin line kept; anything longer is cut here and refused by the pipeline's size gate
#: (Config.max_token_bytes is 8 KiB), so a huge line never sits in memory whole
MAX_LINE_BYTES: Final = 64 * 1024
#: every algorithm verify accepts (Issuer.algorithms), so keys generate makes a key for each
KEY_ALGORITHMS: Final = tuple(sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS))
#: token mint's subject when --subject is not given
DEFAULT_SUBJECT: Final = "user"
_CLAIM_ARG: Final = re.compile(r"([^=:]+)(:?=)(.*)", re.DOTALL)


# --- entry point ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises, never prints a traceback)."""
    try:
        return _run(argv)
    except (UsageError, ConfigError) as exc:
        _note(f"error: {exc}")
        return 2
    except RevokeFailed as exc:
        _note(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`); stop quietly and keep Python's exit flush silent.
        _silence_stdout()
        return 1
    except Exception as exc:  # a bug of ours: one line, never the traceback (it could hold a token)
        _note(f"internal error ({type(exc).__name__}); please report it")
        return 1


def _run(argv: Sequence[str] | None) -> int:
    if sys.stdout is None:  # started with stdout closed: the exit code still answers
        sys.stdout = open(os.devnull, "w")  # lives as long as the process
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage (code 2) or help (code 0)
        return exc.code if isinstance(exc.code, int) else 2
    if not hasattr(args, "handler"):
        parser.print_usage(sys.stderr)
        _note("choose a command: verify, keys, token, revoke, demo")
        return 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _note(message: str) -> None:
    if sys.stderr is not None:  # None: Python was started with stderr closed
        sys.stderr.write(f"{PROG}: {message}\n")
        sys.stderr.flush()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# --- argument parsing ----------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="JWT middleware tools.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_verify(commands)
    _add_keys(commands)
    _add_token(commands)
    add_revoke(commands, _usage_of)
    _add_demo(commands)
    return parser


def _usage_of(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The handler of a command group given without its subcommand: usage, exit code 2."""

    def handler(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        _note(f"choose a command (see {parser.prog} -h)")
        return 2

    return handler


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify",
        help="verify access tokens exactly as the middleware would",
        description="Verify tokens with the middleware's own pipeline; print one JSON line per token. "
        "Each configuration option sets the Config, Issuer or KeyPolicy field of the same name "
        "(--algorithm: Issuer.algorithms, --required-claim: Issuer.required_claims, --ca-file: "
        "KeyPolicy.tls); --config FILE.toml describes several issuers with the fields' own names. "
        "Exit 0 when all are valid, 1 otherwise, 2 on a usage or configuration error.",
    )
    p.add_argument("tokens", nargs="*", metavar="TOKEN", help="tokens; none or '-': one per line on stdin")
    add_verify_options(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="for each refused token, also print its alg, kid, typ, iss, aud, exp, nbf, iat "
        "(decoded without verification, labelled 'unverified'; never the signature) next to the "
        "configured checks",
    )
    p.set_defaults(handler=_cmd_verify)


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("keys", help="signing keys")
    group.set_defaults(handler=_usage_of(group))
    keys = group.add_subparsers(title="commands", metavar="COMMAND")
    p = keys.add_parser(
        "generate",
        help="generate a signing key",
        description="Print the private JWK and the public JWKS (one JSON document per line), "
        "or write them to files.",
    )
    p.add_argument("--alg", required=True, choices=KEY_ALGORITHMS, metavar="ALG",
                   help=f"one of {', '.join(KEY_ALGORITHMS)}; an HS* key is a secret: one JWK line, "
                   "no JWKS (verify it with --hs-secret-file)")
    p.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    p.add_argument("--out-private", metavar="FILE", help="write the private JWK here (mode 0600, new file)")
    p.add_argument("--out-jwks", metavar="FILE", help="write the public JWKS here (not for HS*)")
    p.set_defaults(handler=_cmd_keys_generate)


def _add_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("token", help="tokens for testing")
    group.set_defaults(handler=_usage_of(group))
    token = group.add_subparsers(title="commands", metavar="COMMAND")
    p = token.add_parser("mint", help="sign a token with a private key", description="Print a signed JWT.")
    p.add_argument("--key", required=True, metavar="FILE", help="private JWK (or one-key JWKS, or PEM) file")
    p.add_argument("--issuer", required=True)
    p.add_argument("--audience", action="append", required=True, help="repeatable; several give a list")
    p.add_argument("--subject", default=DEFAULT_SUBJECT,
                   help=f"the sub claim (default {DEFAULT_SUBJECT!r}; '' leaves sub out)")
    p.add_argument("--scope", help='space-separated scopes, e.g. "read write"')
    p.add_argument("--lifetime", type=seconds, default=300.0, help="seconds until exp (default 300)")
    p.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="K=V",
        help="extra claim: k=text for a string, k:=JSON for any JSON value (repeatable)",
    )
    p.add_argument("--typ", default="at+jwt", help="header typ (default at+jwt; '' leaves it out)")
    p.add_argument("--alg", help="signing algorithm (default: the key's alg, else inferred from the key)")
    p.set_defaults(handler=_cmd_token_mint)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "demo",
        help="serve a small protected Starlette app (needs the 'server' extra)",
        description="Serve a demo app behind JWTMiddleware with in-memory keys; "
        "print tokens and curl commands.",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others only when given here)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.set_defaults(handler=_cmd_demo)


# --- verify --------------------------------------------------------------------------------
def _cmd_verify(args: argparse.Namespace) -> int:
    built = build(args)
    authenticator = Authenticator(built.config)
    notes = _StderrNotes()
    logging.getLogger("jwt_middleware").addHandler(notes)
    try:
        return _verify_all(authenticator, _tokens(args.tokens, sys.stdin), built if args.explain else None)
    finally:
        logging.getLogger("jwt_middleware").removeHandler(notes)


def _verify_all(authenticator: Authenticator, tokens: Iterator[bytes], explained: Built | None) -> int:
    """One JSON line per token; with ``explained``, a refusal carries :func:`explain`'s account."""
    seen = 0
    all_valid = True
    for token in tokens:
        seen += 1
        result = verify_token(authenticator, token)
        if explained is not None and not result["valid"]:
            result["explain"] = explain(token, explained)
        all_valid = all_valid and bool(result["valid"])
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    if not seen:
        raise UsageError("verify: no token given (pass tokens as arguments, or one per line on stdin)")
    return 0 if all_valid else 1


def verify_token(authenticator: Authenticator, token: bytes) -> dict[str, Any]:
    """Decide one token as the middleware would for ``GET /`` with ``Authorization: Bearer``.

    Refusals report the RFC 6750 error code (or the refusal's kind when it has none) and the
    machine reason; never the token or any of its claims.
    """
    request = RequestView("GET", "/", [(b"authorization", b"Bearer " + token)])
    try:
        identity = authenticator.authenticate(request)
    except Refusal as refusal:
        return {"valid": False, "error": refusal.error or _kind(refusal), "reason": refusal.reason}
    if identity is None:  # pragma: no cover - the CLI's config has no public or optional rule
        return {"valid": False, "error": "missing_token", "reason": "anonymous"}
    return {"valid": True, "claims": dict(identity.claims)}


def _kind(refusal: Refusal) -> str:
    """``MissingToken`` → ``missing_token``: a stable name for refusals without an RFC code."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(refusal).__name__).lower()


def _tokens(arguments: Sequence[str], stdin: IO[str] | None) -> Iterator[bytes]:
    """Tokens from the arguments; none given or '-' reads stdin, one per line. Blank ones are skipped."""
    for value in arguments or ["-"]:
        if value == "-":
            if stdin is not None:  # None: Python was started with stdin closed
                yield from _stdin_tokens(stdin)
            continue
        token = os.fsencode(value).strip()
        if token:
            yield token


def _stdin_tokens(stdin: IO[str]) -> Iterator[bytes]:
    if stdin.isatty():
        _note("reading tokens from stdin, one per line (end with Ctrl-D)")
    stream: IO[bytes] = getattr(stdin, "buffer", None) or _as_bytes(stdin)
    while True:
        line = _readline(stream)
        if not line:
            return
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            _skip_rest_of_line(stream)
        token = line.strip()
        if token:
            yield token


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    while True:
        chunk = _readline(stream)
        if not chunk or chunk.endswith(b"\n"):
            return


def _readline(stream: IO[bytes]) -> bytes:
    try:
        return stream.readline(MAX_LINE_BYTES)
    except (OSError, ValueError) as exc:  # stdin is a directory, closed, ...
        raise UsageError(f"cannot read tokens from stdin ({type(exc).__name__})") from None


def _as_bytes(stdin: IO[str]) -> IO[bytes]:
    """A text stream without ``.buffer`` (a test's StringIO): re-encode what it holds."""
    return io.BytesIO(stdin.read().encode("utf-8", "surrogateescape"))


class _StderrNotes(logging.Handler):
    """Key-fetch trouble on stderr, one line each; audit events and tracebacks stay out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("jwt_middleware.audit"):
            return
        try:
            _note(record.getMessage())
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)


# --- keys generate -------------------------------------------------------------------------
def _cmd_keys_generate(args: argparse.Namespace) -> int:
    secret = args.alg in HMAC_ALGORITHMS
    if secret and args.out_jwks:
        raise UsageError("--out-jwks: an HMAC key has no public part; verify with --hs-secret-file "
                         "and the --out-private file")
    key = make_key(cast(Alg, args.alg), kid=args.kid)
    private = json.dumps(key.as_dict(private=True))
    if args.out_private:
        _write_private(args.out_private, private + "\n")
        _note(f"private key written to {args.out_private} (mode 0600)")
    else:
        sys.stdout.write(private + "\n")
    if secret:
        return 0
    jwks = json.dumps(public_jwks(key))
    if args.out_jwks:
        _write_file(args.out_jwks, jwks + "\n")
        _note(f"public JWKS written to {args.out_jwks}")
    else:
        sys.stdout.write(jwks + "\n")
    return 0


def _write_private(path: str, text: str) -> None:
    """Create ``path`` readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"--out-private {path}: exists; remove it or choose another name") from None
    except OSError as exc:
        raise UsageError(f"--out-private {path}: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # the umask may have taken bits away, never added
        handle.write(text)


def _write_file(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"--out-jwks {path}: {exc.strerror or type(exc).__name__}") from None


# --- token mint ----------------------------------------------------------------------------
def _cmd_token_mint(args: argparse.Namespace) -> int:
    key = _load_private_key(args.key)
    alg = args.alg or signing_alg(key)
    try:
        JWSRegistry.algorithms[alg].check_key(key)
    except (KeyError, JoseError, ValueError, TypeError):
        raise UsageError(f"--alg {alg}: cannot sign with this key") from None
    if not args.lifetime > 0:
        raise UsageError("--lifetime: must be a positive number of seconds")
    header: dict[str, Any] = {"alg": alg}
    if args.typ:
        header["typ"] = args.typ
    if key.kid:
        header["kid"] = key.kid
    sys.stdout.write(sign_raw(header, _mint_claims(args), key, alg) + "\n")
    return 0


def _mint_claims(args: argparse.Namespace) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": args.issuer,
        "aud": args.audience[0] if len(args.audience) == 1 else list(args.audience),
        "iat": now,
        "exp": int(now + args.lifetime),
        "jti": b64url(os.urandom(12)),
    }
    if args.subject:
        claims["sub"] = args.subject
    if args.scope is not None:
        claims["scope"] = args.scope
    for item in args.claim:
        name, value = _parse_claim(item)
        claims[name] = value
    return claims


def _parse_claim(item: str) -> tuple[str, Any]:
    """``k=text`` gives a string; ``k:=json`` any JSON value (httpie's convention)."""
    match = _CLAIM_ARG.fullmatch(item)
    if match is None:
        raise UsageError(f"--claim {item!r}: use k=text or k:=JSON")
    name, operator, value = match.groups()
    if operator == "=":
        return name, value
    try:
        return name, json.loads(value)
    except ValueError:
        raise UsageError(f"--claim {name}: the value after ':=' is not JSON") from None


def _load_private_key(path: str) -> Key:
    text = read_text(path, "--key")
    if text.lstrip().startswith("-----BEGIN"):
        key = import_pem_key(text, path)
    else:
        key = _import_jwk(text, path)
    if not key.is_private:
        raise UsageError(f"--key {path}: a public key cannot sign; give the private JWK")
    return key


def _import_jwk(text: str, path: str) -> Key:
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("keys"), list):
            if len(data["keys"]) != 1:
                raise UsageError(f"--key {path}: the JWKS must hold exactly one key")
            data = data["keys"][0]
        if not isinstance(data, dict):
            raise UsageError(f"--key {path}: not a JWK (JSON object)")
        return JWKRegistry.import_key(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"--key {path}: not a usable JWK or PEM ({type(exc).__name__})") from None


# --- demo ----------------------------------------------------------------------------------
DEMO_NEEDS_SERVER: Final = (
    "the demo needs starlette and uvicorn: pip install 'asgi-wsgi-jwt-guard[server]' "
    "(from a checkout: pip install '.[server]')"
)


def _cmd_demo(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError("--port: use 0..65535")
    try:
        from .demo import run_demo
    except ModuleNotFoundError as missing:  # the demo is a Starlette app behind JWTMiddleware
        if missing.name != "starlette":
            raise
        _note(DEMO_NEEDS_SERVER)
        return 2

    return run_demo(host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
