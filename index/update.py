"""Bring the database and the index in line with a set of files.

For each file: skip it when its bytes are unchanged; otherwise parse it (``ingest``),
replace the documents it produced whose content changed, delete the documents it no
longer produces, embed only chunk texts that have no stored vector, and finally build a
new index snapshot if anything changed. The database work for one file is a single
transaction, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from hikitsugi.config import Settings
from index.embedder import get_embedder, model_id
from index.snapshot import build_snapshot, current_name, embed_text
from index.store import Chunk, Document, Embedding, Source, session_for
from ingest.model import Block, ParsedDoc
from ingest.normalize import normalize
from ingest.pipeline import FileResult, SourceFile, discover, file_hash, parse_bytes
from ingest.sentences import chunk_blocks

log = logging.getLogger("hikitsugi.ingest")


@dataclass
class IngestReport:
    files_seen: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    docs_added: int = 0
    docs_changed: int = 0
    docs_deleted: int = 0
    chunks_embedded: int = 0
    problems: list[str] = field(default_factory=list)
    snapshot: str | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.docs_added or self.docs_changed or self.docs_deleted)


def _doc_hash(doc: ParsedDoc) -> str:
    payload = json.dumps([doc.kind, doc.title, [(b.text, b.headings, b.table_row) for b in doc.blocks], doc.meta],
                         ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _hash_text(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def _normalized(doc: ParsedDoc) -> ParsedDoc:
    blocks = [Block(normalize(b.text), tuple(normalize(h) for h in b.headings), b.table_row) for b in doc.blocks]
    blocks = [b for b in blocks if b.text]
    return ParsedDoc(doc.source_id, doc.kind, normalize(doc.title), blocks, doc.meta, doc.source_path)


def _apply_file(session: Session, res: FileResult, settings: Settings, report: IngestReport) -> None:
    """Write one file's documents and chunks (vectors are added afterwards)."""
    mid = model_id(settings)
    existing = {d.source_id: d for d in session.scalars(select(Document).where(Document.source_path == res.source.rel))}
    produced: set[str] = set()
    for raw in res.docs:
        doc = _normalized(raw)
        produced.add(doc.source_id)
        h = _doc_hash(doc)
        row = existing.get(doc.source_id) or session.scalar(select(Document).where(Document.source_id == doc.source_id))
        if row is not None and row.content_hash == h and row.source_path == res.source.rel:
            continue
        if row is None:
            row = Document(source_id=doc.source_id)
            session.add(row)
            report.docs_added += 1
        else:
            report.docs_changed += 1
            row.chunks.clear()
        row.source_path = res.source.rel
        row.kind, row.title, row.content_hash = doc.kind, doc.title, h
        row.customer = doc.meta.get("customer")
        row.occurred_at = doc.meta.get("occurred_at")
        row.meta = doc.meta
        for ch in chunk_blocks(doc.blocks, settings.chunk_chars, settings.chunk_overlap_sentences):
            etext = embed_text(doc.title, ch.context, ch.text)
            eh = _hash_text(mid, etext)
            row.chunks.append(Chunk(ordinal=ch.ordinal, context=ch.context, text=ch.text, embed_hash=eh))
    for sid, row in existing.items():
        if sid not in produced:
            session.delete(row)
            report.docs_deleted += 1
    src = session.get(Source, res.source.rel) or Source(path=res.source.rel)
    src.file_hash, src.size, src.status, src.error = res.file_hash, res.size, "ok", None
    session.add(src)


def embed_missing(session: Session, settings: Settings, report: IngestReport) -> None:
    """Embed every chunk text that has no stored vector for the configured model.

    Working from the database rather than from this run's changes means a run killed
    between writing chunks and embedding them is repaired by the next run.
    """
    mid = model_id(settings)
    rows = session.execute(
        select(Chunk.embed_hash, Chunk.context, Chunk.text, Document.title)
        .join(Document, Document.id == Chunk.document_id)
        .join(Embedding, (Embedding.embed_hash == Chunk.embed_hash) & (Embedding.model == mid), isouter=True)
        .where(Embedding.embed_hash.is_(None))
    ).all()
    pending = {r.embed_hash: embed_text(r.title, r.context, r.text) for r in rows}
    todo = list(pending)
    if not todo:
        return
    embedder = get_embedder(settings)
    bs = settings.embed_batch_size * 8
    with tqdm(total=len(todo), desc="embedding", unit="chunk", file=sys.stderr,
              disable=None) as bar:
        for i in range(0, len(todo), bs):
            part = todo[i:i + bs]
            vecs = embedder.embed_passages([pending[h] for h in part], settings.embed_batch_size)
            session.add_all(Embedding(model=mid, embed_hash=h, vector=v.tobytes()) for h, v in zip(part, vecs))
            session.commit()  # vectors are reusable even if the run dies later
            report.chunks_embedded += len(part)
            bar.update(len(part))


def ingest_paths(paths: list[Path], settings: Settings, mapping: dict[str, str] | None = None,
                 force_snapshot: bool = False) -> IngestReport:
    """Ingest files under ``paths`` into the database and rebuild the index if needed."""
    t0 = time.perf_counter()
    settings.ensure_dirs()
    report = IngestReport()
    files, problems = discover(paths)
    report.problems.extend(problems)
    report.files_seen = len(files)
    session = session_for(settings.db_url)
    try:
        for src in tqdm(files, desc="parsing", unit="file", file=sys.stderr, disable=None):
            _ingest_one(session, src, settings, mapping, report)
        embed_missing(session, settings, report)
        if report.changed or report.chunks_embedded or force_snapshot or current_name(settings.index_dir) is None:
            report.snapshot = build_snapshot(session, settings)
    finally:
        session.close()
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _ingest_one(session: Session, src: SourceFile, settings: Settings, mapping: dict[str, str] | None,
                report: IngestReport) -> None:
    size = src.path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        report.files_failed += 1
        report.problems.append(f"{src.path}: {size / 2**20:.0f} MB is larger than the {settings.max_file_mb} MB limit "
                               "(HIKITSUGI_MAX_FILE_MB) — skipped")
        return
    data = src.path.read_bytes()
    prev = session.get(Source, src.rel)
    if prev is not None and prev.file_hash == file_hash(data) and prev.status == "ok":
        report.files_unchanged += 1
        return
    res = parse_bytes(src, data, mapping)
    if res.error:
        report.files_failed += 1
        report.problems.append(f"{src.path}: {res.error} — skipped")
        return
    report.problems.extend(f"{src.path}: {p}" for p in res.problems)
    try:
        _apply_file(session, res, settings, report)
        session.commit()
    except Exception:
        session.rollback()
        raise
