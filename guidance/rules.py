"""Escalation rules: editable data (YAML), matched on the normalized query text (keywords,
amounts), on meaning (cosine to each rule's example sentences) and on the special
commitments of the customer in context.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hikitsugi.config import ConfigError, Settings, data_file
from hikitsugi.ingest.normalize import normalize

_lock = threading.Lock()
_cache: dict[str, tuple[float, list[dict[str, Any]], np.ndarray | None]] = {}


_AMOUNT = re.compile(r"([0-9][0-9,.]*)\s*(億|万|千)?\s*円")
_UNITS = {"億": 100_000_000, "万": 10_000, "千": 1_000, None: 1}


def rules_path(settings: Settings) -> Path:
    """The escalation rules file in force (see :func:`hikitsugi.config.data_file`)."""
    return data_file(settings.rules_file, settings.home, "escalation_rules.yaml", "rules_file")


def load_rules(settings: Settings, embed=None) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """Rules plus, when an embedder is given, one matrix of example vectors per rule (cached by mtime)."""
    path = rules_path(settings)
    mtime = path.stat().st_mtime
    with _lock:
        hit = _cache.get(str(path))
        if hit and hit[0] == mtime and (hit[2] is not None or embed is None):
            return hit[1], hit[2]
        try:
            rules = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
        if not isinstance(rules, list) or not rules:
            # An empty rule list would silently stop escalating danger to life or body.
            raise ConfigError(f"{path}: expected a non-empty list of rules (each with 'id' and 'reason')")
        for i, r in enumerate(rules, 1):
            if not isinstance(r, dict) or not r.get("id") or not r.get("reason"):
                raise ConfigError(f"{path}: rule #{i} needs at least 'id' and 'reason'")
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
