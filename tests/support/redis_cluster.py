"""A real Redis Cluster on loopback: 3 masters (and one replica each, for failovers), started by the tests.

``redis-server --cluster-enabled yes`` per node, joined by ``redis-cli --cluster create
... --cluster-yes``, then awaited until every node says ``cluster_state:ok``; every wait is
bounded, and the nodes are stopped (server_process.stop_process: SIGCONT first, so a stalled one
sees SIGTERM) and their folders removed at the end.

Why explicit bus ports (``--cluster-port``): the default bus port is the client port + 10000,
which for an ephemeral port can be taken or above 65535.

Why ``--cluster-node-timeout 1000``: a dead master is noticed and its replica promoted within
about two seconds, so a failover fits in a test. ``--repl-diskless-sync-delay 0`` lets a replica
(and a restarted old master) sync at once instead of after Redis's default 5 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial

import redis

from .redis_server import free_port, stalled
from .server_process import stop_process

HOST = "127.0.0.1"
#: Longest a cluster may take to start (the brief: under 20 s on a busy 2-core machine).
START_WITHIN = 20.0
#: Longest a failover may take: node timeout (1 s), failure agreement, replica election.
FAILOVER_WITHIN = 15.0


@dataclass
class Node:
    """One redis-server of the cluster: its client port, bus port, data folder and process."""

    port: int
    bus_port: int
    dir: str
    process: subprocess.Popen[bytes] | None = None
    log: str = field(init=False)

    def __post_init__(self) -> None:
        self.log = os.path.join(self.dir, "redis.log")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def admin(self, timeout: float = 1.0) -> redis.Redis:
        """A plain (non-cluster) connection to this node alone, for CLUSTER and INFO commands."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)


