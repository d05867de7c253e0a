"""Hybrid search: dense (FAISS) + lexical (BM25), fused, grouped into result cards.

Fusion is z-score by default: each candidate's cosine and BM25 score, in standard
deviations from the mean of that side's own top list, weighted and summed. Measured
against min-max score sums and reciprocal rank fusion on JSQuAD and on our support
queries (docs/retrieval.md): RRF throws away how *much* better the best hit is, and
min-max stretches a flat list to look as sure as a peaked one. All three are available
(``fusion`` setting).

The API, the CLI and the evaluation all call :func:`search`, so the numbers the
evaluation reports are the numbers users get.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sqlalchemy import select

from hikitsugi.config import Settings
from index.embedder import get_embedder
from index.filters import Filters, build_mask
from index.guidance import Guidance, decide
from index import access, phrase
from index.highlight import snippet
from index.lexical import tokenize
from index.synonyms import synonym_tokens
from index.snapshot import Snapshot, current_name, lexical_text, load_snapshot
from index.store import Chunk, Document, session_for
from ingest.normalize import fold_for_lexical, normalize

MODES = ("dense", "lexical", "hybrid")


class NoIndexError(RuntimeError):
    """Nothing has been ingested into this HIKITSUGI_HOME yet."""


@dataclass
class Result:
    source_id: str
    kind: str
    title: str
    score: float
    snippet: str
    passage: str
    context: str
    source_path: str
    url: str
    customer: str | None = None
    occurred_at: str | None = None
    resolution: str | None = None
    cause: str | None = None
    status: str | None = None
    resolved_by: str | None = None
    dense_score: float | None = None
    similar_count: int = 0  # other cases with the same resolution group collapsed into this card
    similar_ids: list[str] = field(default_factory=list)
    redacted: bool = False  # personal data masked / private parts left out for this viewer (index.access)


@dataclass
class CustomerContext:
    customer_id: str
    name: str
    rank: str | None
    owner: str | None
    commitments: list[dict[str, Any]]
    arrangements: list[str]
    preferences: list[str]
    matched_by: str  # "parameter" | "query"
    emergency_contacts: list[dict[str, Any]] = field(default_factory=list)  # only for viewers who may see them
    restricted: bool = False  # the viewer sees the basic part only (index.access)


@dataclass
class SearchResponse:
    query: str
    normalized_query: str
    mode: str
    results: list[Result]
    customer: CustomerContext | None = None
    guidance: Guidance | None = None
    took_ms: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    sensitive_reads: access.Reads = field(default_factory=access.Reads)  # for the audit log; not in the JSON

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("sensitive_reads", None)
        return out


_lock = threading.Lock()
_loaded: dict[str, Snapshot] = {}


def get_snapshot(index_dir: Path) -> Snapshot:
    """The current snapshot, reloaded when CURRENT names a new generation (no restart)."""
    name = current_name(index_dir)
    if name is None:
        raise NoIndexError(f"no index in {index_dir.parent}; run `hikitsugi ingest PATH` first")
    key = str(index_dir)
    snap = _loaded.get(key)
    if snap is None or snap.name != name:
        with _lock:
            snap = _loaded.get(key)
            if snap is None or snap.name != name:
                snap = load_snapshot(index_dir, name)
                _loaded[key] = snap
    return snap


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    vals = np.fromiter(scores.values(), dtype=np.float64)
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo
    if span <= 1e-9:
        return {k: 1.0 for k in scores}
    return {k: (v - lo) / span for k, v in scores.items()}


def _standardize(top: dict[int, float], every: dict[int, float]) -> dict[int, float]:
    """Every candidate's score in standard deviations from the mean of the retriever's own top list."""
    if not top:
        return {}
    vals = np.fromiter(top.values(), dtype=np.float64)
    mu, sd = float(vals.mean()), float(vals.std())
    sd = sd if sd > 1e-9 else 1.0
    return {k: (v - mu) / sd for k, v in every.items()}


@dataclass
class Candidates:
    """What both retrievers said about one query.

    ``dense``/``lexical`` are each retriever's own top list; ``dense_all``/``lexical_all``
    give *every* candidate of either list its real score on that side (its cosine — or
    its best sentence's, see :func:`best_sentence` — and its BM25 score), so fusion never
    has to guess a score for a chunk one side did not list.
    """

    dense: dict[int, float] = field(default_factory=dict)
    lexical: dict[int, float] = field(default_factory=dict)
    dense_all: dict[int, float] = field(default_factory=dict)
    lexical_all: dict[int, float] = field(default_factory=dict)


def fuse(c: Candidates, settings: Settings) -> dict[int, float]:
    """Combine the two sides into one {row: score} map.

    The default is z-score fusion: every candidate's score on each side is expressed in
    standard deviations from the mean of that side's own top list, so a lexical list with
    one strong hit and a flat tail is not stretched to look as sure as a dense list with
    many near-equal cosines (what min-max does), and a chunk only one side listed is
    still judged by the other side's real score for it. Measured on two data sets
    against min-max, RRF and other z-score variants: see docs/retrieval.md.
    """
    dense, lexical = c.dense, c.lexical
    if settings.fusion == "zscore":
        w, miss = settings.dense_weight, settings.zscore_missing
        d = _standardize(dense, c.dense_all or dense)
        lx = _standardize(lexical, c.lexical_all or lexical)
        return {cid: w * d.get(cid, miss) + (1 - w) * lx.get(cid, miss) for cid in set(dense) | set(lexical)}
    if settings.fusion == "rrf":
        out: dict[int, float] = {}
        for scores in (dense, lexical):
            for rank, cid in enumerate(sorted(scores, key=scores.get, reverse=True)):
                out[cid] = out.get(cid, 0.0) + 1.0 / (settings.rrf_k + rank + 1)
        return out
    d, lx = _minmax(dense), _minmax(lexical)
    w = settings.dense_weight
    return {cid: w * d.get(cid, 0.0) + (1 - w) * lx.get(cid, 0.0) for cid in set(d) | set(lx)}


_customer_names: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}


def _customer_name_table(session, key: tuple[str, str]) -> list[tuple[str, str, bool]]:
    """(normalized name or alias, customer id, is the id itself) for every live customer record.

    Built once per index generation: customer records change only through an ingest,
    which makes a new generation. Without it every query would read and decode every
    customer record (seconds per query with a few thousand customers).
    """
    table = _customer_names.get(key)
    if table is None:
        rows = session.execute(select(Document.source_id, Document.meta)
                               .where(Document.kind == "customer", Document.retired_at.is_(None))).all()
        table = []
        for sid, meta in rows:
            table.append((normalize(sid), sid, True))
            for n in [meta.get("customer", "")] + list(meta.get("aliases") or []):
                if n:
                    table.append((normalize(n), sid, False))
        with _lock:
            _customer_names.clear()  # only the current generation is worth keeping
            _customer_names[key] = table
    return table


def _customer_context(session, query_norm: str, customer: str | None,
                      cache_key: tuple[str, str]) -> CustomerContext | None:
    table = _customer_name_table(session, cache_key)
    today = dt.date.today().isoformat()
    found_sid = None
    how = "parameter"
    if customer:
        key = normalize(customer)
        found_sid = next((sid for name, sid, _ in table if name == key), None)
        if found_sid is None:
            raise LookupError(f"unknown customer '{customer}' (give a customer id such as C001 or its name)")
    else:
        how = "query"
        best = 0
        for name, sid, is_id in table:
            if not is_id and len(name) >= 2 and len(name) > best and name in query_norm:
                found_sid, best = sid, len(name)
    found = None
    if found_sid is not None:
        meta = session.execute(select(Document.meta).where(
            Document.source_id == found_sid, Document.kind == "customer", Document.retired_at.is_(None))).scalar()
        found = (found_sid, meta) if meta is not None else None
    if found is None:
        return None
    sid, meta = found
    commitments = []
    for c in meta.get("commitments") or []:
        until = c.get("valid_until")
        commitments.append({**c, "expired": bool(until and until < today)})
    commitments.sort(key=lambda c: c["expired"])
    return CustomerContext(sid, meta.get("customer", sid), meta.get("rank"), meta.get("owner"), commitments,
                           list(meta.get("arrangements") or []), list(meta.get("preferences") or []), how)


def _dense_candidates(snap: Snapshot, qv: np.ndarray, n: int, mask: np.ndarray | None) -> dict[int, float]:
    """Best n allowed rows by cosine; the mask is applied inside the FAISS scan."""
    total = snap.dense.ntotal
    if mask is None:
        scores, rows = snap.dense.search(qv.reshape(1, -1), min(n, total))
    else:
        allowed = int(mask.sum())
        if not allowed:
            return {}
        bitmap = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(total, faiss.swig_ptr(bitmap))
        scores, rows = snap.dense.search(qv.reshape(1, -1), min(n, allowed), params=faiss.SearchParameters(sel=sel))
    return {int(r): float(s) for r, s in zip(rows[0], scores[0]) if r >= 0}


def best_sentence(scores: dict[int, float], snap: Snapshot, qv: np.ndarray | None) -> dict[int, float]:
    """Each row's dense score raised to its best sentence's cosine where that is higher.

    Only rows of the ``sentence_kinds`` (manual passages by default) have sentence
    vectors: a question about one fact of a passage that covers several matches that
    fact's sentence far better than the passage's averaged vector. Measured in
    docs/retrieval.md (JSQuAD and support queries)."""
    ptr, vecs = snap.sent_ptr, snap.sent_vecs
    if ptr is None or vecs is None or not len(vecs) or qv is None:
        return scores
    rows = [r for r in scores if ptr[r + 1] > ptr[r]]
    if not rows:
        return scores
    sims = vecs[np.concatenate([np.arange(ptr[r], ptr[r + 1]) for r in rows])] @ qv.reshape(-1)
    out = dict(scores)
    pos = 0
    for r in rows:
        size = int(ptr[r + 1] - ptr[r])
        out[r] = max(out[r], float(sims[pos:pos + size].max()))
        pos += size
    return out


def with_sentences(c: Candidates, snap: Snapshot, qv: np.ndarray | None) -> Candidates:
    """The same candidates with dense scores from :func:`best_sentence`."""
    dense_all = best_sentence(c.dense_all, snap, qv) if c.dense_all else {}
    dense = {r: dense_all[r] for r in c.dense} if dense_all else best_sentence(c.dense, snap, qv)
    return Candidates(dense, c.lexical, dense_all, c.lexical_all)


def retrieve_candidates(qn: str, settings: Settings, snap: Snapshot, mode: str, n: int,
                        mask: np.ndarray | None, sentences: bool = True
                        ) -> tuple[Candidates, np.ndarray | None, dict[str, float]]:
    """Top-n rows from each side, every candidate scored by both (hybrid), the query vector, timings in ms.

    ``sentences=False`` scores by chunk vectors only (for the evaluation's comparisons)."""
    timings: dict[str, float] = {}
    dense: dict[int, float] = {}
    lexical: dict[int, float] = {}
    lex_all: np.ndarray | None = None
    qv = None
    if mode in ("dense", "hybrid") and snap.dense.ntotal:
        t = time.perf_counter()
        qv = get_embedder(settings).embed_query(qn)
        timings["embed"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense = _dense_candidates(snap, qv, n, mask)
        timings["faiss"] = (time.perf_counter() - t) * 1000
    if mode in ("lexical", "hybrid") and snap.lexical.n_rows:
        t = time.perf_counter()
        lex_all = snap.lexical.score_all(tokenize(qn), mask, synonym_tokens(qn, settings), settings.synonym_weight)
        rows, scores = snap.lexical.top(lex_all, n)
        lexical = {int(r): float(s) for r, s in zip(rows, scores)}
        timings["lexical"] = (time.perf_counter() - t) * 1000
    cands = Candidates(dense, lexical)
    if mode == "hybrid" and qv is not None and lex_all is not None:
        union = sorted(set(dense) | set(lexical))
        only_lexical = [r for r in union if r not in dense]
        cands.dense_all = dict(dense)
        if only_lexical:
            vecs = snap.dense.reconstruct_batch(np.asarray(only_lexical, dtype=np.int64))
            cands.dense_all.update(zip(only_lexical, (vecs @ qv.reshape(-1)).astype(float).tolist()))
        cands.lexical_all = {r: float(lex_all[r]) for r in union}
    if sentences and qv is not None:
        t = time.perf_counter()
        cands = with_sentences(cands, snap, qv)
        timings["faiss"] = timings.get("faiss", 0.0) + (time.perf_counter() - t) * 1000
    return cands, qv, timings


def phrase_texts(session, snap: Snapshot, fused: dict[int, float], depth: int) -> dict[int, str]:
    """{row: folded lexical text} of the ``depth`` best fused rows, for :func:`index.phrase.rerank`."""
    rows = sorted(fused, key=fused.get, reverse=True)[:depth]
    by_id = {int(snap.chunk_ids[r]): r for r in rows}
    found = session.execute(select(Chunk.id, Chunk.context, Chunk.text, Document.title)
                            .join(Document, Document.id == Chunk.document_id)
                            .where(Chunk.id.in_(list(by_id)))).all()
    return {by_id[c.id]: fold_for_lexical(lexical_text(c.title, c.context, c.text)) for c in found}


def rank_documents(fused: dict[int, float], snap: Snapshot, k: int) -> list[tuple[int, tuple[float, int]]]:
    """One entry per document — its best chunk — as (document id, (score, row)), best first."""
    best: dict[int, tuple[float, int]] = {}
    for row, s in fused.items():
        did = int(snap.doc_ids[row])
        if did not in best or s > best[did][0]:
            best[did] = (s, row)
    return sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:k]


def collapse_similar(results: list[Result], k: int, groups: dict[str, str | None]) -> list[Result]:
    """One card per resolution: later cases with the same group (原因分類) or the same
    resolution text fold into the first card as 「同様の事例 N件」."""
    cards: list[Result] = []
    by_key: dict[str, Result] = {}
    for r in results:
        key = None
        if r.kind == "case":
            group = groups.get(r.source_id) or r.resolution
            key = normalize(group).lower() if group else None
        if key and key in by_key:
            by_key[key].similar_ids.append(r.source_id)
            by_key[key].similar_count += 1
            continue
        if len(cards) < k:
            cards.append(r)
            if key:
                by_key[key] = r
    return cards


def search(query: str, settings: Settings, k: int = 10, mode: str = "hybrid",
           customer: str | None = None, filters: Filters | None = None,
           viewer: access.Principal | None = None) -> SearchResponse:
    """Search the current index. Raises ValueError for bad input, NoIndexError before any ingest.

    ``viewer`` is who will see the response (index.access): parts it may not see are
    excluded inside retrieval and personal data masked; None = a trusted caller."""
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    qn = normalize(query or "")
    if not qn:
        raise ValueError("query is empty")
    if len(qn) > settings.max_query_chars:
        raise ValueError(f"query is longer than {settings.max_query_chars} characters")
    if not 1 <= k <= 100:
        raise ValueError("k must be between 1 and 100")
    snap = get_snapshot(settings.index_dir)
    mask = build_mask(filters, snap.codes, snap.manifest["vocab"], snap.dates) if filters else None
    cat = None
    if viewer is not None:
        session = session_for(settings.db_url)
        try:
            cat = access.catalog(session, settings.db_url, snap)
        finally:
            session.close()
        mask = access.combine(mask, access.row_mask(cat, viewer))
    n = max(settings.candidates, k * 5)
    cands, qv, timings = retrieve_candidates(qn, settings, snap, mode, n, mask)
    dense = cands.dense_all or cands.dense
    t = time.perf_counter()
    fused = fuse(cands, settings) if mode == "hybrid" else (cands.dense or cands.lexical)
    timings["fusion"] = (time.perf_counter() - t) * 1000
    session = session_for(settings.db_url)
    try:
        if mode == "hybrid" and settings.phrase_weight > 0:
            t = time.perf_counter()
            fused = phrase.rerank(fused, qn, phrase_texts(session, snap, fused, settings.phrase_depth),
                                  settings.phrase_weight)
            timings["phrase"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        top = rank_documents(fused, snap, k * 4 if settings.collapse_similar else k)
        docs = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_([d for d, _ in top])))}
        chunk_ids = [int(snap.chunk_ids[row]) for _, (_, row) in top]
        chunks = {c.id: c for c in session.scalars(select(Chunk).where(Chunk.id.in_(chunk_ids)))}
        ctx = _customer_context(session, qn, customer, (settings.db_url, snap.name))
    finally:
        session.close()
    results = []
    for did, (score, row) in top:
        doc, ch = docs.get(did), chunks.get(int(snap.chunk_ids[row]))
        if doc is None or ch is None:  # deleted after this snapshot was built
            continue
        meta = doc.meta or {}
        results.append(Result(
            source_id=doc.source_id, kind=doc.kind, title=doc.title, score=round(score, 4),
            snippet=snippet(ch.text, qn), passage=ch.text, context=ch.context, source_path=doc.source_path,
            url=f"/documents/{doc.source_id}", customer=doc.customer, occurred_at=doc.occurred_at,
            resolution=meta.get("resolution"), cause=meta.get("cause"), status=meta.get("status"),
            resolved_by=meta.get("resolved_by"),
            dense_score=round(dense[row], 4) if row in dense else None,
        ))
    results = collapse_similar(results, k, {d.source_id: (d.meta or {}).get("cause_group") for d in docs.values()}) \
        if settings.collapse_similar else results[:k]
    reads = access.Reads()
    if cat is not None:
        results = access.redact_results(results, {d.source_id: d for d in docs.values()}, viewer, cat, qn, reads)
        ctx = access.redact_context(ctx, viewer, cat, reads)
    timings["db"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    embed = get_embedder(settings).embed_queries if qv is not None else None
    guidance = decide(qn, qv, results, ctx.commitments if ctx else [], settings, embed)
    timings["guidance"] = (time.perf_counter() - t) * 1000
    took = (time.perf_counter() - t0) * 1000
    return SearchResponse(query, qn, mode, results, ctx, guidance, round(took, 2),
                          {k: round(v, 2) for k, v in timings.items()}, reads)


def get_document(source_id: str, settings: Settings, viewer: access.Principal | None = None,
                 reads: access.Reads | None = None) -> dict[str, Any] | None:
    """A whole document with its chunks, for ``GET /documents/{id}``, as ``viewer`` may see
    it (raises index.access.Forbidden when it may not see it at all)."""
    session = session_for(settings.db_url)
    try:
        doc = session.scalar(select(Document).where(Document.source_id == source_id))
        if doc is None:
            return None
        cat = None
        if viewer is not None:
            try:
                snap = get_snapshot(settings.index_dir)
            except NoIndexError:
                snap = None
            cat = access.catalog(session, settings.db_url, snap)
        return access.redact_document(doc, viewer, cat, reads if reads is not None else access.Reads())
    finally:
        session.close()


__all__ = ["search", "get_document", "SearchResponse", "Result", "NoIndexError", "MODES", "tokenize"]
