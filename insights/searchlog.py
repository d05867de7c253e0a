"""What the team does with the answers: every search served, and every outcome an agent
reports on it (「解決した」「役に立たなかった」「エスカレーションする」).

Two tables on the same :class:`hikitsugi.storage.schema.Base` (schema in Alembic revision
``0003_feedback``):

* ``search_log`` — one row per search served by the API: who asked (the key's user and
  role), the query as typed and normalized, the customer in context, the ids of the
  result cards shown (in order), the confidence of the best hit and the guidance given.
  Analytics (top queries, content gaps, documents never retrieved) read it.
* ``feedback`` — one row per click: the outcome, the card it was about (if any), and —
  copied in, so a row stands on its own — the query and the result ids shown. The live
  deflection report reads it.

Both are append-only; nothing here is ever updated. Queries and comments are stored with
personal data masked (:func:`hikitsugi.access.masking.mask_text`), like every log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hikitsugi.access.masking import Lexicon, mask_text
from hikitsugi.config import Settings
from hikitsugi.storage.database import session_for
from hikitsugi.storage.schema import Base

log = logging.getLogger("hikitsugi.feedback")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_search_id() -> str:
    return uuid.uuid4().hex


class SearchLog(Base):
    __tablename__ = "search_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    user: Mapped[str] = mapped_column(String(256), index=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    query: Mapped[str] = mapped_column(Text)
    normalized_query: Mapped[str] = mapped_column(Text)
    customer: Mapped[str | None] = mapped_column(String(256), nullable=True)  # customer id in context
    mode: Mapped[str] = mapped_column(String(16))
    k: Mapped[int] = mapped_column(Integer)
    result_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)  # cosine of the best hit
    confident: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)  # guidance: self_resolve | escalate
    took_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # customers whose sensitive parts the answer showed, sorted and comma-joined ("" none; NULL: logged
    # before revision 0005). The reports show the query only to viewers in charge of all of them.
    scope: Mapped[str | None] = mapped_column(String(1024), nullable=True, index=True)


def confidence_of(resp: dict[str, Any]) -> float | None:
    """The calibrated confidence of a search response: the guidance's (cosine of the best
    hit), else the best dense score among the cards; None when nothing was found."""
    g = resp.get("guidance") or {}
    if g.get("confidence") is not None and resp.get("results"):
        return float(g["confidence"])
    scores = [r.get("dense_score") for r in resp.get("results") or [] if r.get("dense_score") is not None]
    return max(scores) if scores else None


def record_search(settings: Settings, search_id: str, principal: Any, request: dict[str, Any],
                  resp: dict[str, Any], at: dt.datetime | None = None, *, scope: str | None,
                  lexicon: Lexicon | None) -> None:
    """Append one served search to ``search_log`` (never raises: logging must not break search).

    The query is stored masked — by the patterns and by the names the customer records know
    (``lexicon``), so a contact's name typed without an honorific is not kept — and with the
    ``scope`` the access layer computed for it."""
    try:
        conf = confidence_of(resp)
        customer = (resp.get("customer") or {}).get("customer_id") or request.get("customer")
        row = SearchLog(
            search_id=search_id, created_at=at or _now(), user=getattr(principal, "user", None) or "anonymous",
            role=getattr(principal, "role", None), key_id=getattr(principal, "key_id", None),
            query=mask_text(str(request.get("query", ""))[:2000], lexicon),
            normalized_query=mask_text(str(resp.get("normalized_query", ""))[:2000], lexicon),
            customer=customer, mode=str(resp.get("mode") or request.get("mode") or "hybrid"),
            k=int(request.get("k") or len(resp.get("results") or [])),
            result_ids=[r["source_id"] for r in resp.get("results") or []],
            confidence=conf, confident=bool(conf is not None and conf >= settings.self_resolve_threshold),
            action=(resp.get("guidance") or {}).get("action"), took_ms=resp.get("took_ms"), scope=scope,
        )
        session = session_for(settings.db_url)
        try:
            session.add(row)
            session.commit()
        finally:
            session.close()
    except Exception:  # noqa: BLE001 - the search was served; losing one log row is the lesser evil
        log.warning("could not record search %s in the search log", search_id, exc_info=True)


__all__ = ["SearchLog", "record_search", "new_search_id", "confidence_of"]
