"""``hikitsugi eval live``: the live self-resolution rate by week, from the outcomes agents
recorded in the search box and on the search page (「解決した」「役に立たなかった」
「エスカレーションした」, each with the query and the results shown).

The offline replay (:mod:`eval.deflection`) estimates what *could* be deflected; this
reports what first line actually resolved alone, week by week. The counting rule lives
in :func:`hikitsugi.insights.reports.weekly_deflection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from hikitsugi.config import Settings
from hikitsugi.insights.feedback import OUTCOME_LABELS, Feedback
from hikitsugi.insights.reports import weekly_deflection, weeks_since
from hikitsugi.storage.database import session_for


def live_deflection(settings: Settings, weeks: int | None = None, top_documents: int = 10) -> dict[str, Any]:
    """Weekly rates plus the documents most often marked 解決した / 役に立たなかった."""
    session = session_for(settings.db_url)
    try:
        tz = getattr(settings, "timezone", None)
        result = weekly_deflection(session, weeks, tz=tz)
        since = weeks_since(weeks, tz=tz)
        q = select(Feedback.source_id, Feedback.outcome).where(Feedback.source_id.is_not(None))
        if since is not None:
            q = q.where(Feedback.created_at >= since)
        per_doc: dict[str, dict[str, int]] = {}
        for sid, outcome in session.execute(q):
            d = per_doc.setdefault(sid, {"source_id": sid, "resolved": 0, "not_helpful": 0})
            if outcome in d:
                d[outcome] += 1
    finally:
        session.close()
    docs = list(per_doc.values())
    result["most_resolving"] = sorted([d for d in docs if d["resolved"]], key=lambda d: (-d["resolved"], d["source_id"]))[:top_documents]
    result["most_unhelpful"] = sorted([d for d in docs if d["not_helpful"]],
                                      key=lambda d: (-d["not_helpful"], d["source_id"]))[:top_documents]
    result["definition"] = ("unit = one search an agent reported on; its outcome is resolved if any card was marked "
                            f"{OUTCOME_LABELS['resolved']}, else escalated if {OUTCOME_LABELS['escalated']}, else "
                            f"not_helpful; self_resolution_rate = resolved / searches with an outcome")
    return result


def write_live_report(out_dir: Path, result: dict[str, Any]) -> Path:
    """live.json and live.html (weekly plot and tables)."""
    from hikitsugi.eval.report import img, table, weekly_plot, write_report

    weeks = result["weeks"]
    plotted = [w for w in weeks if w["self_resolution_rate"] is not None]
    cols = ["week", "week_start", "self_resolution_rate", "resolved", "escalated", "not_helpful", "outcomes",
            "searches", "feedback_rate"]
    sections = [
        ("Summary", table([result["total"]], ["self_resolution_rate", "escalation_rate", "resolved", "escalated",
                                               "not_helpful", "outcomes", "searches"])
         + f"<p>{result['definition']}</p>"),
        ("Self-resolution rate by week",
         img(weekly_plot(plotted), "self-resolution rate by week") if plotted else "<p>No outcomes recorded yet.</p>"),
        ("Weeks", table(list(reversed(weeks)), cols)),
        ("Documents most often marked 解決した", table(result["most_resolving"], ["source_id", "resolved", "not_helpful"])),
        ("Documents most often marked 役に立たなかった",
         table(result["most_unhelpful"], ["source_id", "not_helpful", "resolved"])),
    ]
    return write_report(out_dir, "live", "Live deflection (recorded outcomes)", result, sections)
