"""The pure Redis helpers: bounded key names, expiry arguments that never shorten a window, replies."""

from __future__ import annotations

import hashlib

import pytest

from jwt_middleware.errors import ConfigError, StoreError
from jwt_middleware.stores._redis_ops import (
    MAX_KEY_BYTES,
    NonceSet,
    check_prefix,
    key_name,
    nonce_set,
    parse_set_reply,
)

P = "jwtmw:nonce:"


def digest_name(key: str) -> str:
    return P + "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def test_short_plain_key_is_kept_as_given() -> None:
    assert key_name(P, "jti:hdeadbeef:AbC-_12") == P + "jti:hdeadbeef:AbC-_12"


@pytest.mark.parametrize(
    "key",
    ["x" * (MAX_KEY_BYTES - len(P) + 1), "a\x00b", "a\nb", "é", "\ud800", "h:abc", "h:"],
)
def test_long_odd_or_digest_shaped_key_is_hashed(key: str) -> None:
    assert key_name(P, key) == digest_name(key)


def test_every_name_is_bounded() -> None:
    assert len(key_name(P, "x" * (MAX_KEY_BYTES - len(P)))) == MAX_KEY_BYTES
    assert len(key_name(P, "x" * 1_000_000)) == len(P) + 2 + 64


def test_expiry_is_absolute_and_rounded_up_to_the_millisecond() -> None:
    assert nonce_set(P, "k", 1_800_000_100.0001, now=1_800_000_000.0) == NonceSet(
        P + "k", pxat=1_800_000_100_001, px=None
    )


@pytest.mark.parametrize("until", [1_800_000_000.5, 1_800_000_000.0, 1_700_000_000.0])
def test_closing_or_closed_window_is_kept_for_a_second_relative_to_redis(until: float) -> None:
    assert nonce_set(P, "k", until, now=1_800_000_000.0) == NonceSet(P + "k", pxat=None, px=1000)


@pytest.mark.parametrize("until", [float("nan"), float("inf")])
def test_non_finite_until_is_refused(until: float) -> None:
    with pytest.raises(ValueError):
        nonce_set(P, "k", until, now=0.0)


@pytest.mark.parametrize(("reply", "fresh"), [(True, True), (b"OK", True), ("OK", True), (None, False)])
def test_set_nx_reply(reply: object, fresh: bool) -> None:
    assert parse_set_reply(reply) is fresh


@pytest.mark.parametrize("reply", [b"QUEUED", 1, "", b"1"])
def test_unknown_reply_is_a_store_error_never_a_first_use(reply: object) -> None:
    with pytest.raises(StoreError):
        parse_set_reply(reply)


@pytest.mark.parametrize("prefix", ["", "p" * 65, "jwt mw\n", "nonce:é"])
def test_bad_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        check_prefix(prefix)
