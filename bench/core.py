"""``hikitsugi bench``: ingest throughput, warm query latency and peak memory.

Each data set runs in its own fresh process and throw-away HIKITSUGI_HOME, so peak RSS
is that data set's own and nothing is reused from an earlier run (the model folder is
the only shared thing; it is read-only).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import statistics
import time
from pathlib import Path

from hikitsugi.config import get_settings


def _queries_for(path: Path) -> list[str]:
    """Queries to time: the data set's own, or for the samples our labeled support set."""
    for candidate in (path / "queries.jsonl", Path("eval/datasets/support-ja/queries.jsonl")):
        if candidate.exists():
            with candidate.open(encoding="utf-8") as fh:
                return [json.loads(line)["text"] for line in fh if line.strip()]
    return ["紙が詰まる", "ログインできない", "請求書を再発行してほしい"]


def _bench_one(path_str: str, n_queries: int) -> dict:
    from hikitsugi.embedding.encoder import get_embedder
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.eval.retrieval import load_dataset
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    path = Path(path_str)
    settings = get_settings()
    with throwaway_home(settings, "hikitsugi-bench-") as s:
        ds = load_dataset(path) if (path / "queries.jsonl").exists() else None
        sources, kind = (ds.ingest, ds.kind) if ds else ([path], None)  # as `eval retrieval` ingests it
        get_embedder(s)  # model load is not ingest work
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        report = ingest_paths(sources, s, kind=kind)
        ingest_s = time.perf_counter() - t
        from hikitsugi.search.retrieve import get_snapshot

        chunks = int(get_snapshot(s.index_dir).manifest["chunks"])
        queries = _queries_for(path)[:n_queries]
        search(queries[0], s, k=10)  # warm-up
        lat = []
        for q in queries:
            t = time.perf_counter()
            search(q, s, k=10)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        return {
            "documents": report.docs_added,
            "chunks": chunks,
            "sentence_vectors": report.sentences_embedded,
            "ingest_s": round(ingest_s, 1),
            "chunks_per_s": round(chunks / ingest_s, 1),
            "queries": len(lat),
            "query_ms_p50": round(statistics.median(lat), 1),
            "query_ms_p95": round(lat[max(0, int(len(lat) * 0.95) - 1)], 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "rss_after_model_load_mib": round(rss_before / 1024, 0),
        }


def run_bench(samples: Path, datasets: list[Path], n_queries: int) -> dict[str, dict]:
    ctx = mp.get_context("spawn")
    out = {}
    for path in [samples, *datasets]:
        with ctx.Pool(1) as pool:
            out[path.name] = pool.apply(_bench_one, (str(path.resolve()), n_queries))
    return out
