"""Escalation histories and interaction notes: CSV, TSV, XLSX, JSON and JSONL.

One row is one case (or one note). Columns are recognized by :mod:`ingest.columns`; a
row becomes a :class:`ParsedDoc` whose source id is the row's id column (受付番号 …), so
the same case keeps its identity across exports. A broken row is reported with its
row number and skipped; the rest of the file is still ingested.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from hikitsugi.ingest.columns import SAMPLE_ROWS, AmbiguousColumns, Recognition, parse_datetime, recognize_columns
from hikitsugi.ingest.encoding import decode_bytes
from hikitsugi.ingest.model import Block, ParsedDoc, ParseError

RECORD_EXTS = {".csv", ".tsv", ".xlsx", ".json", ".jsonl", ".ndjson"}

# Labels shown in front of each part of a case, so a chunk reads like the ticket.
_LABELS = {
    "first_response": "一次対応",
    "resolution": "解決策",
    "cause": "原因",
}
_META_FIELDS = ("customer", "product", "category", "status", "resolved_by", "escalated_to", "resolution", "cause",
                "cause_group", "first_response", "channel", "linked_article")


@dataclass
class RecordResult:
    docs: list[ParsedDoc] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    encoding: str = ""
    columns: list[Recognition] = field(default_factory=list)  # which column is which field, and how we know


def _rows_csv(data: bytes, delimiter: str, result: RecordResult) -> Iterator[tuple[int, dict[str, Any]]]:
    decoded = decode_bytes(data)
    result.encoding = decoded.encoding
    reader = csv.reader(io.StringIO(decoded.text, newline=""), delimiter=delimiter)
    try:
        headers = next(reader)
    except StopIteration:
        raise ParseError("empty file: no header row") from None
    headers = [h.strip() for h in headers]
    for lineno, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(headers):
            result.problems.append(f"row {lineno}: {len(row)} fields, header has {len(headers)} — row skipped "
                                   "(unquoted delimiter or line break inside a field?)")
            continue
        yield lineno, dict(zip(headers, row))


def _rows_xlsx(data: bytes, result: RecordResult) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise ParseError(f"not a readable XLSX workbook ({exc.__class__.__name__}: {exc})") from exc
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    try:
        headers = [str(h).strip() if h is not None else "" for h in next(rows)]
    except StopIteration:
        raise ParseError("empty workbook: no header row") from None
    for lineno, row in enumerate(rows, start=2):
        if not any(v not in (None, "") for v in row):
            continue
        yield lineno, {h: ("" if v is None else v) for h, v in zip(headers, row) if h}


def _rows_json(data: bytes, lines: bool, result: RecordResult) -> Iterator[tuple[int, dict[str, Any]]]:
    decoded = decode_bytes(data)
    result.encoding = decoded.encoding
    if lines:
        for lineno, line in enumerate(decoded.text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                result.problems.append(f"line {lineno}: invalid JSON ({exc.msg}) — skipped")
                continue
            if not isinstance(obj, dict):
                result.problems.append(f"line {lineno}: expected a JSON object — skipped")
                continue
            yield lineno, obj
        return
    try:
        obj = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    items = obj if isinstance(obj, list) else next((v for v in obj.values() if isinstance(v, list)), None)
    if items is None:
        raise ParseError("JSON must be a list of records (or an object holding one)")
    for i, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield i, item
        else:
            result.problems.append(f"item {i}: expected an object — skipped")


_NONE_WORDS = {"なし", "無し", "ナシ", "-", "ー", "―", "n/a", "na", "none", "null", "該当なし"}


def _as_text(value: Any) -> str:
    """Cell text; the many ways exports say "nothing" (なし, -, N/A) become empty."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in _NONE_WORDS else text


def _as_date(value: Any) -> str | None:
    """ISO 8601 string, or None when the cell holds no recognizable date (the same reading
    :mod:`hikitsugi.ingest.columns` recognizes a date column by)."""
    if value in (None, ""):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    parsed = parse_datetime(_as_text(value), strict=False)
    return parsed.isoformat() if parsed is not None else None


def _headers(sample: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Column names in file order (JSON records may differ in keys: the union, first seen first)."""
    out: dict[str, None] = {}
    for _, row in sample:
        out.update(dict.fromkeys(row))
    return list(out)


def parse_records(data: bytes, path: Path, rel: str, mapping: dict[str, str] | None = None) -> RecordResult:
    """Parse one export file into one document per row."""
    ext = path.suffix.lower()
    result = RecordResult()
    if ext == ".xlsx":
        rows = _rows_xlsx(data, result)
    elif ext in (".json", ".jsonl", ".ndjson"):
        rows = _rows_json(data, ext != ".json", result)
    else:
        rows = _rows_csv(data, "\t" if ext == ".tsv" else ",", result)
    cols: dict[str, str] | None = None
    seen: set[str] = set()
    sample = list(itertools.islice(rows, SAMPLE_ROWS))
    for lineno, row in itertools.chain(sample, rows):
        if cols is None:
            try:
                cols, result.columns, warnings = recognize_columns(
                    _headers(sample), [r for _, r in sample], mapping)
            except AmbiguousColumns as exc:
                raise ParseError(str(exc)) from None
            result.problems.extend(warnings)
            if "body" not in cols and "title" not in cols:
                raise ParseError(
                    f"no text column recognized among {list(row.keys())}; name one of 問い合わせ内容/内容/件名 "
                    "or give a column mapping (--mapping FILE with 'body: <column>')"
                )
        get = {f: _as_text(row.get(h)) for f, h in cols.items()}
        rid = get.get("id") or f"{rel}#{lineno}"
        if rid in seen:
            result.problems.append(f"row {lineno}: duplicate id {rid} — later row skipped")
            continue
        seen.add(rid)
        parts = [(f, get.get(f, "")) for f in ("title", "body", "first_response", "resolution", "cause")]
        if not any(v for _, v in parts[:2]):
            result.problems.append(f"row {lineno} ({rid}): empty title and text — skipped")
            continue
        is_case = bool(get.get("resolution") or get.get("escalated_to") or get.get("cause"))
        # The symptom and the resolution are separate blocks so that a query about the
        # symptom is not diluted by resolution wording, and vice versa. The title is not
        # repeated in the text: it is the document title, which every chunk carries.
        blocks = [Block(get.get("body") or get.get("title", ""))]
        answer = "\n".join(f"{_LABELS[f]}: {v}" for f, v in parts[2:] if v)
        if answer:
            blocks.append(Block(answer, ("対応",)))
        meta = {f: get[f] for f in _META_FIELDS if get.get(f)}
        meta["occurred_at"] = _as_date(row.get(cols["date"])) if "date" in cols else None
        meta["row"] = lineno
        title = get.get("title") or (get.get("body", "")[:40] + ("…" if len(get.get("body", "")) > 40 else ""))
        result.docs.append(ParsedDoc(rid, "case" if is_case else "note", title, blocks, meta, rel, raw=row))
    if cols is None and not result.problems:
        raise ParseError("no data rows")
    return result
