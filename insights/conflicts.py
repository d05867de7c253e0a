"""Contradictions in the knowledge base: found after every index generation, shown, resolved.

Three kinds, each a pair (a = the older advice, b = the newer case or note):

* ``case_case`` — two cases whose symptoms are alike (same resolution group, cosine ≥
  ``conflict_case_similarity``; or any group at ≥ ``conflict_cross_group_similarity``)
  and whose fixes disagree;
* ``manual_newer`` — a manual passage and a case or note dated after the manual's
  revision (read from its first lines: 第4.2版（2026年4月改定） …) on the same topic
  (cosine ≥ ``conflict_manual_similarity``) that contradicts it;
* ``commitment_note`` — a customer's commitment (特別対応) and a note of the same customer
  written after the commitment started (cosine ≥ ``conflict_commitment_similarity``)
  that changes, ends or extends it where the record does not say so.

Pairs on the same topic come from the vectors already stored for every chunk (a
commitment's own text gets one vector, embedded once and kept in the ``embeddings``
table like every other); whether they disagree is decided by the explainable scorer
(:mod:`hikitsugi.insights.contradiction`) over the texts. Each conflict is stored with
both sides, their dates and the signals that made it (``conflicts`` table,
:mod:`hikitsugi.storage.conflicts`); a pair found again keeps its id and a lead's
resolution; a conflict no longer found is marked ``gone``.

Everything returned to a caller goes through :func:`conflict_view`, which applies the
access policy (:mod:`hikitsugi.access.policy`) side by side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikitsugi.access import masking
from hikitsugi.access import policy as access
from hikitsugi.access.audit import append as audit_append
from hikitsugi.config import Settings
from hikitsugi.insights.contradiction import compare, terms
from hikitsugi.storage.conflicts import KINDS, RESOLUTIONS, STATUSES, Conflict
from hikitsugi.storage.schema import Chunk, Document, Embedding

log = logging.getLogger("hikitsugi.conflicts")
NEIGHBOURS = 10  # candidate cases compared per case
MANUAL_NEIGHBOURS = 5  # manual passages compared per newer case or note
RESOLUTION_CONTEXT = "対応"  # heading of a case's resolution block (ingest.parsers.records)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ------------------------------------------------------------------ what is compared

@dataclass
class Item:
    """One side of a possible conflict: a case, a manual passage, a note or a commitment."""

    source_id: str
    kind: str
    part: str
    title: str
    date: str | None
    text: str
    customer: str | None  # customer key (access policy)
    vector: np.ndarray | None = None
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Found:
    kind: str
    a: Item
    b: Item
    score: float
    why: list[dict[str, Any]]
    similarity: float

    @property
    def id(self) -> str:
        key = "|".join([self.kind, self.a.source_id, self.a.part, self.b.source_id, self.b.part])
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256((self.a.text + "\x00" + self.b.text).encode()).hexdigest()


_REVISION = re.compile(r"(\d{4})年(\d{1,2})月(?:(\d{1,2})日)?")
_REVISION_WORDS = re.compile(r"版|改定|改訂|制定|更新|発行|作成")


def manual_revision(text: str) -> str | None:
    """The revision date a manual states at its top (第4.2版（2026年4月改定）, 2026年7月版), as
    the last day of that month (a case of the same month is not counted as newer)."""
    for m in _REVISION.finditer(text[:600]):
        around = text[max(0, m.start() - 12):m.end() + 12]
        if _REVISION_WORDS.search(around):
            y, mo = int(m.group(1)), int(m.group(2))
            try:
                if m.group(3):
                    return dt.date(y, mo, int(m.group(3))).isoformat()
                nxt = dt.date(y + (mo == 12), mo % 12 + 1, 1)
                return (nxt - dt.timedelta(days=1)).isoformat()
            except ValueError:
                return None
    return None


def _vectors(session: Session, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(hashes), 500):
        for h, v in session.execute(select(Embedding.embed_hash, Embedding.vector).where(
                Embedding.model == model, Embedding.embed_hash.in_(hashes[i:i + 500]))):
            out[h] = np.frombuffer(v, dtype=np.float32)
    return out


def _embed_cached(session: Session, settings: Settings, texts: list[str]) -> dict[str, np.ndarray]:
    """Vectors of short texts (commitments) from the embeddings table, embedding the missing ones once."""
    from hikitsugi.embedding.encoder import get_embedder, model_id
    from hikitsugi.index.snapshot import embed_hash

    mid = model_id(settings)
    by_hash = {embed_hash(mid, t): t for t in texts}
    have = _vectors(session, mid, list(by_hash))
    missing = [h for h in by_hash if h not in have]
    if missing:
        vecs = get_embedder(settings).embed_passages([by_hash[h] for h in missing], settings.embed_batch_size)
        for h, v in zip(missing, vecs):
            v = np.asarray(v, dtype=np.float32)
            session.add(Embedding(model=mid, embed_hash=h, vector=v.tobytes()))
            have[h] = v
        session.commit()
    return {by_hash[h]: have[h] for h in by_hash}


def load_items(session: Session, settings: Settings) -> dict[str, list[Item]]:
    """Cases (symptom vector, fix text), manual passages, notes and commitments of the live documents."""
    from hikitsugi.embedding.encoder import model_id

    mid = model_id(settings)
    cat = access.catalog(session, settings.db_url, None)
    rows = session.execute(
        select(Document.id, Document.source_id, Document.kind, Document.title, Document.customer, Document.occurred_at,
               Document.meta, Chunk.ordinal, Chunk.context, Chunk.text, Chunk.embed_hash)
        .join(Chunk, Chunk.document_id == Document.id)
        .where(Document.retired_at.is_(None), Document.kind.in_(("case", "manual", "note", "customer")))
        .order_by(Document.id, Chunk.ordinal)).all()
    vecs = _vectors(session, mid, list({r.embed_hash for r in rows}))
    out: dict[str, list[Item]] = defaultdict(list)
    by_doc: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_doc[r.id].append(r)
    commitments: list[tuple[Item, list[dict[str, Any]]]] = []
    for chunks in by_doc.values():
        d = chunks[0]
        meta = d.meta or {}
        key = cat.doc_key(d.kind, d.source_id, d.customer, meta)
        if d.kind == "case":
            symptom = next((c for c in chunks if not (c.context or "").startswith(RESOLUTION_CONTEXT)), chunks[0])
            fix = next((c for c in chunks if (c.context or "").startswith(RESOLUTION_CONTEXT)), None)
            resolution = str(meta.get("resolution") or "")
            if not resolution or d.occurred_at is None:
                continue
            cause = str(meta.get("cause") or "")
            out["case"].append(Item(
                d.source_id, "case", RESOLUTION_CONTEXT, d.title, d.occurred_at, resolution, key,
                vecs.get(symptom.embed_hash), str(meta.get("cause_group") or "") or None,
                {"challenge": resolution + ("\n" + cause if cause else ""),
                 "fix_vector": vecs.get(fix.embed_hash) if fix is not None else None}))
        elif d.kind == "manual":
            revision = manual_revision("\n".join(c.text for c in chunks[:3]))
            for c in chunks:
                out["manual"].append(Item(d.source_id, "manual", c.context or "", d.title, revision, c.text, key,
                                          vecs.get(c.embed_hash)))
        elif d.kind == "note":
            if d.occurred_at is None:
                continue
            text = "\n".join(c.text for c in chunks)
            vs = [vecs[c.embed_hash] for c in chunks if c.embed_hash in vecs]
            out["note"].append(Item(d.source_id, "note", "", d.title, d.occurred_at, text, key,
                                    np.mean(vs, axis=0) if vs else None, extra={"chunk_vectors": vs}))
        elif d.kind == "customer":
            coms = [c for c in meta.get("commitments") or [] if isinstance(c, dict) and c.get("what")]
            for i, c in enumerate(coms):
                item = Item(d.source_id, "customer", f"commitment:{i}", f"{meta.get('customer') or d.title} 特別対応",
                            c.get("valid_from"), str(c["what"]), key,
                            extra={"valid_from": c.get("valid_from"), "valid_until": c.get("valid_until")})
                commitments.append((item, coms))
    if commitments:
        vectors = _embed_cached(session, settings, sorted({i.text for i, _ in commitments}))
        for item, coms in commitments:
            item.vector = vectors.get(item.text)
            item.extra["siblings"] = coms
            out["commitment"].append(item)
    return out


# ------------------------------------------------------------------ candidates and scoring

def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def term_idf(items: dict[str, list[Item]]) -> dict[str, float]:
    """Each term's ln(documents / documents with the term) / ln(documents) over every document
    compared: 1.0 for a term of one document, 0.5 for one in √N documents, 0 for one in all of
    them — scaled by the corpus size so that one threshold suits a small desk and a big one.
    The key "" holds the weight of a term found in one document only."""
    df: Counter[str] = Counter()
    docs: dict[str, set[str]] = defaultdict(set)
    for group in items.values():
        for it in group:
            docs[it.source_id] |= terms(it.text + "\n" + str(it.extra.get("challenge", "")) + "\n" + it.part)
    for ts in docs.values():
        df.update(ts)
    n = max(2, len(docs))
    idf = {t: math.log(n / c) / math.log(n) for t, c in df.items()}
    idf[""] = 1.0
    return idf


def _later(a: str | None, b: str | None) -> bool:
    return bool(a and b and b[:10] > a[:10])


def _case_pairs(cases: list[Item], settings: Settings) -> list[tuple[Item, Item, float]]:
    cases = [c for c in cases if c.vector is not None]
    if len(cases) < 2:
        return []
    x = _unit(np.stack([c.vector for c in cases]).astype(np.float32))
    k = min(NEIGHBOURS + 1, len(cases))
    out = []
    seen: set[tuple[int, int]] = set()
    for start in range(0, len(cases), 512):
        sims = x[start:start + 512] @ x.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, row in enumerate(top):
            i = start + r
            for j in row:
                j = int(j)
                if i == j or (min(i, j), max(i, j)) in seen:
                    continue
                s = float(sims[r, j])
                a, b = (cases[i], cases[j]) if (cases[i].date or "") <= (cases[j].date or "") else (cases[j], cases[i])
                same = a.group is not None and a.group == b.group
                if s >= (settings.conflict_case_similarity if same else settings.conflict_cross_group_similarity) \
                        and _later(a.date, b.date):
                    seen.add((min(i, j), max(i, j)))
                    out.append((a, b, s))
    return out


def _manual_pairs(manuals: list[Item], newer: list[Item], settings: Settings) -> list[tuple[Item, Item, float]]:
    manuals = [m for m in manuals if m.vector is not None]
    if not manuals:
        return []
    mx = _unit(np.stack([m.vector for m in manuals]).astype(np.float32))
    out = []
    for b in newer:
        vs = [v for v in ([b.extra.get("fix_vector")] if b.kind == "case" else b.extra.get("chunk_vectors", []))
              if v is not None] or ([b.vector] if b.vector is not None else [])
        if not vs:
            continue
        sims = (_unit(np.stack(vs).astype(np.float32)) @ mx.T).max(axis=0)
        for j in np.argsort(-sims)[:MANUAL_NEIGHBOURS]:
            a = manuals[int(j)]
            if sims[j] >= settings.conflict_manual_similarity and (a.date is None or _later(a.date, b.date)):
                out.append((a, b, float(sims[j])))
    return out


def _commitment_pairs(commitments: list[Item], notes: list[Item], settings: Settings) -> list[tuple[Item, Item, float]]:
    by_customer: dict[str, list[Item]] = defaultdict(list)
    for n in notes:
        if n.customer:
            by_customer[n.customer].append(n)
    out = []
    for c in commitments:
        if c.vector is None:
            continue
        cv = c.vector / max(float(np.linalg.norm(c.vector)), 1e-12)
        for n in by_customer.get(c.customer or "", []):
            if c.date and not _later(c.date, n.date) and c.date[:10] != (n.date or "")[:10]:
                continue  # written before the commitment started: cannot supersede it
            vs = n.extra.get("chunk_vectors") or []
            if not vs:
                continue
            s = float(max(float(v @ cv) / max(float(np.linalg.norm(v)), 1e-12) for v in vs))
            if s >= settings.conflict_commitment_similarity:
                out.append((c, n, s))
    return out


def _siblings_ends(c: Item) -> list[str | None]:
    """End dates of the customer's commitments on the same matter (a renewal already on the record)."""
    mine = terms(c.text)
    ends = []
    for other in c.extra.get("siblings") or []:
        t = terms(str(other.get("what") or ""))
        if mine and len(mine & t) >= 0.6 * len(mine):
            ends.append(other.get("valid_until"))
    return ends


