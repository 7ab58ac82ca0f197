"""Size and shape before any parsing, then strict decoding (RFC 7515 §7.1, RFC 8725 §3.11).

Every hostile token here is signed with the trusted key, so the gate is the only thing that
stands between it and the app: drop a rule and its test lets the token through.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, CookieSource, InvalidToken
from jwt_middleware.core.gate import MAX_JSON_DEPTH, parse_token
from jwt_middleware.testing import FakeClock, b64url, mint, sign_raw

from ._support import (
    ISSUER,
    NOW,
    assert_invalid_request,
    assert_invalid_token,
    bearer,
    decide,
    make_auth,
    refuse,
    request,
)

HEADER = b'{"alg":"ES256","typ":"at+jwt","kid":"es-1"}'


def payload(**extra: Any) -> bytes:
    claims = {"iss": ISSUER, "aud": "api", "sub": "user-1", "iat": int(NOW), "exp": int(NOW) + 300, **extra}
    return json.dumps(claims, separators=(",", ":")).encode()


def splice(raw: bytes, member: str) -> bytes:
    """Add a raw JSON member (text as is, so it can hold what json.dumps would never write)."""
    return raw[:-1] + b"," + member.encode("utf-8", "surrogatepass") + b"}"


@pytest.fixture
def signed(es256_key: Key):  # type: ignore[no-untyped-def]
    def sign(header: bytes = HEADER, body: bytes | None = None) -> str:
        return sign_raw(header, payload() if body is None else body, es256_key, "ES256")

    return sign


@pytest.fixture
def cookie_auth(es256_key: Key, clock: FakeClock) -> Authenticator:
    """Tokens from a cookie skip the header's b64token grammar: only the gate judges them."""
    return make_auth(es256_key, clock, sources=(CookieSource("at"),))


def test_control_token_passes(static_auth: Authenticator, signed: Any, cookie_auth: Authenticator) -> None:
    token = signed()
    assert decide(static_auth, request(bearer(token))) is not None
    assert decide(cookie_auth, request([("cookie", f"at={token}")])) is not None


# --- size ------------------------------------------------------------------------------------
def test_rejects_token_over_default_8_kib_cap(static_auth: Authenticator, es256_key: Key) -> None:
    token = mint(es256_key, {"filler": "x" * 6200}, now=NOW)
    assert len(token) > 8192
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "token_too_large"


def test_token_just_under_default_cap_passes(static_auth: Authenticator, es256_key: Key) -> None:
    token = mint(es256_key, {"filler": "x" * 5900}, now=NOW)
    assert 8000 < len(token) <= 8192
    assert decide(static_auth, request(bearer(token))) is not None


def test_size_cap_is_configurable_and_exact(es256_key: Key, clock: FakeClock) -> None:
    token = mint(es256_key, now=NOW)
    assert decide(make_auth(es256_key, clock, max_token_bytes=len(token)), request(bearer(token))) is not None
    rendered = refuse(make_auth(es256_key, clock, max_token_bytes=len(token) - 1), request(bearer(token)))
    assert rendered.reason == "token_too_large"


def test_size_cap_is_checked_before_parsing() -> None:
    with pytest.raises(InvalidToken) as caught:
        parse_token("{" * 1_000_000, 8192)
    assert caught.value.reason == "token_too_large"


# --- segments --------------------------------------------------------------------------------
def _segments(token: str) -> tuple[str, str, str]:
    h, p, s = token.split(".")
    return h, p, s


SHAPES = {
    "two-segments": "{h}.{p}",
    "four-segments": "{h}.{p}.{s}.{s}",
    "five-segments": "{h}.{p}.{s}.{s}.{s}",
    "six-segments": "{h}.{p}.{s}.{s}.{s}.{s}",
    "empty-payload": "{h}..{s}",
    "empty-signature": "{h}.{p}.",
    "empty-header": ".{p}.{s}",
    "trailing-dot": "{h}.{p}.{s}.",
    "one-segment": "{h}{p}{s}",
}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_rejects_wrong_segment_count_or_empty_segment(static_auth: Authenticator, signed: Any, shape: str) -> None:
    h, p, s = _segments(signed())
    assert_invalid_token(refuse(static_auth, request(bearer(shape.format(h=h, p=p, s=s)))))


