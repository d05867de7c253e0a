"""Exact inner-product search (FAISS ``IndexFlatIP``): the default below ``ann_min_rows``.

Exact is exact, needs no build and no tuning; its cost grows with the corpus (about 14 ms
of CPU at 100,000 × 384 and 148 ms at 1,000,000, issue 14's measurement), so above the
measured threshold the snapshot builds an approximate backend instead. A filter is
applied inside the scan (``IDSelectorBitmap``).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from hikitsugi.index.vectors.base import VectorIndex, bitmap_selector


class ExactIndex(VectorIndex):
    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        super().__init__(vectors)
        self.flat = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            self.flat.add(np.ascontiguousarray(vectors, dtype=np.float32))

    @classmethod
    def build(cls, vectors: np.ndarray, params: dict) -> "ExactIndex":
        return cls(vectors)

    @classmethod
    def load(cls, directory: Path, vectors: np.ndarray, params: dict) -> "ExactIndex":
        return cls(np.ascontiguousarray(vectors))

    def search(self, q: np.ndarray, n: int, mask: np.ndarray | None = None) -> dict[int, float]:
        if not self.ntotal:
            return {}
        if mask is None:
            scores, rows = self.flat.search(q.reshape(1, -1), min(n, self.ntotal))
        else:
            allowed = int(mask.sum())
            if not allowed:
                return {}
            sel, _keep = bitmap_selector(mask)
            scores, rows = self.flat.search(q.reshape(1, -1), min(n, allowed), params=faiss.SearchParameters(sel=sel))
        return {int(r): float(s) for r, s in zip(rows[0], scores[0]) if r >= 0}
