"""Ranking metrics over graded relevance labels.

Recall@k is the share of queries with at least one relevant document in the top k
(the "top-k retrieval accuracy" of open-domain QA, e.g. DPR). With one relevant
document per query (JSQuAD) it is exactly recall. On support data a problem has
recurred up to eight times and every past case with the same resolution is labeled
relevant; what deflects an escalation is *one* of them in front of the agent — and
near-duplicate cases are meant to be collapsed into one card — so counting how many
of the eight made the top five would measure the labels, not the product. The share
of all relevant documents found is still visible in nDCG@10 (graded, linear gains as
pytrec_eval) and in :func:`capped_recall_at`, reported in the HTML report.
MRR@10 is the reciprocal rank of the first relevant document.
"""

from __future__ import annotations

import math


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    """1.0 when a relevant document is in the top k, else 0.0 (averaged over queries)."""
    return 1.0 if any(rel.get(d, 0) > 0 for d in ranked[:k]) else 0.0


def capped_recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    """BEIR's R_cap: relevant documents in the top k / min(k, number relevant)."""
    relevant = {d for d, g in rel.items() if g > 0}
    if not relevant:
        return 0.0
    return sum(1 for d in ranked[:k] if d in relevant) / min(k, len(relevant))


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