def test_five_segments_are_an_unsupported_jwe() -> None:
    with pytest.raises(InvalidToken) as caught:
        parse_token("a.b.c.d.e", 8192)
    assert caught.value.reason == "encrypted_token_unsupported"


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
def test_rejects_padding_in_a_segment(signed: Any, cookie_auth: Authenticator, where: str) -> None:
    parts = list(_segments(signed()))
    index = ["header", "payload", "signature"].index(where)
    parts[index] += "=" * (-len(parts[index]) % 4 or 4)
    token = ".".join(parts)
    with pytest.raises(InvalidToken):
        parse_token(token, 8192)
    assert_invalid_token(refuse(cookie_auth, request([("cookie", f"at={token}")])))


def test_rejects_padding_on_signature_via_header_as_invalid_token(static_auth: Authenticator, signed: Any) -> None:
    """Trailing '=' fits the b64token grammar, so the header is well-formed: the token is not."""
    h, p, s = _segments(signed())
    assert_invalid_token(refuse(static_auth, request(bearer(f"{h}.{p}.{s}=="))))


def _token_with(signed: Any, chars: str) -> str:
    for _ in range(200):
        token = signed()
        if any(c in token for c in chars):
            return str(token)
    raise AssertionError("no token with the wanted characters")  # pragma: no cover


def test_rejects_standard_base64_alphabet(static_auth: Authenticator, signed: Any) -> None:
    token = _token_with(signed, "-_").replace("-", "+").replace("_", "/")
    with pytest.raises(InvalidToken):
        parse_token(token, 8192)
    # '+' and '/' are legal b64token characters: the header is fine, the token is not
    assert_invalid_token(refuse(static_auth, request(bearer(token))))


@pytest.mark.parametrize("junk", [" ", "\t", "\n", "\r\n", "%2E", "~"])
def test_rejects_whitespace_or_stray_characters_inside(signed: Any, cookie_auth: Authenticator, junk: str) -> None:
    h, p, s = _segments(signed())
    token = f"{h}.{p}{junk}.{s}"
    with pytest.raises(InvalidToken):
        parse_token(token, 8192)
    if junk.strip():  # a cookie value cannot carry raw whitespace
        assert_invalid_token(refuse(cookie_auth, request([("cookie", f"at={token}")])))


def test_rejects_whitespace_inside_header_token_as_invalid_request(static_auth: Authenticator, signed: Any) -> None:
    h, p, s = _segments(signed())
    assert_invalid_request(refuse(static_auth, request(bearer(f"{h}.{p}\t.{s}"))))


def test_rejects_non_canonical_base64_last_character(static_auth: Authenticator, signed: Any) -> None:
    """RFC 4648 §3.5: the same signature bytes spelled a second way (its spare low bits set)."""
    h, p, s = _segments(signed())
    assert len(s) % 4 == 2  # 64 bytes → 86 characters, the last one has 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = f"{h}.{p}.{s[:-1]}{alphabet[alphabet.index(s[-1]) | 1]}"
    assert twin != f"{h}.{p}.{s}"
    assert_invalid_token(refuse(static_auth, request(bearer(twin))))