def score_pairs(items: dict[str, list[Item]], settings: Settings, threshold: float | None = None,
                keep_all: bool = False) -> list[Found]:
    """Every candidate pair scored; those at or above the threshold (all of them with ``keep_all``)."""
    theta = settings.conflict_threshold if threshold is None else threshold
    idf = term_idf(items)
    found: list[Found] = []

    def judge(kind: str, a: Item, b: Item, sim: float, **kw: Any) -> None:
        topic = a.part.split(" > ")[-1] if a.kind == "manual" else ""
        v = compare(a.text, str(b.extra.get("challenge") or b.text), kind=kind, idf=idf, topic=topic,
                    min_overlap=settings.conflict_anchor, **kw)
        if keep_all or v.score >= theta:
            why = [{"signal": "similar", "weight": 0.0,
                    "text": f"話題が近い（コサイン {sim:.2f}）", "quote_a": "", "quote_b": ""}]
            found.append(Found(kind, a, b, v.score, why + [s.to_dict() for s in v.signals], sim))

    for a, b, s in _case_pairs(items.get("case", []), settings):
        judge("case_case", a, b, s)
    for a, b, s in _manual_pairs(items.get("manual", []), items.get("case", []) + items.get("note", []), settings):
        judge("manual_newer", a, b, s)
    for a, b, s in _commitment_pairs(items.get("commitment", []), items.get("note", []), settings):
        judge("commitment_note", a, b, s, advice_dates=(a.extra.get("valid_from"), a.extra.get("valid_until")),
              newer_date=b.date, record_ends=_siblings_ends(a))
    # one conflict per newer record and older source: a manual's best-scored passage, a resolution
    # group's best-scored case (a newer case that contradicts a fix contradicts every older case of
    # that fix: the lead needs it once, with the closest one as the example)
    best: dict[tuple[str, str, str], Found] = {}
    for f in found:
        older = f"group:{f.a.group}" if f.kind == "case_case" and f.a.group else f.a.source_id
        key = (f.kind, older, f.b.source_id)
        if key not in best or (f.score, f.similarity) > (best[key].score, best[key].similarity):
            best[key] = f
    return sorted(best.values(), key=lambda f: (-f.score, f.kind, f.a.source_id, f.b.source_id))


