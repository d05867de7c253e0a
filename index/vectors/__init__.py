"""Vector index backends, one small class each behind :class:`~hikitsugi.index.vectors.base.VectorIndex`
(the txtai shape: the store is a setting, each backend a class, a small factory).

* ``exact`` — FAISS flat inner product; the default below ``ann_min_rows``.
* ``ivf-sq8`` — IVF lists over 8-bit quantized vectors, exact re-scoring; the default above it.
* ``hnsw`` — FAISS HNSW graph, exact re-scoring; selectable.

The setting ``vector_index`` is ``auto`` (exact below ``ann_min_rows``, else ``ann_backend``)
or one backend by name. Which rows a query may see is decided by the query plan
(:mod:`hikitsugi.index.vectors.plan`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hikitsugi.index.vectors.base import VECTORS_FILE, VectorIndex, map_rows

BACKENDS = ("exact", "ivf-sq8", "hnsw")


def backend_class(kind: str) -> type[VectorIndex]:
    if kind == "exact":
        from hikitsugi.index.vectors.exact import ExactIndex

        return ExactIndex
    if kind == "ivf-sq8":
        from hikitsugi.index.vectors.ivf_sq8 import IvfSq8Index

        return IvfSq8Index
    if kind == "hnsw":
        from hikitsugi.index.vectors.hnsw import HnswIndex

        return HnswIndex
    raise ValueError(f"vector index must be 'auto' or one of {', '.join(BACKENDS)}, not '{kind}' "
                     "(setting HIKITSUGI_VECTOR_INDEX)")


def choose_backend(setting: str, n_rows: int, ann_min_rows: int, ann_backend: str) -> str:
    """The backend a generation of ``n_rows`` rows gets."""
    if setting == "auto":
        return "exact" if n_rows < ann_min_rows else ann_backend
    backend_class(setting)
    return setting


def params_of(settings) -> dict:
    """Build- and query-time parameters of every backend, from the settings."""
    return {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search, "nprobe": settings.ivf_nprobe, "refine": settings.ann_refine}


def build_index(vectors: np.ndarray, settings) -> VectorIndex:
    kind = choose_backend(settings.vector_index, len(vectors), settings.ann_min_rows, settings.ann_backend)
    return backend_class(kind).build(vectors, params_of(settings))


def load_index(directory: Path, kind: str, settings, mmap: bool = True) -> VectorIndex:
    """Open a generation's index; approximate backends memory-map the fp32 vectors."""
    path = directory / VECTORS_FILE
    vectors = map_rows(path) if mmap and kind != "exact" else np.load(path)
    return backend_class(kind).load(directory, vectors, params_of(settings))