# --- JSON ------------------------------------------------------------------------------------
def _bad_json_cases() -> dict[str, tuple[bytes, bytes]]:
    body = payload()
    text = body.decode()
    head = HEADER.decode()
    return {
        "payload-not-utf8": (HEADER, body.replace(b'"user-1"', b'"user\xff"')),
        "payload-overlong-utf8": (HEADER, body.replace(b'"user-1"', b'"user\xc0\xaf"')),
        "header-not-utf8": (HEADER.replace(b'"at+jwt"', b'"at+jwt\xff"'), body),
        "payload-utf16-le": (HEADER, text.encode("utf-16-le")),
        "payload-utf16-be": (HEADER, text.encode("utf-16-be")),
        "payload-utf16-bom": (HEADER, text.encode("utf-16")),
        "payload-utf32": (HEADER, text.encode("utf-32")),
        "header-utf16": (head.encode("utf-16"), body),
        "payload-utf8-bom": (HEADER, b"\xef\xbb\xbf" + body),
        "header-utf8-bom": (b"\xef\xbb\xbf" + HEADER, body),
        "duplicate-sub": (HEADER, splice(body, '"sub":"admin"')),
        "duplicate-iss": (HEADER, splice(body, f'"iss":"{ISSUER}"')),
        "duplicate-alg": (b'{"alg":"ES256","typ":"at+jwt","kid":"es-1","alg":"ES256"}', body),
        "duplicate-nested": (HEADER, splice(body, '"x":{"role":"user","role":"admin"}')),
        "nan": (HEADER, splice(body, '"x":NaN')),
        "infinity": (HEADER, splice(body, '"x":Infinity')),
        "minus-infinity": (HEADER, splice(body, '"x":-Infinity')),
        "lone-high-surrogate": (HEADER, splice(body, '"x":"admin\\ud800"')),
        "lone-low-surrogate": (HEADER, splice(body, '"x":"\\udc00"')),
        "reversed-pair": (HEADER, splice(body, '"x":"\\ude00\\ud83d"')),
        "lone-surrogate-member-name": (HEADER, splice(body, '"\\uD800":1')),
        "lone-surrogate-in-kid": (b'{"alg":"ES256","typ":"at+jwt","kid":"es-1\\ud800"}', body),
        "lone-surrogate-nested-500": (HEADER, splice(body, '"x":' + "[" * 500 + '"\\ud800"' + "]" * 500)),
        "payload-array": (HEADER, b"[" + body + b"]"),
        "payload-string": (HEADER, b'"' + body.replace(b'"', b"'") + b'"'),
        "payload-number": (HEADER, b"1800000000"),
        "payload-null": (HEADER, b"null"),
        "payload-true": (HEADER, b"true"),
        "header-array": (b"[" + HEADER + b"]", body),
        "payload-empty": (HEADER, b""),
        "trailing-object": (HEADER, body + b"{}"),
        "trailing-garbage": (HEADER, body + b"x"),
        "raw-control-char": (HEADER, body.replace(b'"user-1"', b'"user\x01"')),
        "raw-nul": (HEADER, body.replace(b'"user-1"', b'"user-1\x00admin"')),
        "deep-array-nesting": (HEADER, splice(body, '"x":' + "[" * 2500 + "]" * 2500)),
        "deep-object-nesting": (HEADER, splice(body, '"x":' + '{"a":' * 1200 + "1" + "}" * 1200)),
        "single-quotes": (HEADER, body.replace(b'"', b"'")),
        "huge-integer": (HEADER, splice(body, '"x":1' + "0" * 5000)),
    }


BAD_JSON = _bad_json_cases()


@pytest.mark.parametrize("case", list(BAD_JSON), ids=list(BAD_JSON))
def test_rejects_malformed_json(static_auth: Authenticator, signed: Any, case: str) -> None:
    header, body = BAD_JSON[case]
    token = signed(header, body)
    with pytest.raises(InvalidToken):
        parse_token(token, 1 << 20)
    assert_invalid_token(refuse(static_auth, request(bearer(token))))


def test_deep_nesting_beyond_the_decoder_limit_is_refused_not_crashed() -> None:
    body = b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    token = f"{b64url(HEADER)}.{b64url(body)}.{b64url(b'x' * 64)}"
    with pytest.raises(InvalidToken):
        parse_token(token, len(token))


