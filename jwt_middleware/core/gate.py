"""Size and shape limits, then strict decoding of a compact JWS (RFC 7515 §7.1, RFC 8725 §3.11).

Nothing is JSON-parsed before the token passes the size cap and the segment grammar, and
decoding is stricter than the RFCs' minimum: base64url without padding or stray characters,
UTF-8 only (no UTF-16/32, no BOM), no duplicate member names (RFC 7515 §5.2 lets us refuse
them), no NaN/Infinity literals, no lone surrogates, objects only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from .._types import Claims
from ..errors import InvalidToken

__all__ = ["ParsedToken", "parse_token"]

_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_MALFORMED: Final = "The access token is malformed"
#: RFC 4648 §3.5 canonical form: the unused low bits of a last partial character are zero, so
#: one byte string has one encoding (no second spelling of the same signature).
_CANONICAL_LAST: Final = {0: None, 2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


@dataclass(frozen=True, slots=True)
class ParsedToken:
    header: Claims
    claims: Claims
    signing_input: bytes
    signature: bytes


def _b64(segment: str) -> bytes:
    last = _CANONICAL_LAST.get(len(segment) % 4, frozenset())  # remainder 1 is never valid
    if _SEGMENT.fullmatch(segment) is None or (last is not None and segment[-1] not in last):
        raise InvalidToken("malformed_token", _MALFORMED)
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed_token", _MALFORMED) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _no_constants(name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    """Iterative (a recursive walk raised RecursionError on nesting the decoder accepts)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# Why one decoder: json.loads(..., object_pairs_hook=...) builds a new JSONDecoder and scanner
# on every call, which cost more than the whole rest of parsing.
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _json_object(raw: bytes, reason: str) -> Claims:
    try:
        text = raw.decode("utf-8")
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise InvalidToken(reason, _MALFORMED) from None
    if not isinstance(value, dict):
        raise InvalidToken(reason, _MALFORMED)
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidToken(reason, _MALFORMED)
    return value


def parse_token(token: str, max_bytes: int) -> ParsedToken:
    """Check size and shape, then decode header and payload; the signature is not checked here.

    :raises InvalidToken: oversize, not three segments (a five-segment JWE is refused unless
        decryption is configured), bad base64url, bad JSON or a non-object part
    """
    if len(token) > max_bytes:
        raise InvalidToken("token_too_large", "The access token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        reason = "encrypted_token_unsupported" if len(parts) == 5 else "malformed_token"
        raise InvalidToken(reason, _MALFORMED)
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_b64(header_b64), "malformed_header")
    claims = _json_object(_b64(payload_b64), "malformed_payload")
    signature = _b64(signature_b64)
    return ParsedToken(header, claims, f"{header_b64}.{payload_b64}".encode("ascii"), signature)
