"""Filters applied *inside* retrieval, never after it.

A filter becomes a boolean mask over the snapshot's chunk rows. The dense side searches
only the allowed rows (a FAISS ``IDSelectorBitmap``), the lexical side multiplies BM25
scores by the mask, and both then return their best *allowed* candidates. A filter that
matches 1 % of the corpus therefore still returns that 1 %'s best matches, instead of an
empty page left after post-filtering the global top 100.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from dateutil import parser as dateparser

from hikitsugi.ingest.normalize import normalize

# Per-chunk attributes kept in the snapshot as integer codes (plus dates as epoch seconds).
CODED_FIELDS = ("kind", "customer", "status", "product", "category")


@dataclass
class Filters:
    kinds: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    date_from: str | None = None  # inclusive
    date_to: str | None = None  # inclusive; a bare date means the end of that day

    def empty(self) -> bool:
        return not (self.kinds or self.customers or self.statuses or self.products or self.categories
                    or self.date_from or self.date_to)


def to_epoch(value: str | None, end_of_day: bool = False) -> float:
    """ISO-ish date/time → epoch seconds (naive times are taken as JST, the users' zone)."""
    if not value:
        return float("nan")
    try:
        d = dateparser.parse(str(value))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a date: '{value}' (use YYYY-MM-DD)") from exc
    if end_of_day and len(str(value).strip()) <= 10:  # the last instant of that day (9999-12-31 has no next day)
        d = d.replace(hour=23, minute=59, second=59, microsecond=999999)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone(dt.timedelta(hours=9)))
    try:
        return d.timestamp()
    except (OverflowError, ValueError):  # before 0001-01-01 UTC or after 9999-12-31 UTC
        return float("-inf") if d.year < 2 else float("inf")


def code_value(value: object) -> str:
    return normalize(str(value)).lower() if value not in (None, "") else ""


def build_mask(f: Filters, codes: dict[str, np.ndarray], vocab: dict[str, list[str]],
               dates: np.ndarray) -> np.ndarray | None:
    """Boolean mask of allowed rows, or None when nothing is filtered."""
    if f.empty():
        return None
    n = len(dates)
    mask = np.ones(n, dtype=bool)
    for name, wanted in (("kind", f.kinds), ("customer", f.customers), ("status", f.statuses),
                         ("product", f.products), ("category", f.categories)):
        if not wanted:
            continue
        index = {v: i for i, v in enumerate(vocab[name])}
        allowed = [index[c] for c in (code_value(w) for w in wanted) if c in index]
        mask &= np.isin(codes[name], np.array(allowed, dtype=np.int32))
    if f.date_from:
        mask &= dates >= to_epoch(f.date_from)  # NaN (undated) compares False: excluded
    if f.date_to:
        mask &= dates <= to_epoch(f.date_to, end_of_day=True)
    return mask
