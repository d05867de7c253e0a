"""``hikitsugi eval deflection``: how many escalations could first line have resolved alone?

Replays an escalation history in time order. Every case is ingested once into a
throw-away home (one embedding pass); then, for each escalated case, the product's own
search runs with the case's symptom text — without its subject line (件名) by default,
since a ticket's subject is often written after the fact and names its resolution
group — and a date filter that admits only cases opened *before* it; the filter works
inside retrieval, so nothing is rebuilt per case.

Counting (:func:`count_at`): at a threshold, a case is **deflected** when guidance says
自己解決 and the card it acts on — the top card — is a past case of the same resolution
group; a **wrong suggestion** when guidance says 自己解決 on a top card of another group.
A case no earlier case shares a group with can never be deflected: the **ceiling** is the
share of replayed cases that have one. The threshold is honest only when it is chosen on
other cases than it is reported on, so the history is split in time
(:func:`time_split`): the threshold is chosen on the earlier part, and the rates are
reported on the later part, at that threshold and at the shipped one.

Two guards keep the replay from reporting a number that means nothing:

* every column override (``--time-column``, ``--group-column``, ``--mapping FILE``) reaches
  *both* the replay's case list and the ingest of the index it searches
  (:func:`column_overrides`, :func:`index_history`) — with the override only on the case
  list, the index held no dates, the "opened before" filter excluded every case and the
  replay reported 0 % deflection at every threshold with no problem listed;
* before replaying, :func:`check_replay_sees_history` checks that the index holds every
  replayed case, as a case, with the date the replay uses, and refuses with the reason
  when it does not.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.index.filters import Filters
from hikitsugi.ingest.normalize import normalize
from hikitsugi.ingest.pipeline import SourceFile, parse_bytes

THRESHOLDS = [round(float(t), 2) for t in np.arange(0.70, 0.96, 0.01)]


@dataclass
class ReplayCase:
    source_id: str
    opened: str
    group: str
    query: str
    hits: list[tuple[str, str, float]]  # (source id, group, confidence) in rank order
    rule_fired: bool = False  # an escalation rule fired: guidance escalates whatever the threshold
    results: list = field(default_factory=list, repr=False)  # the result cards, for re-applying guidance
    has_earlier_same_group: bool = False


class ReplayRefused(ValueError):
    """The replay's searches cannot see the history it replays; the message says why."""


def column_overrides(group_column: str | None = None, time_column: str | None = None,
                     mapping: dict[str, str] | None = None) -> dict[str, str]:
    """One set of column overrides for every step of the replay (flags win over the mapping file)."""
    overrides = dict(mapping or {})
    if group_column:
        overrides["cause_group"] = group_column
    if time_column:
        overrides["date"] = time_column
    return overrides


def index_history(history: Path, settings: Settings, overrides: dict[str, str]):
    """Ingest the history into the replay's home with the same overrides the case list was read with."""
    from hikitsugi.index.update import ingest_paths

    return ingest_paths([history], settings, mapping=overrides)


def check_replay_sees_history(cases: list[dict[str, Any]], settings: Settings, columns: list[str] = ()) -> None:
    """Refuse (:class:`ReplayRefused`) unless the index holds every replayed case as a case
    with the date the replay filters by: otherwise the "opened before" filter hides the
    history and the replay would report a deflection rate that means nothing."""
    from sqlalchemy import select

    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Document

    ids = [c["id"] for c in cases]
    session = session_for(settings.db_url)
    try:
        indexed: dict[str, tuple[str, str | None]] = {}
        for i in range(0, len(ids), 500):
            rows = session.execute(select(Document.source_id, Document.kind, Document.occurred_at).where(
                Document.source_id.in_(ids[i:i + 500]), Document.retired_at.is_(None)))
            indexed.update((sid, (kind, when)) for sid, kind, when in rows)
    finally:
        session.close()
    missing = [c["id"] for c in cases if c["id"] not in indexed]
    not_cases = [c["id"] for c in cases if c["id"] in indexed and indexed[c["id"]][0] != "case"]
    undated = [c["id"] for c in cases if c["id"] in indexed and not indexed[c["id"]][1]]
    other_date = [c["id"] for c in cases if c["id"] in indexed and indexed[c["id"]][1]
                  and indexed[c["id"]][1][:16] != c["opened"][:16]]
    reasons = []
    for bad, what in ((missing, "are not in the index it searches"),
                      (not_cases, "were indexed as notes, not cases (no resolution column recognized), and the "
                                  "replay searches cases"),
                      (undated, "have no date in the index, so the \"opened before\" filter hides them from "
                                "every search"),
                      (other_date, "have another date in the index than the one the replay uses")):
        if bad:
            reasons.append(f"{len(bad)} of {len(cases)} replayed cases {what} (e.g. {', '.join(bad[:3])})")
    if reasons:
        how = ("; columns: " + ", ".join(columns)) if columns else ""
        raise ReplayRefused("refusing to replay: its searches cannot see the history it replays — "
                            + "; ".join(reasons) + how + ". Name the columns with --time-column / --group-column / "
                            "--mapping (they apply to the index as well as to the replay)")