# ------------------------------------------------------------------ persistence

@dataclass
class DetectionReport:
    candidates: int = 0
    found: int = 0
    new: int = 0
    reopened: int = 0
    gone: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (f"conflicts: {self.found} found ({kinds or 'none'}); new {self.new}, reopened {self.reopened}, "
                f"gone {self.gone}; {self.seconds:.1f}s")


def _side(row: Conflict, prefix: str, it: Item) -> None:
    for name in ("source_id", "kind", "part", "title", "date", "text", "customer"):
        setattr(row, f"{prefix}_{name}", getattr(it, name))


def detect(session: Session, settings: Settings) -> DetectionReport:
    """Find the conflicts of the live knowledge base and bring the table in line (one transaction)."""
    import time

    t0 = time.perf_counter()
    report = DetectionReport()
    found = score_pairs(load_items(session, settings), settings)
    now = _now()
    existing = {c.id: c for c in session.scalars(select(Conflict))}
    seen: set[str] = set()
    for f in found:
        if f.id in seen:
            continue
        seen.add(f.id)
        row = existing.get(f.id)
        if row is None:
            row = Conflict(id=f.id, kind=f.kind, status="open", detected_at=now)
            session.add(row)
            report.new += 1
        elif row.status == "gone" or (row.status == "resolved" and row.fingerprint != f.fingerprint):
            row.status, row.resolution, row.resolution_note = "open", None, None
            row.resolved_by = row.resolved_at = None
            report.reopened += 1
        row.score, row.why, row.fingerprint, row.last_seen_at = f.score, f.why, f.fingerprint, now
        row.customer = f.a.customer or f.b.customer
        _side(row, "a", f.a)
        _side(row, "b", f.b)
        report.by_kind[f.kind] = report.by_kind.get(f.kind, 0) + 1
    for cid, row in existing.items():
        if cid not in seen and row.status == "open":
            row.status = "gone"
            report.gone += 1
    session.commit()
    report.found = len(seen)
    report.seconds = round(time.perf_counter() - t0, 2)
    log.info("%s", report)
    return report