class LocalRedisCluster:
    """``masters`` masters with ``replicas`` replicas each, on free loopback ports.

    :param masters: number of masters (3, Redis Cluster's minimum)
    :param replicas: replicas per master (1 for the failover tests)
    :param node_timeout_ms: ``cluster-node-timeout``: how long before a silent node is failed
    """

    def __init__(self, masters: int = 3, replicas: int = 0, *, node_timeout_ms: int = 1000) -> None:
        self.masters_wanted = masters
        self.replicas_wanted = replicas
        self.node_timeout_ms = node_timeout_ms
        self.root = tempfile.mkdtemp(prefix="jwtmw-redis-cluster-")
        self.nodes: list[Node] = []
        ports = _distinct_free_ports(2 * masters * (1 + replicas))
        for index in range(masters * (1 + replicas)):
            node_dir = os.path.join(self.root, str(index))
            os.mkdir(node_dir)
            self.nodes.append(Node(ports[2 * index], ports[2 * index + 1], node_dir))
        #: seconds the last start() took, for the report and the time bound test
        self.start_seconds = 0.0

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, within: float = START_WITHIN) -> LocalRedisCluster:
        """Start every node, create the cluster, wait for ``cluster_state:ok`` everywhere."""
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed; the README test command installs them")
        started = time.monotonic()
        deadline = started + within
        try:
            for node in self.nodes:
                self._launch(binary, node)
            for node in self.nodes:
                _until(deadline, partial(_answers, node), f"node {node.port} did not start")
            addresses = [f"{HOST}:{node.port}" for node in self.nodes]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas_wanted),
                 "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                timeout=max(0.1, deadline - time.monotonic()),
            )
            self.wait_ok(deadline - time.monotonic())
            _until(deadline, self._replicas_synced, "a replica did not finish its first sync")
        except BaseException:
            self.remove()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _launch(self, binary: str, node: Node) -> None:
        node.process = subprocess.Popen(
            [binary, "--port", str(node.port), "--bind", HOST, "--protected-mode", "yes",
             "--cluster-enabled", "yes", "--cluster-port", str(node.bus_port),
             "--cluster-config-file", os.path.join(node.dir, "nodes.conf"),
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
             "--maxmemory-policy", "noeviction", "--dir", node.dir, "--logfile", node.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        for node in self.nodes:
            self._stop(node)

    def remove(self) -> None:
        """Stop every node and delete the folders (the module fixture calls this at the end)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop(self, node: Node) -> None:
        if node.process is not None:
            stop_process(node.process, within=5)
            node.process = None

    # -- what the cluster looks like --------------------------------------------------------------

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(HOST, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """One node's URL; a cluster client discovers the others from it."""
        return f"redis://{HOST}:{self.nodes[0].port}"

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.running]

    def keyslot(self, key: str) -> int:
        """The slot Redis itself computes for ``key`` (CLUSTER KEYSLOT), not our own CRC16."""
        with self._any_live().admin() as admin:
            return int(admin.execute_command("CLUSTER", "KEYSLOT", key))

    def master_for_slot(self, slot: int) -> int:
        """Port of the master serving ``slot``, as a live node sees it now."""
        for start, end, master in self._slot_ranges():
            if start <= slot <= end:
                return master
        raise LookupError(f"slot {slot} is served by no master")

    def master_for_key(self, key: str) -> int:
        return self.master_for_slot(self.keyslot(key))

    def masters(self) -> list[int]:
        return sorted({master for _start, _end, master in self._slot_ranges()})

    def replica_of(self, master_port: int) -> int:
        """Port of one replica of ``master_port`` (INFO replication on the master)."""
        with self.node(master_port).admin() as admin:
            info = admin.info("replication")
        for name, value in info.items():
            if name.startswith("slave") and isinstance(value, dict):
                return int(value["port"])
        raise LookupError(f"{master_port} has no replica")

    def _slot_ranges(self) -> list[tuple[int, int, int]]:
        with self._any_live().admin() as admin:
            ranges = admin.execute_command("CLUSTER", "SLOTS")
        return [(int(item[0]), int(item[1]), int(item[2][1])) for item in ranges]

    def _any_live(self) -> Node:
        for node in self.live():
            if _answers(node):
                return node
        raise RuntimeError("no cluster node answers")

    # -- waits ------------------------------------------------------------------------------------

    def wait_ok(self, within: float) -> None:
        """Every live node says ``cluster_state:ok`` with all 16384 slots served."""
        deadline = time.monotonic() + within
        _until(deadline, self._all_ok, "the cluster did not reach cluster_state:ok")

    def _all_ok(self) -> bool:
        for node in self.live():
            try:
                with node.admin() as admin:
                    info = admin.cluster("info")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                return False
        return True

    def _serves(self, node: Node) -> bool:
        """A master serving slots, or a replica whose link to its master is up."""
        return _is_synced_replica(node) or (_answers(node) and node.port in self.masters())

    def _replicas_synced(self) -> bool:
        for node in self.live():
            try:
                with node.admin() as admin:
                    info = admin.info("replication")
            except redis.RedisError:
                return False
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    # -- faults -----------------------------------------------------------------------------------

    def stalled(self, port: int, at_most: float = 10.0) -> AbstractContextManager[None]:
        """Node ``port`` stopped (SIGSTOP) inside the block: its port accepts, nothing answers
        (continued on the way out, or after ``at_most`` seconds: redis_server.stalled)."""
        process = self.node(port).process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"node {port} is not running")
        return stalled(process, at_most)

    def kill(self, port: int) -> None:
        """SIGKILL node ``port``: gone at once with whatever it had not replicated, as a crash."""
        node = self.node(port)
        if node.process is not None:
            node.process.kill()
            node.process.wait(timeout=5)
            node.process = None

    def fail_over(self, master_port: int, within: float = FAILOVER_WITHIN) -> int:
        """Kill ``master_port`` and wait until its replica is promoted and the cluster is ok.

        :returns: the port of the promoted replica (the new master of the old one's slots)
        """
        replica = self.replica_of(master_port)
        self.kill(master_port)
        self.wait_promoted(replica, within)
        return replica

    def planned_failover(self, master_port: int, within: float = FAILOVER_WITHIN) -> int:
        """``CLUSTER FAILOVER`` on the replica of ``master_port``: the master pauses its clients,
        the replica catches up, then they swap roles. :returns: the new master's port"""
        replica = self.replica_of(master_port)
        with self.node(replica).admin() as admin:
            admin.execute_command("CLUSTER", "FAILOVER")
        self.wait_promoted(replica, within)
        deadline = time.monotonic() + within
        _until(deadline, lambda: _is_synced_replica(self.node(master_port)), f"{master_port} did not follow")
        return replica

    def wait_promoted(self, replica_port: int, within: float = FAILOVER_WITHIN) -> None:
        """Wait until ``replica_port`` is a master serving slots and every live node is ok."""
        deadline = time.monotonic() + within
        _until(deadline, lambda: replica_port in self.masters() and self._all_ok(),
               f"replica {replica_port} was not promoted")

    def restart(self, port: int, within: float = FAILOVER_WITHIN) -> None:
        """Start a killed node again from its nodes.conf and wait until it serves again.

        A master nobody replaced gets its slots back (empty: the nodes keep no data on disk).
        An old master whose slots were taken over learns so from the others (a higher config
        epoch) and must turn into a synced replica of its successor; until then it would say ok.
        """
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        node = self.node(port)
        self._launch(binary, node)
        deadline = time.monotonic() + within
        _until(deadline, lambda: _answers(node), f"node {port} did not restart")
        _until(deadline, lambda: self._serves(node) and self._all_ok(), f"node {port} did not rejoin")

    def heal(self, within: float = FAILOVER_WITHIN) -> None:
        """Restart every killed node, so the next test finds the whole cluster (roles may differ)."""
        for node in self.nodes:
            if not node.running:
                self.restart(node.port, within)
        self.wait_ok(within)


def _distinct_free_ports(count: int) -> list[int]:
    """``count`` free loopback ports, no two alike (a client port and a bus port per node)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _answers(node: Node) -> bool:
    try:
        with node.admin(timeout=0.2) as admin:
            return bool(admin.ping())
    except redis.RedisError:
        return False


def _is_synced_replica(node: Node) -> bool:
    try:
        with node.admin(timeout=0.2) as admin:
            info = admin.info("replication")
    except redis.RedisError:
        return False
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def _until(deadline: float, condition: Callable[[], bool], failure: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; RuntimeError(failure) at ``deadline``.

    A node that errors or is not reachable yet (a topology in flux) counts as "not yet".
    """
    while not _holds(condition):
        if time.monotonic() >= deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except (redis.RedisError, RuntimeError, LookupError):
        return False
