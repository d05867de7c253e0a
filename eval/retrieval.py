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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.eval.metrics import (
    as_cards,
    hit_at,
    mrr_at,
    ndcg_at,
    percentile,
    recall_at,
)
from hikitsugi.eval.overlap import corpus_texts, query_overlap

NO_ANSWER = "no_answer"  # the query type of queries that have no answer in the corpus


@dataclass
class Dataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    ingest: list[Path]
    kind: str | None = None  # forced document kind; None = what the parsers decide
    types: dict[str, str] = field(default_factory=dict)  # query id -> query type, when the queries carry one
    spec: dict = field(default_factory=dict)  # dataset.yaml, when there is one

    def run_ids(self) -> list[str]:
        """The queries an evaluation runs: every labeled one, and every one of type ``no_answer``."""
        return [q for q in self.queries if self.qrels.get(q) or self.types.get(q) == NO_ANSWER]


def load_dataset(root: Path) -> Dataset:
    root = root.resolve()
    qpath, rpath = root / "queries.jsonl", root / "qrels" / "test.tsv"
    for p in (qpath, rpath):
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: a data set needs queries.jsonl and qrels/test.tsv")
    queries, types = {}, {}
    with qpath.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                queries[str(obj["_id"])] = obj["text"]
                if obj.get("type"):
                    types[str(obj["_id"])] = str(obj["type"])
    if not types and (root / "query_types.tsv").exists():  # JaQuAD's question types, beside the BEIR files
        with (root / "query_types.tsv").open(encoding="utf-8") as fh:
            types = {r[0]: r[1] for r in csv.reader(fh, delimiter="\t") if len(r) >= 2 and r[0] != "query-id"}
    qrels: dict[str, dict[str, int]] = {}
    with rpath.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    kind, spec = None, {}
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
    return Dataset(root, queries, qrels, ingest, kind, types, spec)


METRIC_KEYS = ("hit@1", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10", "queries",
               "no_answer_queries", "no_answer_confident", "latency_ms_p50", "latency_ms_p95", "by_type")


@dataclass
class QueryRun:
    """One query as the agent saw it: the result cards (each its documents, folded cases
    included), whether guidance said 自己解決, and how long the search took."""

    qid: str
    cards: list[list[str]]
    self_resolve: bool = False
    latency_ms: float = 0.0


def _scores(runs: list[QueryRun], qrels: dict[str, dict[str, int]],
            fold_key: dict[str, str] | None) -> dict[str, float | int | None]:
    answered = [r for r in runs if qrels.get(r.qid)]
    n = len(answered)

    def mean(f) -> float | None:
        return round(sum(f(r) for r in answered) / n, 4) if n else None

    return {
        "hit@1": mean(lambda r: hit_at(r.cards, qrels[r.qid], 1)),
        "hit@5": mean(lambda r: hit_at(r.cards, qrels[r.qid], 5)),
        "hit@10": mean(lambda r: hit_at(r.cards, qrels[r.qid], 10)),
        "recall@5": mean(lambda r: recall_at(r.cards, qrels[r.qid], 5)),
        "recall@10": mean(lambda r: recall_at(r.cards, qrels[r.qid], 10)),
        "mrr@10": mean(lambda r: mrr_at(r.cards, qrels[r.qid], 10)),
        "ndcg@10": mean(lambda r: ndcg_at(r.cards, qrels[r.qid], 10, fold_key)),
        "queries": n,
    }


