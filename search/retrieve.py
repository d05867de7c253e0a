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
from hikitsugi.index import readings as rd
from hikitsugi.index.lexical import LexicalQuery, tokenize
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
    typed_as_reading: bool = False  # the query was typed in hiragana/romaji (see query_forms)


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
    cand = np.fromiter(scores, dtype=np.int64, count=len(scores))
    starts, lens = ptr[cand], ptr[cand + 1] - ptr[cand]
    has = lens > 0
    if not has.any():
        return scores
    rows, starts, lens = cand[has], starts[has], lens[has]
    ends = np.cumsum(lens)
    # every sentence of every candidate row, gathered and scored in one product (no per-row loop)
    idx = np.arange(ends[-1]) + np.repeat(starts - (ends - lens), lens)
    best = np.maximum.reduceat(vecs[idx] @ qv.reshape(-1), ends - lens)
    out = dict(scores)
    for r, b in zip(rows.tolist(), best.tolist()):
        if b > out[r]:
            out[r] = b
    return out


def with_sentences(c: Candidates, snap: Snapshot, qv: np.ndarray | None) -> Candidates:
    """The same candidates with dense scores from :func:`best_sentence`."""
    dense_all = best_sentence(c.dense_all, snap, qv) if c.dense_all else {}
    dense = {r: dense_all[r] for r in c.dense} if dense_all else best_sentence(c.dense, snap, qv)
    return Candidates(dense, c.lexical, dense_all, c.lexical_all, c.typed_as_reading)


@dataclass
class QueryForms:
    """The forms one query is searched in: as typed (normalized), what the dense side
    embeds (a hiragana/romaji query rewritten in the corpus' words), and its reading
    tokens with their weight in the lexical score (index.readings)."""

    text: str
    dense_text: str
    reading_tokens: list[str]
    reading_weight: float
    typed_as_reading: bool = False
    lexical_text: str = ""  # what the surface field matches: the text, or its rewrite (reading_rewrite_lexical)


def query_forms(qn: str, settings: Settings, snap: Snapshot) -> QueryForms:
    if snap.readings is None:
        return QueryForms(qn, qn, [], 0.0, False, qn)
    typed = rd.is_reading_query(qn)
    weight = settings.reading_weight if typed else settings.reading_weight_other
    rewrite = (snap.readings.rewrite(qn, settings.reading_converter) or qn) if typed and (
        settings.reading_rewrite or settings.reading_rewrite_lexical) else qn
    tokens = rd.tokens(rd.query_reading(qn, snap.readings.analyzer)) if weight > 0 else []
    return QueryForms(qn, rewrite if settings.reading_rewrite else qn, tokens, weight, typed,
                      rewrite if settings.reading_rewrite_lexical else qn)


def lexical_query(forms: QueryForms, settings: Settings, snap: Snapshot, mask: np.ndarray | None) -> LexicalQuery:
    """BM25 of the query: the surface field (synonyms at their weight) plus the reading field at its weight."""
    text = forms.lexical_text or forms.text
    fields = [(snap.lexical, tokenize(text), 1.0),
              (snap.lexical, synonym_tokens(text, settings), settings.synonym_weight)]
    if forms.reading_tokens and forms.reading_weight > 0 and snap.readings is not None:
        fields.append((snap.readings.index, forms.reading_tokens, forms.reading_weight))
    return LexicalQuery(fields, snap.lexical.n_rows, mask)


def retrieve_candidates(qn: str, settings: Settings, snap: Snapshot, mode: str, n: int,
                        mask: np.ndarray | None, sentences: bool = True
                        ) -> tuple[Candidates, np.ndarray | None, dict[str, float]]:
    """Top-n rows from each side, every candidate scored by both (hybrid), the query vector, timings in ms.

    ``sentences=False`` scores by chunk vectors only (for the evaluation's comparisons)."""
    timings: dict[str, float] = {}
    dense: dict[int, float] = {}
    lexical: dict[int, float] = {}
    lex: LexicalQuery | None = None
    qv = None
    forms = query_forms(qn, settings, snap)
    if mode in ("dense", "hybrid") and snap.dense.ntotal:
        t = time.perf_counter()
        qv = get_embedder(settings).embed_query(forms.dense_text)
        timings["embed"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense = _dense_candidates(snap, qv, n, mask, settings)
        timings["faiss"] = (time.perf_counter() - t) * 1000
    if mode in ("lexical", "hybrid") and snap.lexical.n_rows:
        t = time.perf_counter()
        lex = lexical_query(forms, settings, snap, mask)
        rows, scores = lex.top(n)
        lexical = {int(r): float(s) for r, s in zip(rows, scores)}
        timings["lexical"] = (time.perf_counter() - t) * 1000
    cands = Candidates(dense, lexical, typed_as_reading=forms.typed_as_reading)
    if mode == "hybrid" and qv is not None and lex is not None:
        union = sorted(set(dense) | set(lexical))
        only_lexical = [r for r in union if r not in dense]
        cands.dense_all = dict(dense)
        if only_lexical:
            sims = snap.dense.scores(only_lexical, qv)
            cands.dense_all.update(zip(only_lexical, sims.astype(float).tolist()))
        cands.lexical_all = dict(zip(union, lex.score_rows(np.asarray(union, dtype=np.int64)).astype(float).tolist()))
    if sentences and qv is not None:
        t = time.perf_counter()
        cands = with_sentences(cands, snap, qv)
        timings["faiss"] = timings.get("faiss", 0.0) + (time.perf_counter() - t) * 1000
    return cands, qv, timings
