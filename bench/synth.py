"""Lean synthetic vectors for the scale benchmarks.

Embedding a million chunks would take days on two cores, so benchmark corpora are made
from real vectors: each synthetic vector is the normalized mix ``0.8·a + 0.2·b + noise`` of
two real chunk vectors of the ingested samples (the noise keeps the million apart: without
it, 811 sample chunks give only ~650k distinct mixes and recall is full of ties). Made in
blocks straight into one float32 matrix, so 1,000,000 × 384 costs its 1.5 GB and no more.
"""

from __future__ import annotations

import numpy as np


def mixed_vectors(base: np.ndarray, n: int, seed: int = 7, noise: float = 0.05,
                  block: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(n × d float32 normalized vectors, index of the base vector each was mostly made of)."""
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    src = rng.integers(0, len(base), size=n)
    for i in range(0, n, block):
        j = min(n, i + block)
        other = rng.integers(0, len(base), size=j - i)
        v = 0.8 * base[src[i:j]] + 0.2 * base[other]
        v += rng.standard_normal(v.shape, dtype=np.float32) * (noise / np.sqrt(d))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[i:j] = v
    return out, src