def evaluate_runs(runs: list[QueryRun], qrels: dict[str, dict[str, int]], types: dict[str, str] | None = None,
                  fold_key: dict[str, str] | None = None, latency: bool = True) -> dict:
    """The metrics of ``eval retrieval --json`` (see :data:`METRIC_KEYS` and hikitsugi.eval.metrics).

    Answerable queries (with a relevant label) give the ranking metrics; queries of type
    ``no_answer`` give ``no_answer_confident``, the share of them told 自己解決 — an agent
    sent to follow steps that cannot fix the problem. ``by_type`` repeats the metrics for
    each query type when the queries carry one."""
    types = types or {}
    no_answer = [r for r in runs if not qrels.get(r.qid) and types.get(r.qid) == NO_ANSWER]
    out: dict = _scores(runs, qrels, fold_key)
    out["no_answer_queries"] = len(no_answer)
    out["no_answer_confident"] = round(sum(r.self_resolve for r in no_answer) / len(no_answer), 4) if no_answer else None
    lat = [r.latency_ms for r in runs]
    out["latency_ms_p50"] = round(percentile(lat, 50), 2) if latency else None
    out["latency_ms_p95"] = round(percentile(lat, 95), 2) if latency else None
    by_type: dict[str, dict] = {}
    for t in sorted({types[r.qid] for r in runs if types.get(r.qid)}):
        sub = [r for r in runs if types.get(r.qid) == t]
        by_type[t] = evaluate_runs(sub, qrels, None, fold_key, latency)
        by_type[t].pop("by_type")
        sub_na = [r for r in sub if not qrels.get(r.qid)] if t == NO_ANSWER else []
        by_type[t]["no_answer_queries"] = len(sub_na)
        by_type[t]["no_answer_confident"] = (round(sum(r.self_resolve for r in sub_na) / len(sub_na), 4)
                                             if sub_na else None)
    out["by_type"] = by_type
    return {k: out[k] for k in METRIC_KEYS}


def evaluate_rankings(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]],
                      types: dict[str, str] | None = None) -> dict:
    """Metrics of plain document rankings (one card per document), for the variant sweeps."""
    return evaluate_runs([QueryRun(q, as_cards(r)) for q, r in runs.items()], qrels, types, latency=False)


