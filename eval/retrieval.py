"""``hikitsugi eval retrieval``: index a labeled set in a throw-away home, run its queries.

A data set is a BEIR folder: ``queries.jsonl`` (``_id``, ``text``), ``qrels/test.tsv``
(query-id, corpus-id, graded score) and either ``corpus.jsonl`` (``_id``, ``title``,
``text``, ingested as manual passages) or a ``dataset.yaml`` whose ``ingest:`` lists
folders (relative to the data set) to ingest like a user would, with an optional
``kind:`` — that is how our own support queries are evaluated against the real sample
files. Both paths go through :func:`index.update.ingest_paths`
and :func:`hikitsugi.search.service.search`, the code the product runs.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.eval.metrics import (
    capped_recall_at,
    mrr_at,
    ndcg_at,
    percentile,
    recall_at,
)


@dataclass
class Dataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    ingest: list[Path]
    kind: str | None = None  # forced document kind; None = what the parsers decide


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
    kind = None
    if (root / "corpus.jsonl").exists():
        ingest = [root / "corpus.jsonl"]
        # A BEIR corpus is a collection of reference passages — knowledge a user would
        # declare as ``kind: manual`` in sources.yaml — not incident records (the parser
        # would call title+text rows without a resolution "note").
        kind = "manual"
    elif (root / "dataset.yaml").exists():
        spec = yaml.safe_load((root / "dataset.yaml").read_text(encoding="utf-8")) or {}
        ingest = [(root / p).resolve() for p in spec.get("ingest", [])]
        kind = spec.get("kind")
        if not ingest:
            raise ValueError(f"{root / 'dataset.yaml'}: 'ingest' lists no paths")
    else:
        raise FileNotFoundError(f"{root}: needs corpus.jsonl or dataset.yaml (with ingest: [paths])")
    return Dataset(root, queries, qrels, ingest, kind)


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
    from hikitsugi.search.service import search

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


@dataclass
class EvalRun:
    """Everything one data set's evaluation produced, for the JSON and the HTML report."""

    name: str
    metrics: dict[str, dict[str, float]]
    latencies: dict[str, list[float]]
    per_query: dict[str, list[dict]]


def per_query_rows(ds: Dataset, runs: dict[str, list[str]]) -> list[dict]:
    rows = []
    for qid, ranked in runs.items():
        rel = ds.qrels.get(qid, {})
        ranks = [i for i, d in enumerate(ranked, 1) if rel.get(d, 0) > 0]
        rows.append({"query_id": qid, "query": ds.queries[qid], "relevant": rel, "returned": ranked,
                     "relevant_ranks": ranks, "rr@10": round(mrr_at(ranked, rel, 10), 4),
                     "capped_recall@5": round(capped_recall_at(ranked, rel, 5), 4)})
    return rows


def evaluate_dataset(root: Path, modes: list[str], settings: Settings, limit: int = 0,
                     keep_home: Path | None = None) -> EvalRun:
    """Index the data set into a fresh home (or keep_home) and evaluate each mode."""
    from hikitsugi.index.update import ingest_paths

    ds = load_dataset(root)
    with throwaway_home(settings, "hikitsugi-eval-", keep_home) as eval_settings:
        report = ingest_paths(ds.ingest, eval_settings, kind=ds.kind)
        if report.files_failed:
            print(f"warning: {report.files_failed} file(s) failed to ingest: {report.problems}", file=sys.stderr)
        run = EvalRun(root.name, {}, {}, {})
        for mode in modes:
            runs, lat = run_queries(ds, mode, eval_settings, limit)
            run.metrics[mode] = evaluate_rankings(runs, ds.qrels, lat)
            run.latencies[mode] = lat
            run.per_query[mode] = per_query_rows(ds, runs)
        return run


def run_retrieval_eval(root: Path, modes: list[str], settings: Settings, limit: int = 0,
                       keep_home: Path | None = None) -> dict[str, dict[str, float]]:
    """Metrics per mode for one data set (the stable JSON of ``eval retrieval --json``)."""
    return evaluate_dataset(root, modes, settings, limit, keep_home).metrics


def write_retrieval_report(out_dir: Path, runs: list[EvalRun]) -> Path:
    """metrics JSON, per-query dumps (JSONL per data set and mode) and an HTML report."""
    from hikitsugi.eval.report import (
        img,
        latency_plot,
        recall_plot,
        table,
        write_report,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    modes = sorted({m for r in runs for m in r.metrics})
    side = [{"dataset": r.name, "mode": m, **r.metrics[m],
             "capped_recall@5": round(sum(x["capped_recall@5"] for x in r.per_query[m]) / max(1, len(r.per_query[m])), 4)}
            for r in runs for m in r.metrics]
    sections.append(("Side by side", table(side, ["dataset", "mode", "recall@1", "recall@5", "recall@10", "mrr@10",
                                                  "ndcg@10", "capped_recall@5", "queries", "latency_ms_p50",
                                                  "latency_ms_p95"])))
    for r in runs:
        for mode, rows in r.per_query.items():
            with (out_dir / f"per_query-{r.name}-{mode}.jsonl").open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        sections.append((f"{r.name}: recall@k per mode", img(recall_plot(r.metrics, r.name), "recall per mode")))
        sections.append((f"{r.name}: latency", img(latency_plot(r.latencies), "latency histogram")))
        mode = "hybrid" if "hybrid" in r.per_query else next(iter(r.per_query))
        worst = sorted(r.per_query[mode], key=lambda x: (x["rr@10"], x["query_id"]))[:20]
        rows = [{"query": w["query"], "relevant": ", ".join(sorted(w["relevant"]))[:120],
                 "returned instead (top 3)": ", ".join(w["returned"][:3]), "rr@10": w["rr@10"]} for w in worst]
        sections.append((f"{r.name}: 20 worst queries ({mode})",
                         table(rows, ["query", "relevant", "returned instead (top 3)", "rr@10"])))
    data = {r.name: r.metrics for r in runs}
    return write_report(out_dir, "retrieval", f"Retrieval evaluation ({', '.join(modes)})", data, sections)
