"""Ranking metrics over graded relevance labels.

Recall@k is *capped* recall as in BEIR's R_cap: hits in the top k divided by
min(k, number of relevant documents). With one relevant document per query (JSQuAD)
it equals plain recall; on support data, where a problem has recurred eight times and
all eight past cases are relevant, plain recall@5 could never exceed 5/8 and would
measure the label count rather than the ranking. nDCG uses linear gains (as
pytrec_eval); MRR@10 is the reciprocal rank of the first relevant document.
"""

from __future__ import annotations

import math


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    relevant = {d for d, g in rel.items() if g > 0}
    if not relevant:
        return 0.0
    hits = sum(1 for d in ranked[:k] if d in relevant)
    return hits / min(k, len(relevant))


def mrr_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k], 1):
        if rel.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 1) for i, d in enumerate(ranked[:k], 1))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))
    return s[idx]
