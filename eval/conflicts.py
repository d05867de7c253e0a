"""``hikitsugi eval conflicts``: precision and recall of conflict detection on a labeled set.

The labeled set (``eval/datasets/conflicts-ja/labels.yaml`` over ``data/samples``; the dev
set ``eval/datasets/conflicts-dev`` over its own small corpus) lists pairs *a* (older
advice: a case, a manual section, a customer's commitment) / *b* (newer case or note),
each a real conflict or a look-alike. The corpus is ingested into a throw-away home with
the product's own ingest (detection runs in its after-generation hook, as in
production), then every candidate pair is scored once, so the threshold can be swept
without re-ingesting.

* ``precision`` — of **every** pair detected in the corpus, the share that is a labeled
  conflict. A detection the labels do not mention counts as wrong (strict: the labels
  claim to list every conflict in the corpus);
* ``recall`` — of the labeled conflicts, the share detected;
* ``pairs`` — the number of labeled pairs (conflicts + look-alikes).

A manual side matches at document level (detection keeps the best-scoring passage of a
manual per newer record); whether it picked the labeled section is reported as
``section_agreement``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home


def load_labels(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list):
        raise ValueError(f"{path}: expected 'corpus:' and a 'pairs:' list")
    corpus = (path.parent / str(data.get("corpus", "corpus"))).resolve()
    for i, p in enumerate(data["pairs"], 1):
        if not isinstance(p, dict) or not {"a", "b", "conflict"} <= set(p):
            raise ValueError(f"{path}: pair {i}: needs a, b and conflict")
    return corpus, data["pairs"]


def _side_matches(spec: dict[str, Any], sid: str, part: str, text: str) -> tuple[bool, bool]:
    """(matches, exact part) for one labeled side against a detected side."""
    if "id" in spec:
        return sid == spec["id"], True
    if "doc" in spec:
        ok = sid == spec["doc"] or sid.endswith("/" + spec["doc"]) or sid.endswith(spec["doc"])
        section = str(spec.get("section") or "")
        return ok, ok and all(tok in part for tok in section.split())
    if "customer" in spec:
        return sid == spec["customer"] and text.startswith(str(spec["commitment"])), True
    return False, False


def match(label: dict[str, Any], f: Any) -> tuple[bool, bool]:
    if "group" in label["a"]:  # any older case of that resolution group
        a_ok = a_exact = f.a.kind == "case" and (f.a.group or "") == label["a"]["group"]
    else:
        a_ok, a_exact = _side_matches(label["a"], f.a.source_id, f.a.part, f.a.text)
    b_ok, b_exact = _side_matches(label["b"], f.b.source_id, f.b.part, f.b.text)
    return a_ok and b_ok, a_exact and b_exact


def _describe(spec: dict[str, Any]) -> str:
    if "id" in spec:
        return spec["id"]
    if "doc" in spec:
        return f"{spec['doc']} §{spec.get('section', '')}"
    if "group" in spec:
        return f"原因分類「{spec['group']}」の事例"
    return f"{spec['customer']}「{spec['commitment']}」"


def score_labels(found: list[Any], labels: list[dict[str, Any]], threshold: float,
                 split: str | None = None) -> dict[str, Any]:
    """Precision/recall at ``threshold`` from pairs scored once (``score_pairs(keep_all=True)``).
    With ``split`` (dev / test), only that half of the labels is scored; a detection no label
    mentions counts against precision in either half."""
    all_labels = labels
    labels = [lab for lab in labels if split is None or lab.get("split") == split]
    labeled_ids = {id(f) for f in found for lab in all_labels if match(lab, f)[0]}
    in_split = {id(f) for f in found for lab in labels if match(lab, f)[0]}
    detected = [f for f in found if f.score >= threshold and (id(f) in in_split or id(f) not in labeled_ids)]
    per_pair = []
    matched_ids: set[int] = set()
    for lab in labels:
        hits = [(f, exact) for f in found for ok, exact in [match(lab, f)] if ok]
        best = max(hits, key=lambda h: h[0].score) if hits else None
        det = best is not None and best[0].score >= threshold
        if best is not None and det:
            matched_ids.add(id(best[0]))
        per_pair.append({
            "kind": lab.get("kind"), "a": _describe(lab["a"]), "b": _describe(lab["b"]), "conflict": bool(lab["conflict"]),
            "detected": det, "candidate": best is not None, "score": round(best[0].score, 3) if best else None,
            "similarity": round(best[0].similarity, 3) if best else None, "section_match": bool(best and best[1]),
            "signals": [w["signal"] for w in (best[0].why if best else []) if w["signal"] != "similar"],
            "why": lab.get("why", ""),
        })
    positives = [p for p in per_pair if p["conflict"]]
    tp = sum(p["detected"] for p in positives)
    unlabeled = [f for f in detected if id(f) not in labeled_ids]
    fp_labeled = sum(p["detected"] for p in per_pair if not p["conflict"])
    precision = tp / len(detected) if detected else None
    by_kind: dict[str, dict[str, Any]] = {}
    for k in sorted({p["kind"] for p in per_pair}):
        ps = [p for p in per_pair if p["kind"] == k]
        pos = [p for p in ps if p["conflict"]]
        by_kind[k] = {"conflicts": len(pos), "look_alikes": len(ps) - len(pos),
                      "detected": sum(p["detected"] for p in pos),
                      "look_alikes_flagged": sum(p["detected"] for p in ps if not p["conflict"]),
                      "recall": round(sum(p["detected"] for p in pos) / len(pos), 4) if pos else None}
    manual_hits = [p for p in positives if p["detected"] and p["kind"] == "manual_newer"]
    return {
        "threshold": threshold,
        "split": split or "all",
        "precision": round(precision, 4) if precision is not None else None,
        "recall": round(tp / len(positives), 4) if positives else None,
        "pairs": len(per_pair),
        "conflicts_labeled": len(positives), "look_alikes_labeled": len(per_pair) - len(positives),
        "detected": len(detected), "true_positives": tp, "look_alikes_flagged": fp_labeled,
        "unlabeled_detections": len(unlabeled),
        "precision_on_labeled_pairs": round(tp / (tp + fp_labeled), 4) if tp + fp_labeled else None,
        "section_agreement": round(sum(p["section_match"] for p in manual_hits) / len(manual_hits), 4)
        if manual_hits else None,
        "by_kind": by_kind,
        "misses": [p for p in positives if not p["detected"]],
        "false_alarms": [p for p in per_pair if not p["conflict"] and p["detected"]]
        + [{"kind": f.kind, "a": f"{f.a.source_id} {f.a.part}".strip(), "b": f.b.source_id, "conflict": None,
            "score": round(f.score, 3), "signals": [w["signal"] for w in f.why if w["signal"] != "similar"],
            "why": "not in the labels"} for f in unlabeled],
        "per_pair": per_pair,
    }


SWEEP_KEYS = ("threshold", "split", "precision", "recall", "detected", "true_positives", "look_alikes_flagged",
              "unlabeled_detections")


def sweep(found: list[Any], labels: list[dict[str, Any]], thresholds: list[float],
          split: str | None = None) -> list[dict[str, Any]]:
    return [{k: v for k, v in score_labels(found, labels, t, split).items() if k in SWEEP_KEYS} for t in thresholds]


THRESHOLDS = [round(0.2 * i, 1) for i in range(1, 13)]
ANCHORS = [0.4, 0.5, 0.6, 0.7, 0.8, 1.0]


def tune(items: Any, labels: list[dict[str, Any]], settings: Settings, min_precision: float = 0.8) -> dict[str, Any]:
    """Choose (anchor, threshold) on the **dev** half of the labels: the most recall at precision
    ≥ ``min_precision``; ties go to the higher threshold, then the higher anchor (the stricter
    detector). Returns the choice and the dev grid; the caller reports the test half."""
    from hikitsugi.insights.conflicts import score_pairs

    grid = []
    for anchor in ANCHORS:
        s = settings.model_copy(update={"conflict_anchor": anchor})
        found = score_pairs(items, s, keep_all=True)
        for row in sweep(found, labels, THRESHOLDS, "dev"):
            grid.append({"anchor": anchor, **row})
    ok = [g for g in grid if g["precision"] is not None and g["precision"] >= min_precision]
    pool = ok or grid
    best = max(pool, key=lambda g: ((g["recall"] or 0), g["threshold"], g["anchor"]))
    return {"anchor": best["anchor"], "threshold": best["threshold"], "dev": best, "min_precision": min_precision,
            "met": bool(ok), "grid": grid}


def run_conflict_eval(labels_path: Path, settings: Settings, keep_home: Path | None = None,
                      threshold: float | None = None, do_tune: bool = False) -> dict[str, Any]:
    """Ingest the labeled set's corpus into a throw-away home (or use ``keep_home`` as it is) and score
    at the configured anchor and threshold: on all labeled pairs (``precision``, ``recall``) and on
    the test half (``test``). ``do_tune`` also re-chooses both on the dev half (``tuning``)."""
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.insights.conflicts import load_items, score_pairs
    from hikitsugi.storage.database import session_for

    corpus, labels = load_labels(labels_path)
    t0 = dt.datetime.now()
    with (contextlib.nullcontext(settings) if keep_home is not None
          else throwaway_home(settings, "hikitsugi-conflicts-", after_generation=True)) as s:
        if keep_home is None:
            ingest_paths([corpus], s)
        session = session_for(s.db_url)
        try:
            items = load_items(session, s)
        finally:
            session.close()
        tuning = tune(items, labels, s) if do_tune else None
        found = score_pairs(items, s, keep_all=True)
    theta = settings.conflict_threshold if threshold is None else threshold
    out = score_labels(found, labels, theta)
    test = score_labels(found, labels, theta, "test")
    out["test"] = {k: test[k] for k in ("precision", "recall", "pairs", "detected", "true_positives",
                                        "look_alikes_flagged", "unlabeled_detections")}
    out["anchor"] = settings.conflict_anchor
    out["labels"] = str(labels_path)
    out["corpus"] = str(corpus)
    out["candidates"] = len(found)
    out["sweep"] = sweep(found, labels, THRESHOLDS)
    if tuning is not None:
        out["tuning"] = tuning
    out["seconds"] = round((dt.datetime.now() - t0).total_seconds(), 1)
    return out
