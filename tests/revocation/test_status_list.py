"""Token Status List: the token's reference, the list's decoding within caps, the list token's
claims, and the status outcome. Pure functions, called directly with a number for ``now``.

Lists are written by an independent encoder (Python's zlib and joserfc, in
test_status_list_support.py); every refusal here is a list or a token that must be refused.
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey

from jwt_middleware.errors import ConfigError, InvalidToken
from jwt_middleware.revocation.status_list import (
    StatusList,
    StatusListError,
    StatusListPolicy,
    StatusListRules,
    StatusReference,
    check_token_status,
    decode_status_list,
    read_status_list_token,
    reference_of,
)
from tests.revocation.test_status_list_support import (
    b64url,
    byte_array,
    encode_lst,
    joserfc_verifier,
    list_claims,
    sign_list_token,
    sign_raw,
)

ISSUER = "https://issuer.test"
URI = "https://issuer.test/statuslists/1"
NOW = 1_800_000_000.0
RULES = StatusListRules.for_issuer(ISSUER)


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", {"kid": "status-1"})


@pytest.fixture(scope="module")
def other_key() -> ECKey:
    return ECKey.generate_key("P-256", {"kid": "status-1"})  # same kid, another issuer's key


def claims_with(lst: str, bits: int = 1) -> dict[str, Any]:
    return {"status_list": {"bits": bits, "lst": lst}}


def zlib_lst(raw: bytes) -> str:
    return b64url(zlib.compress(raw, 9))


def refusal_reason(claims: dict[str, Any], rules: StatusListRules = RULES) -> str:
    with pytest.raises(InvalidToken) as caught:
        reference_of(claims, rules)
    return caught.value.reason


def reference(idx: Any = 0, uri: Any = URI) -> dict[str, Any]:
    return {"status": {"status_list": {"idx": idx, "uri": uri}}}


# --- decoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_independent_encoder_round_trips_every_entry(bits: int) -> None:
    rng = random.Random(bits)
    size = 5000 + bits  # not a multiple of the entries per byte: the last byte is partly padding
    statuses = {i: rng.randrange(1 << bits) for i in rng.sample(range(size), 900)}
    status_list = decode_status_list(claims_with(encode_lst(statuses, bits, size), bits))
    assert status_list.data == byte_array(statuses, bits, size)
    assert [status_list.status(i) for i in range(size)] == [statuses.get(i, 0) for i in range(size)]


@pytest.mark.parametrize(
    ("bits", "byte", "expected"),
    [
        (1, 0b0000_0001, [1, 0, 0, 0, 0, 0, 0, 0]),
        (1, 0b1000_0000, [0, 0, 0, 0, 0, 0, 0, 1]),
        (2, 0b0000_0110, [0b10, 0b01, 0, 0]),
        (4, 0b0011_1100, [0b1100, 0b0011]),
        (8, 0b1010_0101, [0b1010_0101]),
    ],
)
def test_entries_are_read_from_the_least_significant_bit(bits: int, byte: int, expected: list[int]) -> None:
    """Draft §4.1 step 3 and §12.1: bit order is LSB first; a MSB-first reader fails here."""
    status_list = StatusList(bits, bytes([byte]))
    assert [status_list.status(i) for i in range(8 // bits)] == expected


def test_rejects_bytes_after_the_end_of_the_zlib_stream() -> None:
    stream = zlib.compress(bytes(16), 9)
    with pytest.raises(StatusListError, match="after the end"):
        decode_status_list(claims_with(b64url(stream + b"\x00")))
    with pytest.raises(StatusListError, match="after the end"):  # a second, concatenated stream
        decode_status_list(claims_with(b64url(stream + zlib.compress(b"\xff" * 16))))


@pytest.mark.parametrize("cut", [1, 4, 8], ids=["adler-byte", "adler32", "into-the-data"])
def test_rejects_a_truncated_zlib_stream(cut: int) -> None:
    stream = zlib.compress(bytes(range(256)) * 4, 9)
    with pytest.raises(StatusListError, match="truncated"):
        decode_status_list(claims_with(b64url(stream[:-cut])))


def test_rejects_a_corrupted_zlib_stream() -> None:
    stream = bytearray(zlib.compress(bytes(range(256)) * 4, 9))
    stream[-1] ^= 0xFF  # the adler32 checksum no longer matches
    with pytest.raises(StatusListError, match="not a zlib stream"):
        decode_status_list(claims_with(b64url(bytes(stream))))


@pytest.mark.parametrize("wbits", [-15, 31], ids=["raw-deflate", "gzip"])
def test_rejects_deflate_without_the_zlib_format(wbits: int) -> None:
    """Draft §4.1 step 4: DEFLATE in the ZLIB format (RFC 1950), not raw or gzip."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    stream = packer.compress(bytes(64)) + packer.flush()
    with pytest.raises(StatusListError):
        decode_status_list(claims_with(b64url(stream)))


