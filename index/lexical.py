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

    @classmethod
    def build(cls, texts: Iterable[str], k1: float, b: float) -> "LexicalIndex":
        """Lucene BM25 over the texts, as ``bm25s.BM25(method="lucene").index`` computes it
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
        for text in texts:
            toks = tokenize(text) or ["\u0000"]
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
