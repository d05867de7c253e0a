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
    def build(cls, texts: list[str], k1: float, b: float) -> "LexicalIndex":
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        if texts:
            retriever.index([tokenize(t) or ["\u0000"] for t in texts], show_progress=False)
        return cls(retriever, len(texts))

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
        if not len(scores):
            return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        keep = scores[top] > 0
        return top[keep], scores[top[keep]]

    def search(self, tokens: list[str], n: int, mask: np.ndarray | None = None,
               extra: list[str] | None = None, extra_weight: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Top n (row numbers, scores) with score > 0."""
        return self.top(self.score_all(tokens, mask, extra, extra_weight), n)