def test_decompressed_cap_is_exact() -> None:
    policy = StatusListPolicy(max_decompressed_bytes=1024)
    assert decode_status_list(claims_with(zlib_lst(bytes(1024))), policy).size == 8192
    with pytest.raises(StatusListError, match="decompressed size cap"):
        decode_status_list(claims_with(zlib_lst(bytes(1025))), policy)


def test_zip_bomb_stops_at_the_cap() -> None:
    """256 MiB of zeros deflate to about 250 KB; inflating stops one byte past the 8 MiB cap."""
    packer = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    stream = b"".join(packer.compress(chunk) for _ in range(256)) + packer.flush()
    assert len(stream) < 2 * 1024 * 1024  # under the compressed cap: the inflate cap must hold
    with pytest.raises(StatusListError, match="decompressed size cap"):
        decode_status_list(claims_with(b64url(stream)))


def test_compressed_cap_is_checked_before_decoding() -> None:
    policy = StatusListPolicy(max_compressed_bytes=64)
    stream = zlib.compress(random.Random(1).randbytes(200), 9)
    assert len(stream) > 64
    with pytest.raises(StatusListError, match="compressed size cap"):
        decode_status_list(claims_with(b64url(stream)), policy)


@pytest.mark.parametrize("bits", [0, 3, 16, True, "1", 1.0, None])
def test_rejects_bits_other_than_1_2_4_8(bits: Any) -> None:
    with pytest.raises(StatusListError, match="bits"):
        decode_status_list({"status_list": {"bits": bits, "lst": "eNrbuRgAAhcBXQ"}})


@pytest.mark.parametrize(
    "lst",
    ["eNrbuRgAAhcBXQ==", "eNrbuRgAAhcB+Q", "eNrbuRgAAhcB/Q", "eNrbu RgAAhcBXQ", "eNrbu", 42, None],
    ids=["padded", "plus", "slash", "space", "impossible-length", "number", "missing"],
)
def test_rejects_lst_that_is_not_unpadded_base64url(lst: Any) -> None:
    with pytest.raises(StatusListError):
        decode_status_list({"status_list": {"bits": 1, "lst": lst}})


@pytest.mark.parametrize("claims", [{}, {"status_list": "eNrbuRgAAhcBXQ"}, {"status_list": None}])
def test_rejects_a_missing_or_non_object_status_list(claims: dict[str, Any]) -> None:
    with pytest.raises(StatusListError, match="status_list"):
        decode_status_list(claims)


def test_index_bound_is_the_array_end() -> None:
    status_list = StatusList(2, bytes([0xFF, 0xFF]))  # 8 entries
    assert status_list.status(7) == 3
    for idx in (8, 9, 10**20, -1):
        with pytest.raises(InvalidToken) as caught:
            status_list.status(idx)
        assert caught.value.reason == "status_index_out_of_range"


def test_empty_array_holds_no_entry() -> None:
    status_list = decode_status_list(claims_with(zlib_lst(b"")))
    with pytest.raises(InvalidToken):
        status_list.status(0)


# --- the outcome for a token ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bits", "value", "reason"),
    [
        (1, 0, None),
        (1, 1, "token_revoked"),
        (2, 2, "token_suspended"),
        (2, 3, "token_status_unknown"),  # application specific (draft §7.2): fail closed
        (4, 0x0C, "token_status_unknown"),
        (8, 0x04, "token_status_unknown"),  # unregistered
        (8, 0xFF, "token_status_unknown"),
    ],
)
def test_status_values_decide_the_token(bits: int, value: int, reason: str | None) -> None:
    status_list = StatusList(bits, byte_array({3: value}, bits, 8))
    ref = StatusReference(3, URI)
    if reason is None:
        check_token_status(status_list, ref)
        return
    with pytest.raises(InvalidToken) as caught:
        check_token_status(status_list, ref)
    assert caught.value.reason == reason
    assert caught.value.status == 401


