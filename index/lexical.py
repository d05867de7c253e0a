"""The lexical side: BM25 over character 1+2-grams of folded Japanese text.

Chosen by measurement (../shared/notes/embedding-model.md and docs/retrieval.md): on
JSQuAD, character 1+2-grams beat SudachiPy and MeCab word analyzers on MRR@10
(0.940 vs 0.932 / 0.929) at 5–10× the speed, need no dictionary, and are robust to
the typos, odd word boundaries and product codes of support queries. Scoring is
``bm25s`` (Lucene BM25) with a per-query weight mask for filters.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np

from hikitsugi.ingest.normalize import fold_for_lexical

logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import

# Segments of "word" characters; grams never cross punctuation or spaces.
_SEGMENT = re.compile(r"[0-9a-z\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff々〆ヵヶ]+")
_HIRAGANA = re.compile(r"^[\u3040-\u309f]+$")


def segments(text: str) -> list[str]:
    """Runs of word characters of folded text: the units character grams are taken from."""
    return _SEGMENT.findall(fold_for_lexical(text))


def hiragana_only(s: str) -> bool:
    """True for grams of hiragana alone (particles, endings), which carry little meaning."""
    return bool(_HIRAGANA.match(s))


def tokenize(text: str) -> list[str]:
    """Character unigrams (except lone hiragana, mostly particles) and bigrams."""
    tokens: list[str] = []
    for seg in segments(text):
        tokens.extend(c for c in seg if not hiragana_only(c))
        tokens.extend(seg[i : i + 2] for i in range(len(seg) - 1))
    return tokens


class LexicalIndex:
    """BM25 over the snapshot's chunk rows; results are row numbers, shared with the dense side."""

    def __init__(self, retriever, n_rows: int) -> None:
        self.retriever = retriever
        self.n_rows = n_rows
        self.vocab = retriever.vocab_dict if n_rows else {}
        sc = retriever.scores if n_rows else {}
        # plain views of bm25s' (memory-mapped) score matrix: slicing a np.memmap builds a
        # memmap object per slice (0.2 ms each, ~14 ms per query at 1,000,000 rows)
        self._data = np.asarray(sc.get("data", np.zeros(0, np.float32)))
        self._indices = np.asarray(sc.get("indices", np.zeros(0, np.int32)))
        self._indptr = np.asarray(sc.get("indptr", np.zeros(1, np.int64)))
        self._max_impact: dict[int, float] = {}

    def df(self, tid: int) -> int:
        """Rows that contain token ``tid``."""
        return int(self._indptr[tid + 1] - self._indptr[tid])

    def postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, their BM25 contributions) of token ``tid``."""
        s, e = self._indptr[tid], self._indptr[tid + 1]
        return self._indices[s:e], self._data[s:e]

    def max_impact(self, tid: int) -> float:
        """The largest contribution token ``tid`` makes to any row (an upper bound for
        :class:`LexicalQuery`'s exactness check), read once per token and kept."""
        v = self._max_impact.get(tid)
        if v is None:
            v = self._max_impact[tid] = float(self.postings(tid)[1].max(initial=0.0))
        return v

    def lookup(self, tid: int, rows: np.ndarray) -> np.ndarray:
        """Token ``tid``'s contribution to each of ``rows`` (0 where it does not occur): a
        binary search in its posting list instead of a pass over it."""
        idx, vals = self.postings(tid)
        if not len(idx) or not len(rows):
            return np.zeros(len(rows), np.float32)
        pos = np.minimum(np.searchsorted(idx, rows), len(idx) - 1)
        return np.where(idx[pos] == rows, vals[pos], np.float32(0))

    @classmethod
    def build(cls, texts: Iterable[str], k1: float, b: float) -> "LexicalIndex":
        """Lucene BM25 over the texts (:meth:`from_tokens` of their character grams)."""
        return cls.from_tokens((tokenize(t) for t in texts), k1, b)

    @classmethod
    def from_tokens(cls, docs: Iterable[list[str]], k1: float, b: float) -> "LexicalIndex":
        """Lucene BM25 over already tokenized rows (the text's grams, or another field such
        as the readings), as ``bm25s.BM25(method="lucene").index`` computes it
        (a test compares the two), but lean: each text is turned into (token id, count)
        arrays at once, so no list of token strings for the whole corpus ever exists. At
        1,000,000 chunks (≈ 380 grams each) those lists alone needed tens of GiB; bm25s
        keeps the same score matrix, saved in its own format and loaded by it."""
        vocab: dict[str, int] = {}
        ids_parts: list[np.ndarray] = []
        tf_parts: list[np.ndarray] = []
        lengths: list[int] = []
        nnz_per_doc: list[int] = []
        buf_ids, buf_tf = [], []
        for toks in docs:
            toks = toks or ["\u0000"]
            ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.int32, count=len(toks))
            uniq, counts = np.unique(ids, return_counts=True)
            buf_ids.append(uniq)
            buf_tf.append(counts.astype(np.float32))
            lengths.append(len(toks))
            nnz_per_doc.append(len(uniq))
            if len(buf_ids) >= 50_000:
                ids_parts.append(np.concatenate(buf_ids))
                tf_parts.append(np.concatenate(buf_tf))
                buf_ids, buf_tf = [], []
        if buf_ids:
            ids_parts.append(np.concatenate(buf_ids))
            tf_parts.append(np.concatenate(buf_tf))
        n = len(lengths)
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        if not n:
            return cls(retriever, 0)
        tok = np.concatenate(ids_parts)
        del ids_parts
        tf = np.concatenate(tf_parts)
        del tf_parts
        doc = np.repeat(np.arange(n, dtype=np.int32), np.asarray(nnz_per_doc, dtype=np.int64))
        dl = np.asarray(lengths, dtype=np.float32)
        df = np.bincount(tok, minlength=len(vocab)).astype(np.float64)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = (k1 * ((1 - b) + b * dl / dl.mean())).astype(np.float32)
        data = idf[tok] * (tf / (norm[doc] + tf))
        del tf
        order = np.argsort(tok, kind="stable")  # by token, documents ascending within each
        retriever.scores = {"data": data[order].astype(np.float32), "indices": doc[order].astype(np.int32),
                            "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int64), "num_docs": n}
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.nonoccurrence_array = None  # lucene scores absent tokens as 0
        return cls(retriever, n)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.n_rows:
            self.retriever.save(str(directory), show_progress=False)
        (directory / "rows.txt").write_text(str(self.n_rows))

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Memory-mapped: a query reads only its tokens' posting lists, so at 1,000,000 chunks
        the score matrix (gigabytes) stays in the page cache instead of each server's heap."""
        n = int((directory / "rows.txt").read_text())
        retriever = bm25s.BM25.load(str(directory), mmap=True) if n else bm25s.BM25()
        return cls(retriever, n)

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for the query (0 where the mask forbids)."""
        known = [t for t in query_tokens if t in self.vocab]
        if not known:
            return np.zeros(self.n_rows, dtype=np.float32)
        weights = None if mask is None else mask.astype(np.float32)
        return np.asarray(self.retriever.get_scores(known, weight_mask=weights), dtype=np.float32)

    def score_all(self, tokens: list[str], mask: np.ndarray | None = None,
                  extra: list[str] | None = None, extra_weight: float = 0.3) -> np.ndarray:
        """Score of every row; ``extra`` tokens (synonyms) count at ``extra_weight``."""
        scores = self.scores(tokens, mask)
        if extra:
            scores = scores + extra_weight * self.scores(extra, mask)
        return scores

    @staticmethod
    def top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best n (row numbers, scores) with score > 0."""
        # Only rows with a score take part: at 1,000,000 rows a partition over all of them
        # cost more than finding the few hundred thousand that any query token touched.
        nz = np.flatnonzero(scores > 0)
        if not len(nz):
            return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
        n = min(n, len(nz))
        top = nz[np.argpartition(-scores[nz], n - 1)[:n]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top, scores[top]

    def search(self, tokens: list[str], n: int, mask: np.ndarray | None = None,
               extra: list[str] | None = None, extra_weight: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Top n (row numbers, scores) with score > 0."""
        return self.top(self.score_all(tokens, mask, extra, extra_weight), n)


class LexicalQuery:
    """BM25 of one query over weighted fields (surface grams, synonyms, readings), for the top
    list and for any other rows fusion asks about.

    Every query term's posting list used to be added into a score per row: at 1,000,000
    chunks a support query's ~25 distinct grams touch ~2.5 million postings (common kanji
    and their bigrams occur in a tenth of all rows), ~8 ms on a quiet machine. Here the
    terms are taken rarest first and added into the per-row score only while their
    postings fit ``scatter_budget``; each remaining (common, low-idf) term is looked up —
    a binary search in its posting list — for the ``pool`` best rows of the rare terms
    and for the rows fusion asks about. Below the budget (every corpus of the evaluation
    sets, and most queries at 100,000 chunks) nothing changes: the scores are the exhaustive
    ones. Above it the top list is exact whenever :attr:`exact` says so (the best score
    a row outside the pool could reach stays below the n-th score found); the budget and the
    pool were chosen with ``python -m bench.lexical`` (docs/benchmarks.md).
    """

    def __init__(self, fields: list[tuple[LexicalIndex, list[str], float]], n_rows: int,
                 mask: np.ndarray | None = None, scatter_budget: int = 0, pool: int = 2000) -> None:
        terms = []
        for index, tokens, weight in fields:
            if weight <= 0 or not index.n_rows:
                continue
            for tid, count in Counter(index.vocab[t] for t in tokens if t in index.vocab).items():
                terms.append((index.df(tid), index, tid, weight * count))
        terms.sort(key=lambda t: t[0])
        self.partial = np.zeros(n_rows, np.float32)
        self.mask = mask
        self.pool = pool
        self.looked_up: list[tuple[LexicalIndex, int, float]] = []
        self._touched: list[np.ndarray] = []
        used = 0
        for df, index, tid, weight in terms:
            if scatter_budget and self._touched and used + df > scatter_budget:
                self.looked_up.append((index, tid, weight))
                continue
            rows, vals = index.postings(tid)
            np.add.at(self.partial, rows, vals if weight == 1 else vals * np.float32(weight))
            self._touched.append(rows)
            used += df
        if mask is not None:
            self.partial *= mask
        self.exact = True

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """The full BM25 score of each of ``rows`` (0 for rows the mask forbids)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = self.partial[rows].astype(np.float32)
        for index, tid, weight in self.looked_up:
            out += np.float32(weight) * index.lookup(tid, rows)
        if self.mask is not None and self.looked_up:
            out *= self.mask[rows]
        return out

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best n (row numbers, scores) with score > 0; sets :attr:`exact`."""
        if not self.looked_up:
            return LexicalIndex.top(self.partial, n)
        touched = np.concatenate(self._touched)  # a row appears once per rare term it holds
        vals = self.partial[touched]
        outside = 0.0  # best partial score of a row left out of the pool
        k = 2 * self.pool
        if len(touched) > k:
            sel = np.argpartition(-vals, k - 1)[:k]
            outside = float(vals[sel].min())
            touched = touched[sel]
        pool = np.unique(touched)
        pool = pool[self.partial[pool] > 0]
        if len(pool) > self.pool:
            keep = np.argpartition(-self.partial[pool], self.pool - 1)
            outside = max(outside, float(self.partial[pool[keep[self.pool:]]].max()))
            pool = pool[keep[:self.pool]]
        rows, scores = _top_of(pool, self.score_rows(pool), n)
        bound = sum(w * index.max_impact(tid) for index, tid, w in self.looked_up)
        self.exact = len(scores) == n and outside + bound <= float(scores[-1])
        return rows, scores


def _top_of(rows: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Best n of (rows, scores) with score > 0, best first."""
    keep = scores > 0
    rows, scores = rows[keep], scores[keep]
    if len(rows) > n:
        part = np.argpartition(-scores, n - 1)[:n]
        rows, scores = rows[part], scores[part]
    order = np.argsort(-scores, kind="stable")
    return rows[order], scores[order]
