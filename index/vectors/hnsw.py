"""HNSW graph (FAISS ``IndexHNSWFlat``, inner product): approximate, fast unfiltered.

Measured in docs/benchmarks.md (``python -m bench.vectors``): sub-millisecond queries at
recall@10 ≥ 0.97 unfiltered, but with a 1 % filter the graph walk rarely reaches the
allowed nodes and recall collapses (0.27–0.39 at 1M, issue 14) — which is why filtered
queries go through the query plan (:mod:`hikitsugi.index.vectors.plan`), and why its
build time (minutes per million vectors, every generation, every replica) counts
against it. Results are re-scored exactly from the stored vectors.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from hikitsugi.index.vectors.base import VectorIndex, bitmap_selector

FILE = "hnsw.faiss"


class HnswIndex(VectorIndex):
    kind = "hnsw"

    def __init__(self, vectors: np.ndarray, index, params: dict) -> None:
        super().__init__(vectors)
        self.index = index
        self.ef_search = int(params.get("ef_search", 64))
        self.refine = int(params.get("refine", 4))

    @classmethod
    def build(cls, vectors: np.ndarray, params: dict) -> "HnswIndex":
        index = faiss.IndexHNSWFlat(vectors.shape[1], int(params.get("m", 32)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params.get("ef_construction", 40))
        for i in range(0, len(vectors), 100_000):
            index.add(np.ascontiguousarray(vectors[i:i + 100_000], dtype=np.float32))
        return cls(vectors, index, params)

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / FILE))

    @classmethod
    def load(cls, directory: Path, vectors: np.ndarray, params: dict) -> "HnswIndex":
        return cls(vectors, faiss.read_index(str(directory / FILE)), params)

    def search(self, q: np.ndarray, n: int, mask: np.ndarray | None = None) -> dict[int, float]:
        if not self.ntotal:
            return {}
        want = min(n * self.refine, self.ntotal)
        ef = max(self.ef_search, want)
        keep = None
        if mask is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            sel, keep = bitmap_selector(mask)
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
        _, rows = self.index.search(q.reshape(1, -1).astype(np.float32), want, params=params)
        del keep
        return self.exact_top(rows[0], q, n)
