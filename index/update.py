"""Bring the database and the index in line with a set of files.

For each file: skip it when its bytes (and the kind/mapping it is parsed with) are
unchanged; otherwise parse it (``ingest``), add a new version of each document whose
content changed, retire the documents it no longer produces, embed only chunk texts
that have no stored vector, and finally build a new index snapshot when the database
no longer matches the one being served. ``reindex`` does the same for everything a
sources file lists and also retires the documents of files that disappeared.

Never lose anything, never stop serving:

* The database work for one file is one transaction: a killed run never leaves half a
  file behind, and the next run simply continues (unchanged files are skipped, missing
  vectors are embedded from the database, a stale index is rebuilt).
* Rows are never changed in place: a changed document is a new row, the old one is
  *retired* and kept until the generation that served it is no longer current (then it
  is purged). So the generation being served — during a run, or after a run was killed
  — always finds exactly the rows it was built from.
* One run at a time per home: :func:`index_lock` (``flock`` on ``reindex.lock``).

``HIKITSUGI_TEST_PAUSE_AT=<stage>`` (see :mod:`index.hooks`) makes a run sleep at a named
stage so that tests can kill it with SIGKILL at a known point.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import get_embedder, model_id
from hikitsugi.index import generations, identity
from hikitsugi.index.distributed import RayCluster, connect
from hikitsugi.index.hooks import after_generation, pause_at
from hikitsugi.index.vectors import choose_backend
from hikitsugi.index.snapshot import (
    build_snapshot,
    cleanup_leftovers,
    current_name,
    embed_hash,
    embed_text,
    load_rows,
    sentence_kinds,
    sentence_texts,
)
from hikitsugi.ingest.model import Block, ParsedDoc
from hikitsugi.ingest.normalize import normalize
from hikitsugi.ingest.pipeline import (
    FileResult,
    SourceFile,
    discover,
    file_hash,
    parse_bytes,
)
from hikitsugi.ingest.sentences import chunk_blocks
from hikitsugi.ingest.sources import SourceEntry
from hikitsugi.storage.database import session_for
from hikitsugi.storage.schema import Chunk, Document, Embedding, Source

log = logging.getLogger("hikitsugi.ingest")

STAGES = ("parse", "chunk", "embed", "write", "snapshot", "purge")  # purge includes the grace wait
LOCK_FILE = "reindex.lock"
LOCK_BUSY_EXIT = 3


@dataclass
class IngestReport:
    files_seen: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    docs_added: int = 0
    docs_changed: int = 0
    docs_deleted: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0  # extra per-sentence vectors (setting sentence_kinds)
    problems: list[str] = field(default_factory=list)
    snapshot: str | None = None
    seconds: float = 0.0
    files_added: int = 0  # files ingested for the first time
    files_changed: int = 0  # files whose bytes (or kind/mapping) changed
    files_deleted: int = 0  # files gone from disk or from the sources (reindex only)
    chunks_written: int = 0
    docs_purged: int = 0  # retired document versions removed after the switch
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))  # seconds per stage
    columns: dict[str, list[str]] = field(default_factory=dict)  # export file → "field ← column (how)" lines
    hooks: dict[str, str] = field(default_factory=dict)  # after-generation hook → its summary (e.g. conflicts found)
    cluster: dict | None = None  # reindex --ray: the cluster and what each node did (index.distributed)

    @property
    def changed(self) -> bool:
        return bool(self.docs_added or self.docs_changed or self.docs_deleted)

    def _tick(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - since, 3)
        return now


class LockBusy(RuntimeError):
    """Another ingest/re-index holds the lock of this home."""

    def __init__(self, pid: int | None, started: str | None, command: str | None) -> None:
        self.pid, self.started, self.command = pid, started, command
        super().__init__(f"another re-index is running (pid {pid or '?'}, started {started or '?'}"
                         + (f": {command}" if command else "") + ")")


def _read_lock_info(fh) -> dict:
    fh.seek(0)
    try:
        return json.loads(fh.read() or "{}")
    except ValueError:
        return {}


@contextlib.contextmanager
def index_lock(settings: Settings, wait: bool = False, command: str = "") -> Iterator[None]:
    """Hold ``$HIKITSUGI_HOME/reindex.lock`` (``flock``) for a whole run.

    The kernel releases an ``flock`` when its holder dies, even by SIGKILL, so a crashed
    run never leaves a stale lock. Raises :class:`LockBusy` (or waits, with ``wait``).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    fh = open(settings.home / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_lock_info(fh)
            busy = LockBusy(info.get("pid"), info.get("started"), info.get("command"))
            if not wait:
                raise busy from None
            log.warning("waiting: %s", busy)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        fh.write(json.dumps({"pid": os.getpid(), "started": started, "command": command}))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _doc_hash(doc: ParsedDoc) -> str:
    payload = json.dumps([doc.kind, doc.title, [(b.text, b.headings, b.table_row) for b in doc.blocks], doc.meta],
                         ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _parse_hash(kind: str | None, mapping: dict[str, str] | None) -> str | None:
    """Fingerprint of how a file is parsed; None for the defaults (so old rows match)."""
    if not kind and not mapping:
        return None
    return hashlib.sha256(json.dumps([kind, mapping or {}], ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _normalized(doc: ParsedDoc) -> ParsedDoc:
    blocks = [Block(normalize(b.text), tuple(normalize(h) for h in b.headings), b.table_row, b.ocr_page)
              for b in doc.blocks]
    blocks = [b for b in blocks if b.text]
    return ParsedDoc(doc.source_id, doc.kind, normalize(doc.title), blocks, doc.meta, doc.source_path)


def _live_by_source_id(session: Session, ids: list[str]) -> dict[str, Document]:
    out: dict[str, Document] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        out.update((d.source_id, d) for d in session.scalars(
            select(Document).where(Document.source_id.in_(part), Document.retired_at.is_(None))))
    return out


def _apply_file(session: Session, res: FileResult, settings: Settings, report: IngestReport,
                parse_hash: str | None = None) -> None:
    """Write one file's documents and chunks (vectors are added afterwards).

    Unchanged documents are left alone; a changed one gets a new row and its old row is
    retired (kept for the generation being served); documents the file no longer
    produces are retired.
    """
    mid = model_id(settings)
    key, rel = res.source.key, res.source.rel
    existing = {d.source_id: d for d in session.scalars(
        select(Document).where(Document.source_key == key, Document.retired_at.is_(None)))}
    ids = identity.assign(session, [_normalized(raw) for raw in res.docs], key, rel, res.source.root, existing,
                          str(res.source.path))
    if ids.problems:  # ids another source holds: named, and the file is read again next run
        report.files_failed += 1
        report.problems.extend(f"{res.source.path}: {p}" for p in ids.problems)
    docs, elsewhere = ids.docs, ids.replaces
    now = _now()
    new_rows: list[Document] = []
    for sid, doc in docs.items():
        h = _doc_hash(doc)
        row = existing.get(sid) or elsewhere.get(sid)
        if row is not None and row.content_hash == h and row.source_key == key and row.source_path == rel:
            continue
        if row is None:
            report.docs_added += 1
        else:
            report.docs_changed += 1
            row.retired_at = now
        new = Document(source_id=sid, source_key=key, source_path=rel, kind=doc.kind, title=doc.title,
                       customer=doc.meta.get("customer"), occurred_at=doc.meta.get("occurred_at"),
                       content_hash=h, meta=doc.meta)
        t = time.perf_counter()
        for ch in chunk_blocks(doc.blocks, settings.chunk_chars, settings.chunk_overlap_sentences):
            eh = embed_hash(mid, embed_text(doc.title, ch.context, ch.text))
            new.chunks.append(Chunk(ordinal=ch.ordinal, context=ch.context, text=ch.text, embed_hash=eh))
        report.chunks_written += len(new.chunks)
        report._tick("chunk", t)
        new_rows.append(new)
    for sid, row in existing.items():
        if sid not in docs:
            row.retired_at = now
            report.docs_deleted += 1
    session.flush()  # retire before inserting: source_id is unique among live rows
    session.add_all(new_rows)
    src = session.get(Source, key) or Source(path=key)
    src.rel, src.root, src.parse_hash = rel, res.source.root or src.root, parse_hash
    src.file_hash, src.size, src.status, src.error, src.ingested_at = res.file_hash, res.size, "ok", None, now
    session.add(src)


def _has_live_documents(session: Session, key: str) -> bool:
    """Does this file still have live documents? (Not when another source's document of the
    same name once replaced them: then an unchanged file must be read again.)"""
    return session.scalar(select(Document.id).where(Document.source_key == key, Document.retired_at.is_(None))
                          .limit(1)) is not None


def _retire_source(session: Session, src: Source, report: IngestReport) -> None:
    """A file is gone: retire its live documents and forget the file (one transaction)."""
    n = session.execute(update(Document).where(Document.source_key == src.path, Document.retired_at.is_(None))
                        .values(retired_at=_now())).rowcount
    report.docs_deleted += n or 0
    session.delete(src)


def embed_missing(session: Session, settings: Settings, report: IngestReport,
                  cluster: RayCluster | None = None) -> None:
    """Embed every live chunk text (and, for ``sentence_kinds``, every sentence of it)
    that has no stored vector for the configured model.

    Working from the database rather than from this run's changes means a run killed
    between writing chunks and embedding them is repaired by the next run.
    """
    t0 = time.perf_counter()
    mid = model_id(settings)
    rows = session.execute(
        select(Chunk.embed_hash, Chunk.context, Chunk.text, Document.title)
        .join(Document, Document.id == Chunk.document_id)
        .join(Embedding, (Embedding.embed_hash == Chunk.embed_hash) & (Embedding.model == mid), isouter=True)
        .where(Embedding.embed_hash.is_(None), Document.retired_at.is_(None))
    ).all()
    pending = {r.embed_hash: embed_text(r.title, r.context, r.text) for r in rows}
    sentences = _missing_sentences(session, settings, mid)
    pending.update(sentences)
    # Chunk vectors first (a chunk is searchable with its own vector; sentence vectors only
    # refine it), each kind shortest first so that one commit's texts are of about one length.
    todo = sorted(pending, key=lambda h: (h in sentences, len(pending[h])))
    if not todo:
        report._tick("embed", t0)
        return
    bs = settings.embed_batch_size * 8
    parts = [todo[i:i + bs] for i in range(0, len(todo), bs)]
    if cluster is None:
        embedder = get_embedder(settings)
        done = ((i, embedder.embed_passages([pending[h] for h in part], settings.embed_batch_size))
                for i, part in enumerate(parts))
    else:  # the same batches, embedded on the cluster; stored here as they finish
        done = cluster.embed([[pending[h] for h in part] for part in parts])
    with tqdm(total=len(todo), desc="embedding", unit="text", file=sys.stderr,
              disable=None) as bar:
        for i, vecs in done:
            part = parts[i]
            session.add_all(Embedding(model=mid, embed_hash=h, vector=v.tobytes()) for h, v in zip(part, vecs))
            session.commit()  # vectors are reusable even if the run dies later
            n_sent = sum(h in sentences for h in part)
            report.sentences_embedded += n_sent
            report.chunks_embedded += len(part) - n_sent
            bar.update(len(part))
            pause_at("embed")
    report._tick("embed", t0)


def _missing_sentences(session: Session, settings: Settings, mid: str) -> dict[str, str]:
    """{hash: text} of the sentence texts of live ``sentence_kinds`` chunks with no stored vector."""
    kinds = sentence_kinds(settings)
    if not kinds:
        return {}
    wanted: dict[str, str] = {}
    for r in session.execute(select(Chunk.context, Chunk.text, Document.title)
                             .join(Document, Document.id == Chunk.document_id)
                             .where(Document.retired_at.is_(None), Document.kind.in_(kinds))):
        for t in sentence_texts(r.title, r.context, r.text):
            wanted[embed_hash(mid, t)] = t
    hashes = list(wanted)
    for i in range(0, len(hashes), 500):
        part = hashes[i:i + 500]
        for h in session.scalars(select(Embedding.embed_hash).where(Embedding.model == mid,
                                                                    Embedding.embed_hash.in_(part))):
            wanted.pop(h, None)
    return wanted


def index_is_current(session: Session, settings: Settings) -> bool:
    """Does the served generation hold exactly the live chunks, with this model's vectors?"""
    name = current_name(settings.index_dir)
    if name is None:
        return False
    try:
        manifest, chunk_ids, _ = load_rows(settings.index_dir, name)
    except (OSError, ValueError, KeyError):
        return False
    if manifest.get("model") != model_id(settings) or manifest.get("sentence_kinds") != sentence_kinds(settings):
        return False
    if manifest.get("vector_index", "exact") != choose_backend(settings.vector_index, len(chunk_ids),
                                                              settings.ann_min_rows, settings.ann_backend):
        return False  # the vector index setting (or the size threshold) calls for another backend
    live = session.scalars(select(Chunk.id).join(Document, Document.id == Chunk.document_id)
                           .where(Document.retired_at.is_(None))).all()
    return len(live) == len(chunk_ids) and set(live) == set(chunk_ids.tolist())


def purge_retired(session: Session, settings: Settings, report: IngestReport | None = None) -> int:
    """Delete retired document versions that the current generation does not refer to."""
    name = current_name(settings.index_dir)
    referenced: set[int] = set()
    if name is not None:
        try:
            referenced = set(load_rows(settings.index_dir, name)[2].tolist())
        except (OSError, ValueError, KeyError):
            return 0  # cannot tell what is served: keep everything
    # the published generation and those live API replicas still serve (index.generations)
    referenced |= generations.in_use_doc_ids(session, settings.replica_ttl_s)
    ids = [i for i in session.scalars(select(Document.id).where(Document.retired_at.is_not(None)))
           if i not in referenced]
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        session.execute(delete(Chunk).where(Chunk.document_id.in_(part)))
        session.execute(delete(Document).where(Document.id.in_(part)))
    session.commit()
    if report is not None:
        report.docs_purged += len(ids)
    return len(ids)


def _has_retired(session: Session) -> bool:
    return session.scalar(select(Document.id).where(Document.retired_at.is_not(None)).limit(1)) is not None


def _publish(session: Session, settings: Settings, report: IngestReport, force: bool,
             cluster: RayCluster | None = None) -> None:
    """Embed what is missing, build and switch to a new generation when the DB moved on,
    then purge the versions only the previous generation used."""
    embed_missing(session, settings, report, cluster)
    t = time.perf_counter()
    if force or not index_is_current(session, settings):
        report.snapshot = build_snapshot(session, settings)
    report._tick("snapshot", t)
    pause_at("switch")
    t = time.perf_counter()
    if report.snapshot and _has_retired(session):
        # a server that picked the previous generation a moment ago may still be reading
        # its rows: give in-flight queries time to finish before deleting them
        time.sleep(settings.purge_grace_s)
    purge_retired(session, settings, report)
    report._tick("purge", t)
    if report.snapshot:
        _after_generation(session, settings, report)


def _after_generation(session: Session, settings: Settings, report: IngestReport) -> None:
    """The one hook after a new generation: whatever reads the whole knowledge base (conflict
    detection) runs here, in the lock, once per generation (index.hooks)."""
    t = time.perf_counter()
    summaries, problems = after_generation(session, settings, report.snapshot or "")
    report.hooks.update(summaries)
    report.problems.extend(problems)
    report._tick("after_generation", t)


def _prepare(session: Session, settings: Settings, report: IngestReport) -> None:
    """Start of a locked run: drop a killed run's leftovers (half-built generations, retired
    rows nothing serves any more)."""
    settings.ensure_dirs()
    cleanup_leftovers(settings.index_dir)
    purge_retired(session, settings, report)


def _run(entries: list[SourceEntry], settings: Settings, report: IngestReport, delete_missing: bool,
         force_snapshot: bool, cluster: RayCluster | None = None) -> None:
    session = session_for(settings.db_url)
    try:
        _prepare(session, settings, report)
        seen: dict[str, tuple[SourceFile, SourceEntry]] = {}
        scanned_roots: set[str] = set()
        for entry in entries:
            if not entry.path.exists():
                msg = f"{entry.path}: no such file or directory"
                if delete_missing:
                    report.files_failed += 1
                    msg += " — its files are kept in the index until the entry is removed from the sources"
                report.problems.append(msg)
                continue
            t = time.perf_counter()
            files, problems = discover([entry.path], entry.glob)
            report._tick("parse", t)
            report.problems.extend(problems)
            if not files and delete_missing and session.scalar(
                    select(Source.path).where(Source.root == entry.root).limit(1)) is not None:
                report.files_failed += 1
                report.problems.append(f"{entry.path}: no files found where the index has some (unmounted?) — "
                                       "kept; remove the entry from the sources to delete them")
                continue
            scanned_roots.add(entry.root)
            for f in files:
                seen.setdefault(f.key, (f, entry))
        report.files_seen = len(seen)
        if cluster is None:
            for f, entry in tqdm(seen.values(), desc="parsing", unit="file", file=sys.stderr, disable=None):
                _ingest_one(session, f, settings, entry.mapping, report, entry.kind)
        else:
            _ingest_on_cluster(session, list(seen.values()), settings, report, cluster)
        if delete_missing:
            listed = {e.root for e in entries}
            for src in session.scalars(select(Source)).all():
                if src.path in seen or (src.root in listed and src.root not in scanned_roots):
                    continue
                _retire_source(session, src, report)
                session.commit()
                report.files_deleted += 1
        _publish(session, settings, report, force_snapshot, cluster)
    finally:
        session.close()


def ingest_paths(paths: list[Path], settings: Settings, mapping: dict[str, str] | None = None,
                 force_snapshot: bool = False, kind: str | None = None, wait_lock: bool = True) -> IngestReport:
    """Ingest files under ``paths`` into the database and rebuild the index if needed.

    Additive: documents of files not under ``paths`` are left alone (``reindex`` is the
    one that deletes). Waits for a running re-index of the same home unless ``wait_lock``
    is false (then :class:`LockBusy` is raised).
    """
    t0 = time.perf_counter()
    report = IngestReport()
    entries = [SourceEntry(Path(p).absolute(), None, kind, dict(mapping or {})) for p in paths]
    with index_lock(settings, wait=wait_lock, command="ingest"):
        _run(entries, settings, report, delete_missing=False, force_snapshot=force_snapshot)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def reindex(entries: list[SourceEntry], settings: Settings, wait_lock: bool = False,
            ray: str | None = None) -> IngestReport:
    """Bring the index in line with the sources: ingest new and changed files, retire the
    documents of files that are gone (from disk or from the sources), publish a new
    generation. Raises :class:`LockBusy` when another run holds the lock.

    ``ray`` (``auto``, an address or ``local``) parses and embeds on a Ray cluster
    (:mod:`hikitsugi.index.distributed`); raises its ``ClusterError`` when the cluster
    cannot finish (nothing new is published then)."""
    t0 = time.perf_counter()
    report = IngestReport()
    with index_lock(settings, wait=wait_lock, command="reindex" + (f" --ray {ray}" if ray else "")):
        if ray is None:
            _run(entries, settings, report, delete_missing=True, force_snapshot=False)
        else:
            with connect(ray, settings) as cluster:
                try:
                    _run(entries, settings, report, delete_missing=True, force_snapshot=False, cluster=cluster)
                finally:
                    report.cluster = cluster.summary()
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def rebuild_index(settings: Settings, wait_lock: bool = False) -> IngestReport:
    """Recreate the vector and lexical index from the database — stored vectors only,
    nothing is parsed; only chunks that somehow lack a vector are embedded."""
    t0 = time.perf_counter()
    report = IngestReport()
    with index_lock(settings, wait=wait_lock, command="index rebuild"):
        session = session_for(settings.db_url)
        try:
            _prepare(session, settings, report)
            _publish(session, settings, report, force=True)
        finally:
            session.close()
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _adopt_legacy(session: Session, src: SourceFile) -> Source | None:
    """A row written before sources were keyed by absolute path (path == rel, no root):
    take it over for this file so that its documents are updated, not duplicated."""
    legacy = session.get(Source, src.rel)
    if legacy is None or legacy.root is not None or os.path.isabs(legacy.path) or legacy.path == src.key:
        return None
    row = Source(path=src.key, rel=src.rel, root=src.root or None, parse_hash=legacy.parse_hash,
                 file_hash=legacy.file_hash, size=legacy.size, status=legacy.status, error=legacy.error,
                 ingested_at=legacy.ingested_at)
    session.execute(update(Document).where(Document.source_key == legacy.path).values(source_key=src.key))
    session.delete(legacy)
    session.flush()
    session.add(row)
    session.flush()
    return row


def _changed_bytes(session: Session, src: SourceFile, settings: Settings, mapping: dict[str, str] | None,
                   report: IngestReport, kind: str | None) -> tuple[bytes, str | None, Source | None] | None:
    """The file's bytes, parse hash and previous row when it must be parsed; None when it
    is unchanged (counted) or too large (a problem)."""
    t = time.perf_counter()
    size = src.path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        report.files_failed += 1
        report.problems.append(f"{src.path}: {size / 2**20:.0f} MB is larger than the {settings.max_file_mb} MB limit "
                               "(HIKITSUGI_MAX_FILE_MB) — skipped")
        return None
    data = src.path.read_bytes()
    ph = _parse_hash(kind, mapping)
    prev = session.get(Source, src.key) or _adopt_legacy(session, src)
    if prev is not None and prev.file_hash == file_hash(data) and prev.status == "ok" and prev.parse_hash == ph \
            and prev.rel == src.rel and _has_live_documents(session, src.key):
        if src.root and prev.root != src.root:
            prev.root = src.root
        session.commit()
        report.files_unchanged += 1
        report._tick("parse", t)
        return None
    report._tick("parse", t)
    return data, ph, prev


def _apply_parsed(session: Session, src: SourceFile, res: FileResult, settings: Settings, report: IngestReport,
                  kind: str | None, ph: str | None, prev: Source | None) -> None:
    """Write one parsed file in one transaction (or record why it was skipped)."""
    t = time.perf_counter()
    if res.error:
        session.rollback()
        report.files_failed += 1
        report.problems.append(f"{src.path}: {res.error} — skipped (its documents from earlier runs are kept)")
        return
    if kind:
        for d in res.docs:
            d.kind = kind
    report.problems.extend(f"{src.path}: {p}" for p in res.problems)
    if res.columns:
        report.columns[str(src.path)] = [str(r) for r in res.columns]
    chunk_before = report.timings["chunk"]
    try:
        # a file with pages left out (no OCR yet) gets a parse hash that never matches: read again next run
        failed = report.files_failed
        _apply_file(session, res, settings, report, "retry" if res.retry else ph)
        if report.files_failed > failed:  # records left out (ids another source holds): read again next run
            session.get(Source, src.key).parse_hash = "retry"
        session.commit()
    except Exception:
        session.rollback()
        raise
    report._tick("write", t)
    report.timings["write"] = round(report.timings["write"] - (report.timings["chunk"] - chunk_before), 3)
    if prev is None:
        report.files_added += 1
    else:
        report.files_changed += 1
    pause_at("parse")


def _ingest_one(session: Session, src: SourceFile, settings: Settings, mapping: dict[str, str] | None,
                report: IngestReport, kind: str | None = None) -> None:
    got = _changed_bytes(session, src, settings, mapping, report, kind)
    if got is None:
        return
    data, ph, prev = got
    t = time.perf_counter()
    res = parse_bytes(src, data, mapping)
    report._tick("parse", t)
    _apply_parsed(session, src, res, settings, report, kind, ph, prev)


def _ingest_on_cluster(session: Session, files: list[tuple[SourceFile, SourceEntry]], settings: Settings,
                       report: IngestReport, cluster: RayCluster) -> None:
    """As :func:`_ingest_one` for every file, with the parsing on the cluster: files are
    checked (hash) and written here, in the same order, one transaction each."""

    def changed():
        for f, entry in files:
            got = _changed_bytes(session, f, settings, entry.mapping, report, entry.kind)
            session.commit()  # nothing of this file stays open while others are written
            if got is not None:
                data, ph, prev = got
                yield (f, entry, ph, prev), f, data, entry.mapping

    t = time.perf_counter()
    for (f, entry, ph, prev), res in tqdm(cluster.parse(changed()), desc="parsing", unit="file", file=sys.stderr,
                                          disable=None):
        report._tick("parse", t)
        if prev is not None:
            prev = session.get(Source, prev.path)
        _apply_parsed(session, f, res, settings, report, entry.kind, ph, prev)
        t = time.perf_counter()
