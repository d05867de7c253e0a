"""The audit log: who read which sensitive field, and who changed which access, when, from where.

Append-only by construction: this module has :func:`append` and :func:`query` and
nothing else, no API route writes anything but appends, and the migration (revision
``0004_access``) puts triggers on the table that make the database itself refuse
``UPDATE`` and ``DELETE`` (SQLite and PostgreSQL). Rows are written in the same
transaction as the change they describe, so a grant never exists without its entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hikitsugi.storage.schema import Base

ACTIONS = ("read", "key.create", "key.revoke", "assign", "unassign", "grant.add", "grant.revoke", "token.issue",
           "conflict.resolve", "draft.accept")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AuditEvent(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(256), index=True)  # staff user, or cli:<os user>
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(512), index=True)  # customer:C001, document:INC-24-0001, key:…
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)  # emergency_contacts | personal_data | private
    source: Mapped[str | None] = mapped_column(String(256), nullable=True)  # client address, or "cli"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def to_dict(self) -> dict[str, Any]:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=dt.timezone.utc)
        return {"id": self.id, "at": at.isoformat(), "actor": self.actor, "role": self.role, "key_id": self.key_id,
                "action": self.action, "target": self.target, "field": self.field, "source": self.source,
                "detail": self.detail or {}}


def append(session: Session, events: Iterable[dict[str, Any]]) -> int:
    """Add events (dicts of AuditEvent columns) to the session; the caller commits. Returns how many."""
    n = 0
    for e in events:
        if e.get("action") not in ACTIONS:
            raise ValueError(f"unknown audit action {e.get('action')!r}")
        session.add(AuditEvent(**{"detail": {}, **e}))
        n += 1
    return n


def query(session: Session, *, actor: str | None = None, action: str | None = None, target: str | None = None,
          since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 100) -> list[AuditEvent]:
    """Newest first. ``target`` matches a prefix (``customer:C001`` also finds nothing else; ``customer:`` all)."""
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if target:
        stmt = stmt.where(AuditEvent.target.startswith(target, autoescape=True))
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at <= until)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))
