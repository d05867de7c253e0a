"""Index snapshots: build a complete new generation, then switch to it atomically.

Each generation is a directory ``index/gen-<timestamp>`` with the chunk vectors
(``vectors.npy``) and the vector index built over them (:mod:`hikitsugi.index.vectors`: exact
below ``ann_min_rows``, approximate above — this is the one place that decides), the
lexical index and a manifest. The file ``index/CURRENT`` names the live generation and
is replaced with ``os.replace`` (atomic on POSIX), so a reader sees either the old or
the new index, never a mix, and a crash during a build leaves the old one serving.
Vectors come from the database, so a rebuild never re-embeds. Only live document rows
(not retired versions, see :mod:`hikitsugi.storage.schema`) go into a generation. Leftovers of a
build that was killed (``.gen-*.tmp``) are never named by CURRENT, so never served, and
are removed by the next locked run (:func:`cleanup_leftovers`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import model_id
from hikitsugi.index import generations
from hikitsugi.index.filters import CODED_FIELDS, code_value, to_epoch
from hikitsugi.index.hooks import pause_at
from hikitsugi.index.lexical import LexicalIndex
from hikitsugi.index.readings import Readings
from hikitsugi.index.vectors import VectorIndex, build_index, load_index
from hikitsugi.index.vectors.base import VECTORS_FILE, map_rows
from hikitsugi.ingest.sentences import split_sentences
from hikitsugi.storage.schema import Chunk, Document, Embedding

KEEP_GENERATIONS = 2


@dataclass
class _Row:
    id: int
    document_id: int
    context: str
    text: str
    title: str
    kind: str
    customer: str | None
    occurred_at: str | None
    meta: dict | None


@dataclass
class Snapshot:
    """One generation, loaded. Row i of every array is the same chunk in both indexes."""

    name: str
    dense: VectorIndex  # row order = chunk_ids; .kind says which backend
    lexical: LexicalIndex
    chunk_ids: np.ndarray
    doc_ids: np.ndarray
    codes: dict[str, np.ndarray]  # field -> int32 code per row (see index.filters)
    dates: np.ndarray  # epoch seconds per row, NaN when undated
    manifest: dict
    # Sentence vectors of rows whose kind is in ``sentence_kinds``: row i owns
    # sent_vecs[sent_ptr[i]:sent_ptr[i + 1]] (empty for other rows and one-sentence chunks).
    sent_vecs: np.ndarray | None = None
    sent_ptr: np.ndarray | None = None
    readings: Readings | None = None  # the reading field (index.readings); None when switched off


def current_name(index_dir: Path) -> str | None:
    try:
        return (index_dir / "CURRENT").read_text().strip() or None
    except FileNotFoundError:
        return None


class GenerationGone(RuntimeError):
    """Rows of a published generation were purged before this machine could rebuild it
    (a newer generation is current by then: follow that one)."""


def build_snapshot(session: Session, settings: Settings, chunk_ids: np.ndarray | None = None,
                   name: str | None = None, before_switch: Callable[[str], None] | None = None) -> str:
    """Write a new generation from the database and make it current; return its name.

    Without ``chunk_ids`` the generation holds the live rows and is *published* in the
    database (:mod:`hikitsugi.index.generations`) before it becomes current, so every API
    replica follows it. With ``chunk_ids`` and ``name`` (a replica following a published
    generation) it holds exactly those rows — whatever a later re-index has made live
    meanwhile — and raises :class:`GenerationGone` when some were purged already.
    ``before_switch(name)`` runs when the generation is complete on disk, just before
    ``CURRENT`` names it (a server preloads it there, so no query waits for the load).
    """
    t0 = time.perf_counter()
    mid = model_id(settings)
    query = (select(Chunk.id, Chunk.document_id, Chunk.context, Chunk.text, Document.title, Document.kind,
                    Document.customer, Document.occurred_at, Document.meta, Embedding.vector)
             .join(Document, Document.id == Chunk.document_id)
             .join(Embedding, (Embedding.embed_hash == Chunk.embed_hash) & (Embedding.model == mid), isouter=True))
    if chunk_ids is None:
        query, wanted = query.where(Document.retired_at.is_(None)), None
    elif len(chunk_ids):
        # One range scan, filtered here: an IN list of a million ids is not a query.
        query = query.where(Chunk.id >= int(chunk_ids.min()), Chunk.id <= int(chunk_ids.max()))
        wanted = set(chunk_ids.tolist())
    else:
        query, wanted = query.where(Chunk.id < 0), set()
    # Streamed, with the vectors copied into one preallocated matrix as they arrive: at
    # 1,000,000 chunks, holding every row with its vector bytes as Python objects first
    # took several GiB more than the matrix itself.
    rows, vec_parts = [], []
    result = session.execute(query.order_by(Chunk.id).execution_options(yield_per=20000))
    missing = 0
    for part in result.partitions():
        buf = []
        for r in part:
            if wanted is not None and r.id not in wanted:
                continue
            if r.vector is None:
                missing += 1
                continue
            buf.append(r.vector)
            rows.append(_Row(r.id, r.document_id, r.context, r.text, r.title, r.kind, r.customer, r.occurred_at,
                             r.meta))
        if buf:
            vec_parts.append(np.frombuffer(b"".join(buf), dtype=np.float32).reshape(len(buf), -1))
    if wanted is not None and len(rows) + missing != len(wanted):
        raise GenerationGone(f"{len(wanted) - len(rows) - missing} of the generation's {len(wanted)} chunks are no "
                             "longer in the database")
    if missing:
        raise RuntimeError(f"{missing} chunks have no stored embedding for model {mid}; run ingest again")
    ids = np.array([r.id for r in rows], dtype=np.int64)
    vecs = np.concatenate(vec_parts) if vec_parts else np.zeros((0, 384), dtype=np.float32)
    del vec_parts
    dense = build_index(vecs, settings)
    vocab: dict[str, list[str]] = {f: [""] for f in CODED_FIELDS}
    lookup: dict[str, dict[str, int]] = {f: {"": 0} for f in CODED_FIELDS}
    codes = {f: np.zeros(len(rows), dtype=np.int32) for f in CODED_FIELDS}
    for i, r in enumerate(rows):
        meta = r.meta or {}
        values = {"kind": r.kind, "customer": r.customer, "status": meta.get("status"),
                  "product": meta.get("product"), "category": meta.get("category")}
        for f, v in values.items():
            c = code_value(v)
            if c not in lookup[f]:
                lookup[f][c] = len(vocab[f])
                vocab[f].append(c)
            codes[f][i] = lookup[f][c]
    dates = np.array([to_epoch(r.occurred_at) if r.occurred_at else np.nan for r in rows], dtype=np.float64)
    sent_vecs, sent_ptr = _sentence_vectors(session, settings, mid, rows, vecs.shape[1])
    lexical = LexicalIndex.build((lexical_text(r.title, r.context, r.text) for r in rows),
                                 settings.bm25_k1, settings.bm25_b)
    readings = _build_readings((lexical_text(r.title, r.context, r.text) for r in rows), [int(i) for i in ids],
                               settings)
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    name = name or f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{int(time.time_ns() % 1_000_000)}"
    tmp = index_dir / f".{name}.tmp"
    tmp.mkdir()
    np.save(tmp / VECTORS_FILE, vecs)
    dense.save(tmp)
    dense_rows = {"dense_share": settings.lexical_dense_share, "dense_min_rows": settings.lexical_dense_min_rows}
    lexical.save(tmp / "lexical", **dense_rows)
    if readings is not None:
        readings.save(tmp / "readings", **dense_rows)
    doc_ids = np.array([r.document_id for r in rows], dtype=np.int64)
    np.savez(tmp / "rows.npz", chunk_ids=ids, doc_ids=doc_ids,
             dates=dates, **{f"code_{f}": c for f, c in codes.items()})
    np.save(tmp / "sent_vecs.npy", sent_vecs)  # .npy, so a server can memory-map them
    np.save(tmp / "sent_ptr.npy", sent_ptr)
    manifest = {"model": mid, "chunks": len(rows), "dim": int(vecs.shape[1]), "vocab": vocab,
                "vector_index": dense.kind,
                "sentence_kinds": sentence_kinds(settings), "sentences": int(len(sent_vecs)),
                "built_s": round(time.perf_counter() - t0, 2)}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    _fsync_dir(tmp)
    pause_at("snapshot")
    os.replace(tmp, index_dir / name)
    if chunk_ids is None:
        generations.publish(session, name, mid, ids, doc_ids)
    if before_switch is not None:
        before_switch(name)
    switch_current(index_dir, name)
    return name


def switch_current(index_dir: Path, name: str) -> None:
    """Name a complete generation in ``CURRENT`` (atomic) and prune old generations."""
    cur_tmp = index_dir / f".CURRENT.{os.getpid()}.tmp"
    cur_tmp.write_text(name)
    os.replace(cur_tmp, index_dir / "CURRENT")
    _fsync_dir(index_dir, recursive=False)
    _prune(index_dir, keep=name)


def _build_readings(texts: Iterable[str], ids: list[int], settings: Settings) -> Readings | None:
    """The reading field (index.readings), reusing the current generation's analyses of unchanged chunks."""
    if not settings.reading_analyzer:
        return None
    name = current_name(settings.index_dir)
    previous = Readings.load_rows(settings.index_dir / name / "readings", settings.reading_analyzer) if name else {}
    return Readings.build(texts, settings.reading_analyzer, settings.bm25_k1, settings.bm25_b, ids, previous)


