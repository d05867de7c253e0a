"""Fusion of the dense and lexical candidate lists into one score per chunk.

z-score by default: each candidate's cosine and BM25 score in standard deviations from the
mean of that side's own top list, weighted and summed. Min-max and reciprocal rank fusion
are kept as settings; docs/retrieval.md has the measurements that chose z-score.
"""

from __future__ import annotations

import numpy as np

from hikitsugi.config import Settings
from hikitsugi.search.retrieve import Candidates


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    vals = np.fromiter(scores.values(), dtype=np.float64)
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo
    if span <= 1e-9:
        return {k: 1.0 for k in scores}
    return {k: (v - lo) / span for k, v in scores.items()}


def _standardize(top: dict[int, float], every: dict[int, float]) -> dict[int, float]:
    """Every candidate's score in standard deviations from the mean of the retriever's own top list."""
    if not top:
        return {}
    vals = np.fromiter(top.values(), dtype=np.float64)
    mu, sd = float(vals.mean()), float(vals.std())
    sd = sd if sd > 1e-9 else 1.0
    return {k: (v - mu) / sd for k, v in every.items()}


def _gap(top: dict[int, float]) -> float:
    """How far a side's best candidate stands out: (best − second) in standard deviations of its top list."""
    if len(top) < 3:
        return 0.0
    vals = np.sort(np.fromiter(top.values(), dtype=np.float64))[::-1]
    sd = float(vals.std())
    return float((vals[0] - vals[1]) / sd) if sd > 1e-9 else 0.0


def dense_weight(c: Candidates, settings: Settings) -> float:
    """The dense side's weight for this query.

    ``dense_weight`` by default; ``dense_weight_reading`` for a query typed in hiragana or
    romaji (the dense model reads unconverted kana poorly, the reading field matches it
    well); and, when ``fusion_adaptive`` > 0, moved toward the side whose best candidate
    stands out more from its own list (``_gap``): a lexical list with one clear hit (a
    pasted error code, a product name) deserves more say than a flat one. Chosen by
    ``hikitsugi eval tune`` across the dev sets (docs/retrieval.md)."""
    w = settings.dense_weight_reading if c.typed_as_reading and settings.dense_weight_reading >= 0 \
        else settings.dense_weight
    if settings.fusion_adaptive > 0 and c.dense and c.lexical:
        w += settings.fusion_adaptive * float(np.tanh(_gap(c.dense) - _gap(c.lexical)))
    return min(0.95, max(0.05, w))


def fuse(c: Candidates, settings: Settings) -> dict[int, float]:
    """Combine the two sides into one {row: score} map.

    The default is z-score fusion: every candidate's score on each side is expressed in
    standard deviations from the mean of that side's own top list, so a lexical list with
    one strong hit and a flat tail is not stretched to look as sure as a dense list with
    many near-equal cosines (what min-max does), and a chunk only one side listed is
    still judged by the other side's real score for it. Measured on two data sets
    against min-max, RRF and other z-score variants: see docs/retrieval.md.
    """
    dense, lexical = c.dense, c.lexical
    if settings.fusion == "zscore":
        w, miss = dense_weight(c, settings), settings.zscore_missing
        d = _standardize(dense, c.dense_all or dense)
        lx = _standardize(lexical, c.lexical_all or lexical)
        return {cid: w * d.get(cid, miss) + (1 - w) * lx.get(cid, miss) for cid in set(dense) | set(lexical)}
    if settings.fusion == "rrf":
        out: dict[int, float] = {}
        for scores in (dense, lexical):
            for rank, cid in enumerate(sorted(scores, key=scores.get, reverse=True)):
                out[cid] = out.get(cid, 0.0) + 1.0 / (settings.rrf_k + rank + 1)
        return out
    d, lx = _minmax(dense), _minmax(lexical)
    w = dense_weight(c, settings)
    return {cid: w * d.get(cid, 0.0) + (1 - w) * lx.get(cid, 0.0) for cid in set(d) | set(lx)}
