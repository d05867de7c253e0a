"""Ranking metrics over what the agent sees: result cards, graded relevance labels.

A run is a list of *cards*, best first; a card is the documents it shows — its own
document first, then the similar cases folded into it (「同様の事例 N件」). A folded
case is in front of the agent at its card's rank, so every metric counts it there.
For BEIR corpora (no folding) a card is one document and every metric is the usual one.

* ``hit@k`` — 1 when at least one relevant document is on the top k cards (the
  "top-k accuracy" of open-domain QA, e.g. DPR). This is what the old ``recall@k`` was.
* ``recall@k`` — relevant documents on the top k cards / min(k, number relevant): BEIR's
  capped recall (R_cap), so a query with eight relevant cases can still reach 1.0 at k=5.
* ``mrr@10`` — reciprocal rank of the first card holding a relevant document.
* ``ndcg@10`` — graded gains (linear, as pytrec_eval), every document at its card's
  rank; the ideal list is the best one the product could show: the relevant documents
  folded the same way (cases of one resolution group share a card), cards ordered by
  gain. With no folding this is the standard nDCG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Card = Sequence[str]


def _relevant(rel: dict[str, int]) -> set[str]:
    return {d for d, g in rel.items() if g > 0}


def hit_at(cards: Sequence[Card], rel: dict[str, int], k: int) -> float:
    """1.0 when a relevant document is on one of the top k cards, else 0.0."""
    return 1.0 if any(rel.get(d, 0) > 0 for card in cards[:k] for d in card) else 0.0


def recall_at(cards: Sequence[Card], rel: dict[str, int], k: int) -> float:
    """BEIR's capped recall: relevant documents on the top k cards / min(k, number relevant)."""
    relevant = _relevant(rel)
    if not relevant:
        return 0.0
    found = {d for card in cards[:k] for d in card if d in relevant}
    return min(1.0, len(found) / min(k, len(relevant)))


def mrr_at(cards: Sequence[Card], rel: dict[str, int], k: int = 10) -> float:
    for i, card in enumerate(cards[:k], 1):
        if any(rel.get(d, 0) > 0 for d in card):
            return 1.0 / i
    return 0.0


def _dcg(cards: Sequence[Card], rel: dict[str, int], k: int) -> float:
    seen: set[str] = set()
    total = 0.0
    for i, card in enumerate(cards[:k], 1):
        for d in card:
            if d not in seen:
                seen.add(d)
                total += rel.get(d, 0) / math.log2(i + 1)
    return total


def ideal_cards(rel: dict[str, int], fold_key: dict[str, str] | None = None) -> list[list[str]]:
    """The best card list for these labels: relevant documents that the product folds
    together (same ``fold_key``) share a card; cards ordered by their summed gain."""
    fold_key = fold_key or {}
    groups: dict[str, list[str]] = {}
    for d in sorted(_relevant(rel)):
        groups.setdefault(fold_key.get(d) or f"\x00{d}", []).append(d)
    return sorted(groups.values(), key=lambda c: (-sum(rel[d] for d in c), c[0]))


def ndcg_at(cards: Sequence[Card], rel: dict[str, int], k: int = 10,
            fold_key: dict[str, str] | None = None) -> float:
    idcg = _dcg(ideal_cards(rel, fold_key), rel, k)
    return min(1.0, _dcg(cards, rel, k) / idcg) if idcg else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))
    return s[idx]


def as_cards(ranked: Sequence[str]) -> list[list[str]]:
    """A document ranking with no folding: one card per document."""
    return [[d] for d in ranked]
