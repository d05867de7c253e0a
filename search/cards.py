"""Result cards: one per document (its best chunk), cases of one resolution folded together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hikitsugi.index.snapshot import Snapshot
from hikitsugi.ingest.normalize import normalize


@dataclass
class Result:
    source_id: str
    kind: str
    title: str
    score: float
    snippet: str
    passage: str
    context: str
    source_path: str
    url: str
    customer: str | None = None
    occurred_at: str | None = None
    resolution: str | None = None
    cause: str | None = None
    status: str | None = None
    resolved_by: str | None = None
    dense_score: float | None = None
    similar_count: int = 0  # other cases with the same resolution group collapsed into this card
    similar_ids: list[str] = field(default_factory=list)
    redacted: bool = False  # personal data masked / private parts left out for this viewer (hikitsugi.access.policy)
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # open conflicts this card is part of (search.notices)


@dataclass
class CustomerContext:
    customer_id: str
    name: str
    rank: str | None
    owner: str | None
    commitments: list[dict[str, Any]]
    arrangements: list[str]
    preferences: list[str]
    matched_by: str  # "parameter" | "query"
    emergency_contacts: list[dict[str, Any]] = field(default_factory=list)  # only for viewers who may see them
    restricted: bool = False  # the viewer sees the basic part only (hikitsugi.access.policy)


def rank_documents(fused: dict[int, float], snap: Snapshot, k: int) -> list[tuple[int, tuple[float, int]]]:
    """One entry per document — its best chunk — as (document id, (score, row)), best first."""
    best: dict[int, tuple[float, int]] = {}
    for row, s in fused.items():
        did = int(snap.doc_ids[row])
        if did not in best or s > best[did][0]:
            best[did] = (s, row)
    return sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:k]


def fold_key(kind: str, group: str | None, resolution: str | None) -> str | None:
    """What cases fold by: their resolution group (原因分類), else their resolution text.
    Only cases fold; None for everything else. The evaluation uses the same key, so the
    ideal ranking it measures against folds exactly as the cards do."""
    if kind != "case":
        return None
    value = group or resolution
    return normalize(value).lower() if value else None


def collapse_similar(results: list[Result], k: int, groups: dict[str, str | None]) -> list[Result]:
    """One card per resolution: later cases with the same group (原因分類) or the same
    resolution text fold into the first card as 「同様の事例 N件」."""
    cards: list[Result] = []
    by_key: dict[str, Result] = {}
    for r in results:
        key = fold_key(r.kind, groups.get(r.source_id), r.resolution)
        if key and key in by_key:
            by_key[key].similar_ids.append(r.source_id)
            by_key[key].similar_count += 1
            continue
        if len(cards) < k:
            cards.append(r)
            if key:
                by_key[key] = r
    return cards
