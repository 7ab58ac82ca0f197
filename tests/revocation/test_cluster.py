"""The Redis revocation stores on a real Redis Cluster: every key in one slot, workers on
different nodes see each other's revocations, and a failover of the slot's master readmits
nothing (the mirror keeps what the promoted replica may have missed and writes it back)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.retry import Retry

from jwt_middleware.errors import StoreError
from jwt_middleware.revocation._redis_ops import Keys
from jwt_middleware.revocation.redis import AsyncRedisRevocationStore, RedisRevocationStore

from ..support.redis_cluster import LocalRedisCluster
from .conftest import HEARTBEAT, TIMEOUT, Worker, eventually, unique_prefix

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    nodes = LocalRedisCluster(masters=3, replicas=1).start()
    yield nodes
    nodes.remove()


def cluster_worker(cluster: LocalRedisCluster, kind: str, prefix: str, **options: Any) -> Worker:
    timing = {"timeout": TIMEOUT, "heartbeat": HEARTBEAT, "max_staleness": 2.0, **options}
    live = [node.port for node in cluster.live()]  # cluster.url may name a node a failover killed
    if kind == "redis":
        client = redis.RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in live],
                                    socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        return Worker(kind, RedisRevocationStore(client, prefix, **timing), client.close)
    aclient = redis.asyncio.RedisCluster(startup_nodes=[AsyncClusterNode("127.0.0.1", port) for port in live],
                                         socket_timeout=0.2, socket_connect_timeout=0.2,
                                         retry=AsyncRetry(NoBackoff(), 0))
    return Worker(kind, AsyncRedisRevocationStore(aclient, prefix, **timing), aclient.aclose)


async def start_all(workers: list[Worker]) -> None:
    for worker in workers:
        await worker.start()
    await eventually(lambda: all(worker.trusted() for worker in workers), what="first sync")


def test_every_key_lands_in_the_hash_tags_slot(cluster: LocalRedisCluster) -> None:
    prefix = unique_prefix()
    keys = Keys.under(prefix)
    slots = {cluster.keyslot(name) for name in (keys.tokens, keys.cut_offs, keys.seq)}
    assert slots == {cluster.keyslot(prefix[1:-1])}  # the tag's own slot


async def test_workers_on_a_cluster_see_each_others_revocations(cluster: LocalRedisCluster) -> None:
    prefix = unique_prefix()
    workers = [cluster_worker(cluster, kind, prefix) for kind in ("redis", "redis-async")]
    try:
        await start_all(workers)
        now = time.time()
        for source, sink in ((workers[0], workers[1]), (workers[1], workers[0])):
            value = f"from-{source.kind}"
            await source.revoke("subject", value, now)
            await source.revoke("token", f"jti-{value}", now + 600)
            await eventually(partial(sink.knows_all, [("subject", value), ("token", f"jti-{value}")]))
    finally:
        for worker in workers:
            await worker.close()


async def test_failover_of_the_slots_master_readmits_nothing_and_the_followers_recover(
    cluster: LocalRedisCluster,
) -> None:
    prefix = unique_prefix()
    workers = [cluster_worker(cluster, kind, prefix) for kind in ("redis", "redis-async")]
    try:
        await start_all(workers)
        await workers[0].revoke("subject", "before", time.time())
        await eventually(lambda: all(worker.knows("subject", "before") for worker in workers))
        master = cluster.master_for_key(Keys.under(prefix).seq)
        cluster.fail_over(master)
        for worker in workers:
            assert worker.knows("subject", "before")  # held through the outage
        await eventually(lambda: all(worker.trusted() for worker in workers), within=30, what="trusted after failover")
        await workers[1].revoke("session", "after", time.time())
        await eventually(lambda: workers[0].knows("session", "after"), within=10, what="propagation after failover")
        fresh = cluster_worker(cluster, "redis", prefix)
        workers.append(fresh)
        await fresh.start()
        await eventually(lambda: fresh.trusted() and fresh.knows("subject", "before"), within=10)
    finally:
        for worker in workers:
            await worker.close()
        failed = [node.port for node in cluster.nodes if not node.running]
        for port in failed:
            cluster.restart(port)


@pytest.mark.parametrize("kind", ["redis", "redis-async"])
async def test_a_cluster_with_every_node_gone_is_a_store_error_and_the_revocation_holds_here(kind: str) -> None:
    # Why a cluster of its own: every node is stopped. redis-py then raises RedisClusterException,
    # which is not a RedisError; let through, it reached the CLI as an internal error.
    lone = LocalRedisCluster(masters=3).start()
    try:
        worker = cluster_worker(lone, kind, unique_prefix())
        await worker.revoke("subject", "up", time.time())  # connects and reads the slot map
        lone.stop()
        with pytest.raises(StoreError):
            await worker.revoke("subject", "down", time.time())
        assert worker.knows("subject", "down")
        result = worker.close_client()
        if asyncio.iscoroutine(result):
            await result
    finally:
        lone.remove()