def _load_cases(history: Path, overrides: dict[str, str], text_columns: list[str] | None,
                with_subject: bool = False) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Rows of the history with id, time, group and symptom text, using ingest's column recognition;
    also the problems and the columns recognized (for stderr)."""
    res = parse_bytes(SourceFile(history, history.name), history.read_bytes(), overrides)
    if res.error:
        raise ValueError(f"{history}: {res.error}")
    cases = []
    for doc in res.docs:
        m = doc.meta
        group = m.get("cause_group") or m.get("linked_article") or m.get("cause")
        if not group or not m.get("occurred_at"):
            continue
        if text_columns:
            missing = [c for c in text_columns if c not in doc.raw]
            if missing:
                raise ValueError(f"{history}: no column {missing[0]!r} (columns: {', '.join(doc.raw)})")
            query = " ".join(str(doc.raw.get(c) or "") for c in text_columns).strip()
        else:
            query = symptom_text(doc.title, doc.blocks[0].text, with_subject)
        cases.append({"id": doc.source_id, "opened": m["occurred_at"], "group": normalize(str(group)),
                      "escalated": bool(m.get("escalated_to")), "query": query})
    cases.sort(key=lambda c: c["opened"])
    return cases, res.problems, [str(r) for r in res.columns]


def symptom_text(title: str, body: str, with_subject: bool) -> str:
    """What the agent would have typed: the symptom as reported; the subject line (件名)
    only when asked for (it often names the resolution, written after the fact)."""
    if not with_subject:
        return body or title
    return body if title and body.startswith(title.rstrip("…")) else f"{title} {body}".strip()


# --------------------------------------------------------------------------- counting
def count_at(replay: list[ReplayCase], threshold: float, settings: Settings) -> dict[str, float]:
    """Deflected and wrong-suggestion rates at one threshold, with the product's own guidance
    decision (:func:`hikitsugi.guidance.decide.decide`) re-applied to each case's result cards."""
    from hikitsugi.guidance.decide import decide

    st = settings.model_copy(update={"self_resolve_threshold": threshold})
    deflected = wrong = 0
    for c in replay:
        if c.rule_fired or not c.results:
            continue
        if decide(c.query, None, c.results, [], st).action != "self_resolve":
            continue
        if c.hits[0][1] == c.group:
            deflected += 1
        else:
            wrong += 1
    n = max(1, len(replay))
    return {"threshold": threshold, "deflection_rate": round(deflected / n, 4),
            "wrong_suggestion_rate": round(wrong / n, 4), "cases": len(replay)}


def ceiling(replay: list[ReplayCase]) -> float:
    """Share of cases that an earlier case of the same group exists for: no threshold deflects more."""
    return round(sum(c.has_earlier_same_group for c in replay) / max(1, len(replay)), 4)


def time_split(replay: list[ReplayCase], fraction: float) -> tuple[list[ReplayCase], list[ReplayCase]]:
    """(earlier part, later part): the first ``fraction`` of the cases in time order, and the rest."""
    cut = int(round(len(replay) * fraction))
    ordered = sorted(replay, key=lambda c: (c.opened, c.source_id))
    return ordered[:cut], ordered[cut:]


def sweep(replay: list[ReplayCase], settings: Settings) -> list[dict[str, float]]:
    return [count_at(replay, t, settings) for t in THRESHOLDS]


def recommend(curve: list[dict[str, float]], max_wrong: float) -> dict[str, float]:
    """Most deflection among thresholds whose wrong-suggestion rate stays within max_wrong."""
    ok = [s for s in curve if s["wrong_suggestion_rate"] <= max_wrong] or [curve[-1]]
    return max(ok, key=lambda s: (s["deflection_rate"], s["threshold"]))


def _span(part: list[ReplayCase]) -> dict[str, Any]:
    return {"cases": len(part), "from": part[0].opened if part else None, "to": part[-1].opened if part else None}


def summarize(replay: list[ReplayCase], settings: Settings, max_wrong: float, split: float) -> dict[str, Any]:
    """Choose the threshold on the earlier part, report the later part at it and at the shipped one."""
    early, late = time_split(replay, split)
    chosen = recommend(sweep(early, settings), max_wrong)
    shipped = settings.self_resolve_threshold
    at_shipped = count_at(late, shipped, settings)
    at_chosen = count_at(late, chosen["threshold"], settings)
    return {
        "cases": len(replay),
        "shipped_threshold": shipped,
        "split": {"earlier": _span(early), "later": _span(late), "fraction": split},
        "recommended_threshold": chosen["threshold"],
        "chosen_on_earlier": chosen,
        "deflection_rate": at_shipped["deflection_rate"],
        "wrong_suggestion_rate": at_shipped["wrong_suggestion_rate"],
        "later_at_recommended": at_chosen,
        "ceiling": ceiling(late),
        "ceiling_all": ceiling(replay),
        "all_at_shipped": count_at(replay, shipped, settings),
        "sweep": sweep(late, settings),
    }


