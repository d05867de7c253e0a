"""The lexical side: BM25 over character 1+2-grams of folded Japanese text.

Chosen by measurement (../shared/notes/embedding-model.md and docs/retrieval.md): on
JSQuAD, character 1+2-grams beat SudachiPy and MeCab word analyzers on MRR@10
(0.940 vs 0.932 / 0.929) at 5–10× the speed, need no dictionary, and are robust to
the typos, odd word boundaries and product codes of support queries. Scoring is
``bm25s`` (Lucene BM25) with a per-query weight mask for filters.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ingest.normalize import fold_for_lexical

# Segments of "word" characters; grams never cross punctuation or spaces.
_SEGMENT = re.compile(r"[0-9a-z\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff々〆ヵヶ]+")
_HIRAGANA = re.compile(r"^[\u3040-\u309f]+$")


def tokenize(text: str) -> list[str]:
    """Character unigrams (except lone hiragana, mostly particles) and bigrams."""
    tokens: list[str] = []
    for seg in _SEGMENT.findall(fold_for_lexical(text)):
        tokens.extend(c for c in seg if not _HIRAGANA.match(c))
        tokens.extend(seg[i : i + 2] for i in range(len(seg) - 1))
    return tokens


class LexicalIndex:
    def __init__(self, retriever, chunk_ids: np.ndarray) -> None:
        self.retriever = retriever
        self.chunk_ids = chunk_ids
        self.vocab = retriever.vocab_dict

    @classmethod
    def build(cls, texts: list[str], chunk_ids: np.ndarray, k1: float, b: float) -> "LexicalIndex":
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        corpus = [tokenize(t) or ["\u0000"] for t in texts]
        retriever.index(corpus, show_progress=False) if corpus else None
        return cls(retriever, chunk_ids)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory), show_progress=False)
        np.save(directory / "chunk_ids.npy", self.chunk_ids)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        import bm25s

        retriever = bm25s.BM25.load(str(directory), mmap=False)
        return cls(retriever, np.load(directory / "chunk_ids.npy"))

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every chunk (row order of chunk_ids) for the query."""
        known = [t for t in query_tokens if t in self.vocab]
        if not known or len(self.chunk_ids) == 0:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known, weight_mask=mask), dtype=np.float32)

    def search(self, query: str, n: int, mask: np.ndarray | None = None,
               extra_tokens: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top n (chunk ids, scores) with score > 0."""
        scores = self.scores(tokenize(query) + (extra_tokens or []), mask)
        if not len(scores):
            return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        keep = scores[top] > 0
        return self.chunk_ids[top[keep]], scores[top[keep]]
