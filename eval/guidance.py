"""``hikitsugi eval guidance``: calibrate the self-resolve threshold on labeled queries.

For every labeled query (and every query labeled as having no answer) the product's
search runs once; then, for each candidate threshold, the product's own
:func:`hikitsugi.guidance.decide.decide` is re-applied to the same result cards. Reported per
threshold: how often guidance says ``self_resolve``, how often those steps came from a
relevant case (precision — the number that matters to an agent who follows them), and
how often a query with no answer in the corpus was wrongly told to self-resolve.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.eval.retrieval import load_dataset

THRESHOLDS = [round(float(t), 2) for t in np.arange(0.80, 0.951, 0.01)]


def calibrate(root: Path, settings: Settings, keep_home: Path | None = None,
              min_precision: float = 0.9) -> dict[str, Any]:
    from hikitsugi.guidance.decide import decide
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    ds = load_dataset(root)
    types = ds.types
    with throwaway_home(settings, "hikitsugi-guidance-", keep_home) as s:
        ingest_paths(ds.ingest, s, kind=ds.kind)
        answered = [q for q in ds.queries if ds.qrels.get(q)]
        unanswerable = [q for q in ds.queries if not ds.qrels.get(q) and types.get(q) == "no_answer"]
        runs = []
        for qid in tqdm(answered + unanswerable, desc="guidance", unit="q", file=sys.stderr, disable=None):
            resp = search(ds.queries[qid], s, k=10)
            runs.append((qid, resp))
    sweep = []
    for t in THRESHOLDS:
        st = s.model_copy(update={"self_resolve_threshold": t})
        self_n = correct = wrong_noanswer = 0
        for qid, resp in runs:
            g = decide(resp.normalized_query, None, resp.results, [], st)
            if resp.guidance and resp.guidance.rules:
                continue  # an escalation rule fired: escalate whatever the threshold
            if g.action != "self_resolve":
                continue
            self_n += 1
            rel = ds.qrels.get(qid, {})
            if not rel:
                wrong_noanswer += 1
            elif any(rel.get(b, 0) > 0 for b in g.based_on):
                correct += 1
        sweep.append({"threshold": t, "self_resolve_rate": round(self_n / max(1, len(runs)), 4),
                      "precision": round(correct / self_n, 4) if self_n else None,
                      "no_answer_told_self_resolve": wrong_noanswer})
    ok = [x for x in sweep if x["precision"] is not None and x["precision"] >= min_precision]
    best = max(ok, key=lambda x: (x["self_resolve_rate"], -x["threshold"])) if ok else sweep[-1]
    return {"queries": len(runs), "answered": len(answered), "no_answer": len(unanswerable),
            "min_precision": min_precision, "recommended_threshold": best["threshold"],
            "at_recommended": best, "at_shipped": next((x for x in sweep if abs(x["threshold"] - settings.self_resolve_threshold) < 1e-9), None),
            "sweep": sweep}
