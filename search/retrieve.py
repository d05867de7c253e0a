"""Retrieval: the current index generation, and each retriever's candidates for one query.

Dense (FAISS, with per-sentence vectors for manual passages) and lexical (BM25) each return
their own top list; in hybrid mode every candidate of either list is also scored by the
other side, so fusion never has to guess a missing score.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import get_embedder
from hikitsugi.index.lexical import tokenize
from hikitsugi.index.snapshot import Snapshot, current_name, load_snapshot
from hikitsugi.index.vectors import plan as vector_plan
from hikitsugi.search.synonyms import synonym_tokens


class NoIndexError(RuntimeError):
    """Nothing has been ingested into this HIKITSUGI_HOME yet."""


_lock = threading.Lock()
_loaded: dict[str, Snapshot] = {}
_preloaded: dict[str, Snapshot] = {}


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
                pre = _preloaded.pop(key, None)
                snap = pre if pre is not None and pre.name == name else load_snapshot(index_dir, name)
                _loaded[key] = snap
    return snap


def preload(index_dir: Path, name: str) -> None:
    """Load a complete generation before ``CURRENT`` names it (the generation follower
    calls this), so the first query after the switch does not wait for the load."""
    snap = load_snapshot(index_dir, name)
    with _lock:
        _preloaded[str(index_dir)] = snap


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


def _dense_candidates(snap: Snapshot, qv: np.ndarray, n: int, mask: np.ndarray | None,
                      settings: Settings) -> dict[int, float]:
    """Best n allowed rows by cosine: the query plan (:mod:`hikitsugi.index.vectors.plan`) picks
    the exact scan, the exact scan of only the allowed rows, or the approximate index with
    the mask applied inside it."""
    found, _ = vector_plan.search(snap.dense, qv, n, mask, settings.plan_restricted_max_rows,
                                  settings.plan_min_selectivity)
    return found


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
        dense = _dense_candidates(snap, qv, n, mask, settings)
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
            sims = snap.dense.scores(only_lexical, qv)
            cands.dense_all.update(zip(only_lexical, sims.astype(float).tolist()))
        cands.lexical_all = {r: float(lex_all[r]) for r in union}
    if sentences and qv is not None:
        t = time.perf_counter()
        cands = with_sentences(cands, snap, qv)
        timings["faiss"] = timings.get("faiss", 0.0) + (time.perf_counter() - t) * 1000
    return cands, qv, timings