def sweep_row(metrics: dict) -> dict:
    """The ranking metrics of a variant sweep (no latency, no guidance, no per-type split)."""
    return {k: metrics[k] for k in ("hit@1", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10", "queries")}


def run_queries(ds: Dataset, modes: list[str], settings: Settings, limit: int = 0) -> dict[str, list[QueryRun]]:
    """Every labeled query and every ``no_answer`` query through the product's search, in each mode.

    The modes of one query run back to back and share its vector (the dense and hybrid
    searches embed the same text), which halves an evaluation's embedding work; a search
    that reused the vector is charged the time the embedding took, so every latency is
    what a user would wait."""
    from hikitsugi.search.service import search

    qids = ds.run_ids()[: limit or None]
    runs: dict[str, list[QueryRun]] = {m: [] for m in modes}
    with shared_query_vectors(settings) as reused_ms:
        for qid in tqdm(qids, desc=f"queries ({', '.join(modes)})", unit="q", file=sys.stderr, disable=None):
            for mode in modes:
                reused_ms[0] = 0.0
                t = time.perf_counter()
                resp = search(ds.queries[qid], settings, k=10, mode=mode)
                ms = (time.perf_counter() - t) * 1000 + reused_ms[0]
                cards = [[r.source_id, *r.similar_ids] for r in resp.results]
                runs[mode].append(QueryRun(qid, cards, bool(resp.guidance and resp.guidance.action == "self_resolve"),
                                           ms))
    return runs


@contextmanager
def shared_query_vectors(settings: Settings) -> Iterator[list[float]]:
    """Within an evaluation, the last query text's vector is reused; yields a one-item list
    that receives the embedding time a reuse saved (to be added to that search's latency)."""
    from hikitsugi.embedding.encoder import get_embedder

    emb = get_embedder(settings)
    original = emb.embed_query
    last: dict[str, tuple] = {}
    reused_ms = [0.0]

    def embed_query(text: str):
        if text in last:
            reused_ms[0] += last[text][1]
            return last[text][0]
        t = time.perf_counter()
        vec = original(text)
        last.clear()
        last[text] = (vec, (time.perf_counter() - t) * 1000)
        return vec

    emb.embed_query = embed_query
    try:
        yield reused_ms
    finally:
        emb.embed_query = original


def fold_keys(settings: Settings) -> dict[str, str]:
    """source id -> the key the result cards fold cases by (see hikitsugi.search.cards.fold_key)."""
    from sqlalchemy import select

    from hikitsugi.search.cards import fold_key
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Document

    session = session_for(settings.db_url)
    try:
        out = {}
        for sid, kind, meta in session.execute(select(Document.source_id, Document.kind, Document.meta)
                                               .where(Document.retired_at.is_(None))):
            key = fold_key(kind, (meta or {}).get("cause_group"), (meta or {}).get("resolution"))
            if key:
                out[sid] = key
        return out
    finally:
        session.close()


@dataclass
class EvalRun:
    """Everything one data set's evaluation produced, for the JSON and the HTML report."""

    name: str
    metrics: dict[str, dict]
    latencies: dict[str, list[float]]
    per_query: dict[str, list[dict]]
    overlap: dict = field(default_factory=dict)  # query <-> relevant content-word overlap (eval.overlap)


def per_query_rows(ds: Dataset, runs: list[QueryRun]) -> list[dict]:
    rows = []
    for r in runs:
        rel = ds.qrels.get(r.qid, {})
        ranks = [i for i, card in enumerate(r.cards, 1) if any(rel.get(d, 0) > 0 for d in card)]
        rows.append({"query_id": r.qid, "query": ds.queries[r.qid], "type": ds.types.get(r.qid, ""),
                     "relevant": rel, "returned": [c[0] for c in r.cards], "cards": r.cards,
                     "relevant_ranks": ranks, "rr@10": round(mrr_at(r.cards, rel, 10), 4) if rel else None,
                     "recall@5": round(recall_at(r.cards, rel, 5), 4) if rel else None,
                     "self_resolve": r.self_resolve})
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
        run.overlap = query_overlap(ds.queries, ds.qrels, corpus_texts(eval_settings), ds.types)
        folds = fold_keys(eval_settings)
        for mode, runs in run_queries(ds, modes, eval_settings, limit).items():
            run.metrics[mode] = evaluate_runs(runs, ds.qrels, ds.types, folds)
            run.latencies[mode] = [r.latency_ms for r in runs]
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
    cols = ["hit@1", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10", "queries",
            "no_answer_queries", "no_answer_confident", "latency_ms_p50", "latency_ms_p95"]
    side = [{"dataset": r.name, "mode": m, **{c: r.metrics[m][c] for c in cols}} for r in runs for m in r.metrics]
    sections.append(("Side by side", table(side, ["dataset", "mode", *cols])))
    sections.append(("Query ↔ relevant content-word overlap (share of a query's content words found in its "
                     "best-matching relevant document)",
                     table([{"dataset": r.name, "overlap": r.overlap.get("mean"), "queries": r.overlap.get("queries"),
                             "by type": ", ".join(f"{t} {v:.2f}" for t, v in r.overlap.get("by_type", {}).items())}
                            for r in runs], ["dataset", "overlap", "queries", "by type"])))
    for r in runs:
        for m, v in r.metrics.items():
            if v["by_type"]:
                rows = [{"type": t, **{c: x[c] for c in ("queries", "hit@5", "mrr@10", "recall@5", "ndcg@10",
                                                          "no_answer_queries", "no_answer_confident")}}
                        for t, x in v["by_type"].items()]
                sections.append((f"{r.name} ({m}) by query type", table(rows, ["type", "queries", "hit@5", "mrr@10",
                                                                              "recall@5", "ndcg@10", "no_answer_queries",
                                                                              "no_answer_confident"])))
    for r in runs:
        for mode, rows in r.per_query.items():
            with (out_dir / f"per_query-{r.name}-{mode}.jsonl").open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        sections.append((f"{r.name}: metrics per mode", img(recall_plot(r.metrics, r.name), "metrics per mode")))
        sections.append((f"{r.name}: latency", img(latency_plot(r.latencies), "latency histogram")))
        mode = "hybrid" if "hybrid" in r.per_query else next(iter(r.per_query))
        worst = sorted((x for x in r.per_query[mode] if x["rr@10"] is not None),
                       key=lambda x: (x["rr@10"], x["query_id"]))[:20]
        rows = [{"query": w["query"], "relevant": ", ".join(sorted(w["relevant"]))[:120],
                 "returned instead (top 3)": ", ".join(w["returned"][:3]), "rr@10": w["rr@10"]} for w in worst]
        sections.append((f"{r.name}: 20 worst queries ({mode})",
                         table(rows, ["query", "relevant", "returned instead (top 3)", "rr@10"])))
    data = {r.name: {**r.metrics, "query_overlap": r.overlap} for r in runs}
    return write_report(out_dir, "retrieval", f"Retrieval evaluation ({', '.join(modes)})", data, sections)