# --- nesting depth: our bound, not the interpreter's recursion limit -------------------------------
def nest(depth: int, kind: str) -> str:
    """A member whose value makes the whole object ``depth`` deep (the outer object is level 1)."""
    value = "1"
    for level in range(depth - 1):
        array = kind == "arrays" or (kind == "mixed" and level % 2 == 0)
        value = f"[{value}]" if array else f'{{"a":{value}}}'
    return '"x":' + value


KINDS = ["arrays", "objects", "mixed"]


def test_depth_bound_is_32() -> None:
    assert MAX_JSON_DEPTH == 32


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_at_the_bound_is_accepted(static_auth: Authenticator, signed: Any, kind: str) -> None:
    body = splice(payload(), nest(MAX_JSON_DEPTH, kind))
    identity = decide(static_auth, request(bearer(signed(body=body))))
    assert identity is not None and "x" in identity.claims
    header = splice(HEADER, nest(MAX_JSON_DEPTH, kind))  # unregistered header members are tolerated
    assert decide(static_auth, request(bearer(signed(header=header)))) is not None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 2500], ids=["one-past", "2500"])
def test_nesting_past_the_bound_is_refused(
    es256_key: Key, clock: FakeClock, signed: Any, kind: str, depth: int
) -> None:
    auth = make_auth(es256_key, clock, max_token_bytes=64 * 1024)  # 2,500 objects pass the size cap
    body_token = signed(body=splice(payload(), nest(depth, kind)))
    header_token = signed(header=splice(HEADER, nest(depth, kind)))
    for token, reason in ((body_token, "malformed_payload"), (header_token, "malformed_header")):
        assert _outcome(token) == reason
        rendered = refuse(auth, request(bearer(token)))
        assert_invalid_token(rendered)
        assert rendered.reason == reason


def test_depth_refusal_does_not_depend_on_the_recursion_limit(signed: Any) -> None:
    """With a recursion limit high enough for the C decoder to take 2,500 levels (as Python
    3.13's own limits do), the gate still refuses 33; and 32 still passes with a low one."""
    deep = signed(body=splice(payload(), nest(2500, "arrays")))
    past = signed(body=splice(payload(), nest(MAX_JSON_DEPTH + 1, "objects")))
    at = signed(body=splice(payload(), nest(MAX_JSON_DEPTH, "mixed")))
    code = (
        "import sys\n"
        "from jwt_middleware.core.gate import parse_token\n"
        "from jwt_middleware.errors import InvalidToken\n"
        "sys.setrecursionlimit(int(sys.argv[1]))\n"
        "for token in sys.argv[2:]:\n"
        "    try:\n        parse_token(token, 1 << 20)\n        print('ok')\n"
        "    except InvalidToken as e:\n        print(e.reason)\n"
    )
    for limit in ("100000", "120"):
        done = subprocess.run([sys.executable, "-c", code, limit, deep, past, at],
                              capture_output=True, text=True, check=True, timeout=60)
        assert done.stdout.split() == ["malformed_payload", "malformed_payload", "ok"], (limit, done.stderr)


@pytest.mark.parametrize(
    "member",
    ['"x":"' + "[" * 100 + '"', '"x":"' + "{" * 100 + "}" * 3 + '"', '"x":"\\"' + "[" * 50 + '\\""',
     '"' + "[" * 40 + '":1', '"x":"\\\\"' + ',"y":[' + "[]," * 40 + "[]]"],
    ids=["brackets-in-string", "braces-in-string", "escaped-quotes", "brackets-in-name", "escaped-backslash"],
)
def test_brackets_inside_strings_do_not_count(static_auth: Authenticator, signed: Any, member: str) -> None:
    token = signed(body=splice(payload(), member))
    assert decide(static_auth, request(bearer(token))) is not None


def test_many_shallow_containers_are_accepted(static_auth: Authenticator, signed: Any) -> None:
    """More openers than the bound (the exact scan runs) but only three levels."""
    token = signed(body=splice(payload(), '"roles":[' + ",".join('{"r":["a"]}' for _ in range(60)) + "]"))
    assert decide(static_auth, request(bearer(token))) is not None


