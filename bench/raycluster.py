"""A real multi-node Ray cluster on one machine, for the tests and the scaling benchmark.

Each node is its own ``ray start --block`` process (head first, then workers joining it)
with its own CPUs (``--num-cpus``), a small object store and its own ports on 127.0.0.1,
so a node can be killed on its own — with every process it started, Ray worker
processes included (they run in process groups of their own, so the node's tree is
collected by parent pid, not by group). :meth:`LocalRayCluster.stop` ends exactly the
processes this object started and removes its temporary directory; nothing is found by
name, so other clusters on the machine are never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

OBJECT_STORE_BYTES = 80 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    node_manager_port: int
    log: Path
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create time, of the node's tree seen so far

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.node_manager_port}"

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            try:
                self.seen.setdefault(p.pid, p.create_time())
            except psutil.NoSuchProcess:
                pass
        return procs

    def still_running(self) -> list[psutil.Process]:
        """Processes of this node seen so far and still running (the same process: a
        reused pid has another create time)."""
        out = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out


class LocalRayCluster:
    """``with LocalRayCluster(env) as c: c.start_head(); c.add_node(); ... c.kill_node(n)``."""

    def __init__(self, env: dict[str, str] | None = None, cpus_per_node: int = 1) -> None:
        # Token authentication with a token of this cluster's own: its ports listen beyond
        # loopback, and a token file another Ray left in ~/.ray must not decide for us.
        self.token = secrets.token_hex(32)
        self.env = {**os.environ, **(env or {}), **self.client_env(), "RAY_USAGE_STATS_ENABLED": "0",
                    # notice a killed node within a few seconds (defaults take ~30 s)
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3"}
        self.cpus = cpus_per_node
        self.tmp = Path(tempfile.mkdtemp(prefix="hk-ray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
        self.port = _free_port()
        self.nodes: list[Node] = []
        self.ray_bin = str(Path(sys.executable).with_name("ray"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a driver (``hikitsugi reindex --ray ADDRESS``) needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def __enter__(self) -> "LocalRayCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, args: list[str]) -> Node:
        nm_port = _free_port()
        log = self.tmp / f"{name}.log"
        cmd = [self.ray_bin, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
               "--object-store-memory", str(OBJECT_STORE_BYTES), "--node-manager-port", str(nm_port),
               "--object-manager-port", str(_free_port()), "--min-worker-port", "0", "--max-worker-port", "0",
               "--disable-usage-stats", "--temp-dir", str(self.tmp), *args]
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(name, proc, nm_port, log)
        self.nodes.append(node)
        return node

    def start_head(self) -> Node:
        node = self._start("head", ["--head", "--port", str(self.port), "--include-dashboard", "false"])
        self.wait_nodes(1)
        return node

    def add_node(self, name: str = "worker") -> Node:
        node = self._start(name, ["--address", self.address])
        self.wait_nodes(len([n for n in self.nodes if n.proc.poll() is None]))
        return node

    def alive_nodes(self) -> list[str]:
        """Node manager addresses of the nodes the head reports alive (asked in a
        subprocess, so the caller never imports Ray)."""
        code = ("import ray, json; ray.init(address=%r, logging_level='ERROR', log_to_driver=False); "
                "print(json.dumps([f\"{n['NodeManagerAddress']}:{n['NodeManagerPort']}\" for n in ray.nodes() "
                "if n['Alive']]))" % self.address)
        try:
            r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:  # a very busy machine: ask again
            return []
        if r.returncode != 0:
            return []
        import json

        return json.loads(r.stdout.strip().splitlines()[-1])

    def wait_nodes(self, n: int, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for node in self.nodes:
                node.tree()
                if node.proc.poll() is not None:
                    raise RuntimeError(f"ray node {node.name} exited:\n{node.log.read_text()[-3000:]}")
            if len(self.alive_nodes()) >= n:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {n} nodes in {timeout}s")

    def kill_node(self, node: Node) -> int:
        """SIGKILL every process of the node at once (ray start, raylet, its agents and
        workers): what a machine losing power looks like. Returns how many were killed."""
        procs = node.tree()
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        node.proc.wait(timeout=30)
        psutil.wait_procs(procs, timeout=10)
        return len(procs)

    def stop(self) -> None:
        """End every process this cluster started (workers last seen included) and remove
        its directory. SIGTERM first, so the head shuts down its own children."""
        for node in reversed(self.nodes):
            node.tree()
        for node in reversed(self.nodes):
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
                try:
                    node.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=10)
        leftovers = [p for node in self.nodes for p in node.still_running()]
        for p in leftovers:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers, timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def leftover_pids(self) -> list[int]:
        """Pids of this cluster's processes still running (should be none after stop)."""
        return [p.pid for node in self.nodes for p in node.still_running()]
