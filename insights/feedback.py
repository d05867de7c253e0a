"""Feedback: every outcome an agent reports on a search (「解決した」「役に立たなかった」
「エスカレーションする」), with the query and the result ids shown copied in so a row stands
on its own. Append-only; the live deflection report reads it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hikitsugi.access.masking import mask_text
from hikitsugi.config import Settings
from hikitsugi.insights.searchlog import SearchLog
from hikitsugi.storage.database import session_for
from hikitsugi.storage.schema import Base


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


OUTCOMES = ("resolved", "not_helpful", "escalated")
OUTCOME_LABELS = {"resolved": "解決した", "not_helpful": "役に立たなかった", "escalated": "エスカレーションした"}


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    search_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)  # resolved | not_helpful | escalated
    source_id: Mapped[str | None] = mapped_column(String(512), nullable=True, index=True)  # the card, if any
    user: Mapped[str] = mapped_column(String(256), index=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    query: Mapped[str] = mapped_column(Text)
    result_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    customer: Mapped[str | None] = mapped_column(String(256), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


def record_feedback(settings: Settings, principal: Any, outcome: str, query: str, result_ids: list[str],
                    search_id: str | None = None, source_id: str | None = None, customer: str | None = None,
                    comment: str | None = None, at: dt.datetime | None = None) -> Feedback:
    """Append one outcome. When ``search_id`` names a logged search, its query and result
    ids are the ones stored (what the server actually showed); otherwise the caller's."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    session = session_for(settings.db_url)
    try:
        if search_id:
            logged = session.query(SearchLog).filter(SearchLog.search_id == search_id).one_or_none()
            if logged is not None:
                query, result_ids = logged.query, list(logged.result_ids or [])
                customer = customer or logged.customer
        row = Feedback(
            created_at=at or _now(), search_id=search_id, outcome=outcome, source_id=source_id,
            user=getattr(principal, "user", None) or "anonymous", role=getattr(principal, "role", None),
            key_id=getattr(principal, "key_id", None), query=mask_text(query), result_ids=list(result_ids),
            customer=customer, comment=mask_text(comment) if comment else None,
        )
        session.add(row)
        session.commit()
        return row
    finally:
        session.close()
