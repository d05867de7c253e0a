"""The lexical side at scale: exhaustive BM25 against the budgeted plan of
:class:`hikitsugi.index.lexical.LexicalQuery`, per setting pair (budget, pool).

    python -m bench.lexical --home .hikitsugi/scale1m [--budgets 0,100000,300000,1000000] [--pools 1000,2000,5000] [--json]

``--home`` is a home kept by ``python -m bench.scale --keep DIR`` (any home with an index
works). Queries: the labeled support queries (kanji) and their hiragana forms (the reading
field takes part), as the product forms them (:func:`hikitsugi.search.retrieve.query_forms`),
top ``candidates`` rows (100), no filter. For each setting: lexical p50/p95 ms (one thread,
settings measured interleaved query by query), how often the top list has exactly the
exhaustive list's scores (``same_scores``; row ids alone would count a swap of two rows
with equal scores as a miss — the synthetic corpus holds many), the mean share of the
exhaustive top-10 rows found in the top 10, and how often the plan could prove itself exact.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _queries() -> list[str]:
    out = []
    for name in ("support-ja", "support-ja-kana"):
        qfile = REPO / "eval" / "datasets" / name / "queries.jsonl"
        out += [json.loads(x)["text"] for x in qfile.read_text(encoding="utf-8").splitlines() if x.strip()]
    return out


def run(home: Path, budgets: list[int], pools: list[int], n_queries: int) -> dict:
    from hikitsugi.config import get_settings
    from hikitsugi.embedding.encoder import model_path
    from hikitsugi.index.lexical import LexicalQuery
    from hikitsugi.ingest.normalize import normalize
    from hikitsugi.search.retrieve import get_snapshot, lexical_query, query_forms

    base = get_settings()
    s = base.model_copy(update={"home": home, "database_url": "", "model": model_path(base)})
    snap = get_snapshot(s.index_dir)
    n = s.candidates
    configs = [(b, p) for b in budgets for p in (pools if b else [0])]
    stats = {c: {"lat": [], "same": 0, "top10": [], "exact": 0} for c in configs}
    queries = [normalize(q) for q in _queries()][:n_queries]
    for q in queries[:5]:  # warm: postings in the page cache
        lexical_query(query_forms(q, s, snap), s, snap, None).top(n)
    for q in queries:
        forms = query_forms(q, s, snap)
        ref = lexical_query(forms, s.model_copy(update={"lexical_scatter_budget": 0}), snap, None)
        ref_rows, ref_scores = ref.top(n)
        for budget, pool in configs:
            st = s.model_copy(update={"lexical_scatter_budget": budget, "lexical_pool": pool or s.lexical_pool})
            t = time.perf_counter()
            lq: LexicalQuery = lexical_query(forms, st, snap, None)
            rows, scores = lq.top(n)
            stats[(budget, pool)]["lat"].append((time.perf_counter() - t) * 1000)
            same = len(scores) == len(ref_scores) and np.allclose(scores, ref_scores, atol=1e-4)
            stats[(budget, pool)]["same"] += same
            stats[(budget, pool)]["exact"] += lq.exact
            top_ref = set(ref_rows[:10].tolist())
            if top_ref:
                stats[(budget, pool)]["top10"].append(len(top_ref & set(rows[:10].tolist())) / len(top_ref))
    out = {"chunks": int(snap.lexical.n_rows), "queries": len(queries), "candidates": n, "settings": []}
    for (budget, pool), st in stats.items():
        out["settings"].append({
            "budget": budget, "pool": pool,
            "p50_ms": round(statistics.median(st["lat"]), 2), "p95_ms": round(float(np.percentile(st["lat"], 95)), 2),
            "same_scores": round(st["same"] / len(queries), 3),
            "top10_rows_found": round(float(np.mean(st["top10"])), 4) if st["top10"] else None,
            "provably_exact": round(st["exact"] / len(queries), 3),
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="A home with an index (bench.scale --keep DIR).")
    ap.add_argument("--budgets", default="0,100000,300000,1000000")
    ap.add_argument("--pools", default="1000,2000,5000")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.home / "index" / "CURRENT").exists():
        sys.exit(f"{args.home}: no index here; build one with python -m bench.scale --chunks N --keep {args.home}")
    res = run(args.home, [int(x) for x in args.budgets.split(",")], [int(x) for x in args.pools.split(",")],
              args.queries)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    print(f"{res['chunks']:,} chunks, {res['queries']} queries, top {res['candidates']}, no filter")
    print("| budget (postings) | pool | p50 ms | p95 ms | same scores as exhaustive | top-10 rows found | provably exact |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["settings"]:
        print(f"| {r['budget'] or 'exhaustive'} | {r['pool'] or '-'} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['same_scores']} | {r['top10_rows_found']} | {r['provably_exact']} |")


if __name__ == "__main__":
    main()