@pytest.mark.parametrize(
    "raw",
    [b"{" * 40, b"}" * 40, b'{"a":' + b"[" * 40 + b"}", b'{"a":' + b"]" * 40 + b"}", b'{"a":"' + b"[" * 40,
     b'{"a":"\\' + b'\\"' * 40 + b"\\"],
    ids=["openers-only", "closers-only", "unclosed-arrays", "stray-closers", "unclosed-string", "escapes-to-end"],
)
def test_unbalanced_text_with_many_brackets_is_malformed(raw: bytes) -> None:
    assert _outcome(_tok(body=raw)) == "malformed_payload"


def test_valid_surrogate_pair_and_unicode_are_accepted(static_auth: Authenticator, signed: Any) -> None:
    token = signed(body=splice(payload(), '"name":"\\ud83d\\ude00 Zo\\u00eb é"'))
    identity = decide(static_auth, request(bearer(token)))
    assert identity is not None and identity.claims["name"] == "\U0001f600 Zoë é"


def test_escaped_backslash_before_u_is_not_a_surrogate(static_auth: Authenticator, signed: Any) -> None:
    token = signed(body=splice(payload(), '"path":"C:\\\\ud800"'))
    identity = decide(static_auth, request(bearer(token)))
    assert identity is not None and identity.claims["path"] == "C:\\ud800"


# --- parse_token on its own: each input and the exact outcome ------------------------------------
# The gate decodes with a translate table, the C base64 decoder in strict mode and the JSON
# scanner called directly: every input below had this outcome (accept, or the reason code)
# with the regex + urlsafe_b64decode + JSONDecoder.decode gate it replaced.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SIG = b64url(bytes(range(64)))  # 86 characters: remainder 2
_H = b64url(HEADER)
_P = b64url(payload())


def _tok(header: bytes | str = HEADER, body: bytes | str | None = None, sig: str = _SIG) -> str:
    h = header if isinstance(header, str) else b64url(header)
    p = _P if body is None else body if isinstance(body, str) else b64url(body)
    return f"{h}.{p}.{sig}"


def _outcome(token: str, max_bytes: int = 1 << 20) -> str:
    try:
        parse_token(token, max_bytes)
    except InvalidToken as refused:
        return refused.reason
    return "ok"


def _insert(segment: str, junk: str) -> str:
    middle = len(segment) // 2
    return segment[:middle] + junk + segment[middle:]


def _last_bits_set(segment: str) -> str:
    """The same bytes spelled a second way: a spare low bit of the last character set."""
    return segment[:-1] + _ALPHABET[_ALPHABET.index(segment[-1]) | 1]


def _with_remainder(raw: bytes, rem: int) -> str:
    """``raw`` (a JSON object) with a member added so its base64url length is ``rem`` modulo 4."""
    for pad in range(3):
        encoded = b64url(splice(raw, f'"pad":"{"x" * pad}"'))
        if len(encoded) % 4 == rem:
            return encoded
    raise AssertionError(rem)  # pragma: no cover


_NOT_BASE64URL = ["+", "/", "=", "==", " ", "\t", "~", "!", "?", "*", "%", "\\", "\x00", "\x7f", ":"]
_NON_ASCII = ["é", "\u00a0", "€", "\U0001f600", "\ud800", "\uff21"]  # \uff21: fullwidth 'A'


