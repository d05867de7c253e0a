"""``hikitsugi eval retrieval``: index a labeled set in a throw-away home, run its queries.

A data set is a BEIR folder: ``queries.jsonl`` (``_id``, ``text``), ``qrels/test.tsv``
(query-id, corpus-id, graded score) and either ``corpus.jsonl`` (``_id``, ``title``,
``text``) or a ``dataset.yaml`` whose ``ingest:`` lists folders (relative to the data
set) to ingest like a user would — that is how our own support queries are evaluated
against the real sample files. Both paths go through :func:`index.update.ingest_paths`
and :func:`index.search.search`, the code the product runs.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from tqdm import tqdm

from eval.metrics import mrr_at, ndcg_at, percentile, recall_at
from hikitsugi.config import Settings
from index.embedder import model_path


@dataclass
class Dataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    ingest: list[Path]


def load_dataset(root: Path) -> Dataset:
    root = root.resolve()
    qpath, rpath = root / "queries.jsonl", root / "qrels" / "test.tsv"
    for p in (qpath, rpath):
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: a data set needs queries.jsonl and qrels/test.tsv")
    queries = {}
    with qpath.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                queries[str(obj["_id"])] = obj["text"]
    qrels: dict[str, dict[str, int]] = {}
    with rpath.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    if (root / "corpus.jsonl").exists():
        ingest = [root / "corpus.jsonl"]
    elif (root / "dataset.yaml").exists():
        spec = yaml.safe_load((root / "dataset.yaml").read_text(encoding="utf-8")) or {}
        ingest = [(root / p).resolve() for p in spec.get("ingest", [])]
        if not ingest:
            raise ValueError(f"{root / 'dataset.yaml'}: 'ingest' lists no paths")
    else:
        raise FileNotFoundError(f"{root}: needs corpus.jsonl or dataset.yaml (with ingest: [paths])")
    return Dataset(root, queries, qrels, ingest)


def evaluate_rankings(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]],
                      latencies: list[float]) -> dict[str, float]:
    qids = [q for q in runs if qrels.get(q)]
    n = max(1, len(qids))
    return {
        "recall@1": round(sum(recall_at(runs[q], qrels[q], 1) for q in qids) / n, 4),
        "recall@5": round(sum(recall_at(runs[q], qrels[q], 5) for q in qids) / n, 4),
        "recall@10": round(sum(recall_at(runs[q], qrels[q], 10) for q in qids) / n, 4),
        "mrr@10": round(sum(mrr_at(runs[q], qrels[q], 10) for q in qids) / n, 4),
        "ndcg@10": round(sum(ndcg_at(runs[q], qrels[q], 10) for q in qids) / n, 4),
        "queries": len(qids),
        "latency_ms_p50": round(percentile(latencies, 50), 2),
        "latency_ms_p95": round(percentile(latencies, 95), 2),
    }


def run_queries(ds: Dataset, mode: str, settings: Settings, limit: int = 0) -> tuple[dict[str, list[str]], list[float]]:
    from index.search import search

    qids = [q for q in ds.queries if ds.qrels.get(q)]
    if limit:
        qids = qids[:limit]
    runs: dict[str, list[str]] = {}
    lat: list[float] = []
    for qid in tqdm(qids, desc=f"queries ({mode})", unit="q", file=sys.stderr, disable=None):
        t = time.perf_counter()
        resp = search(ds.queries[qid], settings, k=10, mode=mode)
        lat.append((time.perf_counter() - t) * 1000)
        runs[qid] = [r.source_id for r in resp.results]
    return runs, lat


def run_retrieval_eval(root: Path, modes: list[str], settings: Settings, limit: int = 0,
                       keep_home: Path | None = None) -> dict[str, dict[str, float]]:
    """Index the data set into a fresh home and evaluate each mode; returns metrics per mode."""
    from index.update import ingest_paths

    ds = load_dataset(root)
    home = keep_home or Path(tempfile.mkdtemp(prefix="hikitsugi-eval-"))
    # Reuse the already-built model folder; everything else lives in the throw-away home.
    eval_settings = settings.model_copy(update={"home": home, "database_url": "", "model": model_path(settings)})
    try:
        report = ingest_paths(ds.ingest, eval_settings)
        if report.files_failed:
            print(f"warning: {report.files_failed} file(s) failed to ingest: {report.problems}", file=sys.stderr)
        out = {}
        for mode in modes:
            runs, lat = run_queries(ds, mode, eval_settings, limit)
            out[mode] = evaluate_rankings(runs, ds.qrels, lat)
        return out
    finally:
        if keep_home is None:
            shutil.rmtree(home, ignore_errors=True)
