"""What leads see: reports over the search log, the feedback and the documents.

* :func:`top_queries` — the most frequent queries (by normalized text) in a window.
* :func:`content_gaps` — queries whose best hit was below the confidence threshold,
  clustered by meaning (real embedder, average-linkage agglomerative clustering with a
  cosine threshold), each cluster labelled by its most central query: the list of
  articles to write next, biggest first.
* :func:`unretrieved_documents` — live documents not shown in any result card in the
  last N days.
* :func:`stale_documents` — live documents (of the kinds that can go out of date:
  manuals, customer records) whose stored version is older than N days.
* :func:`expiring_commitments` — customer commitments (特別対応) ending in the next N days.
* :func:`weekly_deflection` — the live self-resolution rate by week, from the outcomes
  agents reported (「解決した」「役に立たなかった」「エスカレーションした」).

Every function takes an open session and returns plain JSON-able data; the API
(``api/leads.py``), the lead page and ``hikitsugi eval live`` all call them.

Every report that shows stored content takes a ``scope`` (:class:`ReportScope`, keyword
only, no default): the access layer that decides what the caller may see — which logged
queries (by the customers whose private parts their answers showed), which documents
(notes of customers the caller is not in charge of are left out, titles masked), which
parts of a commitment (its reason and approver are private). The API passes the
caller's view (``hikitsugi.api.scope``); in-process tools (CLI, evaluation) pass
:data:`TRUSTED`. A report never decides that itself.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Protocol

import numpy as np
from sqlalchemy import case, false, func, or_, select, true
from sqlalchemy.orm import Session

from hikitsugi.config import Settings
from hikitsugi.insights.feedback import Feedback
from hikitsugi.insights.searchlog import SearchLog
from hikitsugi.storage.schema import Document


class ReportScope(Protocol):
    """What the caller of a report may see (implemented by the access layer)."""

    def documents(self, items: list[dict[str, Any]], via: str) -> list[dict[str, Any]]:
        """Document rows as the caller may see them (rows it may not see are left out)."""

    def commitments(self, items: list[dict[str, Any]], via: str) -> list[dict[str, Any]]:
        """Commitment rows as the caller may see them."""

    def query_scopes(self, scopes: list[str | None]) -> list[str | None]:
        """The search-log scopes whose queries the caller may read."""


class _Trusted:
    """An in-process caller (CLI, evaluation): sees everything, as the owner of the files."""

    def documents(self, items, via):
        return items

    def commitments(self, items, via):
        return items

    def query_scopes(self, scopes):
        return list(scopes)


TRUSTED: ReportScope = _Trusted()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(d: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    if d is None:
        return None
    return d.replace(tzinfo=dt.timezone.utc) if d.tzinfo is None else d.astimezone(dt.timezone.utc)


def _iso(d: dt.datetime | None) -> str | None:
    d = _utc(d)
    return d.isoformat(timespec="seconds") if d else None


def _since(days: int, now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()) - dt.timedelta(days=days)


def log_span(session: Session) -> dict[str, Any]:
    """When the search log starts and how many searches it holds (reports are only as
    old as the log: 'never retrieved in 90 days' means little on a 3-day-old log)."""
    first, last, n = session.execute(
        select(func.min(SearchLog.created_at), func.max(SearchLog.created_at), func.count(SearchLog.id))).one()
    return {"first_search": _iso(first), "last_search": _iso(last), "searches": int(n or 0)}


# --------------------------------------------------------------------------- top queries

def readable(session: Session, since: dt.datetime, scope: ReportScope, *where) -> tuple[Any, int]:
    """(a WHERE clause selecting the search-log rows the caller may read, how many rows it
    leaves out) among the rows logged since ``since``."""
    counts = session.execute(select(SearchLog.scope, func.count(SearchLog.id))
                             .where(SearchLog.created_at >= since, *where).group_by(SearchLog.scope)).all()
    ok = set(scope.query_scopes([sc for sc, _ in counts]))
    withheld = sum(int(n) for sc, n in counts if sc not in ok)
    if not withheld:
        return true(), 0
    named = [sc for sc in ok if sc is not None]
    conds = ([SearchLog.scope.in_(named)] if named else []) + ([SearchLog.scope.is_(None)] if None in ok else [])
    return (or_(*conds) if conds else false()), withheld


def top_queries(session: Session, days: int, limit: int = 20, now: dt.datetime | None = None, *,
                scope: ReportScope) -> dict[str, Any]:
    """``{"days", "items", "withheld"}``: the most frequent readable queries; ``withheld``
    counts the searches in the window whose queries the caller may not read."""
    since = _since(days, now)
    visible, withheld = readable(session, since, scope)
    rows = session.execute(
        select(SearchLog.normalized_query, func.count(SearchLog.id), func.count(func.distinct(SearchLog.user)),
               func.avg(SearchLog.confidence), func.max(SearchLog.created_at), func.min(SearchLog.query),
               func.sum(case((SearchLog.confident.is_(True), 1), else_=0)))
        .where(SearchLog.created_at >= since, visible)
        .group_by(SearchLog.normalized_query)
        .order_by(func.count(SearchLog.id).desc(), func.max(SearchLog.created_at).desc())
        .limit(limit)
    ).all()
    items = [{"query": q, "example": ex, "count": int(n), "users": int(u),
              "avg_confidence": round(float(c), 4) if c is not None else None,
              "confident_share": round(float(ok or 0) / int(n), 3), "last_seen": _iso(last)}
             for q, n, u, c, last, ex, ok in rows]
    return {"days": days, "items": items, "withheld": withheld}


# --------------------------------------------------------------------------- content gaps

_vec_lock = threading.Lock()
_vec_cache: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()


def _embed_cached(texts: list[str], settings: Settings, embed: Callable[[list[str]], np.ndarray] | None) -> np.ndarray:
    """Query vectors, cached per (model, text) in this process so a page refresh does
    not re-embed the whole log."""
    if embed is None:
        from hikitsugi.embedding.encoder import get_embedder

        embed = get_embedder(settings).embed_queries
    key = settings.model
    with _vec_lock:
        missing = [t for t in texts if (key, t) not in _vec_cache]
    if missing:
        # small batches: the embedder is shared with live searches (one encode at a time),
        # so a big report must not hold it for seconds
        vecs = np.concatenate([np.asarray(embed(missing[i:i + 32]), dtype=np.float32)
                               for i in range(0, len(missing), 32)])
        with _vec_lock:
            for t, v in zip(missing, vecs):
                _vec_cache[(key, t)] = v
            while len(_vec_cache) > 4 * max(1, settings.gap_max_queries):
                _vec_cache.popitem(last=False)
    with _vec_lock:
        out = [_vec_cache.get((key, t)) for t in texts]
    if any(v is None for v in out):  # evicted meanwhile (huge concurrent reports): embed directly
        return np.asarray(embed(texts), dtype=np.float32)
    return np.stack(out)


def cluster_queries(texts: list[str], weights: list[int], vectors: np.ndarray,
                    similarity: float) -> list[list[int]]:
    """Average-linkage agglomerative clustering on cosine distance, cut at
    ``1 - similarity``. Returns clusters as lists of indexes, each ordered with its most
    central member first (highest count-weighted mean similarity to the others)."""
    n = len(texts)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    z = linkage(x.astype(np.float64), method="average", metric="cosine")
    labels = fcluster(z, t=max(0.0, 1.0 - similarity), criterion="distance")
    groups: dict[int, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        groups[int(lab)].append(i)
    w = np.asarray(weights, dtype=np.float64)
    out = []
    for members in groups.values():
        sims = x[members] @ x[members].T
        centrality = sims @ w[members]
        order = sorted(range(len(members)), key=lambda j: (-centrality[j], -w[members[j]], texts[members[j]]))
        out.append([members[j] for j in order])
    return out


def content_gaps(session: Session, settings: Settings, days: int, limit: int = 30,
                 similarity: float | None = None, now: dt.datetime | None = None,
                 embed: Callable[[list[str]], np.ndarray] | None = None, *, scope: ReportScope) -> dict[str, Any]:
    """Queries with no confident hit, clustered by meaning, biggest cluster first.

    The cost is bounded: at most ``gap_max_queries`` distinct queries are embedded and
    clustered — the ones asked by the most users, then the most often, then the latest —
    so a flood of distinct queries from one key neither slows the report down (embedding
    and average-linkage clustering grow with the number of distinct queries: 2,000 took
    12 s) nor pushes out what many agents asked. ``distinct_queries`` and
    ``clustered_queries`` say how many there were and how many were clustered."""
    since = _since(days, now)
    sim = settings.gap_similarity if similarity is None else similarity
    visible, withheld = readable(session, since, scope)
    no_hit = (SearchLog.created_at >= since, SearchLog.confident.is_(False), visible)
    rows = session.execute(
        select(SearchLog.normalized_query, func.count(SearchLog.id), func.max(SearchLog.created_at),
               func.max(SearchLog.confidence), func.min(SearchLog.query), func.count(func.distinct(SearchLog.user)))
        .where(*no_hit)
        .group_by(SearchLog.normalized_query)
        .order_by(func.count(func.distinct(SearchLog.user)).desc(), func.count(SearchLog.id).desc(),
                  func.max(SearchLog.created_at).desc(), SearchLog.normalized_query)
        .limit(max(1, settings.gap_max_queries))
    ).all()
    total = session.scalar(select(func.count(SearchLog.id)).where(SearchLog.created_at >= since, visible)) or 0
    no_hit_n = session.scalar(select(func.count(SearchLog.id)).where(*no_hit)) or 0
    distinct = session.scalar(select(func.count(func.distinct(SearchLog.normalized_query))).where(*no_hit)) or 0
    head = {"days": days, "similarity": sim, "threshold": settings.self_resolve_threshold, "searches": int(total),
            "no_confident_hit": int(no_hit_n), "distinct_queries": int(distinct), "clustered_queries": len(rows),
            "withheld": withheld}
    if not rows:
        return {**head, "clusters": [], "clusters_total": 0}
    texts = [r[0] for r in rows]
    weights = [int(r[1]) for r in rows]
    vectors = _embed_cached(texts, settings, embed)
    clusters = []
    for members in cluster_queries(texts, weights, vectors, sim):
        qs = [{"query": rows[i][0], "example": rows[i][4], "count": int(rows[i][1]),
               "best_confidence": round(float(rows[i][3]), 4) if rows[i][3] is not None else None,
               "last_seen": _iso(rows[i][2])} for i in members]
        clusters.append({
            "label": rows[members[0]][0], "count": sum(q["count"] for q in qs), "distinct_queries": len(qs),
            "users": max(int(rows[i][5]) for i in members),
            "last_seen": max((q["last_seen"] for q in qs if q["last_seen"]), default=None),
            "queries": sorted(qs, key=lambda q: -q["count"]),
        })
    clusters.sort(key=lambda c: (-c["count"], -c["distinct_queries"], c["label"]))
    return {**head, "clusters": clusters[:limit], "clusters_total": len(clusters)}


# --------------------------------------------------------------------------- documents

def _kinds(kinds: list[str] | str | None) -> list[str]:
    if kinds is None:
        return []
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    return [k.strip() for k in kinds if k and k.strip()]


def unretrieved_documents(session: Session, days: int, kinds: list[str] | str | None = None, limit: int = 200,
                          now: dt.datetime | None = None, *, scope: ReportScope) -> dict[str, Any]:
    """Live documents (that the caller may see) which appeared in no result list of the last ``days`` days."""
    since = _since(days, now)
    seen: set[str] = set()
    for (ids,) in session.execute(select(SearchLog.result_ids).where(SearchLog.created_at >= since)):
        seen.update(ids or [])
    q = select(Document.source_id, Document.kind, Document.title, Document.source_path, Document.updated_at,
               Document.customer).where(Document.retired_at.is_(None))
    ks = _kinds(kinds)
    if ks:
        q = q.where(Document.kind.in_(ks))
    docs = scope.documents([{"source_id": s, "kind": k, "title": t, "source_path": p, "updated_at": _iso(u),
                             "customer": c} for s, k, t, p, u, c in
                            session.execute(q.order_by(Document.kind, Document.source_id))], "analytics/unretrieved")
    never = [d for d in docs if d["source_id"] not in seen]
    by_kind: dict[str, int] = defaultdict(int)
    for d in never:
        by_kind[d["kind"]] += 1
    return {"days": days, "documents": len(docs), "never_retrieved": len(never), "by_kind": dict(by_kind),
            "items": [_listed(d) for d in never[:limit]]}


def _listed(d: dict[str, Any], *extra: str) -> dict[str, Any]:
    keys = ("source_id", "kind", "title", "source_path", "updated_at", "redacted") + extra
    return {k: d[k] for k in keys if k in d}


def stale_documents(session: Session, days: int, kinds: list[str] | str | None, limit: int = 200,
                    now: dt.datetime | None = None, *, scope: ReportScope) -> dict[str, Any]:
    """Live documents (that the caller may see) whose stored version was last changed more than ``days`` days ago."""
    cutoff = _since(days, now)
    q = select(Document.source_id, Document.kind, Document.title, Document.source_path, Document.updated_at,
               Document.customer).where(Document.retired_at.is_(None), Document.updated_at < cutoff)
    ks = _kinds(kinds)
    if ks:
        q = q.where(Document.kind.in_(ks))
    ref = now or utcnow()
    rows = scope.documents([{"source_id": s, "kind": k, "title": t, "source_path": p, "updated_at": _iso(u),
                             "age_days": (ref - _utc(u)).days if u else None, "customer": c}
                            for s, k, t, p, u, c in session.execute(q.order_by(Document.updated_at,
                                                                                 Document.source_id))],
                           "analytics/stale")
    return {"days": days, "kinds": ks, "stale": len(rows),
            "items": [_listed(d, "age_days", "customer") for d in rows[:limit]]}


def desk_today(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Today where the desk works (the ``timezone`` setting, else the server's zone)."""
    return (now or utcnow()).astimezone(_zone(getattr(settings, "timezone", None))).date()


