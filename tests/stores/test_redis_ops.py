"""The pure Redis helpers: bounded key names, expiry arguments that never shorten a window,
replies that tell our own earlier write from another use, and the time limits' config checks."""

from __future__ import annotations

import hashlib

import pytest

from jwt_middleware.errors import ConfigError, StoreError
from jwt_middleware.stores._redis_ops import (
    MAX_KEY_BYTES,
    attempt_bound,
    check_prefix,
    check_timeout,
    key_name,
    nonce_set,
    parse_set_reply,
    retry_fits,
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


def test_expiry_is_the_time_left_rounded_up_to_the_millisecond() -> None:
    args = nonce_set(P, "k", 1_800_000_100.0001, now=1_800_000_000.0)
    assert (args.name, args.px) == (P + "k", 100_001)


def test_expiry_depends_only_on_the_time_left_not_on_the_epoch() -> None:
    """The same window 120 s (or years) earlier on the app's clock gives the same TTL."""
    pxs = {nonce_set(P, "k", now + 60.0, now=now).px for now in (1_800_000_000.0, 1_799_999_880.0, 1e9)}
    assert pxs == {60_000}


@pytest.mark.parametrize("until", [1_800_000_000.5, 1_800_000_000.0, 1_700_000_000.0])
def test_closing_or_closed_window_is_kept_for_a_second(until: float) -> None:
    assert nonce_set(P, "k", until, now=1_800_000_000.0).px == 1000


def test_each_call_gets_its_own_random_value() -> None:
    values = {nonce_set(P, "k", 60.0, now=0.0).value for _ in range(100)}
    assert len(values) == 100 and all(len(v) == 32 and v.isascii() for v in values)


@pytest.mark.parametrize("until", [float("nan"), float("inf")])
def test_non_finite_until_is_refused(until: float) -> None:
    with pytest.raises(ValueError):
        nonce_set(P, "k", until, now=0.0)


@pytest.mark.parametrize(
    ("reply", "fresh"),
    [(None, True), (b"ours", True), ("ours", True), (b"theirs", False), ("theirs", False), (b"1", False),
     (b"", False), (b"ours ", False)],
)
def test_set_nx_get_reply_nil_or_our_own_value_is_a_first_use(reply: object, fresh: bool) -> None:
    assert parse_set_reply(reply, "ours") is fresh


@pytest.mark.parametrize("reply", [True, False, 1, 0, [b"ours"], b"OK".decode, 1.0])
def test_unknown_reply_is_a_store_error_never_a_first_use(reply: object) -> None:
    with pytest.raises(StoreError):
        parse_set_reply(reply, "ours")


@pytest.mark.parametrize("prefix", ["", "p" * 65, "jwt mw\n", "nonce:é"])
def test_bad_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        check_prefix(prefix)


@pytest.mark.parametrize("timeout", [0, -1, 0.0, 31, float("nan"), float("inf"), True, "0.25", None])
def test_bad_timeout_is_a_config_error_naming_the_option(timeout: object) -> None:
    with pytest.raises(ConfigError, match=r"RedisNonceStore\.timeout"):
        check_timeout("RedisNonceStore", timeout)  # type: ignore[arg-type]


def test_good_timeout_is_kept() -> None:
    assert check_timeout("RedisNonceStore", 0.25) == 0.25 and check_timeout("X", 30) == 30.0


@pytest.mark.parametrize(
    ("socket_timeout", "connect_timeout", "fault"),
    [(None, 0.1, "socket_timeout is None"), (5, 0.1, "socket_timeout is 5"),
     (0.1, None, "socket_connect_timeout is None"), (0.1, 0.3, "socket_connect_timeout is 0.3"),
     (0, 0.1, "socket_timeout is 0")],
)
def test_blocking_client_without_short_socket_timeouts_is_a_config_error(
    socket_timeout: object, connect_timeout: object, fault: str
) -> None:
    with pytest.raises(ConfigError, match=rf"RedisNonceStore\.client: {fault}.*socket_timeout=0\.1"):
        attempt_bound("RedisNonceStore", 0.25, socket_timeout=socket_timeout,
                      socket_connect_timeout=connect_timeout, retries=0)


def test_blocking_client_that_retries_by_itself_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"retries 10 times by itself.*Retry\(NoBackoff\(\), 0\)"):
        attempt_bound("RedisNonceStore", 0.25, socket_timeout=0.1, socket_connect_timeout=0.1, retries=10)


def test_attempt_bound_is_connect_plus_read() -> None:
    assert attempt_bound("S", 0.25, socket_timeout=0.1, socket_connect_timeout=0.05, retries=0) == pytest.approx(0.15)


@pytest.mark.parametrize(("elapsed", "fits"), [(0.0, True), (0.05, True), (0.0501, False), (0.2, False)])
def test_a_retry_starts_only_when_it_can_end_within_the_timeout(elapsed: float, fits: bool) -> None:
    assert retry_fits(elapsed, 0.2, 0.25) is fits
