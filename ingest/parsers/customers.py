"""Customer records (顧客別カルテ) from YAML.

Format (documented in docs/formats.md): a list of customers, each with ``id``, ``name``,
``aliases``, ``rank``, ``owner``, ``products``, ``commitments`` (``what``, ``reason``,
``approved_by``, ``valid_from``, ``valid_until``), ``arrangements``, ``preferences``,
``emergency_contacts`` (``name``, ``role``, ``phone``, ``email``, ``note``) and ``notes``.

Commitments, arrangements and preferences become searchable blocks; emergency contacts
are sensitive and are kept only in the record's metadata, never in the text index.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hikitsugi.ingest.encoding import decode_bytes
from hikitsugi.ingest.model import Block, ParsedDoc, ParseError


def _date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)[:10]


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v not in (None, "")]


def commitment_line(c: dict[str, Any]) -> str:
    """One readable line per commitment, so the reason and the expiry travel with it."""
    bits = []
    if c.get("reason"):
        bits.append(f"理由: {c['reason']}")
    if c.get("approved_by"):
        bits.append(f"承認: {c['approved_by']}")
    span = f"{c.get('valid_from') or ''}〜{c.get('valid_until') or '期限なし'}"
    bits.append(f"期間: {span}")
    return f"{c.get('what', '')}（{' / '.join(bits)}）"


def parse_customers(data: bytes, path: Path, rel: str) -> tuple[list[ParsedDoc], list[str]]:
    try:
        items = yaml.safe_load(decode_bytes(data).text)
    except yaml.YAMLError as exc:
        raise ParseError(f"invalid YAML: {exc}") from exc
    if isinstance(items, dict):
        items = items.get("customers", [])
    if not isinstance(items, list):
        raise ParseError("a customer file is a YAML list of customers (or {customers: [...]})")
    docs: list[ParsedDoc] = []
    problems: list[str] = []
    for i, c in enumerate(items, start=1):
        if not isinstance(c, dict) or not c.get("id") or not c.get("name"):
            problems.append(f"customer #{i}: needs at least 'id' and 'name' — skipped")
            continue
        commitments = []
        for com in c.get("commitments") or []:
            if isinstance(com, dict) and com.get("what"):
                commitments.append({
                    "what": str(com["what"]), "reason": com.get("reason"), "approved_by": com.get("approved_by"),
                    "valid_from": _date(com.get("valid_from")), "valid_until": _date(com.get("valid_until")),
                })
        name = str(c["name"])
        aliases = _strings(c.get("aliases"))
        head = ("顧客カルテ",)
        basic = f"顧客: {name}"
        if aliases:
            basic += f"（{'、'.join(aliases)}）"
        if c.get("rank"):
            basic += f" ランク: {c['rank']}"
        if c.get("owner"):
            basic += f" 担当: {c['owner']}"
        if c.get("products"):
            basic += f" 製品: {'、'.join(_strings(c.get('products')))}"
        blocks = [Block(basic, head)]
        blocks += [Block("特別対応: " + commitment_line(com), ("特別対応",)) for com in commitments]
        blocks += [Block("取り決め: " + a, ("取り決め",)) for a in _strings(c.get("arrangements"))]
        blocks += [Block("連絡の好み: " + p, ("連絡の好み",)) for p in _strings(c.get("preferences"))]
        blocks += [Block(n, ("メモ",)) for n in _strings(c.get("notes"))]
        meta = {
            "customer": name,
            "customer_id": str(c["id"]),
            "aliases": aliases,
            "rank": c.get("rank"),
            "owner": c.get("owner"),
            "products": _strings(c.get("products")),
            "commitments": commitments,
            "arrangements": _strings(c.get("arrangements")),
            "preferences": _strings(c.get("preferences")),
            "emergency_contacts": [dict(x) for x in c.get("emergency_contacts") or [] if isinstance(x, dict)],
        }
        docs.append(ParsedDoc(str(c["id"]), "customer", f"{name} 顧客カルテ", blocks, meta, rel))
    return docs, problems
