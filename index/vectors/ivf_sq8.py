"""Inverted lists over 8-bit scalar-quantized vectors (FAISS ``IVF{nlist},SQ8``, inner product).

A query scans the ``nprobe`` lists nearest to it, on one byte per dimension (a quarter of
the fp32 memory: 380 MiB at 1,000,000 × 384), then the best ``refine`` × n candidates are
re-scored exactly from the stored fp32 vectors, so fusion sees real cosines. A filter is
checked inside the list scan (``IDSelectorBitmap``): unlike a graph walk, scanning a list
never depends on passing through forbidden rows, so a filter only thins the lists.
Training (k-means on a sample) and adding take about a minute per million vectors on two
cores — cheap enough to rebuild every generation, on every replica.
Chosen over HNSW by measurement: docs/benchmarks.md (``python -m bench.vectors``).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from hikitsugi.index.vectors.base import VectorIndex, bitmap_selector

FILE = "ivf_sq8.faiss"


def nlist_for(n: int) -> int:
    """Number of lists: about 4·√n as a power of two (4096 at 1M, 1024 at 100k), and at
    most n/39 so that k-means has the 39 points per list FAISS asks for."""
    return int(max(1, min(2 ** round(np.log2(4 * np.sqrt(max(n, 1)))), n // 39)))


class IvfSq8Index(VectorIndex):
    kind = "ivf-sq8"

    def __init__(self, vectors: np.ndarray, index, params: dict) -> None:
        super().__init__(vectors)
        self.index = index
        self.nprobe = int(params.get("nprobe", 32))
        self.refine = int(params.get("refine", 4))

    @classmethod
    def build(cls, vectors: np.ndarray, params: dict) -> "IvfSq8Index":
        n, d = vectors.shape
        nlist = int(params.get("nlist") or nlist_for(n))
        index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
        for i in range(0, n, 100_000):
            index.add(np.ascontiguousarray(vectors[i:i + 100_000], dtype=np.float32))
        return cls(vectors, index, params)

    def save(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / FILE))

    @classmethod
    def load(cls, directory: Path, vectors: np.ndarray, params: dict) -> "IvfSq8Index":
        return cls(vectors, faiss.read_index(str(directory / FILE)), params)

    def search(self, q: np.ndarray, n: int, mask: np.ndarray | None = None) -> dict[int, float]:
        if not self.ntotal:
            return {}
        keep = None
        if mask is None:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        else:
            sel, keep = bitmap_selector(mask)
            params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
        _, rows = self.index.search(q.reshape(1, -1).astype(np.float32), min(n * self.refine, self.ntotal),
                                    params=params)
        del keep
        return self.exact_top(rows[0], q, n)