def detect_after_generation(session: Session, settings: Settings, generation: str) -> str:
    """The after-generation hook (``after_generation`` setting): detect on the new generation's documents."""
    return str(detect(session, settings))


# ------------------------------------------------------------------ reading and resolving

class NotFound(LookupError):
    pass


def _side_view(row: Conflict, p: str, viewer: access.Principal | None, cat: access.Catalog,
               reads: access.Reads) -> dict[str, Any]:
    kind, sid, key = getattr(row, f"{p}_kind"), getattr(row, f"{p}_source_id"), getattr(row, f"{p}_customer")
    lv = access.level(viewer, kind, key)
    date = getattr(row, f"{p}_date")
    if lv == access.HIDDEN:
        return {"hidden": True, "kind": kind, "date": date, "level": lv}
    out = {"hidden": False, "level": lv, "source_id": sid, "kind": kind, "part": getattr(row, f"{p}_part"),
           "title": getattr(row, f"{p}_title"), "date": date, "text": getattr(row, f"{p}_text"),
           "url": f"/documents/{sid}"}
    if lv == access.BASIC:
        found: set[str] = set()
        for f in ("title", "text", "part"):
            masked, kinds = masking.mask(out[f] or "", cat.lexicon)
            out[f] = masked
            found |= kinds
        out["redacted"] = bool(found) or kind == "customer"
    elif key is not None and viewer is not None:
        if kind == "note":
            reads.add(f"document:{sid}", "private", via_conflict=row.id, customer=key)
    return out


