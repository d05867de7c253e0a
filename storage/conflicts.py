"""The ``conflicts`` table: pairs of stored knowledge that contradict each other.

Written by the detection that runs after every new index generation
(:mod:`hikitsugi.insights.conflicts`), read by search (a result card that is part of an
open conflict says so) and by the lead's conflicts list. Lives in ``storage`` because
both of those read it. Schema in Alembic revision ``0006``.

Side **a** is the older piece of advice (a case's resolution, a manual passage, a
customer's commitment); side **b** the newer case or note that contradicts or supersedes
it. The id is a hash of the kind and both sides, so the same pair found again by the next
run is the same row: a lead's resolution survives re-indexing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hikitsugi.storage.schema import Base

KINDS = ("case_case", "manual_newer", "commitment_note")
STATUSES = ("open", "resolved", "gone")  # gone: no longer found (a side changed or was deleted) before anyone resolved it
RESOLUTIONS = ("a", "b", "both")  # older side wins, newer side wins, both valid in different conditions


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Conflict(Base):
    __tablename__ = "conflicts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")
    score: Mapped[float] = mapped_column(Float)
    why: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the scorer's signals, each explained
    customer: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)  # a side's customer key, if any
    a_source_id: Mapped[str] = mapped_column(String(512), index=True)
    a_kind: Mapped[str] = mapped_column(String(16))
    a_part: Mapped[str] = mapped_column(String(512), default="")  # 対応 | a heading path | commitment:N
    a_title: Mapped[str] = mapped_column(Text, default="")
    a_date: Mapped[str | None] = mapped_column(String(32), nullable=True)
    a_text: Mapped[str] = mapped_column(Text, default="")
    a_customer: Mapped[str | None] = mapped_column(String(256), nullable=True)  # whose it is (access policy)
    b_source_id: Mapped[str] = mapped_column(String(512), index=True)
    b_kind: Mapped[str] = mapped_column(String(16))
    b_part: Mapped[str] = mapped_column(String(512), default="")
    b_title: Mapped[str] = mapped_column(Text, default="")
    b_date: Mapped[str | None] = mapped_column(String(32), nullable=True)
    b_text: Mapped[str] = mapped_column(Text, default="")
    b_customer: Mapped[str | None] = mapped_column(String(256), nullable=True)  # whose it is (access policy)
    fingerprint: Mapped[str] = mapped_column(String(64))  # hash of both sides' texts when last detected
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def open_conflicts_of(session: Session, source_ids: list[str]) -> list[Conflict]:
    """Open conflicts with a side among ``source_ids`` (what a page of result cards needs)."""
    if not source_ids:
        return []
    return list(session.scalars(select(Conflict).where(
        Conflict.status == "open",
        or_(Conflict.a_source_id.in_(source_ids), Conflict.b_source_id.in_(source_ids)))))
