"""StatusListCache, stepped with a number for ``now``: freshness, stale-if-error bounded by the
list's exp, failure backoff, the refusal each failure earns, and the bound on remembered lists."""

from __future__ import annotations

import math

import pytest

from jwt_middleware.errors import InvalidToken, Unavailable
from jwt_middleware.revocation.status_list import (
    StatusList,
    StatusListPolicy,
    StatusListRules,
    VerifiedStatusList,
)
from jwt_middleware.revocation.status_list_cache import ListFetchNeeded, StatusListCache

URI = "https://issuer.test/statuslists/1"
POLICY = StatusListPolicy(stale_if_error=300.0, failure_backoff=5.0, fetch_timeout=2.0, max_lists=3)
T0 = 1_800_000_000.0
LIST = StatusList(1, b"\x01")
BLOCKING = ListFetchNeeded(blocking=True)
BACKGROUND = ListFetchNeeded(blocking=False)


def verified(fresh_for: float = 600.0, expires_in: float = math.inf) -> VerifiedStatusList:
    return VerifiedStatusList(LIST, T0 + fresh_for, T0 + expires_in)


@pytest.fixture
def cache() -> StatusListCache:
    return StatusListCache(StatusListRules.for_issuer("https://issuer.test", POLICY))


def test_cold_list_needs_a_blocking_fetch(cache: StatusListCache) -> None:
    assert cache.lookup(URI, T0) == (None, BLOCKING)
    assert cache.attempts(URI) == -1


def test_fresh_list_answers_without_a_fetch(cache: StatusListCache) -> None:
    cache.store(URI, verified())
    assert cache.lookup(URI, T0 + 599) == (LIST, None)
    assert cache.attempts(URI) == 1


def test_due_list_is_refetched_before_judging(cache: StatusListCache) -> None:
    """Past freshness the request waits: the refetch may carry a revocation."""
    cache.store(URI, verified())
    assert cache.lookup(URI, T0 + 600) == (None, BLOCKING)


def test_failing_refetch_serves_the_last_good_list_within_the_stale_window(cache: StatusListCache) -> None:
    cache.store(URI, verified())
    cache.record_failure(URI, "unavailable", T0 + 600)
    assert cache.after_fetch(URI, T0 + 600) is LIST
    assert cache.lookup(URI, T0 + 604) == (LIST, None)  # backing off: no fetch at all
    assert cache.lookup(URI, T0 + 605) == (LIST, BACKGROUND)  # one background refetch...
    assert cache.lookup(URI, T0 + 606) == (LIST, None)  # ...claimed once per 2 x fetch_timeout
    assert cache.lookup(URI, T0 + 609) == (LIST, BACKGROUND)
    cache.record_failure(URI, "unavailable", T0 + 898)
    assert cache.lookup(URI, T0 + 899) == (LIST, None)
    with pytest.raises(Unavailable) as caught:  # fresh_until + stale_if_error has passed
        cache.lookup(URI, T0 + 900)
    assert caught.value.reason == "status_list_unavailable"
    assert caught.value.status == 503
    assert caught.value.retry_after == 3  # the rest of the backoff
    assert cache.lookup(URI, T0 + 903) == (None, BLOCKING)  # then one blocking attempt
    cache.record_failure(URI, "unavailable", T0 + 903)
    with pytest.raises(Unavailable):
        cache.after_fetch(URI, T0 + 903)


def test_retry_after_is_the_rest_of_the_backoff(cache: StatusListCache) -> None:
    cache.record_failure(URI, "unavailable", T0)
    with pytest.raises(Unavailable) as caught:
        cache.lookup(URI, T0 + 1.5)
    assert caught.value.retry_after == 4
    assert cache.lookup(URI, T0 + 5) == (None, BLOCKING)  # the backoff has passed: try again


def test_stale_window_never_passes_the_lists_exp(cache: StatusListCache) -> None:
    """Draft §12.7: after exp a list MUST NOT be relied upon, whatever stale_if_error says."""
    cache.store(URI, verified(fresh_for=600, expires_in=650))
    cache.record_failure(URI, "unavailable", T0 + 600)
    assert cache.lookup(URI, T0 + 604) == (LIST, None)
    assert cache.lookup(URI, T0 + 649)[0] is LIST
    cache.record_failure(URI, "unavailable", T0 + 649)
    with pytest.raises(Unavailable):
        cache.lookup(URI, T0 + 650)
    with pytest.raises(Unavailable):
        cache.after_fetch(URI, T0 + 650)


def test_a_refused_list_fails_its_tokens_as_invalid(cache: StatusListCache) -> None:
    cache.record_failure(URI, "invalid", T0)
    for now in (T0, T0 + 4.9):
        with pytest.raises(InvalidToken) as caught:
            cache.lookup(URI, now)
        assert caught.value.reason == "status_list_invalid"
        assert caught.value.status == 401
    with pytest.raises(InvalidToken):
        cache.after_fetch(URI, T0)


def test_a_refused_refetch_keeps_the_last_good_list(cache: StatusListCache) -> None:
    cache.store(URI, verified())
    cache.record_failure(URI, "invalid", T0 + 600)
    assert cache.after_fetch(URI, T0 + 600) is LIST


def test_a_good_fetch_clears_the_failure(cache: StatusListCache) -> None:
    cache.record_failure(URI, "unavailable", T0)
    newer = StatusList(1, b"\x00")
    cache.store(URI, VerifiedStatusList(newer, T0 + 60, math.inf))
    assert cache.lookup(URI, T0 + 1) == (newer, None)
    assert cache.attempts(URI) == 2


def test_after_fetch_of_a_forgotten_uri_is_unavailable(cache: StatusListCache) -> None:
    with pytest.raises(Unavailable):
        cache.after_fetch(URI, T0)


def test_remembers_at_most_max_lists_and_forgets_the_least_useful(cache: StatusListCache) -> None:
    cache.store("https://issuer.test/a", verified(fresh_for=100))
    cache.store("https://issuer.test/b", verified(fresh_for=900))
    cache.record_failure("https://issuer.test/c", "unavailable", T0)
    cache.store("https://issuer.test/d", verified(fresh_for=500))  # full: the failure record goes
    assert cache.attempts("https://issuer.test/c") == -1
    cache.store("https://issuer.test/e", verified(fresh_for=500))  # full: the list usable shortest goes
    assert cache.attempts("https://issuer.test/a") == -1
    for kept in ("b", "d", "e"):
        assert cache.lookup(f"https://issuer.test/{kept}", T0)[0] is LIST
    assert len(cache._entries) == POLICY.max_lists
