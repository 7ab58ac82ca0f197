"""The verified-token cache: bounded, lapsing with its deadline and the key-set generation."""

from __future__ import annotations

from types import MappingProxyType

from jwt_middleware.core.verified import VerifiedCache, put_bounded
from jwt_middleware.identity import Identity

IDENTITY = Identity(subject="s", issuer="i", scopes=frozenset(), claims=MappingProxyType({}))


def test_cache_never_grows_past_its_bound_and_keeps_the_newest() -> None:
    cache = VerifiedCache(32)
    for i in range(1000):
        cache.put(f"t{i}", IDENTITY, 100.0, 1)
        assert len(cache) <= 32
    assert cache.get("t999", 0.0, 1) is IDENTITY
    assert cache.get("t0", 0.0, 1) is None


def test_entry_lapses_at_its_deadline_and_on_a_key_set_change() -> None:
    cache = VerifiedCache(8)
    cache.put("t", IDENTITY, 100.0, 1)
    assert cache.get("t", 99.9, 1) is IDENTITY
    assert cache.get("t", 99.9, 2) is None  # the key set changed: verify again
    cache.put("t", IDENTITY, 100.0, 1)
    assert cache.get("t", 100.0, 1) is None  # deadline reached


def test_zero_size_caches_nothing() -> None:
    cache = VerifiedCache(0)
    cache.put("t", IDENTITY, 100.0, 1)
    assert cache.get("t", 0.0, 1) is None


def test_put_bounded_evicts_oldest_first_in_batches() -> None:
    entries: dict[int, int] = {}
    for i in range(100):
        put_bounded(entries, i, i, 16)
    assert len(entries) <= 16 and 99 in entries and 0 not in entries
    assert list(entries) == sorted(entries)  # insertion order kept: the oldest went first
