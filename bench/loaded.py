"""Search latency with and without a CPU hog on the other core.

    python -m bench.loaded [--queries 200] [--variants onnx-int8,torch-fp32,torch-fp32-active] [--json]

The samples are ingested into a throw-away home once; then each variant runs in a fresh
process: the labeled support queries (hybrid, k = 10, one client) are answered in rounds
that alternate between a quiet machine and one where a busy-looping process is pinned to
the last core, so drift in the machine's own load falls on both sides alike. Reports p50/p95
both ways and their ratio (target: loaded p50 ≤ 2 × quiet p50).

Variants: ``onnx-int8`` (the default encoder), ``torch-fp32`` (the reference, with the
passive OpenMP wait policy hikitsugi sets) and ``torch-fp32-active`` (the same with
``OMP_WAIT_POLICY=ACTIVE``: what every search paid before).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


HOG = "import os\ntry:\n    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})\nexcept OSError:\n    pass\nwhile True:\n    pass\n"


def start_hog():
    """A busy-looping process pinned to the last core (a plain subprocess: benchmark
    workers are daemonic and may not start multiprocessing children). Stop it with
    ``.kill()``."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HOG])
    time.sleep(0.3)
    return proc


def _variant(settings_json: str, encoder: str, n_queries: int, rounds: int) -> dict:
    from hikitsugi.config import Settings
    from hikitsugi.search.service import search

    s = Settings.model_validate_json(settings_json).model_copy(update={"encoder": encoder})
    qfile = REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl"
    qs = [json.loads(x)["text"] for x in qfile.read_text(encoding="utf-8").splitlines() if x.strip()]
    qs = (qs * (n_queries // len(qs) + 1))[:n_queries]
    for q in qs[:5]:
        search(q, s, k=10)
    lat: dict[str, list[float]] = {"quiet": [], "loaded": []}
    per = max(1, len(qs) // rounds)
    for r in range(rounds):
        for phase in ("quiet", "loaded"):
            hog = start_hog() if phase == "loaded" else None
            for q in qs[r * per:(r + 1) * per]:
                t = time.perf_counter()
                search(q, s, k=10)
                lat[phase].append((time.perf_counter() - t) * 1000)
            if hog:
                hog.kill()
                hog.wait()
    pct = lambda xs, p: round(float(np.percentile(xs, p)), 1)  # noqa: E731
    out = {"omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "quiet_p50_ms": pct(lat["quiet"], 50), "quiet_p95_ms": pct(lat["quiet"], 95),
           "loaded_p50_ms": pct(lat["loaded"], 50), "loaded_p95_ms": pct(lat["loaded"], 95)}
    out["loaded_over_quiet_p50"] = round(out["loaded_p50_ms"] / out["quiet_p50_ms"], 2)
    return out


def run(variants: list[str], n_queries: int, rounds: int = 4, keep: Path | None = None) -> dict:
    from hikitsugi.config import get_settings
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.index.update import ingest_paths

    out = {}
    with throwaway_home(get_settings(), "hikitsugi-loaded-", keep) as s:
        for v in variants:
            encoder = "torch-fp32" if v.startswith("torch-fp32") else v
            es = s.model_copy(update={"encoder": encoder})
            ingest_paths([REPO / "data" / "samples"], es)  # embeds once per encoder (vectors are kept per model)
            saved = os.environ.get("OMP_WAIT_POLICY")
            os.environ["OMP_WAIT_POLICY"] = "ACTIVE" if v.endswith("-active") else "PASSIVE"
            try:
                with mp.get_context("spawn").Pool(1) as pool:
                    out[v] = pool.apply(_variant, (es.model_dump_json(), encoder, n_queries, rounds))
            finally:
                if saved is None:
                    os.environ.pop("OMP_WAIT_POLICY", None)
                else:
                    os.environ["OMP_WAIT_POLICY"] = saved
            print(f"{v}: {out[v]}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--variants", default="onnx-int8,torch-fp32,torch-fp32-active")
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run([v.strip() for v in args.variants.split(",") if v.strip()], args.queries, args.rounds, args.keep)
    if args.json:
        print(json.dumps(res))
        return
    print("| variant | quiet p50 | quiet p95 | loaded p50 | loaded p95 | loaded/quiet p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for v, r in res.items():
        print(f"| {v} | {r['quiet_p50_ms']} | {r['quiet_p95_ms']} | {r['loaded_p50_ms']} | {r['loaded_p95_ms']} | "
              f"{r['loaded_over_quiet_p50']} |")


if __name__ == "__main__":
    main()
