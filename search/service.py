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

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from hikitsugi.access import policy as access
from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import get_embedder
from hikitsugi.guidance.decide import Guidance, decide
from hikitsugi.index.filters import Filters, build_mask
from hikitsugi.ingest.normalize import normalize
from hikitsugi.search import rerank as phrase
from hikitsugi.search.cards import (
    CustomerContext,
    Result,
    collapse_similar,
    rank_documents,
)
from hikitsugi.search.customer import customer_context
from hikitsugi.search.fuse import fuse
from hikitsugi.search.highlight import snippet
from hikitsugi.search.notices import add_conflict_notices
from hikitsugi.search.retrieve import NoIndexError, get_snapshot, retrieve_candidates
from hikitsugi.storage.database import session_for
from hikitsugi.storage.schema import Chunk, Document

MODES = ("dense", "lexical", "hybrid")
_CARD_COLUMNS = (select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.context, Document.source_id, Document.kind,
                        Document.title, Document.source_path, Document.customer, Document.occurred_at, Document.meta)
                 .join(Document, Document.id == Chunk.document_id))


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
    generation: str = ""  # the index generation that answered (every replica names it alike)

    sensitive_reads: access.Reads = field(default_factory=access.Reads)  # for the audit log; not in the JSON

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("sensitive_reads", None)
        return out


def _card_rows(session, snap, rows: list[int]) -> dict[int, Any]:
    """{chunk id: row with the chunk's and its document's columns} for snapshot ``rows``."""
    ids = sorted({int(snap.chunk_ids[r]) for r in rows})
    return {c.id: c for c in session.execute(_CARD_COLUMNS.where(Chunk.id.in_(ids)))} if ids else {}


def search(query: str, settings: Settings, k: int = 10, mode: str = "hybrid",
           customer: str | None = None, filters: Filters | None = None,
           viewer: access.Principal | None = None) -> SearchResponse:
    """Search the current index. Raises ValueError for bad input, NoIndexError before any ingest.

    ``viewer`` is who will see the response (hikitsugi.access.policy): parts it may not see are
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
    session = session_for(settings.db_url)  # one session (and connection) per search, not one per stage
    try:
        return _search(query, qn, settings, snap, session, k, mode, customer, mask, viewer, t0)
    finally:
        session.close()


def _search(query: str, qn: str, settings: Settings, snap, session, k: int, mode: str, customer: str | None,
            mask, viewer: access.Principal | None, t0: float) -> SearchResponse:
    cat = None
    if viewer is not None:
        cat = access.catalog(session, settings.db_url, snap)
        mask = access.combine(mask, access.row_mask(cat, viewer))
    n = max(settings.candidates, k * 5)
    cands, qv, timings = retrieve_candidates(qn, settings, snap, mode, n, mask)
    dense = cands.dense_all or cands.dense
    t = time.perf_counter()
    fused = fuse(cands, settings) if mode == "hybrid" else (cands.dense or cands.lexical)
    timings["fusion"] = (time.perf_counter() - t) * 1000
    # The rows the cards need and the rows the phrase re-rank reads, in one query of plain rows
    # (not ORM objects; two ORM loads plus the phrase query were ~2.5 ms of a 13 ms search at
    # 100,000 chunks). The bonus only raises the best ``phrase_depth`` rows, so the documents
    # ranked after it are among those ranked before it or own one of those rows; anything
    # still missing (ties) is fetched after.
    n_docs = k * 4 if settings.collapse_similar else k
    t = time.perf_counter()
    depth = phrase.depth_rows(fused, settings.phrase_depth) if mode == "hybrid" and settings.phrase_weight > 0 else []
    chunks = _card_rows(session, snap, depth + [row for _, (_, row) in rank_documents(fused, snap, n_docs)])
    if depth:
        texts = {r: phrase.folded(c.title, c.context, c.text) for r in depth
                 if (c := chunks.get(int(snap.chunk_ids[r]))) is not None}
        fused = phrase.rerank(fused, qn, texts, settings.phrase_weight)
        timings["phrase"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    top = rank_documents(fused, snap, n_docs)
    chunks.update(_card_rows(session, snap, [row for _, (_, row) in top if int(snap.chunk_ids[row]) not in chunks]))
    docs = {c.document_id: c for c in chunks.values()}
    ctx = customer_context(session, qn, customer, (settings.db_url, snap.name))
    results = []
    for did, (score, row) in top:
        doc = ch = chunks.get(int(snap.chunk_ids[row]))
        if ch is None or ch.document_id != did:  # deleted after this snapshot was built
            continue
        meta = doc.meta or {}
        results.append(Result(
            source_id=doc.source_id, kind=doc.kind, title=doc.title, score=round(score, 4),
            snippet="", passage=ch.text, context=ch.context, source_path=doc.source_path,
            url=f"/documents/{doc.source_id}", customer=doc.customer, occurred_at=doc.occurred_at,
            resolution=meta.get("resolution"), cause=meta.get("cause"), status=meta.get("status"),
            resolved_by=meta.get("resolved_by"),
            dense_score=round(dense[row], 4) if row in dense else None,
        ))
    results = collapse_similar(results, k, {d.source_id: (d.meta or {}).get("cause_group") for d in docs.values()}) \
        if settings.collapse_similar else results[:k]
    reads = access.Reads()
    if cat is not None:
        results = access.redact_results(results, {d.source_id: d for d in docs.values()}, viewer, cat, reads)
        ctx = access.redact_context(ctx, viewer, cat, reads)
    # after redaction: a card the viewer may not see carries no notice
    add_conflict_notices(session, results, ctx, viewer, cat, reads)
    for r in results:  # highlighted after masking, so a highlight never splits or reveals masked text
        r.snippet = snippet(r.passage, qn)
    timings["db"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    embed = get_embedder(settings).embed_queries if qv is not None else None
    guidance = decide(qn, qv, results, ctx.commitments if ctx else [], settings, embed)
    timings["guidance"] = (time.perf_counter() - t) * 1000
    took = (time.perf_counter() - t0) * 1000
    return SearchResponse(query, qn, mode, results, ctx, guidance, round(took, 2),
                          {k: round(v, 2) for k, v in timings.items()}, snap.name, reads)


def get_document(source_id: str, settings: Settings, viewer: access.Principal | None = None,
                 reads: access.Reads | None = None) -> dict[str, Any] | None:
    """A whole document with its chunks, for ``GET /documents/{id}``, as ``viewer`` may see
    it (raises hikitsugi.access.policy.Forbidden when it may not see it at all)."""
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