def expiring_commitments(session: Session, days: int, today: dt.date | None = None, *,
                         scope: ReportScope) -> dict[str, Any]:
    """Commitments (特別対応) of customer records whose ``valid_until`` falls within
    today … today + ``days`` (inclusive), soonest first; reason and approver only where
    the caller may see them."""
    today = today or dt.date.today()
    end = today + dt.timedelta(days=days)
    items = []
    rows = session.execute(select(Document.source_id, Document.meta)
                           .where(Document.kind == "customer", Document.retired_at.is_(None))).all()
    for sid, meta in rows:
        meta = meta or {}
        for c in meta.get("commitments") or []:
            until = c.get("valid_until")
            if not until:
                continue
            try:
                day = dt.date.fromisoformat(str(until)[:10])
            except ValueError:
                continue
            if today <= day <= end:
                items.append({"customer_id": str(meta.get("customer_id") or sid), "customer": meta.get("customer", sid),
                              "rank": meta.get("rank"),
                              "owner": meta.get("owner"), "what": c.get("what"), "reason": c.get("reason"),
                              "approved_by": c.get("approved_by"), "valid_until": day.isoformat(),
                              "days_left": (day - today).days})
    items.sort(key=lambda i: (i["valid_until"], i["customer_id"]))
    return {"days": days, "today": today.isoformat(), "items": scope.commitments(items, "analytics/expiring")}


