"""What every vector index backend shares.

Each generation stores the chunk vectors once, in row order, as ``vectors.npy`` (float32,
L2-normalized): the exact truth. A backend adds its own search structure next to it. Exact
cosines for fusion (a candidate only the lexical side found), for re-ranking an
approximate list and for a restricted scan all come from that matrix, which approximate
backends memory-map instead of loading (at 1,000,000 × 384 it is 1.5 GB; a query touches
only the rows it scores).
"""

from __future__ import annotations

import mmap
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

VECTORS_FILE = "vectors.npy"


def map_rows(path: Path) -> np.ndarray:
    """A row matrix (``.npy``) memory-mapped for random row reads, as a plain array.

    Queries read scattered rows (a few hundred re-scored candidates, a manual chunk's
    sentences), so readahead only costs: with the kernel's default it took 6.2 ms to gather
    250 random rows of the 1,000,000 × 384 matrix, with ``MADV_RANDOM`` 0.8 ms (one
    process, page cache warm, a busy machine). A plain view instead of the ``np.memmap``
    subclass, because every slice of a memmap builds a memmap object."""
    mm = np.load(path, mmap_mode="r")
    if isinstance(mm, np.memmap) and getattr(mm, "_mmap", None) is not None and hasattr(mmap, "MADV_RANDOM"):
        mm._mmap.madvise(mmap.MADV_RANDOM)
    return np.asarray(mm)


class VectorIndex(ABC):
    """Inner-product search over one generation's chunk vectors (row i = snapshot row i)."""

    kind = ""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors  # (n, d) float32, may be a read-only memory map

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    # -- building and storing
    @classmethod
    @abstractmethod
    def build(cls, vectors: np.ndarray, params: dict) -> "VectorIndex":
        """A new index over ``vectors`` (the matrix is kept, not copied)."""

    def save(self, directory: Path) -> None:
        """Write the backend's own structure; ``vectors.npy`` is written by the snapshot."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, vectors: np.ndarray, params: dict) -> "VectorIndex":
        """Open what :meth:`save` wrote, over the generation's vectors."""

    # -- searching
    @abstractmethod
    def search(self, q: np.ndarray, n: int, mask: np.ndarray | None = None) -> dict[int, float]:
        """Best ``n`` rows by inner product among the allowed rows (``mask``), {row: cosine}."""

    def restricted(self, q: np.ndarray, n: int, mask: np.ndarray) -> dict[int, float]:
        """Exact scan of the allowed rows only: cost grows with their number, not the index size."""
        rows = np.flatnonzero(mask)
        if not len(rows):
            return {}
        return _top(rows, self.vectors[rows] @ q.reshape(-1), n)

    def scores(self, rows: list[int] | np.ndarray, q: np.ndarray) -> np.ndarray:
        """Exact cosines of ``rows`` to ``q``."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        return self.vectors[rows] @ q.reshape(-1)

    def exact_top(self, rows: np.ndarray, q: np.ndarray, n: int) -> dict[int, float]:
        """Re-score candidate rows exactly and keep the best ``n``."""
        rows = np.unique(rows[rows >= 0])
        return _top(rows, self.scores(rows, q), n) if len(rows) else {}


def _top(rows: np.ndarray, scores: np.ndarray, n: int) -> dict[int, float]:
    if len(rows) > n:
        keep = np.argpartition(-scores, n - 1)[:n]
        rows, scores = rows[keep], scores[keep]
    order = np.argsort(-scores)
    return {int(rows[i]): float(scores[i]) for i in order}


def bitmap_selector(mask: np.ndarray):
    """A FAISS ``IDSelectorBitmap`` over ``mask`` (keep the returned bitmap alive while searching)."""
    import faiss

    bitmap = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap)), bitmap
