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

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hikitsugi.config import Settings
from ingest.normalize import normalize

_lock = threading.Lock()
_cache: dict[str, tuple[float, list[dict[str, Any]], np.ndarray | None]] = {}
_AMOUNT = re.compile(r"([0-9][0-9,.]*)\s*(億|万|千)?\s*円")
_UNITS = {"億": 100_000_000, "万": 10_000, "千": 1_000, None: 1}


@dataclass
class Guidance:
    action: str  # "self_resolve" | "escalate"
    confidence: float
    reason: str
    escalate_to: str | None = None
    rules: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    based_on: list[str] = field(default_factory=list)


def rules_path(settings: Settings) -> Path:
    if settings.rules_file:
        return Path(settings.rules_file)
    own = settings.home / "escalation_rules.yaml"
    return own if own.exists() else Path(__file__).resolve().parent.parent / "config" / "escalation_rules.yaml"


def load_rules(settings: Settings, embed=None) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """Rules plus, when an embedder is given, one matrix of example vectors per rule (cached by mtime)."""
    path = rules_path(settings)
    if not path.exists():
        return [], None
    mtime = path.stat().st_mtime
    with _lock:
        hit = _cache.get(str(path))
        if hit and hit[0] == mtime and (hit[2] is not None or embed is None):
            return hit[1], hit[2]
        try:
            rules = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML ({exc})") from exc
        if not isinstance(rules, list):
            raise ValueError(f"{path}: expected a list of rules")
        for i, r in enumerate(rules, 1):
            if not isinstance(r, dict) or not r.get("id") or not r.get("reason"):
                raise ValueError(f"{path}: rule #{i} needs at least 'id' and 'reason'")
            r["_keywords"] = [normalize(k).lower() for k in r.get("keywords") or []]
            r["_commitment_keywords"] = [normalize(k).lower() for k in r.get("commitment_keywords") or []]
        vecs = None
        if embed is not None:
            examples = [(i, normalize(e)) for i, r in enumerate(rules) for e in r.get("examples") or []]
            if examples:
                mat = embed([e for _, e in examples])
                owners = np.array([i for i, _ in examples])
                vecs = np.concatenate([owners.reshape(-1, 1).astype(np.float32), mat], axis=1)
        _cache[str(path)] = (mtime, rules, vecs)
        return rules, vecs


def _amounts_yen(text: str) -> list[float]:
    out = []
    for num, unit in _AMOUNT.findall(text):
        try:
            out.append(float(num.replace(",", "")) * _UNITS[unit or None])
        except ValueError:
            continue
    return out


def fired_rules(query_norm: str, qvec: np.ndarray | None, commitments: list[dict[str, Any]],
                settings: Settings, embed=None) -> list[dict[str, Any]]:
    rules, examples = load_rules(settings, embed)
    low = query_norm.lower()
    sims: dict[int, float] = {}
    if qvec is not None and examples is not None:
        owners, mat = examples[:, 0].astype(int), examples[:, 1:]
        for owner, s in zip(owners, mat @ qvec):
            sims[owner] = max(sims.get(owner, -1.0), float(s))
    fired = []
    active = [normalize(c.get("what", "")).lower() for c in commitments if not c.get("expired")]
    for i, r in enumerate(rules):
        why = None
        if any(k in low for k in r["_keywords"]):
            why = "keyword"
        elif i in sims and sims[i] >= float(r.get("similarity", settings.rule_similarity)):
            why = "meaning"
        elif (r.get("amount_yen_at_least") and any(a >= float(r["amount_yen_at_least"]) for a in _amounts_yen(low))
              and any(normalize(w).lower() in low for w in r.get("amount_context") or [""])):
            why = "amount"
        elif r["_commitment_keywords"] and any(k in c for c in active for k in r["_commitment_keywords"]):
            why = "commitment"
        if why:
            fired.append({**{k: v for k, v in r.items() if not k.startswith("_")}, "matched_by": why})
    return fired


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
