"""Hikitsugi side by side with txtai on one BEIR data set, in one run.

    pip install -e ".[peers]"      # txtai: a benchmark-only extra, never imported by the product
    python -m bench.peers --dataset ../shared/eval/jsquad-dev [--queries N] [--json]

Both index the same corpus with the same model folder (the default model built by
``hikitsugi model build``): Hikitsugi as ``eval retrieval`` does (passages ingested as
manuals, its default encoder and hybrid search); txtai in its hybrid mode (dense + BM25
``terms`` index, normalized scores, the e5 ``query: ``/``passage: `` instructions) once with
its default tokenizer (Unicode word segmentation) and once with character 1- and 2-grams
(``txtai-ngram``, the analyzer Hikitsugi's lexical side uses). Index time is wall time to
a searchable index, embedding included. Query latencies are measured **interleaved**:
each query is sent to every system in turn, the order rotating from query to query (the
system that answers right after another finds the CPU caches full of the other's model), so a
noisy machine slows all alike and the ratios hold. MRR@10 and nDCG@10 as in ``eval retrieval``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SYSTEMS = ("hikitsugi", "txtai", "txtai-ngram")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def txtai_config(model_dir: str, ngram: bool) -> dict:
    scoring = {"method": "bm25", "terms": True, "normalize": True}
    if ngram:
        scoring["tokenizer"] = {"ngrams": {"nmin": 1, "nmax": 2}}
    return {"path": model_dir, "hybrid": True, "scoring": scoring, "content": False,
            "instructions": {"query": "query: ", "data": "passage: "}}


def run(dataset: Path, n_queries: int = 0) -> dict:
    from txtai import Embeddings  # benchmark-only extra

    from hikitsugi.config import get_settings
    from hikitsugi.embedding.encoder import get_embedder
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.eval.metrics import mrr_at, ndcg_at, percentile
    from hikitsugi.eval.retrieval import load_dataset
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    ds = load_dataset(dataset)
    corpus = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                title = d.get("title") or ""
                corpus.append((str(d["_id"]), f"{title}\n{d['text']}" if title else d["text"]))
    qids = [q for q in ds.queries if ds.qrels.get(q)]
    qids = qids[:n_queries] if n_queries else qids
    out: dict[str, dict] = {}
    with throwaway_home(get_settings(), "hikitsugi-peers-") as s:
        get_embedder(s)  # model load is not indexing
        t = time.perf_counter()
        ingest_paths(ds.ingest, s, kind=ds.kind)
        out["hikitsugi"] = {"index_s": round(time.perf_counter() - t, 1)}
        _log(f"hikitsugi indexed in {out['hikitsugi']['index_s']}s")
        engines = {}
        for name in SYSTEMS[1:]:
            emb = Embeddings(txtai_config(s.model, ngram=name.endswith("ngram")))
            t = time.perf_counter()
            emb.index([(i, text, None) for i, text in corpus])
            out[name] = {"index_s": round(time.perf_counter() - t, 1)}
            engines[name] = emb
            _log(f"{name} indexed in {out[name]['index_s']}s")

        def ask(name: str, q: str) -> list[tuple[str, ...]]:
            """Ranked cards, each the tuple of document ids it stands for (eval.metrics' shape)."""
            if name == "hikitsugi":
                return [(r.source_id, *r.similar_ids) for r in search(q, s, k=10, mode="hybrid").results]
            return [(str(r[0]),) for r in engines[name].search(q, 10)]

        for name in SYSTEMS:  # warm-up: first calls load lazily
            ask(name, ds.queries[qids[0]])
        runs: dict[str, dict[str, list[str]]] = {n: {} for n in SYSTEMS}
        lat: dict[str, list[float]] = {n: [] for n in SYSTEMS}
        for i, qid in enumerate(qids):
            # each system goes first, second and third in turn: the one after another finds the
            # CPU caches full of the other's model (as bench.scale alternates its two paths)
            for name in SYSTEMS[i % len(SYSTEMS):] + SYSTEMS[:i % len(SYSTEMS)]:
                t = time.perf_counter()
                runs[name][qid] = ask(name, ds.queries[qid])
                lat[name].append((time.perf_counter() - t) * 1000)
            if (i + 1) % 500 == 0:
                _log(f"{i + 1} / {len(qids)} queries")
        for name in SYSTEMS:
            n = max(1, len(qids))
            out[name].update({
                "mrr@10": round(sum(mrr_at(runs[name][q], ds.qrels[q]) for q in qids) / n, 4),
                "ndcg@10": round(sum(ndcg_at(runs[name][q], ds.qrels[q]) for q in qids) / n, 4),
                "latency_ms_p50": round(percentile(lat[name], 50), 1),
                "latency_ms_p95": round(percentile(lat[name], 95), 1),
                "queries": len(qids),
            })
    h = out["hikitsugi"]
    out["ratios"] = {name: {"speedup_p50": round(out[name]["latency_ms_p50"] / h["latency_ms_p50"], 2),
                            "speedup_p95": round(out[name]["latency_ms_p95"] / h["latency_ms_p95"], 2),
                            "mrr@10_diff": round(h["mrr@10"] - out[name]["mrr@10"], 4)}
                     for name in SYSTEMS[1:]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True, help="BEIR folder with corpus.jsonl, e.g. jsquad-dev.")
    ap.add_argument("--queries", type=int, default=0, help="Only the first N labeled queries (0 = all).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.dataset / "corpus.jsonl").is_file():
        print(f"error: {args.dataset / 'corpus.jsonl'} not found: --dataset needs a BEIR folder with a corpus",
              file=sys.stderr)
        raise SystemExit(2)
    res = run(args.dataset, args.queries)
    if args.json:
        print(json.dumps(res))
        return
    print("| system | MRR@10 | nDCG@10 | index s | query p50 ms | query p95 ms | Hikitsugi faster (p50 / p95) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in SYSTEMS:
        r = res[name]
        ratio = res["ratios"].get(name)
        rs = f"{ratio['speedup_p50']}× / {ratio['speedup_p95']}×" if ratio else ""
        print(f"| {name} | {r['mrr@10']} | {r['ndcg@10']} | {r['index_s']} | {r['latency_ms_p50']} | "
              f"{r['latency_ms_p95']} | {rs} |")


if __name__ == "__main__":
    main()