# --- the referenced token's claim --------------------------------------------------------------
def test_token_without_status_claim_has_no_reference() -> None:
    assert reference_of({"sub": "user-1"}, RULES) is None


def test_reference_is_read() -> None:
    assert reference_of(reference(7, URI), RULES) == StatusReference(7, URI)


@pytest.mark.parametrize(
    "claims",
    [
        {"status": "revoked"},
        {"status": None},
        {"status": {"status_list": [0, URI]}},
        reference(idx=-1),
        reference(idx=True),
        reference(idx=1.0),
        reference(idx="0"),
        reference(idx=None),
        reference(uri=None),
        reference(uri=["https://issuer.test/a"]),
        {"status": {"status_list": {"uri": URI}}},
    ],
    ids=lambda c: repr(c)[:60],
)
def test_rejects_a_malformed_status_claim(claims: dict[str, Any]) -> None:
    assert refusal_reason(claims) == "status_claim_malformed"


def test_rejects_a_status_mechanism_we_cannot_check() -> None:
    claims = {"status": {"identifier_list": {"id": "abc", "uri": URI}}}
    assert refusal_reason(claims) == "status_mechanism_unsupported"


def test_rejects_a_huge_index_before_fetching() -> None:
    top = RULES.policy.max_index
    assert reference_of(reference(top), RULES) == StatusReference(top, URI)
    assert refusal_reason(reference(top + 1)) == "status_index_out_of_range"
    assert refusal_reason(reference(10**400)) == "status_index_out_of_range"


@pytest.mark.parametrize(
    "uri",
    [
        "http://issuer.test/statuslists/1",  # not https
        "https://status.example/statuslists/1",  # another host
        "https://issuer.test:8443/statuslists/1",  # another port
        "https://issuer.test.evil.example/statuslists/1",  # a host that starts like ours
        "https://user@issuer.test/statuslists/1",  # userinfo
        "https://issuer.test@evil.example/statuslists/1",  # userinfo naming our host
        "https://issuer.test/statuslists/../admin",
        "https://issuer.test/statuslists/%2e%2e/admin",
        "https://issuer.test/statuslists%2fadmin",
        "https://issuer.test/statuslists\\admin",
        "https://issuer.test/status lists/1",
        "https://issuer.test/statuslists/\u00e9",
        "https://issuer.test/\x00",
        "https://issuer.test:99999/x",
        "https://[::1/x",
        "ftp://issuer.test/statuslists/1",
        "//issuer.test/statuslists/1",
        "/statuslists/1",
        "",
        "https://issuer.test/" + "a" * 2100,
    ],
)
def test_rejects_a_uri_the_issuer_may_not_point_to(uri: str) -> None:
    assert refusal_reason(reference(0, uri)) == "status_uri_not_allowed"


def test_default_home_is_the_issuer_origin_with_any_path() -> None:
    rules = StatusListRules.for_issuer("https://Issuer.Test/realms/one")
    assert rules.allows("https://issuer.test/other/path/lists/1?version=2")
    assert rules.allows("https://issuer.test:443/lists/1")
    assert not rules.allows("https://issuer.test:444/lists/1")


def test_allowed_prefixes_match_whole_path_segments() -> None:
    policy = StatusListPolicy(allowed_uri_prefixes=("https://status.example/lists/", "https://cdn.example"))
    rules = StatusListRules.for_issuer("urn:example:issuer", policy)
    assert rules.allows("https://status.example/lists/1")
    assert rules.allows("https://status.example/lists")
    assert not rules.allows("https://status.example/listsevil/1")
    assert not rules.allows("https://status.example/other/1")
    assert rules.allows("https://cdn.example/anything")
    assert not rules.allows(ISSUER + "/lists/1")  # given prefixes replace the default home


def test_plain_http_is_allowed_on_loopback_only() -> None:
    rules = StatusListRules.for_issuer("http://127.0.0.1:8080")
    assert rules.allows("http://127.0.0.1:8080/lists/1")
    assert not rules.allows("https://127.0.0.1:8080/lists/1")  # another scheme is another origin
    with pytest.raises(ConfigError):
        StatusListRules.for_issuer("http://issuer.test")
    with pytest.raises(ConfigError, match="allowed_uri_prefixes"):
        StatusListPolicy(allowed_uri_prefixes=("http://status.example/lists/",))
    assert StatusListRules.for_issuer(
        "urn:x", StatusListPolicy(allowed_uri_prefixes=("http://[::1]:9000/lists/",))
    ).allows("http://[::1]:9000/lists/1")


