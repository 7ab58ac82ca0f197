"""Size and shape before any parsing, then strict decoding (RFC 7515 §7.1, RFC 8725 §3.11).

Every hostile token here is signed with the trusted key, so the gate is the only thing that
stands between it and the app: drop a rule and its test lets the token through.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, CookieSource, InvalidToken
from jwt_middleware.core.gate import parse_token
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


def test_valid_surrogate_pair_and_unicode_are_accepted(static_auth: Authenticator, signed: Any) -> None:
    token = signed(body=splice(payload(), '"name":"\\ud83d\\ude00 Zo\\u00eb é"'))
    identity = decide(static_auth, request(bearer(token)))
    assert identity is not None and identity.claims["name"] == "\U0001f600 Zoë é"


def test_escaped_backslash_before_u_is_not_a_surrogate(static_auth: Authenticator, signed: Any) -> None:
    token = signed(body=splice(payload(), '"path":"C:\\\\ud800"'))
    identity = decide(static_auth, request(bearer(token)))
    assert identity is not None and identity.claims["path"] == "C:\\ud800"
