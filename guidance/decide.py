"""The guidance line: resolve it yourself, or escalate (and why, and to whom).

Escalation rules are data (``config/escalation_rules.yaml``), matched on the normalized
query text (keywords, amounts) *and* on meaning (cosine between the query and each
rule's example sentences), plus the special commitments of the customer in context.
Any firing rule means ``escalate``. Otherwise the decision rests on confidence — the
dense cosine of the best hit — against a threshold calibrated on the labeled support
queries (docs/retrieval.md): above it, the steps that resolved the most similar past
cases are offered; below it, the agent is told to escalate because nothing similar is
known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hikitsugi.config import Settings
from hikitsugi.guidance.rules import fired_rules


@dataclass
class Guidance:
    action: str  # "self_resolve" | "escalate"
    confidence: float
    reason: str
    escalate_to: str | None = None
    rules: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    based_on: list[str] = field(default_factory=list)


def decide(query_norm: str, qvec: np.ndarray | None, results: list, commitments: list[dict[str, Any]],
           settings: Settings, embed=None) -> Guidance:
    """Guidance for one response. ``results`` are the response's result cards."""
    confidence = max((r.dense_score or 0.0) for r in results) if results else 0.0
    fired = fired_rules(query_norm, qvec, commitments, settings, embed)
    if fired:
        return Guidance(
            action="escalate", confidence=round(confidence, 4),
            reason=" / ".join(f"{r.get('name', r['id'])}: {r['reason']}" for r in fired),
            escalate_to=fired[0].get("escalate_to"), rules=[r["id"] for r in fired],
        )
    cases = [r for r in results[:5] if r.kind == "case" and r.resolution and (r.dense_score or 0) >= settings.self_resolve_threshold]
    manuals = [r for r in results[:3] if r.kind == "manual" and (r.dense_score or 0) >= settings.self_resolve_threshold]
    if confidence >= settings.self_resolve_threshold and (cases or manuals):
        steps: list[str] = []
        based_on: list[str] = []
        groups = Counter(r.resolution for r in cases)
        for resolution, _ in groups.most_common(2):
            steps.append(resolution)
            for r in cases:
                if r.resolution == resolution:
                    based_on.extend([r.source_id, *r.similar_ids])
        if not steps:
            steps.append(f"マニュアル「{manuals[0].title}」の『{manuals[0].context or manuals[0].title}』の手順を確認")
            based_on.append(manuals[0].source_id)
        n = len(based_on)
        return Guidance(action="self_resolve", confidence=round(confidence, 4),
                        reason=f"類似事例{n}件はこの方法で解決しています" if cases else "マニュアルに手順があります",
                        steps=steps, based_on=based_on)
    return Guidance(action="escalate", confidence=round(confidence, 4),
                    reason="確度の高い類似事例・手順が見つかりません", escalate_to=settings.default_escalate_to)
