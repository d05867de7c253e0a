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

DENSE_ROWS, DENSE_IDS = "dense_rows.npy", "dense_ids.npy"

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
        # memmap object per slice (~70 slices per query at 1,000,000 rows cost 14 ms on a busy machine)
        self._data = np.asarray(sc.get("data", np.zeros(0, np.float32)))
        self._indices = np.asarray(sc.get("indices", np.zeros(0, np.int32)))
        self._indptr = np.asarray(sc.get("indptr", np.zeros(1, np.int64)))
        self._dense = np.zeros((0, n_rows), np.float32)
        self._dense_of: dict[int, int] = {}

    def postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, their BM25 contributions) of token ``tid``."""
        s, e = self._indptr[tid], self._indptr[tid + 1]
        return self._indices[s:e], self._data[s:e]

    def dense_row(self, tid: int) -> np.ndarray | None:
        """Token ``tid``'s contribution to every row, when it is common enough to be stored so."""
        i = self._dense_of.get(tid)
        return None if i is None else self._dense[i]

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

    def save(self, directory: Path, dense_share: float = 0.0, dense_min_rows: int = 0) -> None:
        """bm25s' files, plus each token found in at least ``dense_share`` of the rows stored
        again as one dense row of contributions (when the index has ``dense_min_rows`` rows).

        Why: adding a posting list costs ~1 ns per posting (``np.add.at``), adding a dense row
        ~0.05 ns per row (vectorized). At 1,000,000 synthetic chunks a support query's terms
        touch ~2.5 million postings, 62 % of them from the ~4 terms per query that occur in a
        quarter of the rows or more; at that share a dense row (4 bytes per row) is at most
        twice the postings it replaces (8 bytes per posting), so the files grow by 427 MiB
        (112 tokens) while the postings a query reads shrink by 62 % (docs/benchmarks.md)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.n_rows:
            self.retriever.save(str(directory), show_progress=False)
            if dense_share > 0 and self.n_rows >= dense_min_rows:
                self.write_dense_rows(directory, dense_share)
        (directory / "rows.txt").write_text(str(self.n_rows))

    def write_dense_rows(self, directory: Path, dense_share: float) -> int:
        """Write the dense rows of the tokens in at least ``dense_share`` of the rows; how many."""
        tids = np.flatnonzero(np.diff(self._indptr) >= dense_share * self.n_rows)
        out = np.lib.format.open_memmap(directory / DENSE_ROWS, mode="w+", dtype=np.float32,
                                        shape=(len(tids), self.n_rows))
        for i, tid in enumerate(tids):
            rows, vals = self.postings(int(tid))
            out[i, rows] = vals
        out.flush()
        del out
        np.save(directory / DENSE_IDS, tids.astype(np.int64))
        return len(tids)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Memory-mapped: a query reads only its tokens' posting lists (or dense rows), so at
        1,000,000 chunks the score matrix (gigabytes) stays in the page cache instead of each
        server's heap."""
        n = int((directory / "rows.txt").read_text())
        retriever = bm25s.BM25.load(str(directory), mmap=True) if n else bm25s.BM25()
        out = cls(retriever, n)
        if n and (directory / DENSE_IDS).exists():
            out._dense = np.asarray(np.load(directory / DENSE_ROWS, mmap_mode="r"))
            out._dense_of = {int(t): i for i, t in enumerate(np.load(directory / DENSE_IDS))}
        return out

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for the query (0 where the mask forbids)."""
        return LexicalQuery([(self, query_tokens, 1.0)], self.n_rows, mask).scores

    def score_all(self, tokens: list[str], mask: np.ndarray | None = None,
                  extra: list[str] | None = None, extra_weight: float = 0.3) -> np.ndarray:
        """Score of every row; ``extra`` tokens (synonyms) count at ``extra_weight``."""
        return LexicalQuery([(self, tokens, 1.0), (self, extra or [], extra_weight)], self.n_rows, mask).scores

    @staticmethod
    def top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best n (row numbers, scores) with score > 0.

        Exact, without sorting or partitioning every row: a threshold is read off every 16th
        row (its ~2n/16-th best score), and only the rows at or above it are ranked — when
        they are at least n, every true top-n row is among them. Otherwise (few rows scored)
        the rows with any score are ranked. At 1,000,000 rows, where common terms give most
        rows some score, partitioning them all took several milliseconds."""
        if len(scores) >= 50_000 and n > 0:
            sample = scores[::16]
            r = min(len(sample), max(1, 2 * n // 16))
            thr = float(np.partition(sample, len(sample) - r)[len(sample) - r])
            if thr > 0:
                cand = np.flatnonzero(scores >= thr)
                if len(cand) >= n:
                    return _best(cand, scores, n)
        nz = np.flatnonzero(scores > 0)
        return _best(nz, scores, n) if len(nz) else (np.array([], dtype=np.int64), np.array([], dtype=np.float32))

    def search(self, tokens: list[str], n: int, mask: np.ndarray | None = None,
               extra: list[str] | None = None, extra_weight: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Top n (row numbers, scores) with score > 0."""
        return self.top(self.score_all(tokens, mask, extra, extra_weight), n)


class LexicalQuery:
    """BM25 of one query over weighted fields (surface grams, synonyms, readings), kept as
    one score per row for the top list and for the rows fusion asks about.

    Every distinct term's posting list is added once, at its weight times its count in the
    query, into one array (bm25s added a repeated term once per occurrence and each field
    into an array of its own). Exhaustive on purpose: adding only the rarest terms' postings
    and looking the common ones up for a pool of the best rows (MaxScore-like) was measured
    at 1,000,000 chunks and rejected — 3.5 ms instead of 10 ms, but only 6 % of the queries
    kept the exhaustive top 100 and 88 % of the top-10 rows (budget 300,000 postings, pool
    1,000); with a budget and pool large enough to keep 98 % of the top 10 it was slower than
    adding everything (docs/benchmarks.md, "Lexical side at 1M").
    """

    def __init__(self, fields: list[tuple[LexicalIndex, list[str], float]], n_rows: int,
                 mask: np.ndarray | None = None) -> None:
        self.scores = np.zeros(n_rows, np.float32)
        for index, tokens, weight in fields:
            if weight <= 0 or not index.n_rows:
                continue
            for tid, count in Counter(index.vocab[t] for t in tokens if t in index.vocab).items():
                w = np.float32(weight * count)
                dense = index.dense_row(tid)
                if dense is not None:
                    self.scores += dense if w == 1 else dense * w
                    continue
                rows, vals = index.postings(tid)
                np.add.at(self.scores, rows, vals if w == 1 else vals * w)
        if mask is not None:
            self.scores *= mask

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """The BM25 score of each of ``rows`` (0 for rows the mask forbids)."""
        return self.scores[np.asarray(rows, dtype=np.int64)]

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best n (row numbers, scores) with score > 0."""
        return LexicalIndex.top(self.scores, n)


def _best(rows: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n of ``rows`` with the highest ``scores``, best first."""
    n = min(n, len(rows))
    top = rows[np.argpartition(-scores[rows], n - 1)[:n]] if len(rows) > n else rows
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]
