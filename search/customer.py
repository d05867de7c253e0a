"""The customer in context: named by parameter or found by name/alias in the query, with
commitments (expired ones flagged), arrangements and preferences, pinned above the results.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select

from hikitsugi.ingest.normalize import normalize
from hikitsugi.search.cards import CustomerContext
from hikitsugi.storage.schema import Document

_lock = threading.Lock()
_names: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}


def _name_table(session, key: tuple[str, str]) -> list[tuple[str, str, bool]]:
    """(normalized name or alias, customer id, is the id itself) for every live customer record.

    Built once per index generation: customer records change only through an ingest,
    which makes a new generation. Without it every query would read and decode every
    customer record (seconds per query with a few thousand customers).
    """
    table = _names.get(key)
    if table is None:
        rows = session.execute(select(Document.source_id, Document.meta)
                               .where(Document.kind == "customer", Document.retired_at.is_(None))).all()
        table = []
        for sid, meta in rows:
            table.append((normalize(sid), sid, True))
            for n in [meta.get("customer", "")] + list(meta.get("aliases") or []):
                if n:
                    table.append((normalize(n), sid, False))
        with _lock:
            _names.clear()  # only the current generation is worth keeping
            _names[key] = table
    return table


def customer_context(session, query_norm: str, customer: str | None,
                      cache_key: tuple[str, str]) -> CustomerContext | None:
    table = _name_table(session, cache_key)
    today = dt.date.today().isoformat()
    found_sid = None
    how = "parameter"
    if customer:
        key = normalize(customer)
        found_sid = next((sid for name, sid, _ in table if name == key), None)
        if found_sid is None:
            raise LookupError(f"unknown customer '{customer}' (give a customer id such as C001 or its name)")
    else:
        how = "query"
        best = 0
        for name, sid, is_id in table:
            if not is_id and len(name) >= 2 and len(name) > best and name in query_norm:
                found_sid, best = sid, len(name)
    found = None
    if found_sid is not None:
        meta = session.execute(select(Document.meta).where(
            Document.source_id == found_sid, Document.kind == "customer", Document.retired_at.is_(None))).scalar()
        found = (found_sid, meta) if meta is not None else None
    if found is None:
        return None
    sid, meta = found
    commitments = []
    for c in meta.get("commitments") or []:
        until = c.get("valid_until")
        commitments.append({**c, "expired": bool(until and until < today)})
    commitments.sort(key=lambda c: c["expired"])
    return CustomerContext(sid, meta.get("customer", sid), meta.get("rank"), meta.get("owner"), commitments,
                           list(meta.get("arrangements") or []), list(meta.get("preferences") or []), how)
