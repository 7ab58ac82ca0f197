"""A full memory store refuses (StoreFull, 503) rather than evict a live nonce and open a replay gap."""

from __future__ import annotations

import threading
import tracemalloc

import pytest

from jwt_middleware.errors import ConfigError, StoreError, StoreFull
from jwt_middleware.stores import NonceStore
from jwt_middleware.stores.memory import MemoryNonceStore
from jwt_middleware.testing import FakeClock


@pytest.fixture
def full(clock: FakeClock) -> MemoryNonceStore:
    """maxsize 3, holding three live values: a, b (until +10 s) and c (until +20 s)."""
    store = MemoryNonceStore(maxsize=3, clock=clock)
    assert store.consume("a", clock.now + 10)
    assert store.consume("b", clock.now + 10)
    assert store.consume("c", clock.now + 20)
    return store


def test_full_store_refuses_a_new_value_instead_of_evicting(full: MemoryNonceStore) -> None:
    with pytest.raises(StoreFull):
        full.consume("d", 2_000_000_000.0)
    assert len(full) == 3
    assert [full.consume(k, 2_000_000_000.0) for k in "abc"] == [False, False, False]  # none evicted


def test_store_full_is_a_store_error_so_the_request_gets_503(full: MemoryNonceStore) -> None:
    with pytest.raises(StoreError):
        full.consume("d", 2_000_000_000.0)


def test_replay_at_capacity_is_still_a_replay_not_store_full(full: MemoryNonceStore) -> None:
    assert full.consume("b", 2_000_000_000.0) is False


def test_expired_values_make_room(full: MemoryNonceStore, clock: FakeClock) -> None:
    clock.advance(20)
    assert full.consume("d", clock.now + 10) is True
    assert len(full) == 1


def test_only_expired_values_are_dropped_to_make_room(full: MemoryNonceStore, clock: FakeClock) -> None:
    clock.advance(10)  # a and b expire; c lives until +20
    assert full.consume("d", clock.now + 10) is True
    assert full.consume("c", clock.now + 10) is False
    assert full.consume("e", clock.now + 10) is True
    with pytest.raises(StoreFull):
        full.consume("f", clock.now + 10)


def test_threads_filling_the_store_never_overfill_it(clock: FakeClock) -> None:
    store = MemoryNonceStore(maxsize=10, clock=clock)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def fill(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            outcome = "fresh" if store.consume(f"k{i}", clock.now + 60) else "replay"
        except StoreFull:
            outcome = "full"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=fill, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["fresh"] * 10 + ["full"] * 40
    assert len(store) == 10


def test_long_keys_are_bounded_in_memory(clock: FakeClock) -> None:
    """A 100 kB jti costs a 32-byte digest, not 100 kB per remembered value."""
    store = MemoryNonceStore(maxsize=100, clock=clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20):
            assert store.consume(f"{i:02}" + "j" * 100_000, clock.now + 60) is True
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 20 * 1000
    assert store.consume("00" + "j" * 100_000, clock.now + 60) is False
    assert store.consume("00" + "j" * 99_999 + "k", clock.now + 60) is True


def test_zero_capacity_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="maxsize"):
        MemoryNonceStore(maxsize=0)


def test_memory_store_satisfies_the_protocol_and_is_non_blocking() -> None:
    store = MemoryNonceStore(maxsize=1)
    assert isinstance(store, NonceStore)
    assert store.non_blocking is True
