"""KeyCache as pure state: select / select_after_fetch / store / record_failure with plain numbers."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import InvalidToken, Issuer, JWKSUrl, KeyPolicy, StaticKeys, Unavailable
from jwt_middleware.keys.cache import FetchNeeded, KeyCache, PinnedKey, pin_keys
from jwt_middleware.testing import make_key, public_jwks

ISS = "https://idp.test"
STATIC = "https://static.test"
T0 = 1_000_000.0
POLICY = KeyPolicy(
    default_ttl=600, min_ttl=60, max_ttl=3600, refresh_ahead=30, kid_miss_cooldown=30,
    stale_if_error=900, failure_backoff=5, fetch_timeout=2,
)
COLD = FetchNeeded(blocking=True, reason="cold")
EXPIRED = FetchNeeded(blocking=True, reason="expired")
KID_MISS = FetchNeeded(blocking=True, reason="kid_miss")
REFRESH = FetchNeeded(blocking=False, reason="refresh_ahead")


@pytest.fixture(scope="module")
def k1() -> Key:
    return make_key("ES256", kid="k1")


@pytest.fixture(scope="module")
def k2() -> Key:
    return make_key("ES256", kid="k2")


def pinned(*keys: Key, algs: tuple[str, ...] = ("ES256",)) -> list[PinnedKey]:
    return pin_keys(public_jwks(*keys), algs)


def make_cache(**issuer_options: Any) -> KeyCache:
    remote = Issuer(ISS, algorithms=("ES256", "ES384"), keys=JWKSUrl(ISS + "/jwks"), **issuer_options)
    static = Issuer(STATIC, algorithms=("ES256",), keys=StaticKeys({"keys": []}))
    return KeyCache({ISS: remote, STATIC: static}, POLICY)


def warm(cache: KeyCache, *keys: Key, max_age: float | None = 300, now: float = T0) -> None:
    cache.store(ISS, pinned(*keys), max_age, now)


# --- freshness ---------------------------------------------------------------------------------
def test_cold_cache_asks_for_a_blocking_fetch() -> None:
    assert make_cache().select(ISS, "k1", "ES256", T0) == (None, COLD)


def test_cold_cache_after_a_fetch_that_failed_is_unavailable_with_retry_after() -> None:
    cache = make_cache()
    cache.record_failure(ISS, T0)
    with pytest.raises(Unavailable) as caught:
        cache.select_after_fetch(ISS, "k1", "ES256", T0)
    assert caught.value.status == 503
    assert caught.value.retry_after == 5


def test_fresh_set_answers_without_any_fetch(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    key, need = cache.select(ISS, "k1", "ES256", T0 + 200)
    assert need is None
    assert key is not None and key.kid == "k1" and key.alg == "ES256"


def test_refresh_ahead_window_serves_the_key_and_asks_one_background_fetch(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)  # expires at T0 + 300, window opens at T0 + 270
    key, need = cache.select(ISS, "k1", "ES256", T0 + 275)
    assert key is not None and need == REFRESH
    # while that refresh runs, nobody else starts one
    for dt in (275, 276, 278.9):
        assert cache.select(ISS, "k1", "ES256", T0 + dt) == (key, None)
    cache.store(ISS, pinned(k1), 300, T0 + 280)
    assert cache.select(ISS, "k1", "ES256", T0 + 285) == (key, None)  # fresh again, no fetch


def test_stuck_background_refresh_is_claimed_again_after_twice_the_fetch_timeout(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "k1", "ES256", T0 + 271)[1] == REFRESH
    assert cache.select(ISS, "k1", "ES256", T0 + 271 + 3.9)[1] is None
    assert cache.select(ISS, "k1", "ES256", T0 + 271 + 4)[1] == REFRESH


def test_expired_set_makes_the_request_wait_for_a_fetch(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "k1", "ES256", T0 + 300) == (None, EXPIRED)


# --- stale-if-error and backoff -----------------------------------------------------------------
def test_failed_refetch_serves_the_stale_set_until_the_bound_then_503(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)  # expires T0 + 300; stale bound T0 + 300 + 900
    assert cache.select(ISS, "k1", "ES256", T0 + 300) == (None, EXPIRED)
    cache.record_failure(ISS, T0 + 300)
    stale = cache.select_after_fetch(ISS, "k1", "ES256", T0 + 300)
    assert stale.kid == "k1"
    # backing off: served from the stale set, no fetch, nobody waits
    assert cache.select(ISS, "k1", "ES256", T0 + 303) == (stale, None)
    # backoff over: still served, the retry is in the background
    assert cache.select(ISS, "k1", "ES256", T0 + 305) == (stale, REFRESH)
    cache.record_failure(ISS, T0 + 306)
    assert cache.select(ISS, "k1", "ES256", T0 + 1199) == (stale, REFRESH)
    cache.record_failure(ISS, T0 + 1199)
    # past the bound: no stale key is ever served again; while backing off, 503 at once
    with pytest.raises(Unavailable) as caught:
        cache.select(ISS, "k1", "ES256", T0 + 1200)
    assert caught.value.status == 503 and caught.value.retry_after == 4
    # after the backoff one blocking attempt; its failure is a 503 too
    assert cache.select(ISS, "k1", "ES256", T0 + 1205) == (None, EXPIRED)
    cache.record_failure(ISS, T0 + 1205)
    with pytest.raises(Unavailable) as caught:
        cache.select_after_fetch(ISS, "k1", "ES256", T0 + 1205)
    assert caught.value.retry_after == 5


def test_failed_refresh_ahead_does_not_make_requests_wait_after_expiry(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    key, need = cache.select(ISS, "k1", "ES256", T0 + 280)
    assert need == REFRESH
    cache.record_failure(ISS, T0 + 281)  # the issuer is failing before the set expires
    assert cache.select(ISS, "k1", "ES256", T0 + 301) == (key, REFRESH)


def test_failure_backoff_spaces_attempts_on_a_cold_issuer() -> None:
    cache = make_cache()
    cache.record_failure(ISS, T0)
    with pytest.raises(Unavailable) as caught:
        cache.select(ISS, "k1", "ES256", T0 + 1)
    assert caught.value.retry_after == 4
    assert cache.select(ISS, "k1", "ES256", T0 + 5) == (None, COLD)


def test_failed_fetch_keeps_the_last_good_set_and_generation(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    generation = cache.generation
    cache.record_failure(ISS, T0 + 300)
    assert cache.generation == generation
    assert cache.select_after_fetch(ISS, "k1", "ES256", T0 + 300).kid == "k1"


# --- unknown kid --------------------------------------------------------------------------------
def test_unknown_kid_fetches_once_then_is_remembered_as_missing_for_one_cooldown(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "ghost", "ES256", T0 + 10) == (None, KID_MISS)
    cache.store(ISS, pinned(k1), 300, T0 + 10)  # the refetched set still lacks it
    with pytest.raises(InvalidToken) as caught:
        cache.select_after_fetch(ISS, "ghost", "ES256", T0 + 10)
    assert caught.value.reason == "unknown_kid"
    with pytest.raises(InvalidToken) as caught:  # remembered: no fetch within the cooldown
        cache.select(ISS, "ghost", "ES256", T0 + 39.9)
    assert caught.value.reason == "unknown_kid"
    # Why it lapses: the kid may be the one the issuer publishes next (a forged token named it
    # first); remembered until the set changed, genuine tokens would wait for the set's expiry.
    assert cache.select(ISS, "ghost", "ES256", T0 + 40) == (None, KID_MISS)


def test_other_unknown_kids_within_the_cooldown_are_refused_without_fetch(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "ghost-1", "ES256", T0 + 10) == (None, KID_MISS)
    cache.store(ISS, pinned(k1), 300, T0 + 10)
    for i in range(2, 50):
        with pytest.raises(InvalidToken) as caught:
            cache.select(ISS, f"ghost-{i}", "ES256", T0 + 10 + i / 10)
        assert caught.value.reason == "unknown_kid_throttled"
    assert cache.select(ISS, "ghost-99", "ES256", T0 + 40) == (None, KID_MISS)  # cooldown over


def test_unknown_kid_while_its_fetch_runs_waits_for_it_rather_than_refused(k1: Key) -> None:
    # Rotation under load: the first request with the new kid starts a fetch; the others that
    # arrive before it ends must wait for it (single-flight in the loader), not get a 401.
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "k2", "ES256", T0 + 10) == (None, KID_MISS)
    assert cache.select(ISS, "k2", "ES256", T0 + 10.5) == (None, KID_MISS)
    assert cache.select(ISS, "k3", "ES256", T0 + 11) == (None, KID_MISS)


def test_missing_kids_are_forgotten_when_the_key_set_changes(k1: Key, k2: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    assert cache.select(ISS, "k2", "ES256", T0 + 10)[1] == KID_MISS
    cache.store(ISS, pinned(k1), 300, T0 + 10)
    with pytest.raises(InvalidToken):
        cache.select_after_fetch(ISS, "k2", "ES256", T0 + 10)
    cache.store(ISS, pinned(k1, k2), 300, T0 + 20)  # k2 published later (refresh)
    key, need = cache.select(ISS, "k2", "ES256", T0 + 21)
    assert need is None and key is not None and key.kid == "k2"


def test_missing_kids_are_kept_when_a_refetch_brings_the_same_set(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    cache.select(ISS, "ghost", "ES256", T0 + 1)
    cache.store(ISS, pinned(k1), 300, T0 + 1)
    with pytest.raises(InvalidToken):
        cache.select_after_fetch(ISS, "ghost", "ES256", T0 + 1)
    cache.store(ISS, pinned(k1), 300, T0 + 20)
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, "ghost", "ES256", T0 + 25)
    assert caught.value.reason == "unknown_kid"


def test_memory_of_missing_kids_is_bounded(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    for i in range(1500):  # a kid storm spread over time, so every kid gets its own fetch
        now = T0 + 30 * i
        assert cache.select(ISS, f"ghost-{i}", "ES256", now) == (None, KID_MISS)
        cache.store(ISS, pinned(k1), 300, now)
        with pytest.raises(InvalidToken):
            cache.select_after_fetch(ISS, f"ghost-{i}", "ES256", now)
    assert len(cache._state[ISS].missing_kids) <= 1024


# --- retired kids -------------------------------------------------------------------------------
def test_kid_a_refresh_dropped_is_refused_without_spending_the_unknown_kid_budget(k1: Key, k2: Key) -> None:
    cache = make_cache()
    warm(cache, k1, k2)
    cache.store(ISS, pinned(k2), 300, T0 + 300)  # the scheduled refresh: k1 is retired
    for t in (0.0, 1.0, 29.0):  # tokens of the retired key keep coming
        with pytest.raises(InvalidToken) as caught:
            cache.select(ISS, "k1", "ES256", T0 + 300 + t)
        assert caught.value.reason == "unknown_kid"
    # the issuer's next kid, used right after, is fetched at once: the budget was not spent
    assert cache.select(ISS, "k3", "ES256", T0 + 329.5) == (None, KID_MISS)


def test_retired_kid_is_checked_again_once_per_cooldown_on_its_own_budget(k1: Key, k2: Key) -> None:
    cache = make_cache()
    warm(cache, k1, k2)
    cache.store(ISS, pinned(k2), 300, T0 + 300)
    assert cache.select(ISS, "k1", "ES256", T0 + 330) == (None, KID_MISS)  # one cooldown later
    cache.store(ISS, pinned(k2), 300, T0 + 330)  # still retired
    with pytest.raises(InvalidToken):
        cache.select_after_fetch(ISS, "k1", "ES256", T0 + 330)
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, "k1", "ES256", T0 + 359)
    assert caught.value.reason == "unknown_kid"
    assert cache.select(ISS, "ghost", "ES256", T0 + 331) == (None, KID_MISS)  # the other budget is intact


def test_retired_kid_published_again_verifies_at_once_and_is_forgotten_as_retired(k1: Key, k2: Key) -> None:
    cache = make_cache()
    warm(cache, k1, k2)
    cache.store(ISS, pinned(k2), 300, T0 + 300)
    cache.store(ISS, pinned(k1, k2), 300, T0 + 301)  # a rollback
    key, need = cache.select(ISS, "k1", "ES256", T0 + 302)
    assert need is None and key is not None and key.kid == "k1"
    cache.store(ISS, pinned(k1, k2), 300, T0 + 400)
    assert "k1" not in cache._state[ISS].retired_kids


# --- generation and TTL -------------------------------------------------------------------------
def test_generation_bumps_only_when_the_set_really_changes(k1: Key, k2: Key) -> None:
    cache = make_cache()
    start = cache.generation
    warm(cache, k1, k2)
    first = cache.generation
    assert first > start
    cache.store(ISS, pinned(k1, k2), 300, T0 + 300)
    cache.store(ISS, pinned(k2, k1), 300, T0 + 600)  # same keys, other order
    assert cache.generation == first
    cache.store(ISS, pinned(k2), 300, T0 + 900)  # k1 retired
    assert cache.generation == first + 1


@pytest.mark.parametrize(
    ("max_age", "ttl"),
    [(300, 300), (5, 60), (0, 60), (10**9, 3600), (None, 600)],
    ids=["max-age-kept", "below-min-clamped", "no-store-clamped", "above-max-clamped", "absent-default"],
)
def test_cache_control_max_age_is_clamped_to_the_policy(k1: Key, max_age: float | None, ttl: float) -> None:
    cache = make_cache()
    warm(cache, k1, max_age=max_age)
    assert cache.select(ISS, "k1", "ES256", T0 + ttl - 31)[1] is None
    assert cache.select(ISS, "k1", "ES256", T0 + ttl - 0.5)[0] is not None
    assert cache.select(ISS, "k1", "ES256", T0 + ttl) == (None, EXPIRED)


def test_static_issuer_never_asks_for_a_fetch(k1: Key) -> None:
    cache = make_cache()
    cache.store(STATIC, pinned(k1), None, T0)
    key, need = cache.select(STATIC, "k1", "ES256", T0 + 10 * 365 * 86400)
    assert key is not None and need is None
    with pytest.raises(InvalidToken) as caught:
        cache.select(STATIC, "ghost", "ES256", T0)
    assert caught.value.reason == "unknown_kid"
    assert cache.is_static(STATIC) and not cache.is_static(ISS)


# --- which key ----------------------------------------------------------------------------------
def test_kidless_token_uses_the_only_key_for_its_alg(k1: Key) -> None:
    cache = make_cache()
    warm(cache, k1)
    key, need = cache.select(ISS, None, "ES256", T0)
    assert need is None and key is not None and key.kid == "k1"


def test_kidless_token_is_refused_when_several_keys_could_verify_it(k1: Key, k2: Key) -> None:
    cache = make_cache()
    warm(cache, k1, k2)
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, None, "ES256", T0)
    assert caught.value.reason == "kid_required"


def test_require_kid_refuses_a_kidless_token_even_with_one_key(k1: Key) -> None:
    cache = make_cache(require_kid=True)
    warm(cache, k1)
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, None, "ES256", T0)
    assert caught.value.reason == "kid_required"


def test_require_kid_refuses_a_kidless_token_against_a_kidless_key() -> None:
    cache = make_cache(require_kid=True)
    data = make_key("ES256").as_dict(private=False)
    del data["kid"]
    cache.store(ISS, pin_keys({"keys": [data]}, ("ES256",)), 300, T0)
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, None, "ES256", T0)
    assert caught.value.reason == "kid_required"


@pytest.mark.parametrize("token_alg", ["ES384", "HS256", "RS256", "none"])
def test_token_alg_other_than_the_keys_pinned_alg_is_refused(k1: Key, token_alg: str) -> None:
    cache = make_cache()
    warm(cache, k1)  # k1 is pinned to ES256
    with pytest.raises(InvalidToken) as caught:
        cache.select(ISS, "k1", token_alg, T0)
    assert caught.value.reason == "alg_mismatch"