def conflict_view(row: Conflict, viewer: access.Principal | None, cat: access.Catalog,
                  reads: access.Reads) -> dict[str, Any] | None:
    """A conflict as this viewer may see it: each side at its own access level (hidden sides
    show their kind and date only; basic sides are masked), the scorer's quotes of a hidden
    side removed. None when the viewer may see neither side."""
    a, b = _side_view(row, "a", viewer, cat, reads), _side_view(row, "b", viewer, cat, reads)
    if a["hidden"] and b["hidden"]:
        return None
    why = []
    for w in row.why or []:
        w = dict(w)
        for p, side in (("a", a), ("b", b)):
            q = w.get(f"quote_{p}") or ""
            if side["hidden"]:
                w[f"quote_{p}"] = ""
            elif side["level"] == access.BASIC:
                w[f"quote_{p}"] = masking.mask(q, cat.lexicon)[0]
        if a["hidden"] or b["hidden"]:
            w["text"] = masking.mask(w.get("text") or "", cat.lexicon)[0]
        why.append(w)
    return {"id": row.id, "kind": row.kind, "status": row.status, "score": row.score, "why": why, "a": a, "b": b,
            "detected_at": _iso(row.detected_at), "last_seen_at": _iso(row.last_seen_at),
            "resolution": row.resolution, "resolution_note": row.resolution_note if not (a["hidden"] or b["hidden"])
            else None, "resolved_by": row.resolved_by, "resolved_at": _iso(row.resolved_at)}