# --------------------------------------------------------------------------- the replay
def run_deflection(history: Path, settings: Settings, k: int = 5, group_column: str | None = None,
                   time_column: str | None = None, text_columns: list[str] | None = None,
                   max_wrong: float = 0.05, mapping: dict[str, str] | None = None, with_subject: bool = False,
                   split: float = 0.5) -> dict[str, Any]:
    from hikitsugi.search.service import search

    overrides = column_overrides(group_column, time_column, mapping)
    cases, problems, columns = _load_cases(history, overrides, text_columns, with_subject)
    if not cases:
        raise ValueError(f"{history}: no case has both a date and a resolution group "
                         "(name them with --time-column / --group-column)")
    groups = {c["id"]: c["group"] for c in cases}
    escalated = [c for c in cases if c["escalated"]] or cases
    with throwaway_home(settings, "hikitsugi-deflection-") as s:
        index_history(history, s, overrides)
        check_replay_sees_history(cases, s, columns)
        replay: list[ReplayCase] = []
        for c in tqdm(escalated, desc="replaying", unit="case", file=sys.stderr, disable=None):
            before = (dt.datetime.fromisoformat(c["opened"]) - dt.timedelta(seconds=1)).isoformat()
            resp = search(c["query"], s, k=k, filters=Filters(kinds=["case"], date_to=before))
            hits = [(r.source_id, groups.get(r.source_id, ""), r.dense_score or 0.0) for r in resp.results]
            earlier = any(o["group"] == c["group"] and o["opened"] < c["opened"] for o in cases)
            replay.append(ReplayCase(c["id"], c["opened"], c["group"], resp.normalized_query, hits,
                                     bool(resp.guidance and resp.guidance.rules), resp.results, earlier))
    out = {"history": str(history), "k": k, "max_wrong_suggestion_rate": max_wrong, "with_subject": with_subject,
           **summarize(replay, s, max_wrong, split), "problems": problems, "columns": columns}
    opened = {c["id"]: c["opened"] for c in cases}
    out["per_case"] = [{"id": c.source_id, "opened": c.opened, "group": c.group, "query": c.query,
                        "earlier_same_group": c.has_earlier_same_group, "rule_fired": c.rule_fired,
                        "top": [{"id": i, "group": g, "confidence": round(conf, 4), "opened": opened.get(i)}
                                for i, g, conf in c.hits]}
                       for c in replay]
    return out


def write_deflection_report(out_dir: Path, result: dict[str, Any]) -> Path:
    """deflection.json, per-case dump and deflection.html with the curve."""
    import json

    from hikitsugi.eval.report import deflection_plot, img, table, write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "deflection_per_case.jsonl").open("w", encoding="utf-8") as fh:
        for row in result["per_case"]:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {k: v for k, v in result.items() if k != "per_case"}
    misses = [c for c in result["per_case"] if c["top"] and c["top"][0]["group"] != c["group"]][:20]
    rows = [{"id": c["id"], "opened": c["opened"][:10], "group": c["group"], "query": c["query"][:80],
             "top hit (group)": f"{c['top'][0]['id']} ({c['top'][0]['group']})" if c["top"] else "-"} for c in misses]
    head = {"cases": result["cases"], "later part": result["split"]["later"]["cases"],
            "shipped threshold": result["shipped_threshold"], "deflection (later, shipped)": result["deflection_rate"],
            "wrong (later, shipped)": result["wrong_suggestion_rate"], "ceiling (later)": result["ceiling"],
            "threshold chosen on earlier part": result["recommended_threshold"],
            "deflection (later, chosen)": result["later_at_recommended"]["deflection_rate"],
            "wrong (later, chosen)": result["later_at_recommended"]["wrong_suggestion_rate"]}
    sections = [
        ("Summary (threshold chosen on the earlier part of the history, rates on the later part)",
         table([head], list(head))),
        ("Deflection and wrong suggestions against the threshold (later part)",
         img(deflection_plot(result["sweep"], result["recommended_threshold"]), "deflection curve")),
        ("Sweep", table(result["sweep"], ["threshold", "deflection_rate", "wrong_suggestion_rate"])),
        ("Cases whose top card is of another group (first 20)",
         table(rows, ["id", "opened", "group", "query", "top hit (group)"])),
    ]
    return write_report(out_dir, "deflection", f"Deflection replay: {Path(result['history']).name}", summary, sections)
