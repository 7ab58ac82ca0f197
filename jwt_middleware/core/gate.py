"""Size and shape limits, then strict decoding of a compact JWS (RFC 7515 §7.1, RFC 8725 §3.11).

Nothing is JSON-parsed before the token passes the size cap and the segment grammar, and
decoding is stricter than the RFCs' minimum: base64url without padding or stray characters,
UTF-8 only (no UTF-16/32, no BOM), no duplicate member names (RFC 7515 §5.2 lets us refuse
them), no NaN/Infinity literals, no lone surrogates, objects only, and at most
``MAX_JSON_DEPTH`` nested arrays and objects (RFC 8259 §9 lets a parser limit the depth; ours
does not depend on the interpreter's recursion limit).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from .._types import Claims
from ..errors import InvalidToken
from .verified import put_bounded

__all__ = ["MAX_JSON_DEPTH", "ParsedToken", "parse_token"]

#: Most arrays and objects open at once in a header or payload, the outermost object counted.
#: Real tokens nest a few levels (Keycloak's ``resource_access.<client>.roles`` is 4).
MAX_JSON_DEPTH: Final = 32

_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_MALFORMED: Final = "The access token is malformed"
# Why translate, then the C decoder in strict mode (not a regex, then base64.urlsafe_b64decode):
# a third of the cost. The table maps base64url's '-' '_' to the standard '+' '/', and the
# standard alphabet's own '+' '/' '=' (not base64url, and no padding allowed) to '!', which
# strict mode refuses like every other byte outside the alphabet (space, '~', '?', ...).
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
#: The padding strict mode needs, by length % 4 (remainder 1 is refused before it is used).
_PAD: Final = (b"", b"", b"==", b"=")


def _last_characters(alphabet: bytes) -> frozenset[bytes]:
    return frozenset(alphabet[i : i + 1] for i in range(len(alphabet)))


#: The last characters allowed, by length % 4 (characters after ``_TO_STANDARD``). RFC 4648
#: §3.5 canonical form: the unused low bits of a last partial character are zero, so one byte
#: string has one encoding (no second spelling of the same signature); strict mode does not
#: check this (it decodes "AR==" to b"\x01"). Remainder 1 is never valid; with remainder 0
#: any alphabet character may end the segment.
_LAST: Final = (
    _last_characters(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
    frozenset[bytes](),
    _last_characters(b"AQgw"),
    _last_characters(b"AEIMQUYcgkosw048"),
)
_DOT: Final = ord(".")
#: a JSON string, escapes and all (outside strings, valid JSON has no '"' and no '\\').
#: Why an unclosed string matches too (to the end): a match that can fail would be retried from
#: every later '"', quadratic on a text of escaped quotes; this one never fails, never backtracks.
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
#: brackets kept (objects' as arrays': the nesting, not the kind, is counted), all else deleted
_TO_BRACKETS: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


class ParsedToken(NamedTuple):
    """The decoded parts. (A NamedTuple: built on every request, and a frozen dataclass's
    ``__init__`` costs several times as much.)"""

    #: read-only when it came from the header memo (see _memo_header)
    header: Mapping[str, Any]
    claims: Claims
    #: ASCII of ``header_b64.payload_b64``, what the signature covers
    signing_input: bytes
    signature: bytes


def _b64(segment: bytes) -> bytes:
    """One segment, already through ``_TO_STANDARD``: unpadded, canonical, not empty."""
    rem = len(segment) & 3
    # Why a one-byte slice: b"" (an empty segment) is in none of the sets, so one test refuses
    # it, remainder 1 and a non-canonical last character.
    if segment[-1:] not in _LAST[rem]:
        raise InvalidToken("malformed_token", _MALFORMED)
    try:
        return binascii.a2b_base64(segment + _PAD[rem], strict_mode=True)
    except binascii.Error:
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
# Why the scanner itself: decode() is Python code around it (two whitespace regexes, raw_decode)
# costing a quarter of the parse. It runs the decoder's hooks, so duplicates and NaN are still
# refused. Used only when the text is exactly one object with nothing around it; anything else
# (whitespace, trailing data) goes through decode() so it is judged as it always was.
# (typeshed does not declare the attribute JSONDecoder.__init__ sets, hence the ignore.)
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _nesting_pattern(depth: int) -> re.Pattern[bytes]:
    """Brackets balanced and nested at most ``depth`` deep: an escaped-bracket group around the
    pattern one level shallower, repeated, ``depth`` times over.

    Why a regular expression: bounded nesting is a regular language. Every quantifier is
    possessive and the grammar is deterministic (``[`` opens, ``]`` closes), so matching is one
    linear pass with no backtracking and no recursion, whatever the input.
    """
    inner = b""
    for _ in range(depth):
        inner = rb"(?:\[" + inner + rb"\])*+"
    return re.compile(inner)


_WITHIN_DEPTH: Final = _nesting_pattern(MAX_JSON_DEPTH)


def _too_deep(raw: bytes) -> bool:
    """Whether more than MAX_JSON_DEPTH arrays and objects nest, without a parse or recursion.

    The strings go, then everything but the brackets (objects' counted as arrays'); what is
    left must be balanced and at most MAX_JSON_DEPTH deep. Unbalanced brackets are not JSON,
    so refusing them here changes no outcome.
    """
    skeleton = _JSON_STRING.sub(b"", raw).translate(_TO_BRACKETS, _NOT_BRACKETS)
    return _WITHIN_DEPTH.fullmatch(skeleton) is None


def _json_object(raw: bytes, reason: str) -> Claims:
    # Why count first: nothing nests deeper than it has '[' and '{', so the exact scan runs only
    # for the rare part with more of them than the bound (two C counts for every other).
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(raw):
        raise InvalidToken(reason, _MALFORMED)
    try:
        text = raw.decode()  # UTF-8, strict (the default; naming it costs a codec-name lookup)
        if text[:1] == "{":
            value, end = _SCAN(text, 0)
            if end != len(text):
                value = _DECODER.decode(text)
        else:
            value = _DECODER.decode(text)
    # StopIteration: the scanner's "no value here" (decode() turns it into a ValueError);
    # RecursionError cannot come from a text that passed the depth bound, but stays refused
    except (ValueError, RecursionError, StopIteration):
        raise InvalidToken(reason, _MALFORMED) from None
    if not isinstance(value, dict):
        raise InvalidToken(reason, _MALFORMED)
    # Why the `in` test first: a lone surrogate needs a \u escape (raw ones are not UTF-8), and
    # a one-character test (memchr) is far cheaper than the regex search on escape-free text.
    if "\\" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidToken(reason, _MALFORMED)
    return value


#: decoded flat headers by their segment; an issuer's tokens share one (alg, typ, kid)
_HEADERS: Final[dict[bytes, Mapping[str, Any]]] = {}
_HEADERS_MAX: Final = 256
_SCALARS: Final = (str, int, float, bool, type(None))


def _memo_header(segment: bytes, header: Claims) -> Mapping[str, Any]:
    """Remember a header that passed the gate, read-only, when all its members are scalars.

    Why: tokens of one issuer and key carry the same header segment, and decoding it again
    cost a quarter of the parse. The memo is keyed by the exact segment (the standard-alphabet
    copy, one-to-one with the base64url text it accepts) and holds what decoding it gives, so
    no input can put anything else there; the bound only costs a decode again. Headers with
    nested members (a DPoP proof's ``jwk``) are not kept: they are handed on as fresh dicts.
    """
    if not all(value.__class__ in _SCALARS for value in header.values()):
        return header
    shared = MappingProxyType(header)
    put_bounded(_HEADERS, segment, shared, _HEADERS_MAX)
    return shared


def parse_token(token: str, max_bytes: int) -> ParsedToken:
    """Check size and shape, then decode header and payload; the signature is not checked here.

    :raises InvalidToken: oversize, not three segments (a five-segment JWE is refused unless
        decryption is configured), bad base64url, bad JSON or a non-object part
    """
    if len(token) > max_bytes:
        raise InvalidToken("token_too_large", "The access token is too large")
    # Why "replace": a non-ASCII character becomes one '?', outside the alphabet and not a '.',
    # so its segment is refused as malformed_token at the same step, with the same reason, as
    # before (a bad header still wins over a later bad segment). ASCII text is copied as is.
    raw = token.encode("ascii", "replace")
    # Why partition and `int in bytes` (not split): both find a '.' with memchr, where split
    # compares byte by byte; `b"." in` would first try its needle as an int, raise and retry.
    standard = raw.translate(_TO_STANDARD)  # keeps every '.' where it is
    signed, _, signature_b64 = standard.rpartition(b".")  # signed: header_b64.payload_b64
    header_b64, dot, payload_b64 = signed.partition(b".")
    if not dot or _DOT in payload_b64:  # not exactly two dots
        reason = "encrypted_token_unsupported" if raw.count(b".") == 4 else "malformed_token"
        raise InvalidToken(reason, _MALFORMED)
    header = _HEADERS.get(header_b64)
    if header is None:
        header = _memo_header(header_b64, _json_object(_b64(header_b64), "malformed_header"))
    claims = _json_object(_b64(payload_b64), "malformed_payload")
    signature = _b64(signature_b64)
    # Why tuple.__new__: NamedTuple's generated __new__ is Python code; this is the C one.
    return _TUPLE_NEW(ParsedToken, (header, claims, raw[: len(signed)], signature))


_TUPLE_NEW: Final = tuple.__new__