def _iso(d: dt.datetime | None) -> str | None:
    if d is None:
        return None
    d = d.replace(tzinfo=dt.timezone.utc) if d.tzinfo is None else d
    return d.isoformat(timespec="seconds")


def list_conflicts(session: Session, settings: Settings, viewer: access.Principal | None, reads: access.Reads,
                   status: str | None = "open", kind: str | None = None, limit: int = 200) -> dict[str, Any]:
    """The conflicts list (newest first) with counts by status and kind, as ``viewer`` may see it."""
    if status not in (None, "all", *STATUSES):
        raise ValueError(f"status must be one of {', '.join(STATUSES)} or all")
    if kind not in (None, *KINDS):
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    cat = access.catalog(session, settings.db_url, None)
    rows = session.scalars(select(Conflict).order_by(Conflict.last_seen_at.desc(), Conflict.score.desc())).all()
    items, counts = [], {s: 0 for s in STATUSES}
    by_kind = {k: 0 for k in KINDS}
    for r in rows:
        v = conflict_view(r, viewer, cat, access.Reads())
        if v is None:
            continue
        counts[r.status] = counts.get(r.status, 0) + 1
        if status in (None, "all") or r.status == status:
            if kind is None or r.kind == kind:
                by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
                if len(items) < limit:
                    items.append(conflict_view(r, viewer, cat, reads))
    return {"status": status or "all", "counts": counts, "by_kind": by_kind, "items": items}


def get_conflict(session: Session, settings: Settings, viewer: access.Principal | None, reads: access.Reads,
                 conflict_id: str) -> dict[str, Any]:
    row = session.get(Conflict, conflict_id)
    cat = access.catalog(session, settings.db_url, None)
    view = conflict_view(row, viewer, cat, reads) if row is not None else None
    if view is None:  # alike for "no such id" and "nothing you may see": ids do not leak
        raise NotFound(f"no conflict '{conflict_id}'")
    return view


def resolve(session: Session, settings: Settings, conflict_id: str, winner: str, note: str | None,
            viewer: access.Principal | None, actor: str, source: str | None = None) -> dict[str, Any]:
    """Mark a conflict resolved: ``a`` (the older side stands), ``b`` (the newer side wins) or
    ``both`` (both valid, in different conditions — say which in ``note``). Stored and audited
    in one transaction. A viewer who cannot see both sides may not resolve."""
    if winner not in RESOLUTIONS:
        raise ValueError(f"winner must be one of {', '.join(RESOLUTIONS)} (a = older side, b = newer side, both)")
    if winner == "both" and not (note or "").strip():
        raise ValueError("say in the note in which conditions each side is valid")
    row = session.get(Conflict, conflict_id)
    cat = access.catalog(session, settings.db_url, None)
    view = conflict_view(row, viewer, cat, access.Reads()) if row is not None else None
    if view is None:
        raise NotFound(f"no conflict '{conflict_id}'")
    if view["a"]["hidden"] or view["b"]["hidden"]:
        raise PermissionError("you cannot see both sides of this conflict; ask a lead assigned to the customer")
    before = row.status
    row.status, row.resolution, row.resolution_note = "resolved", winner, (note or "").strip() or None
    row.resolved_by, row.resolved_at = actor, _now()
    audit_append(session, [{"actor": actor, "role": getattr(viewer, "role", None),
                            "key_id": getattr(viewer, "key_id", None), "action": "conflict.resolve",
                            "target": f"conflict:{row.id}", "field": None, "source": source,
                            "detail": {"winner": winner, "kind": row.kind, "a": row.a_source_id, "b": row.b_source_id,
                                       "previous_status": before, "note": masking.mask(row.resolution_note or "",
                                                                                          cat.lexicon)[0]}}])
    session.commit()
    return conflict_view(row, viewer, cat, access.Reads())