# --------------------------------------------------------------------------- live deflection

def _zone(tz: str | None):
    if not tz:
        return None  # the server's local time zone
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def _week_start(d: dt.datetime, tz: str | None = None) -> dt.date:
    day = _utc(d).astimezone(_zone(tz)).date()  # weeks as the desk lives them: its time zone
    return day - dt.timedelta(days=day.weekday())


def weeks_since(weeks: int | None, now: dt.datetime | None = None, tz: str | None = None) -> dt.datetime | None:
    """Start (UTC) of the week ``weeks - 1`` weeks before the current one; None = all time."""
    if not weeks:
        return None
    start = _week_start(now or utcnow(), tz) - dt.timedelta(weeks=weeks - 1)
    zone = _zone(tz)
    local = dt.datetime.combine(start, dt.time(), tzinfo=zone) if zone else dt.datetime.combine(start, dt.time()).astimezone()
    return local.astimezone(dt.timezone.utc)


def weekly_deflection(session: Session, weeks: int | None = None, now: dt.datetime | None = None,
                      tz: str | None = None) -> dict[str, Any]:
    """The live self-resolution rate by week (Monday to Sunday in ``tz``, the desk's time
    zone — the ``timezone`` setting; None = the server's local zone).

    The unit is a search an agent reported on (feedback rows sharing a ``search_id``;
    a row without one counts alone). Its outcome is 「解決した」 if any card was marked
    resolved, else 「エスカレーションした」 if it was escalated, else 「役に立たなかった」.
    ``self_resolution_rate`` = resolved / searches with an outcome; ``feedback_rate`` =
    searches with an outcome / searches served that week.
    """
    since = weeks_since(weeks, now, tz)
    fq = select(Feedback.id, Feedback.search_id, Feedback.outcome, Feedback.created_at)
    sq = select(SearchLog.created_at)
    if since is not None:
        fq, sq = fq.where(Feedback.created_at >= since), sq.where(SearchLog.created_at >= since)
    units: dict[str, tuple[dt.datetime, set[str]]] = {}
    for fid, sid, outcome, at in session.execute(fq.order_by(Feedback.created_at)):
        key = sid or f"feedback:{fid}"
        if key in units:
            units[key][1].add(outcome)
        else:
            units[key] = (at, {outcome})
    weeks_data: dict[dt.date, dict[str, Any]] = {}

    def week(d: dt.date) -> dict[str, Any]:
        if d not in weeks_data:
            iso = d.isocalendar()
            weeks_data[d] = {"week": f"{iso.year}-W{iso.week:02d}", "week_start": d.isoformat(), "searches": 0,
                             "outcomes": 0, "resolved": 0, "escalated": 0, "not_helpful": 0}
        return weeks_data[d]

    for (at,) in session.execute(sq):
        week(_week_start(at, tz))["searches"] += 1
    for at, outcomes in units.values():
        w = week(_week_start(at, tz))
        w["outcomes"] += 1
        w["resolved" if "resolved" in outcomes else "escalated" if "escalated" in outcomes else "not_helpful"] += 1
    rows = [weeks_data[d] for d in sorted(weeks_data)]
    for w in rows:
        n = w["outcomes"]
        w["self_resolution_rate"] = round(w["resolved"] / n, 4) if n else None
        w["escalation_rate"] = round(w["escalated"] / n, 4) if n else None
        w["feedback_rate"] = round(n / w["searches"], 4) if w["searches"] else None
    tot = {k: sum(w[k] for w in rows) for k in ("searches", "outcomes", "resolved", "escalated", "not_helpful")}
    tot["self_resolution_rate"] = round(tot["resolved"] / tot["outcomes"], 4) if tot["outcomes"] else None
    tot["escalation_rate"] = round(tot["escalated"] / tot["outcomes"], 4) if tot["outcomes"] else None
    return {"weeks": rows, "total": tot, "since": _iso(since)}


# --------------------------------------------------------------------------- everything

def lead_report(session: Session, settings: Settings, now: dt.datetime | None = None,
                embed: Callable[[list[str]], np.ndarray] | None = None, *, scope: ReportScope) -> dict[str, Any]:
    """Every lead report with the configured windows (what the lead page shows)."""
    return {
        "generated_at": _iso(now or utcnow()),
        "log": log_span(session),
        "top_queries": top_queries(session, settings.analytics_days, now=now, scope=scope),
        "content_gaps": content_gaps(session, settings, settings.analytics_days, now=now, embed=embed, scope=scope),
        "unretrieved": unretrieved_documents(session, settings.unretrieved_days, now=now, scope=scope),
        "stale": stale_documents(session, settings.stale_days, settings.stale_kinds, now=now, scope=scope),
        "expiring": expiring_commitments(session, settings.expiring_days, today=desk_today(settings, now),
                                         scope=scope),
        "deflection": weekly_deflection(session, now=now, tz=getattr(settings, "timezone", None)),
    }