def test_issuer_that_is_no_url_needs_prefixes() -> None:
    with pytest.raises(ConfigError, match="allowed_uri_prefixes") as caught:
        StatusListRules.for_issuer("urn:example:issuer")
    assert "e.g." in str(caught.value)


@pytest.mark.parametrize(
    "prefix",
    [
        "https://status.example/lists/?v=1",
        "https://status.example/lists/#x",
        "https://user@status.example/lists/",
        "https://status.example/a/../b/",
        "status.example/lists/",
    ],
)
def test_rejects_a_prefix_that_could_never_be_a_safe_home(prefix: str) -> None:
    with pytest.raises(ConfigError, match="allowed_uri_prefixes"):
        StatusListPolicy(allowed_uri_prefixes=(prefix,))


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"min_ttl": 600.0}, "min_ttl"),
        ({"max_ttl": 10.0}, "min_ttl"),
        ({"default_ttl": math.nan}, "default_ttl"),
        ({"stale_if_error": -1.0}, "stale_if_error"),
        ({"fetch_timeout": 0.0}, "fetch_timeout"),
        ({"leeway": math.inf}, "leeway"),
        ({"max_decompressed_bytes": 0}, "max_decompressed_bytes"),
        ({"max_compressed_bytes": True}, "max_compressed_bytes"),
        ({"max_token_bytes": 1024}, "max_token_bytes"),  # below the compressed cap in base64url
        ({"max_lists": 0}, "max_lists"),
        ({"allowed_uri_prefixes": "https://status.example/"}, "allowed_uri_prefixes"),
        ({"tls": "/nonexistent/ca.pem"}, "tls"),
    ],
)
def test_policy_mistakes_are_config_errors_naming_the_option(options: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        StatusListPolicy(**options)


def test_policy_stores_prefixes_as_a_tuple() -> None:
    assert StatusListPolicy(allowed_uri_prefixes=["https://a.example/"]).allowed_uri_prefixes == (
        "https://a.example/",
    )


# --- the Status List Token ------------------------------------------------------------------
def list_token(key: ECKey, **extra: Any) -> str:
    header = {name[7:]: extra.pop(name) for name in list(extra) if name.startswith("header_")}
    claims = list_claims(URI, encode_lst({1: 1, 2: 2}, 2, 16), 2, now=NOW, **extra)
    return sign_list_token(key, claims, **header)


def read(token: str | bytes, key: ECKey, rules: StatusListRules = RULES, now: float = NOW) -> Any:
    return read_status_list_token(token, URI, rules, joserfc_verifier(key), now)


def test_list_token_is_read(key: ECKey) -> None:
    verified = read(list_token(key, iss=ISSUER), key)
    assert [verified.status_list.status(i) for i in range(3)] == [0, 1, 2]
    assert verified.fresh_until == NOW + 600  # iat + ttl
    assert verified.expires_at == NOW + 86400 + RULES.policy.leeway


def test_ttl_counts_from_iat_and_is_clamped(key: ECKey) -> None:
    policy = RULES.policy
    assert read(list_token(key, ttl=600, iat=int(NOW - 500)), key).fresh_until == NOW + 100
    assert read(list_token(key, ttl=600, iat=int(NOW - 3600)), key).fresh_until == NOW + policy.min_ttl
    assert read(list_token(key, ttl=10**9), key).fresh_until == NOW + policy.max_ttl
    assert read(list_token(key, ttl=None), key).fresh_until == NOW + policy.default_ttl


def test_freshness_never_outlives_exp(key: ECKey) -> None:
    verified = read(list_token(key, exp=int(NOW + 60), ttl=3600), key)
    assert verified.expires_at == NOW + 60 + RULES.policy.leeway
    assert verified.fresh_until == verified.expires_at
    assert read(list_token(key, exp=None), key).expires_at == math.inf


@pytest.mark.parametrize("typ", ["statuslist+jwt", "application/statuslist+jwt", "StatusList+JWT"])
def test_typ_may_carry_the_media_type_prefix(key: ECKey, typ: str) -> None:
    read(sign_list_token(key, list_claims(URI, encode_lst({}, 1, 8), 1, now=NOW), typ=typ), key)


@pytest.mark.parametrize("typ", [None, "jwt", "at+jwt", "statuslist+cwt", "secevent+jwt"])
def test_rejects_a_token_of_another_type(key: ECKey, typ: str | None) -> None:
    with pytest.raises(StatusListError, match="typ"):
        read(list_token(key, header_typ=typ), key)


def test_rejects_a_list_signed_by_another_key(key: ECKey, other_key: ECKey) -> None:
    with pytest.raises(StatusListError, match="signature"):
        read(list_token(other_key), key)


def test_rejects_a_list_of_another_issuer(key: ECKey) -> None:
    with pytest.raises(StatusListError, match="iss"):
        read(list_token(key, iss="https://other.test"), key)
    read(list_token(key, iss=None), key)  # iss is optional (draft -04 dropped the requirement)


@pytest.mark.parametrize("sub", [None, "https://issuer.test/statuslists/2", URI + "/", URI.upper()])
def test_rejects_a_list_for_another_uri(key: ECKey, sub: str | None) -> None:
    with pytest.raises(StatusListError, match="sub"):
        read(list_token(key, sub=sub), key)


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({"exp": int(NOW - 31)}, "expired"),
        ({"iat": None}, "iat missing"),
        ({"iat": int(NOW + 60)}, "future"),
        ({"nbf": int(NOW + 60)}, "future"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"exp": "2030-01-01"}, "exp"),
        ({"aud": "api"}, "aud"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_rejects_a_list_whose_claims_do_not_hold(key: ECKey, claims: dict[str, Any], match: str) -> None:
    with pytest.raises(StatusListError, match=match):
        read(list_token(key, **claims), key)


def test_clock_skew_within_leeway_is_tolerated(key: ECKey) -> None:
    read(list_token(key, exp=int(NOW - 29), iat=int(NOW - 100)), key)
    read(list_token(key, iat=int(NOW + 29)), key)


def test_rejects_a_critical_header(key: ECKey) -> None:
    header = {"alg": "ES256", "kid": key.kid, "typ": "statuslist+jwt", "crit": ["x-ext"], "x-ext": 1}
    token = sign_raw(key, header, list_claims(URI, encode_lst({}, 1, 8), 1, now=NOW))
    with pytest.raises(StatusListError):
        read(token, key)


def test_body_bytes_are_read_as_ascii_and_trimmed(key: ECKey) -> None:
    token = list_token(key)
    read((token + "\r\n").encode(), key)
    with pytest.raises(StatusListError, match="compact JWS"):
        read(token.encode() + b"\xff", key)


def test_refusal_descriptions_never_carry_the_uri() -> None:
    marker = "https://issuer.test/MARKER-7f3a/lists/1"
    for claims in (reference(-1, marker), reference(10**30, marker), reference(0, marker + "/../x")):
        with pytest.raises(InvalidToken) as caught:
            reference_of(claims, RULES)
        assert "MARKER" not in caught.value.description
        assert "MARKER" not in str(caught.value)


# --- whatever arrives: a refusal, never another exception ------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_URIS = st.one_of(
    st.text(max_size=80),
    st.builds(lambda tail: "https://issuer.test/" + tail, st.text(max_size=60)),
    st.sampled_from(["https://[", "https://issuer.test:0/", "https://issuer.test:/x", "http://[::1]/x"]),
)
_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


@_SETTINGS
@given(status=_JSON, idx=_JSON | st.integers(), uri=_URIS | _JSON)
def test_any_status_claim_is_a_reference_or_a_refusal(status: Any, idx: Any, uri: Any) -> None:
    for claims in ({"status": status}, reference(idx, uri)):
        try:
            found = reference_of(claims, RULES)
        except InvalidToken as refusal:
            assert refusal.reason.startswith("status_")
        else:
            assert found is None or (RULES.allows(found.uri) and 0 <= found.idx <= RULES.policy.max_index)


@_SETTINGS
@given(status_list=_JSON, bits=_JSON, lst=st.text(alphabet="AZaz09-_=+/ ", max_size=60) | _JSON)
def test_any_status_list_claim_decodes_or_is_refused(status_list: Any, bits: Any, lst: Any) -> None:
    for claims in ({"status_list": status_list}, {"status_list": {"bits": bits, "lst": lst}}):
        try:
            decode_status_list(claims)
        except StatusListError:
            pass
