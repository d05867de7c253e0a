"""Scaling curves beyond one process: Ray nodes for the re-index, API replicas for search.

    python -m bench.cluster ray --cases 2000          # 1 vs 2 Ray nodes (1 CPU each) vs one process
    python -m bench.cluster replicas --chunks 100000  # 1 vs 2 `hikitsugi serve` replicas, one core each
    python -m bench.cluster faiss --chunks 1000000    # exact-scan cost and memory of the vectors alone

``ray``: the same generated CP932 cases (bench.ingest_10k) are re-indexed three times
into fresh homes — in one process, on a one-node and on a two-node Ray cluster on this
machine (hikitsugi.bench.raycluster, ``--num-cpus 1`` per node) — and it prints embedded
texts per second for each (embed stage, and wall time with model loads), so the ratio
2-node / 1-node is measured in one run.

``replicas``: a corpus of N chunks (bench.scale's synthetic corpus, or the samples with
``--chunks 0``) in one PostgreSQL database (``HIKITSUGI_DATABASE_URL``, empty); replicas are real ``hikitsugi serve`` processes with
their own homes (each rebuilds the published generation from stored vectors on start:
that time is reported as the switch time at this size), each pinned to its own core
with one torch thread, as two one-core machines would be. Closed-loop clients search the
labeled support queries against one replica, then against both, in three interleaved
rounds (``--seconds`` each in all); it prints searches/s, p50/p95, each replica's RSS and
how long each took to rebuild the published generation when it started.

``faiss``: the exact inner-product scan over N random unit vectors (the dense side of a
generation above 100k chunks), its memory, and per-query CPU time.

Every figure depends on the machine and on what else runs on it: re-run on a quiet
machine for the reference numbers (docs/benchmarks.md says which were measured busy).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _env(home: Path, db_url: str, model: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKITSUGI_")}
    env.update(HIKITSUGI_HOME=str(home), HIKITSUGI_MODEL=model, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HIKITSUGI_PURGE_GRACE_S="0")
    if db_url:
        env["HIKITSUGI_DATABASE_URL"] = db_url
    env.update(extra)
    return env


def _reindex(home: Path, sources: Path, model: str, cluster=None) -> dict:
    cmd = [sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources), "--json"]
    extra = {}
    if cluster is not None:
        cmd += ["--ray", cluster.address]
        extra = cluster.client_env()
    t = time.perf_counter()
    r = subprocess.run(cmd, env=_env(home, "", model, **extra), cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    rep = json.loads(r.stdout)
    texts = rep["chunks_embedded"] + rep["sentences_embedded"]
    return {"wall_s": round(wall, 1), "embed_s": rep["timings"]["embed"], "texts": texts,
            "texts_per_s": round(texts / rep["timings"]["embed"], 1) if rep["timings"]["embed"] else None,
            "nodes": {w["address"]: w["texts"] for w in (rep.get("cluster") or {}).get("nodes", {}).values()}}


def bench_ray(cases: int, model: str) -> dict:
    from hikitsugi.bench.ingest_10k import make_cases, write_csv
    from hikitsugi.bench.raycluster import LocalRayCluster

    work = Path(tempfile.mkdtemp(prefix="hikitsugi-bench-ray-"))
    try:
        data = work / "data"
        data.mkdir()
        rows = make_cases(cases)
        per = -(-len(rows) // 8)
        for f in range(8):
            write_csv(data / f"cases-{f}.csv", rows[f * per:(f + 1) * per])
        (data / "sources.yaml").write_text("sources:\n  - path: .\n    glob: '*.csv'\n", encoding="utf-8")
        out: dict = {"cases": cases}
        out["single_process"] = _reindex(work / "home-single", data / "sources.yaml", model, None)
        print("single process:", out["single_process"], file=sys.stderr, flush=True)
        with LocalRayCluster({"HIKITSUGI_MODEL": model, "HF_HUB_OFFLINE": "1"}) as c:
            c.start_head()
            out["ray_1_node"] = _reindex(work / "home-1", data / "sources.yaml", model, c)
            print("1 node:", out["ray_1_node"], file=sys.stderr, flush=True)
            c.add_node()
            out["ray_2_nodes"] = _reindex(work / "home-2", data / "sources.yaml", model, c)
            print("2 nodes:", out["ray_2_nodes"], file=sys.stderr, flush=True)
        one, two = out["ray_1_node"]["texts_per_s"], out["ray_2_nodes"]["texts_per_s"]
        out["speedup_2_vs_1_nodes"] = round(two / one, 2) if one and two else None
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rss_mib(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20)


class _Server:
    def __init__(self, home: Path, db_url: str, model: str, core: int | None) -> None:
        from hikitsugi.bench.raycluster import _free_port

        self.port = _free_port()
        home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "hikitsugi", "serve", "--port", str(self.port)]
        if core is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(core)] + cmd
        self.log = open(home / "server.log", "w")
        env = _env(home, db_url, model, HIKITSUGI_TORCH_THREADS="1", HIKITSUGI_RATE_LIMIT_PER_S="0",
                   HIKITSUGI_GENERATION_POLL_S="2")
        t = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        import httpx

        while True:
            if self.proc.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.base + "/healthz", timeout=2).json().get("status") == "ok":
                    break
            except Exception:
                pass
            time.sleep(0.5)
        self.start_s = round(time.perf_counter() - t, 1)
        text = (home / "server.log").read_text()
        self.build_s = None
        for line in text.splitlines():
            if "built the published generation" in line:
                self.build_s = float(line.rsplit(" in ", 1)[1].rstrip("s"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def _load(bases: list[str], key: str, queries: list[str], clients: int, seconds: float) -> tuple[list[float], int, float]:
    """Closed-loop clients spread over ``bases``: (latencies ms, errors, wall seconds)."""
    import httpx

    lat: list[float] = []
    errors = [0]
    stop = time.time() + seconds

    def run(n: int) -> None:
        with httpx.Client(timeout=120) as c:
            i = n
            while time.time() < stop:
                t = time.perf_counter()
                r = c.post(bases[i % len(bases)] + "/search", json={"query": queries[i % len(queries)], "k": 10},
                           headers={"X-API-Key": key})
                if r.status_code == 200:
                    lat.append((time.perf_counter() - t) * 1000)
                else:
                    errors[0] += 1
                i += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0], time.time() - t0


def _summary(runs: list[tuple[list[float], int, float]]) -> dict:
    lat = sorted(x for r in runs for x in r[0])
    wall = sum(r[2] for r in runs)
    return {"searches_per_s": round(len(lat) / wall, 1), "p50_ms": round(statistics.median(lat), 1) if lat else None,
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            "errors": sum(r[1] for r in runs), "searches": len(lat)}


def bench_replicas(chunks: int, seconds: float, clients: int, model: str) -> dict:
    from hikitsugi.access.principals import create_key
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for

    work = Path(tempfile.mkdtemp(prefix="hikitsugi-bench-replicas-"))
    try:
        db_url = os.environ.get("HIKITSUGI_DATABASE_URL", "")
        if not db_url.startswith("postgresql"):
            # measured: two replicas on one SQLite file wait on each other's writes (search log,
            # heartbeats) and served 7.9 searches/s together where one alone served 27.5
            raise SystemExit("replicas share a PostgreSQL database: set HIKITSUGI_DATABASE_URL to an empty "
                             "PostgreSQL database (createdb …) and run again")
        s = get_settings().model_copy(update={"home": work / "job", "database_url": db_url, "model": model})
        t = time.perf_counter()
        if chunks:
            from hikitsugi.bench.scale import build_corpus

            build_corpus(s, chunks)
        else:
            ingest_paths([REPO / "data" / "samples"], s)
        build_s = round(time.perf_counter() - t, 1)
        session = session_for(db_url)
        try:
            _, key = create_key(session, "bench", "agent", "bench")
        finally:
            session.close()
        qfile = REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl"
        queries = [json.loads(x)["text"] for x in qfile.read_text(encoding="utf-8").splitlines() if x]
        random.Random(3).shuffle(queries)
        cores = os.cpu_count() or 1
        out: dict = {"chunks": chunks or "samples", "corpus_build_s": build_s, "clients": clients, "seconds": seconds}
        servers = []
        rounds = 3
        try:
            for i in (1, 2):  # each rebuilds the published generation from stored vectors before serving
                servers.append(_Server(work / f"replica-{i}", db_url, model, (i - 1) % cores))
                out[f"replica_{i}"] = {"start_s": servers[-1].start_s, "rebuild_s": servers[-1].build_s}
            for x in servers:
                _load([x.base], key, queries, clients, 5)  # warm-up
            one, two = [], []
            for _ in range(rounds):  # interleaved, so the machine's other load hits both alike
                one.append(_load([servers[0].base], key, queries, clients, seconds / rounds))
                two.append(_load([x.base for x in servers], key, queries, clients, seconds / rounds))
            out["one_replica"], out["two_replicas"] = _summary(one), _summary(two)
            for i, x in enumerate(servers, 1):
                out[f"replica_{i}"]["rss_mib"] = _rss_mib(x.proc.pid)
            print("1 replica:", out["one_replica"], "2 replicas:", out["two_replicas"], file=sys.stderr, flush=True)
            out["speedup_2_vs_1_replicas"] = round(out["two_replicas"]["searches_per_s"]
                                                   / max(1e-9, out["one_replica"]["searches_per_s"]), 2)
        finally:
            for x in servers:
                x.stop()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_faiss(chunks: int, queries: int = 50) -> dict:
    import resource

    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    index = faiss.IndexFlatIP(384)
    step = 100_000
    for i in range(0, chunks, step):
        v = rng.standard_normal((min(step, chunks - i), 384), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        index.add(v)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    q = rng.standard_normal((queries, 384), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cpu = []
    for i in range(queries):
        t = time.process_time()
        index.search(q[i:i + 1], 100)
        cpu.append((time.process_time() - t) * 1000)
    return {"chunks": chunks, "vectors_mib": round(index.ntotal * 384 * 4 / 2**20), "rss_growth_mib": round(rss),
            "scan_cpu_ms_p50": round(statistics.median(cpu), 1), "threads": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("ray")
    r.add_argument("--cases", type=int, default=2000)
    p = sub.add_parser("replicas")
    p.add_argument("--chunks", type=int, default=100_000, help="0 = the sample corpus")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--clients", type=int, default=4)
    f = sub.add_parser("faiss")
    f.add_argument("--chunks", type=int, default=1_000_000)
    args = ap.parse_args()
    from hikitsugi.config import get_settings
    from hikitsugi.embedding.encoder import model_path

    if args.what == "faiss":
        print(json.dumps(bench_faiss(args.chunks), indent=2))
        return
    model = model_path(get_settings())
    if args.what == "ray":
        out = bench_ray(args.cases, model)
    else:
        out = bench_replicas(args.chunks, args.seconds, args.clients, model)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
