"""Atheris harness: ``Authenticator.authenticate`` only accepts valid tokens, else raises a Refusal.

Run from the repository root (see fuzz/README.md)::

    python fuzz/fuzz_verify.py -runs=20000

Each input picks one shape: raw Authorization bytes, a Bearer credential, a cookie, a valid
token with characters edited, or header/payload JSON text spliced from the input and signed
with the issuer's REAL key (so the claim checks, not only the parser, get exercised). A crash
is any exception other than a 4xx Refusal, the ``internal_error`` 503 the Authenticator makes
of bugs, or an accepted token the independent oracle rejects.
"""

from __future__ import annotations

import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import atheris  # type: ignore[import-untyped]  # noqa: E402

with atheris.instrument_imports(include=["jwt_middleware"]):
    import jwt_middleware  # noqa: F401
    from jwt_middleware import Identity, Refusal, RequestView
    from jwt_middleware.testing import sign_raw

from tests.attacks import corpus  # noqa: E402

AUTH = corpus.make_authenticator()
VALID = corpus.make()
HEADER = corpus.header_bytes()
CLAIMS = corpus.claims_bytes()
SEEDS = [case.token for case in corpus.all_token_cases()]


class _LastError(logging.Handler):
    """Keeps the traceback the Authenticator logs when it turns a bug into a 503."""

    record: logging.LogRecord | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.record = record


_LAST_ERROR = _LastError(level=logging.ERROR)
logging.getLogger("jwt_middleware").addHandler(_LAST_ERROR)


class AcceptedInvalidToken(AssertionError):
    pass


class InternalError(AssertionError):
    pass


def _splice(fdp: atheris.FuzzedDataProvider, document: bytes) -> bytes:
    start = fdp.ConsumeIntInRange(0, len(document))
    end = fdp.ConsumeIntInRange(start, len(document))
    inserted: bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    return document[:start] + inserted + document[end:]


def _edit(fdp: atheris.FuzzedDataProvider, token: str) -> str:
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        position = fdp.ConsumeIntInRange(0, len(token))
        token = (
            token[:position]
            + fdp.ConsumeUnicodeNoSurrogates(2)
            + token[position + fdp.ConsumeIntInRange(0, 2) :]
        )
    return token


def _request(data: bytes) -> tuple[list[tuple[bytes, bytes]], str]:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 5)
    if mode == 0:
        value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
        return [(b"authorization", value)], value.decode("latin-1").partition(" ")[2]
    if mode == 1:
        token = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 2048))
        return [(b"authorization", b"Bearer " + token.encode("utf-8", "surrogatepass"))], token
    if mode == 2:
        token = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 2048))
        return [(b"cookie", f"{corpus.COOKIE}={token}".encode())], token
    if mode == 3:
        token = _edit(fdp, SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)] if fdp.ConsumeBool() else VALID)
    else:
        header = _splice(fdp, HEADER) if mode == 4 else HEADER
        claims = _splice(fdp, CLAIMS)
        token = sign_raw(header, claims, corpus.keys().es, "ES256")
    return [(b"authorization", b"Bearer " + token.encode("utf-8", "surrogatepass"))], token


def TestOneInput(data: bytes) -> None:
    headers, token = _request(data)
    _LAST_ERROR.record = None
    try:
        outcome = AUTH.authenticate(RequestView("GET", "/resource", headers))
    except Refusal as refusal:
        if refusal.reason == "internal_error" or refusal.status not in (400, 401, 403):
            record = _LAST_ERROR.record
            cause = (
                logging.Formatter().formatException(record.exc_info)[-1500:]
                if record and record.exc_info
                else ""
            )
            raise InternalError(f"{refusal.status} {refusal.reason}\n{cause}") from None
        return
    # RFC 6750 §2.1: "Bearer" 1*SP b64token, so leading spaces are not part of the token.
    if not isinstance(outcome, Identity) or not corpus.independently_valid(token.lstrip(" ")):
        raise AcceptedInvalidToken(repr(token[:300]))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