def _sentence_vectors(session: Session, settings: Settings, mid: str, rows: list,
                      dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, per-row offsets) of the stored sentence vectors, in row order.

    A sentence whose vector is missing (an index rebuilt before ``embed_missing`` ran)
    is left out: its chunk is then scored by its chunk vector alone, never wrongly."""
    kinds = set(sentence_kinds(settings))
    hashes: list[list[str]] = [
        [embed_hash(mid, t) for t in sentence_texts(r.title, r.context, r.text)] if r.kind in kinds else []
        for r in rows]
    flat = sorted({h for hs in hashes for h in hs})
    stored: dict[str, bytes] = {}
    for i in range(0, len(flat), 500):
        stored.update(session.execute(select(Embedding.embed_hash, Embedding.vector).where(
            Embedding.model == mid, Embedding.embed_hash.in_(flat[i:i + 500]))).all())
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    parts: list[bytes] = []
    for i, hs in enumerate(hashes):
        found = [stored[h] for h in hs if h in stored]
        parts.extend(found)
        ptr[i + 1] = ptr[i] + len(found)
    vecs = np.frombuffer(b"".join(parts), dtype=np.float32).reshape(len(parts), dim) if parts \
        else np.zeros((0, dim), dtype=np.float32)
    return vecs, ptr


def sentence_kinds(settings: Settings) -> list[str]:
    """The document kinds that get per-sentence vectors (setting ``sentence_kinds``)."""
    return sorted({k.strip() for k in settings.sentence_kinds.split(",") if k.strip()})


def embed_hash(model: str, text: str) -> str:
    """Key of a stored vector: the same text under the same model is embedded once."""
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def sentence_texts(title: str, context: str, text: str) -> list[str]:
    """What the dense side sees for each sentence of a chunk, or [] for a one-sentence
    chunk (its chunk vector already is its sentence vector). Each sentence keeps the
    title and headings, as the chunk does, so it is read in its context."""
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return []
    return [embed_text(title, context, x) for x in sentences]


def lexical_text(title: str, context: str, text: str) -> str:
    """What the lexical side sees for a chunk: the document title and headings give context."""
    return f"{title}\n{context}\n{text}"


def embed_text(title: str, context: str, text: str) -> str:
    """What the dense side sees for a chunk (the model's passage prompt is added later)."""
    head = " > ".join(x for x in (title, context) if x)
    return f"{head}\n{text}" if head else text


def load_rows(index_dir: Path, name: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """A generation's manifest, chunk ids and document ids (cheap: no index is loaded)."""
    gen = index_dir / name
    manifest = json.loads((gen / "manifest.json").read_text())
    with np.load(gen / "rows.npz") as arr:
        return manifest, arr["chunk_ids"], arr["doc_ids"]


def cleanup_leftovers(index_dir: Path) -> int:
    """Remove what a killed build left behind. Only call while holding the re-index lock
    (no other build can be in progress then). Returns the number of entries removed."""
    n = 0
    for p in list(index_dir.glob(".gen-*.tmp")) + list(index_dir.glob(".CURRENT*.tmp")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def load_snapshot(index_dir: Path, name: str, settings: Settings | None = None) -> Snapshot:
    """Open a generation: its vector index (approximate backends memory-map the vectors),
    lexical index, row attributes and sentence vectors (memory-mapped too)."""
    from hikitsugi.config import get_settings

    settings = settings or get_settings()
    gen = index_dir / name
    manifest = json.loads((gen / "manifest.json").read_text())
    if (gen / VECTORS_FILE).exists():
        dense = load_index(gen, manifest.get("vector_index", "exact"), settings)
    else:  # a generation written before vectors.npy: its flat FAISS index holds the vectors
        import faiss

        from hikitsugi.index.vectors.exact import ExactIndex

        flat = faiss.read_index(str(gen / "dense.faiss"))
        dense = ExactIndex(flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.zeros((0, flat.d), np.float32))
    lexical = LexicalIndex.load(gen / "lexical")
    arr = np.load(gen / "rows.npz")
    codes = {f: arr[f"code_{f}"] for f in CODED_FIELDS}
    sent_vecs = sent_ptr = None
    if (gen / "sent_vecs.npy").exists():
        sent_vecs = map_rows(gen / "sent_vecs.npy")
        sent_ptr = np.load(gen / "sent_ptr.npy")
    elif (gen / "sentences.npz").exists():
        with np.load(gen / "sentences.npz") as sarr:
            sent_vecs, sent_ptr = sarr["vecs"], sarr["ptr"]
    return Snapshot(name, dense, lexical, arr["chunk_ids"], arr["doc_ids"], codes, arr["dates"], manifest,
                    sent_vecs, sent_ptr, Readings.load(gen / "readings"))


def _fsync_dir(path: Path, recursive: bool = True) -> None:
    for f in path.rglob("*") if recursive else path.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(index_dir: Path, keep: str) -> None:
    gens = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    old = [p for p in gens if p.name != keep][: max(0, len(gens) - KEEP_GENERATIONS)]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    for p in index_dir.glob(".gen-*.tmp"):
        if time.time() - p.stat().st_mtime > 3600:
            shutil.rmtree(p, ignore_errors=True)
