"""Redis Cluster: the URL form revagent accepts, and a local cluster from the project's own
`redis-server` for tests and benchmarks.

`redis.url = "redis+cluster://host:port,host:port"` (or `redis://host:port` with `[redis] cluster =
true`) makes the store use redis-py's cluster client. Every key of a wallet session carries the
session's hash tag (`rev:{paper:0xabc}:...`), so each session lives in one slot and its
transactions and scripts stay legal; host-wide keys have their own tags and are never written in a
transaction with a session's keys. redis-py refuses a transaction that spans two slots before it is
sent (`CrossSlotTransactionError`), and the server answers CROSSSLOT for a script or a multi-key
command that does: either is a defect, and the cluster tests fail on it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from revagent.childenv import child_env
from revagent.errors import RedisUnavailableError
from revagent.store.server import find_redis_binary, free_port, ping

CLUSTER_SCHEME = "redis+cluster://"
SLOTS = 16384


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The start-up nodes of `redis+cluster://h:p,h:p` (or of a plain `redis://h:p` with
    `[redis] cluster = true`). Raises ValueError with what was expected."""
    rest = url.split("://", 1)[1] if "://" in url else url
    rest = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    nodes: list[tuple[str, int]] = []
    for part in rest.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port in a cluster URL, got {part.strip()!r}")
        nodes.append((host, int(port)))
    return nodes


def cluster_password(url: str) -> str | None:
    """The password of `redis+cluster://:secret@h:p,...`, if any."""
    rest = url.split("://", 1)[1] if "://" in url else url
    if "@" not in rest.split("/", 1)[0]:
        return None
    creds = rest.split("@", 1)[0]
    return creds.split(":", 1)[1] if ":" in creds else creds


@dataclass
class LocalCluster:
    """A Redis Cluster of `masters` redis-server processes on loopback (no replicas), for tests and
    benchmarks. `url` is its `redis+cluster://` form."""

    directory: Path
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return CLUSTER_SCHEME + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self, timeout: float = 10.0) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too (Redis wants the port <= 55535)."""
    for _ in range(200):
        port = free_port()
        if port > 55535 or port in taken or port + 10000 in taken:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RedisUnavailableError("no free port pair for a cluster node")


def spawn_cluster(directory: Path, *, masters: int = 3, wait: float = 30.0) -> LocalCluster:
    """Start `masters` cluster-enabled servers, give each an equal range of the 16384 slots
    (`CLUSTER ADDSLOTS`), join them (`CLUSTER MEET`) and wait until every node says the cluster is ok."""
    import redis as sync_redis  # only the store imports redis; this runs in tests and benchmarks

    binary = find_redis_binary()
    cluster = LocalCluster(directory=directory, ports=[])
    try:
        for _ in range(masters):
            port = _cluster_port(set(cluster.ports))
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            cluster.processes.append(subprocess.Popen(
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                 "--cluster-node-timeout", "5000", "--dir", str(node_dir), "--save", "",
                 "--appendonly", "yes", "--logfile", str(node_dir / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env()))
            cluster.ports.append(port)
        deadline = time.monotonic() + wait
        for port in cluster.ports:
            while not ping(f"redis://127.0.0.1:{port}/0"):
                if any(p.poll() is not None for p in cluster.processes):
                    log = directory / f"node-{port}" / "redis.log"
                    tail = log.read_text(errors="replace")[-300:] if log.exists() else ""
                    raise RedisUnavailableError(f"a cluster node exited at start: {tail.strip()}")
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(f"cluster node on port {port} did not answer within {wait:.0f}s")
                time.sleep(0.02)
        clients = [sync_redis.Redis(host="127.0.0.1", port=p) for p in cluster.ports]
        try:
            per = SLOTS // masters
            for i, client in enumerate(clients):
                first = i * per
                last = SLOTS - 1 if i == masters - 1 else first + per - 1
                client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))  # type: ignore[no-untyped-call]
            for port in cluster.ports[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)  # type: ignore[no-untyped-call]
            while not all(c.cluster("info").get("cluster_state") == "ok" for c in clients):
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(f"the local cluster did not reach state ok within {wait:.0f}s")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster
