"""Recognize the columns of ticket-system exports without configuration.

Column names differ between tools (受付番号 / チケット番号 / Issue key / Case Number …),
and a desk's own export often uses names nobody listed (起票日時, 対象サービス). So a
column is recognized in three ways, strongest first:

1. **mapping** — a YAML mapping (``field: column header``: ``--mapping FILE``, the sources
   file's ``mapping:``, ``eval deflection --time-column``) always wins;
2. **name** — each canonical field has header aliases taken from real tools' exports
   (Zendesk, Freshdesk, Jira Service Management, Backlog, Redmine, kintone, Salesforce, LINE
   WORKS), compared after NFKC + lower case + removing spaces and brackets;
3. **values** — for the fields the index and the replay cannot do without, a column whose
   name says nothing is recognized by what it holds (a sample of the first rows):

   * ``date``: ≥ 90 % of its values are dates or date-times. With several such columns,
     the one whose name says "opened" (起票, 受付, 作成, created …) wins, then the one that is
     not named "closed/updated" (完了, 更新, resolved …), then the one that is never later
     than the others on any row (a ticket is opened before it is updated or closed). If
     that still leaves more than one, recognition is **ambiguous**: :class:`AmbiguousColumns`
     names the candidates and how to choose (a wrong date silently breaks every time filter
     and the deflection replay, so we do not guess);
   * ``id``: unique on every row and id-shaped (one short token with a digit: INC-0012,
     #318, 10042); a name that says id (番号, ID, key, No) wins, else the leftmost;
   * ``body``: long free text (≥ 15 characters on average, mostly distinct), the leftmost
     such column (the problem comes before the answer in every export we looked at);
   * ``cause_group``: a low-cardinality column of short values right next to the resolution
     column (解決区分, Resolution category). Two such neighbours and no name to tell them
     apart: not guessed (reported, so the user can map it).

Every decision is returned as a :class:`Recognition` (field, header, how) so the caller can
say on stderr what was recognized and how.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

ALIASES: dict[str, list[str]] = {
    "id": ["受付番号", "チケット番号", "チケットid", "案件番号", "問い合わせ番号", "問合せ番号", "お問い合わせ番号", "記録id",
           "記録番号", "管理番号", "番号", "id", "ticketid", "ticket", "ticketno", "ticketnumber", "caseid", "case",
           "casenumber", "ケース番号", "recordid", "レコード番号", "issuekey", "キー", "課題キー", "no", "#", "トークid",
           "メッセージid"],
    "date": ["受付日時", "受付日", "日時", "日付", "発生日時", "作成日時", "対応日時", "記録日時", "作成日",
             "登録日", "登録日時", "問い合わせ日時", "問合せ日時", "送信日時", "開始日時", "date", "datetime", "createdat",
             "created", "createddate", "createdtime", "createdon", "opened", "openedat", "dateopened", "datetimeopened",
             "timestamp", "submitted", "submittedat", "requestedat"],
    "customer": ["顧客名", "会社名", "顧客", "お客様名", "お客様", "取引先", "取引先名", "組織", "組織名", "企業名",
                 "customer", "company", "companyname", "customername", "account", "accountname", "organization",
                 "organizationname", "organizations", "client", "requester", "依頼者", "トークルーム"],
    "product": ["製品", "製品名", "商品", "商品名", "機種", "対象製品", "対象サービス", "サービス", "サービス名",
                "product", "productname", "model", "service", "component", "components", "component/s", "コンポーネント"],
    "category": ["カテゴリ", "カテゴリー", "カテゴリー名", "区分", "問い合わせ種別", "種別", "トラッカー", "category",
                 "requesttype", "リクエストタイプ", "type", "tickettype", "issuetype"],
    "title": ["件名", "タイトル", "表題", "題名", "subject", "title", "summary", "要約"],
    "body": ["問い合わせ内容", "問合せ内容", "お問い合わせ内容", "問い合わせ", "内容", "本文", "症状", "詳細", "説明",
             "相談内容", "メモ", "メッセージ", "description", "body", "text", "content", "details", "message", "note",
             "notes", "issue"],
    "first_response": ["一次対応", "一次対応内容", "初期対応", "初動", "firstresponse", "firstline"],
    "escalated_to": ["エスカレーション先", "エスカレ先", "二次対応者", "escalatedto", "escalation"],
    "resolution": ["解決策", "対応内容", "回答", "回答内容", "解決方法", "解決内容", "処置", "対処", "resolution",
                   "answer", "solution", "fix", "resolutionnote", "resolutionnotes"],
    "cause": ["原因", "根本原因", "rootcause", "cause"],
    "cause_group": ["原因分類", "原因区分", "解決分類", "解決区分", "解決カテゴリ", "完了理由", "ケースの原因",
                    "resolutioncategory", "resolutiongroup", "causecategory", "casereason", "reason"],
    "status": ["ステータス", "状態", "状況", "対応状況", "status", "state"],
    "resolved_by": ["対応者", "担当者", "解決者", "記入者", "作成者", "送信者", "assignee", "resolvedby", "owner",
                    "author", "agent", "caseowner", "ケース所有者", "所有者", "sender"],
    "channel": ["チャネル", "チャネル種別", "経路", "発生源", "channel", "medium", "source", "caseorigin", "origin",
                "via"],
    "linked_article": ["関連記事", "関連マニュアル", "参照マニュアル", "linkedarticle", "article", "kb"],
}

# What each field is called in messages.
LABELS = {"id": "id", "date": "date (when the case was opened)", "body": "text", "cause_group": "resolution group"}

SAMPLE_ROWS = 1000  # rows looked at for recognition by values
DATE_SHARE = 0.9  # share of non-empty values that must be dates
_OPEN_HINTS = ("起票", "受付", "作成", "登録", "発生", "開始", "申請", "問い合わせ", "問合せ", "送信", "open", "creat",
               "report", "submit", "receiv", "start", "request")
_LATE_HINTS = ("更新", "完了", "終了", "解決", "期限", "期日", "締切", "クローズ", "回答", "対応日", "update", "modif",
               "resolv", "clos", "due", "solv", "end", "finish", "last")
_ID_HINTS = ("番号", "id", "no", "key", "キー", "#", "コード", "code", "チケット", "ticket", "案件", "number")
_GROUP_HINTS = ("分類", "区分", "種別", "理由", "原因", "カテゴリ", "category", "type", "reason", "group", "class")


def _key(header: str) -> str:
    h = unicodedata.normalize("NFKC", str(header)).lower().strip()
    h = re.sub(r"^custom\s*field\s*\((.*)\)$", r"\1", h)  # Jira: "Custom field (Organizations)"
    return re.sub(r"[\s_\-・()（）\[\]【】:：./]", "", h)


_LOOKUP = {_key(a): field for field, aliases in ALIASES.items() for a in aliases}
_RANK = {_key(a): i for aliases in ALIASES.values() for i, a in enumerate(aliases)}


@dataclass(frozen=True)
class Recognition:
    """How one field was found: by the mapping, by its header name, or by its values."""

    field: str
    header: str
    how: str  # "mapping" | "name" | "values: <evidence>"

    def __str__(self) -> str:
        return f"{self.field} ← {self.header} ({self.how})"


class AmbiguousColumns(ValueError):
    """Several columns fit a field equally well; the message names them and how to choose."""

    def __init__(self, field: str, candidates: list[str], evidence: str) -> None:
        self.field, self.candidates = field, candidates
        names = ", ".join(f"'{c}'" for c in candidates)
        super().__init__(
            f"cannot tell which column is the {LABELS.get(field, field)}: {names} {evidence}. Name it in a column "
            f"mapping ('{field}: <column>' in --mapping FILE or the sources file's mapping:)"
            + (" or, for eval deflection, with --time-column" if field == "date" else ""))


# ------------------------------------------------------------------ value profiles

_DATE_RES = [re.compile(p) for p in (
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?$",
    r"^\d{4}年\d{1,2}月\d{1,2}日(?:\s*(?:\([月火水木金土日]\)|（[月火水木金土日]）))?"
    r"(?:\s*\d{1,2}(?:時|:)\d{1,2}(?:分|:\d{2})?)?$",
    r"^\d{1,2}/\d{1,2}/\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?)?$",
    r"^\d{1,2}/[A-Za-z]{3}/\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?)?$",
    r"^\d{1,2}[-\s][A-Za-z]{3}[-\s]\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$",
)]
_ID_RE = re.compile(r"^#?[A-Za-z]{0,12}[-_]?[A-Za-z0-9]*\d[A-Za-z0-9\-_./#]*$")
_PHONE_RE = re.compile(r"^(?:\+81[-\s]?)?0?\d{1,4}[-(]\d{1,4}[-)]\d{3,4}$")  # unique, but never an id


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_datetime(value: Any, strict: bool = True) -> dt.datetime | None:
    """A date or date-time as exports write it (2024/04/01 10:00, 2024年4月1日, ISO, 04/01/2024,
    01/Apr/24 3:42 PM), else None. ``strict`` (recognition by values) accepts only those
    shapes; the row parser reads a column already known to be the date more leniently
    (whatever dateutil understands)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    text = _text(value)
    if not text or (strict and not any(r.match(text) for r in _DATE_RES)):
        return None
    from dateutil import parser as dateparser

    text = re.sub(r"[（(][月火水木金土日][)）]", "", text)
    text = text.replace("年", "-").replace("月", "-").replace("日", " ").replace("時", ":").replace("分", "").strip()
    try:
        return dateparser.parse(text)
    except (ValueError, OverflowError):
        return None


@dataclass
class _Profile:
    header: str
    position: int
    values: list[str]  # non-empty, normalized
    rows: int  # rows sampled
    dates: list[dt.datetime | None]  # per sampled row (None: empty or not a date)

    @property
    def filled(self) -> int:
        return len(self.values)

    @property
    def distinct(self) -> int:
        return len(set(self.values))

    @property
    def mean_len(self) -> float:
        return sum(len(v) for v in self.values) / max(1, len(self.values))

    @property
    def date_share(self) -> float:
        return sum(d is not None for d in self.dates) / max(1, self.filled)

    @property
    def has_time(self) -> bool:
        return any(d is not None and (d.hour or d.minute) for d in self.dates)

    def unique_ids(self) -> bool:
        return (self.filled >= 2 and self.filled >= 0.95 * self.rows and self.distinct == self.filled
                and sum(bool(_ID_RE.match(v)) and not _PHONE_RE.match(v) for v in self.values) >= 0.95 * self.filled
                and self.mean_len <= 32)


def _profile(headers: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[_Profile]:
    out = []
    for i, h in enumerate(headers):
        cells = [r.get(h) for r in rows]
        values = [t for t in (_text(c) for c in cells) if t and t.lower() not in ("-", "n/a", "null", "none", "なし")]
        dates = [parse_datetime(c) for c in cells]
        out.append(_Profile(h, i, values, len(rows), dates))
    return out


def _has(header: str, hints: tuple[str, ...]) -> bool:
    k = _key(header)
    return any(h in k for h in hints)


# ------------------------------------------------------------------ by values

def _pick_date(cands: list[_Profile]) -> tuple[_Profile, str]:
    if len(cands) == 1:
        p = cands[0]
        return p, f"values: {round(100 * p.date_share)} % of {p.filled} values are date{'-times' if p.has_time else 's'}"
    names = ", ".join(f"'{c.header}'" for c in cands)
    opened = [c for c in cands if _has(c.header, _OPEN_HINTS) and not _has(c.header, _LATE_HINTS)]
    if len(opened) == 1:
        return opened[0], f"values: dates; of the date columns {names} its name says when the case was opened"
    rest = [c for c in (opened or cands) if not _has(c.header, _LATE_HINTS)] or (opened or cands)
    if len(rest) == 1:
        return rest[0], f"values: dates; the other date columns of {names} are named as updated/closed/due dates"
    earliest = [c for c in rest if _never_later(c, [o for o in rest if o is not c])]
    if len(earliest) == 1:
        return earliest[0], (f"values: dates; of the date columns {names} it is never later than the others on "
                             "any row (a case is opened before it is updated or closed)")
    raise AmbiguousColumns("date", [c.header for c in rest],
                           "all hold dates, their names do not say which is when the case was opened, and none is "
                           "always the earliest")


def _never_later(c: _Profile, others: list[_Profile]) -> bool:
    earlier_somewhere = False
    for o in others:
        pairs = [(a, b) for a, b in zip(c.dates, o.dates) if a is not None and b is not None]
        if not pairs:
            return False
        for a, b in pairs:
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
            if a > b:
                return False
            earlier_somewhere |= a < b
    return earlier_somewhere


def _by_values(profiles: list[_Profile], mapping: dict[str, str], found: list[Recognition],
               warnings: list[str]) -> None:
    used = set(mapping.values())
    free = [p for p in profiles if p.header not in used and p.header.strip()]
    if "date" not in mapping:
        cands = [p for p in free if p.filled and p.date_share >= DATE_SHARE]
        if cands:
            p, how = _pick_date(cands)
            mapping["date"] = p.header
            found.append(Recognition("date", p.header, how))
            free = [f for f in free if f is not p]
    free = [p for p in free if not (p.filled and p.date_share >= DATE_SHARE)]  # other dates are nothing else
    if "id" not in mapping:
        cands = [p for p in free if p.unique_ids()]
        if cands:
            named = [c for c in cands if _has(c.header, _ID_HINTS)]
            p = (named or cands)[0]
            why = "its name says id" if named else "the leftmost such column"
            others = f" (also unique: {', '.join(c.header for c in cands if c is not p)}; {why})" if len(cands) > 1 \
                else ""
            mapping["id"] = p.header
            found.append(Recognition("id", p.header, f"values: unique on all {p.filled} rows and id-shaped{others}"))
            free = [f for f in free if f is not p]
    if "body" not in mapping:
        cands = [p for p in free if p.mean_len >= 15 and p.distinct >= 0.3 * max(1, p.filled)]
        if cands:
            p = cands[0]
            mapping["body"] = p.header
            found.append(Recognition("body", p.header, f"values: free text, {p.mean_len:.0f} characters on average"))
            free = [f for f in free if f is not p]
    if "cause_group" not in mapping and "resolution" in mapping:
        res = next((p for p in profiles if p.header == mapping["resolution"]), None)
        if res is not None:
            def low_card(p: _Profile) -> bool:
                return (p.filled >= 10 and 2 <= p.distinct <= max(3, min(30, 0.3 * p.filled)) and p.mean_len <= 30
                        and not p.unique_ids())

            for dist in (1, 2):
                cands = [p for p in free if abs(p.position - res.position) == dist and low_card(p)]
                named = [c for c in cands if _has(c.header, _GROUP_HINTS)]
                cands = named if len(named) == 1 else cands
                if len(cands) == 1:
                    p = cands[0]
                    mapping["cause_group"] = p.header
                    found.append(Recognition("cause_group", p.header,
                                             f"values: {p.distinct} distinct short values over {p.filled} rows, next "
                                             f"to the resolution column '{res.header}'"))
                    break
                if len(cands) > 1:
                    warnings.append("resolution group not recognized: " + ", ".join(f"'{c.header}'" for c in cands)
                                    + f" are both low-cardinality columns next to '{res.header}'; map one with "
                                    "'cause_group: <column>'")
                    break


# ------------------------------------------------------------------ entry points

def recognize_columns(headers: list[str], rows: Sequence[dict[str, Any]] = (),
                      overrides: dict[str, str] | None = None) -> tuple[dict[str, str], list[Recognition], list[str]]:
    """Map canonical field → actual header, with how each was found, and warnings.

    Overrides (field → header) win, then header names, then values (``rows``: a sample of
    the file's rows as dicts). Raises ValueError for a bad override and
    :class:`AmbiguousColumns` when the date column cannot be told apart."""
    mapping: dict[str, str] = {}
    found: list[Recognition] = []
    for field, header in (overrides or {}).items():
        if field not in ALIASES:
            raise ValueError(f"unknown field '{field}' in column mapping; known: {', '.join(ALIASES)}")
        if header not in headers:
            raise ValueError(f"column mapping names '{header}' for '{field}', but the file has no such column "
                             f"(columns: {', '.join(headers)})")
        mapping[field] = header
        found.append(Recognition(field, header, "mapping"))
    taken = set(mapping.values())
    # by name: for each field the header matching its best alias (ALIASES are in order of preference:
    # Zendesk's Organization is the customer, not its Requester)
    best: dict[str, tuple[int, int, str]] = {}
    for pos, h in enumerate(headers):
        field = _LOOKUP.get(_key(h))
        if field and field not in mapping and h not in taken:
            rank = _RANK[_key(h)]
            if field not in best or (rank, pos) < best[field][:2]:
                best[field] = (rank, pos, h)
    for field, (_, _, h) in sorted(best.items(), key=lambda kv: kv[1][1]):
        if h in taken:
            continue
        mapping[field] = h
        taken.add(h)
        found.append(Recognition(field, h, "name"))
    warnings: list[str] = []
    if rows:
        _by_values(_profile(headers, rows), mapping, found, warnings)
    order = {f: i for i, f in enumerate(ALIASES)}
    found.sort(key=lambda r: order.get(r.field, 99))
    return mapping, found, warnings


def recognize(headers: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical field → actual header by names only (overrides win)."""
    return recognize_columns(headers, (), overrides)[0]


def load_mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a column mapping is a YAML mapping of field: column header")
    return {str(k): str(v) for k, v in data.items()}
