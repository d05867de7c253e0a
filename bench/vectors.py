"""Vector index backends at scale: build time, memory, latency and recall@10 against exact,
unfiltered and filtered, with the query plan's choice for each filter.

    python -m bench.vectors --chunks 1000000 [--backends exact,ivf-sq8,hnsw] [--json]

Vectors are synthetic mixes of the real sample chunk vectors (:mod:`bench.synth`); queries
are the 199 labeled support queries embedded for real. A filter of selectivity s allows a
random share s of the rows (one customer, one product, a viewer's visible rows).
Latency is per query, one thread, measured interleaved across backends.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SELECTIVITIES = (1.0, 0.5, 0.2, 0.05, 0.01, 0.001)


def sample_texts(settings) -> tuple[list[str], list[str]]:
    """(the sample chunks as the dense side sees them, the 199 labeled support queries)."""
    from hikitsugi.index.snapshot import embed_text
    from hikitsugi.ingest.pipeline import discover, parse_bytes
    from hikitsugi.ingest.sentences import chunk_blocks

    files, _ = discover([REPO / "data" / "samples"], None)
    texts = []
    for f in files:
        res = parse_bytes(f, f.path.read_bytes(), None)
        for doc in res.docs:
            for ch in chunk_blocks(doc.blocks, settings.chunk_chars, settings.chunk_overlap_sentences):
                texts.append(embed_text(doc.title, ch.context, ch.text))
    qfile = REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl"
    queries = [json.loads(x)["text"] for x in qfile.read_text(encoding="utf-8").splitlines() if x.strip()]
    return texts, queries


def real_vectors(settings) -> tuple[np.ndarray, np.ndarray]:
    """(sample chunk vectors, support query vectors) with the configured encoder."""
    from hikitsugi.embedding.encoder import get_embedder

    enc = get_embedder(settings)
    texts, queries = sample_texts(settings)
    print(f"embedding {len(texts)} sample chunks and {len(queries)} queries", file=sys.stderr, flush=True)
    return enc.embed_passages(texts, 32), enc.embed_queries(queries, 32)


def recall(found: dict[int, float], truth: dict[int, float]) -> float:
    return len(set(found) & set(truth)) / max(1, len(truth))


def run(n: int, backends: list[str], k: int = 10, real: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    from hikitsugi.config import get_settings
    from hikitsugi.index.vectors import backend_class, params_of
    from hikitsugi.index.vectors import plan as vplan
    from hikitsugi.index.vectors.exact import ExactIndex

    from hikitsugi.bench.synth import mixed_vectors

    settings = get_settings()
    base, queries = real or real_vectors(settings)
    t = time.perf_counter()
    vecs, _ = mixed_vectors(base, n)
    print(f"{n} synthetic vectors in {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)
    rng = np.random.default_rng(3)
    masks = {s: None if s >= 1.0 else rng.random(n) < s for s in SELECTIVITIES}
    truth_index = ExactIndex(vecs) if n <= 2_000_000 else None
    out: dict = {"chunks": n, "queries": len(queries), "backends": {}}
    built = {}
    for kind in backends:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        built[kind] = truth_index if kind == "exact" else backend_class(kind).build(vecs, params_of(settings))
        build_s = time.perf_counter() - t
        out["backends"][kind] = {"build_s": round(build_s, 1),
                                 "peak_rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                               - rss0) / 1024)}
        print(f"built {kind} in {build_s:.1f}s", file=sys.stderr, flush=True)
    for s, mask in masks.items():
        truth = [truth_index.search(q, k, mask) for q in queries]
        lat: dict[str, list[float]] = {}
        rec: dict[str, list[float]] = {}
        for qi, q in enumerate(queries):  # interleaved: every backend answers the same query in turn
            for kind, idx in built.items():
                for name, fn in (("index", lambda: idx.search(q, k, mask)),
                                 ("plan", lambda: vplan.search(idx, q, k, mask, settings.plan_restricted_max_rows,
                                                               settings.plan_min_selectivity)[0])):
                    if kind == "exact" and name == "plan":
                        continue
                    t = time.perf_counter()
                    found = fn()
                    lat.setdefault(f"{kind}/{name}", []).append((time.perf_counter() - t) * 1000)
                    rec.setdefault(f"{kind}/{name}", []).append(recall(found, truth[qi]))
            if mask is not None:
                t = time.perf_counter()
                found = built[next(iter(built))].restricted(q, k, mask)
                lat.setdefault("restricted-scan", []).append((time.perf_counter() - t) * 1000)
                rec.setdefault("restricted-scan", []).append(recall(found, truth[qi]))
        row = {}
        for key in lat:
            row[key] = {"p50_ms": round(float(np.percentile(lat[key], 50)), 3),
                        "p95_ms": round(float(np.percentile(lat[key], 95)), 3),
                        "recall@10": round(float(np.mean(rec[key])), 4)}
        for kind, idx in built.items():
            if kind != "exact":
                row[f"{kind}/plan"]["method"] = vplan.choose_plan(idx, mask, settings.plan_restricted_max_rows,
                                                                  settings.plan_min_selectivity).method
        out[f"selectivity {s}"] = row
        print(json.dumps({f"selectivity {s}": row}), file=sys.stderr, flush=True)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="1000000", help="Index size, or several separated by commas.")
    ap.add_argument("--backends", default="exact,ivf-sq8,hnsw")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from hikitsugi.config import get_settings

    real = real_vectors(get_settings())
    for n in [int(x) for x in args.chunks.split(",") if x.strip()]:
        res = run(n, [b.strip() for b in args.backends.split(",") if b.strip()], real=real)
        if args.json:
            print(json.dumps(res, ensure_ascii=False), flush=True)
        else:
            _print(res)


def _print(res: dict) -> None:
    print(f"{res['chunks']:,} vectors, {res['queries']} queries; build: "
          + ", ".join(f"{k} {v['build_s']} s (+{v['peak_rss_growth_mib']} MiB)" for k, v in res["backends"].items()))
    print("| filter allows | path | plan chose | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---|---:|---:|---:|")
    for key, row in res.items():
        if key.startswith("selectivity"):
            for path, m in row.items():
                print(f"| {key.split()[1]} | {path} | {m.get('method', '')} | {m['p50_ms']} | {m['p95_ms']} | "
                      f"{m['recall@10']} |", flush=True)


if __name__ == "__main__":
    main()
