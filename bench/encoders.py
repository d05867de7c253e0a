"""The encoder backends side by side: single-query latency (quiet and with a CPU hog on the
other core), passages per second, and the quality guard's MRR@10 and cosine.

    python -m bench.encoders [--queries 199] [--passages 256] [--json]

Variants run in one process, **interleaved** (every query goes to every variant in turn,
passage batches alternate), so a busy machine slows them alike and the ratios hold:
``torch-fp32`` (sentence-transformers, torch's default threads, passive OpenMP waits),
``onnx-int8`` with 1 and 2 intra-op threads, and 1 thread × 2 batches at once (what ingest
uses, ``embed_workers``). Passages are the sample chunks as the dense side embeds them;
queries the labeled support queries. MRR@10 and mean cosine to fp32 are read from the
guard record ``hikitsugi model build`` wrote (jsquad-dev).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def run(n_queries: int, n_passages: int) -> dict:
    from hikitsugi.bench.loaded import start_hog
    from hikitsugi.bench.vectors import sample_texts
    from hikitsugi.config import get_settings
    from hikitsugi.embedding.encoder import model_path
    from hikitsugi.embedding.encoders import create
    from hikitsugi.embedding.encoders.onnx_int8 import guard_record

    s = get_settings()
    path = model_path(s)
    variants = {
        "torch-fp32": create("torch-fp32", path, s.query_prompt, s.passage_prompt, 0),
        "onnx-int8 (1 thread)": create("onnx-int8", path, s.query_prompt, s.passage_prompt, 1, workers=1),
        "onnx-int8 (2 threads)": create("onnx-int8", path, s.query_prompt, s.passage_prompt, 2, workers=1),
        "onnx-int8 (1 thread × 2 batches)": create("onnx-int8", path, s.query_prompt, s.passage_prompt, 1, workers=2),
    }
    texts, queries = sample_texts(s)
    queries = (queries * (n_queries // len(queries) + 1))[:n_queries]
    rng = np.random.default_rng(0)
    passages = [texts[i] for i in rng.choice(len(texts), size=min(n_passages, len(texts)), replace=False)]
    for enc in variants.values():  # warm-up
        enc.embed_query(queries[0])
        enc.embed_passages(passages[:16])
    out: dict = {name: {} for name in variants}
    for phase in ("quiet", "loaded"):
        hog = start_hog() if phase == "loaded" else None
        lat: dict[str, list[float]] = {name: [] for name in variants}
        for q in queries:
            for name, enc in variants.items():
                t = time.perf_counter()
                enc.embed_query(q)
                lat[name].append((time.perf_counter() - t) * 1000)
        for name in variants:
            out[name][f"{phase}_query_p50_ms"] = round(float(np.percentile(lat[name], 50)), 1)
            out[name][f"{phase}_query_p95_ms"] = round(float(np.percentile(lat[name], 95)), 1)
        if phase == "quiet":
            spent = {name: 0.0 for name in variants}
            for _ in range(2):
                for name, enc in variants.items():
                    t = time.perf_counter()
                    enc.embed_passages(passages, 16)
                    spent[name] += time.perf_counter() - t
            for name in variants:
                out[name]["passages_per_s"] = round(2 * len(passages) / spent[name], 1)
        if hog:
            hog.kill()
            hog.wait()
    rec = guard_record(path) or {}
    out["torch-fp32"].update({"mrr@10": rec.get("mrr10_reference"), "cosine_to_fp32": 1.0})
    for name in variants:
        if name.startswith("onnx"):
            out[name].update({"mrr@10": rec.get("mrr10_candidate"), "cosine_to_fp32": rec.get("cosine_mean")})
    base = out["torch-fp32"]
    for name in variants:
        out[name]["query_speedup"] = round(base["quiet_query_p50_ms"] / out[name]["quiet_query_p50_ms"], 2)
        out[name]["passage_speedup"] = round(out[name]["passages_per_s"] / base["passages_per_s"], 2)
    return {"queries": len(queries), "passages": len(passages), "guard_dataset": rec.get("dataset"), "variants": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=199)
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.queries, args.passages)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    print(f"{res['queries']} queries, {res['passages']} passages; MRR@10 and cosine on {res['guard_dataset']}")
    print("| encoder | query p50 / p95 ms | with a hog: p50 / p95 ms | passages/s | speed-up query / passages | "
          "dense MRR@10 | mean cosine to fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in res["variants"].items():
        print(f"| {name} | {r['quiet_query_p50_ms']} / {r['quiet_query_p95_ms']} | {r['loaded_query_p50_ms']} / "
              f"{r['loaded_query_p95_ms']} | {r['passages_per_s']} | {r['query_speedup']}× / {r['passage_speedup']}× | "
              f"{r['mrr@10']} | {r['cosine_to_fp32']} |")


if __name__ == "__main__":
    main()
