"""Recognize the columns of ticket-system exports without configuration.

Column names differ between tools (受付番号 / チケット番号 / ID …). Each canonical field
has a list of header aliases, compared after NFKC + lower case + removing spaces and
brackets. A small YAML mapping file (``field: column header``) overrides or completes the
guess for exports we do not recognize.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import yaml

ALIASES: dict[str, list[str]] = {
    "id": ["受付番号", "チケット番号", "チケットid", "案件番号", "問い合わせ番号", "問合せ番号", "記録id", "記録番号",
           "管理番号", "番号", "id", "ticketid", "ticket", "caseid", "case", "recordid", "no"],
    "date": ["受付日時", "受付日", "日時", "日付", "発生日時", "作成日時", "対応日時", "記録日時", "date", "datetime",
             "createdat", "created", "opened", "openedat", "timestamp"],
    "customer": ["顧客名", "会社名", "顧客", "お客様名", "お客様", "取引先", "取引先名", "customer", "company",
                 "customername", "account", "client"],
    "product": ["製品", "製品名", "商品", "商品名", "機種", "product", "productname", "model"],
    "category": ["カテゴリ", "カテゴリー", "区分", "問い合わせ種別", "種別", "category", "type"],
    "title": ["件名", "タイトル", "表題", "subject", "title", "summary"],
    "body": ["問い合わせ内容", "問合せ内容", "お問い合わせ内容", "問い合わせ", "内容", "本文", "症状", "詳細",
             "相談内容", "メモ", "description", "body", "text", "content", "details", "note", "notes", "issue"],
    "first_response": ["一次対応", "一次対応内容", "初期対応", "初動", "firstresponse", "firstline"],
    "escalated_to": ["エスカレーション先", "エスカレ先", "二次対応者", "escalatedto", "escalation"],
    "resolution": ["解決策", "対応内容", "回答", "回答内容", "解決方法", "解決内容", "処置", "対処", "resolution",
                   "answer", "solution", "fix"],
    "cause": ["原因", "根本原因", "rootcause", "cause"],
    "cause_group": ["原因分類", "原因区分", "解決分類", "解決カテゴリ", "resolutioncategory", "resolutiongroup",
                    "causecategory", "group"],
    "status": ["ステータス", "状態", "対応状況", "status", "state"],
    "resolved_by": ["対応者", "担当者", "解決者", "記入者", "作成者", "assignee", "resolvedby", "owner", "author", "agent"],
    "channel": ["チャネル", "チャネル種別", "経路", "channel", "medium"],
    "linked_article": ["関連記事", "関連マニュアル", "参照マニュアル", "linkedarticle", "article", "kb"],
}


def _key(header: str) -> str:
    h = unicodedata.normalize("NFKC", str(header)).lower()
    return re.sub(r"[\s_\-・()（）\[\]【】:：]", "", h)


_LOOKUP = {_key(a): field for field, aliases in ALIASES.items() for a in aliases}


def recognize(headers: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical field → actual header. Overrides (field → header) win."""
    mapping: dict[str, str] = {}
    for h in headers:
        field = _LOOKUP.get(_key(h))
        if field and field not in mapping:
            mapping[field] = h
    for field, header in (overrides or {}).items():
        if field not in ALIASES:
            raise ValueError(f"unknown field '{field}' in column mapping; known: {', '.join(ALIASES)}")
        if header not in headers:
            raise ValueError(f"column mapping names '{header}' for '{field}', but the file has no such column")
        mapping[field] = header
    return mapping


def load_mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a column mapping is a YAML mapping of field: column header")
    return {str(k): str(v) for k, v in data.items()}