def _gate_cases() -> dict[str, tuple[str, str]]:
    h, p, s = _H, _P, _SIG
    cases: dict[str, tuple[str, str]] = {"control": (_tok(), "ok")}
    for where, (segment, build) in {
        "header": (h, lambda x: f"{x}.{p}.{s}"),
        "payload": (p, lambda x: f"{h}.{x}.{s}"),
        "signature": (s, lambda x: f"{h}.{p}.{x}"),
    }.items():
        for junk in _NOT_BASE64URL + _NON_ASCII:
            cases[f"{where}-inner-{junk!r}"] = (build(_insert(segment, junk)), "malformed_token")
            cases[f"{where}-last-{junk!r}"] = (build(segment[:-1] + junk), "malformed_token")
            cases[f"{where}-first-{junk!r}"] = (build(junk + segment[1:]), "malformed_token")
        cases[f"{where}-empty"] = (build(""), "malformed_token")
        cases[f"{where}-remainder-1"] = (build(segment + "A" * ((1 - len(segment)) % 4)), "malformed_token")
        cases[f"{where}-single-char"] = (build("A"), "malformed_token")
        cases[f"{where}-padded"] = (build(segment + "=" * (-len(segment) % 4 or 4)), "malformed_token")
    for rem in (2, 3):
        body, head = _with_remainder(payload(), rem), _with_remainder(HEADER, rem)
        cases[f"payload-remainder-{rem}"] = (_tok(body=body), "ok")
        cases[f"header-remainder-{rem}"] = (_tok(header=head), "ok")
        twins = (_tok(body=_last_bits_set(body)), _tok(header=_last_bits_set(head)))
        cases[f"payload-remainder-{rem}-non-canonical"] = (twins[0], "malformed_token")
        cases[f"header-remainder-{rem}-non-canonical"] = (twins[1], "malformed_token")
    cases["signature-non-canonical"] = (_tok(sig=_last_bits_set(_SIG)), "malformed_token")
    # the order of the checks decides the reason: segment count, header, payload, signature
    bad_header = b64url(b"[]")
    cases["bad-header-then-non-ascii-payload"] = (f"{bad_header}.é.{s}", "malformed_header")
    cases["bad-header-then-bad-signature"] = (f"{bad_header}.{p}.+", "malformed_header")
    cases["bad-payload-then-non-ascii-signature"] = (f"{h}.{bad_header}.é", "malformed_payload")
    cases["non-ascii-header-then-bad-payload"] = (f"é.{bad_header}.{s}", "malformed_token")
    cases["five-segments-non-ascii"] = ("é.é.é.é.é", "encrypted_token_unsupported")
    cases["four-segments-bad-header"] = (f"{bad_header}.{p}.{s}.{s}", "malformed_token")
    cases["dots-only"] = ("..", "malformed_token")
    cases["empty-token"] = ("", "malformed_token")
    # JSON around and inside the object
    body = payload()
    for name, raw in {
        "leading-space": b" " + body,
        "trailing-space": body + b" ",
        "surrounding-json-whitespace": b"\r\n\t " + body + b" \t\r\n",
    }.items():  # JSON's own whitespace around the value was always allowed
        cases[f"payload-{name}"] = (_tok(body=raw), "ok")
        cases[f"header-{name}"] = (_tok(header=raw.replace(body, HEADER)), "ok")
    for name, raw in {
        "vertical-tab": b"\x0b" + body,
        "form-feed": body + b"\x0c",
        "nbsp": "\u00a0".encode() + body,
        "utf8-bom": b"\xef\xbb\xbf" + body,
        "trailing-data-after-space": body + b" {}",
        "trailing-nul": body + b"\x00",
        "two-objects": body + body,
        "leading-space-array": b" []",
        "leading-space-duplicate": b' {"a":1,"a":2}',
        "leading-space-nan": b' {"a":NaN}',
        "leading-space-lone-surrogate": b' {"a":"\\ud800"}',
        "duplicate-top-level": b'{"a":1,"b":2,"a":1}',
        "duplicate-nested": b'{"a":{"b":{"c":1,"c":1}}}',
        "duplicate-in-array": b'{"a":[{"b":1,"b":2}]}',
        "duplicate-escaped-spelling": b'{"a":1,"\\u0061":2}',
        "nan": b'{"a":NaN}',
        "infinity": b'{"a":Infinity}',
        "minus-infinity": b'{"a":[-Infinity]}',
        "missing-value": b'{"a":}',
        "trailing-comma": b'{"a":1,}',
        "unclosed": b"{",
        "space-only": b" ",
        "deep-nesting": b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "deep-nesting-leading-space": b' {"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "lone-surrogate": b'{"a":"\\ud800"}',
        "lone-surrogate-upper-case": b'{"a":"\\uDBFF"}',
    }.items():
        cases[f"payload-{name}"] = (_tok(body=raw), "malformed_payload")
        cases[f"header-{name}"] = (_tok(header=raw), "malformed_header")
    cases["payload-escaped-slash"] = (_tok(body=splice(body, '"u":"a\\/b"')), "ok")
    cases["payload-escaped-backslash-u"] = (_tok(body=splice(body, '"u":"\\\\ud800"')), "ok")
    cases["payload-surrogate-pair"] = (_tok(body=splice(body, '"u":"\\ud83d\\ude00"')), "ok")
    cases["payload-empty-object"] = (_tok(body=b"{}"), "ok")
    return cases


GATE_CASES = _gate_cases()


@pytest.mark.parametrize("case", list(GATE_CASES), ids=list(GATE_CASES))
def test_parse_token_outcome(case: str) -> None:
    token, expected = GATE_CASES[case]
    assert _outcome(token) == expected


def test_size_cap_counts_characters_before_anything_else() -> None:
    token = _tok()
    assert _outcome(token, len(token)) == "ok"
    assert _outcome(token, len(token) - 1) == "token_too_large"
    assert _outcome("é" * 10, 9) == "token_too_large"


def test_parsed_token_fields() -> None:
    body = payload(pad="x")
    parsed = parse_token(_tok(body=b" " + body), 8192)
    assert parsed.header == json.loads(HEADER)
    assert parsed.claims == json.loads(body)
    assert type(parsed.signing_input) is bytes
    assert parsed.signing_input == f"{_H}.{b64url(b' ' + body)}".encode("ascii")
    assert parsed.signature == bytes(range(64))


def test_valid_last_characters_all_decode() -> None:
    """Every canonical last character is accepted, for each remainder (no over-refusal)."""
    for data in (bytes([n]) for n in range(256)):
        assert _outcome(_tok(sig=b64url(data))) == "ok"
    for n in range(0, 256, 3):
        assert _outcome(_tok(sig=b64url(bytes([n, 255 - n])))) == "ok"


# --- The header memo -------------------------------------------------------------------------------


def _compact(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.c2ln"


def test_flat_headers_are_shared_read_only() -> None:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "memo-1"}
    first = parse_token(_compact(header, {"n": 1}), 8192).header
    second = parse_token(_compact(header, {"n": 2}), 8192).header
    assert first is second and dict(first) == header
    with pytest.raises(TypeError):
        first["alg"] = "none"  # type: ignore[index]


def test_nested_headers_are_fresh_dicts_each_time() -> None:
    """A DPoP proof's jwk goes to a key importer: it must never be an object shared between requests."""
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}}
    first = parse_token(_compact(header, {"n": 1}), 8192).header
    second = parse_token(_compact(header, {"n": 2}), 8192).header
    assert first == second == header and first is not second and first["jwk"] is not second["jwk"]


def test_header_memo_stays_bounded_under_a_spray_of_headers() -> None:
    from jwt_middleware.core import gate

    for i in range(3000):
        parse_token(_compact({"alg": "ES256", "kid": f"spray-{i}"}, {}), 8192)
    assert len(gate._HEADERS) <= gate._HEADERS_MAX


def test_refused_header_is_refused_again_and_never_remembered() -> None:
    from jwt_middleware.core import gate

    segment = b64url(b'{"alg":"ES256","alg":"none"}')
    token = f"{segment}.{b64url(b'{}')}.c2ln"
    before = dict(gate._HEADERS)  # other tests' headers (an alg "none" one, say) may be there: not ours
    for _ in range(2):
        with pytest.raises(InvalidToken) as caught:
            parse_token(token, 8192)
        assert caught.value.reason == "malformed_header"
    assert gate._HEADERS == before
