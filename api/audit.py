"""The audit log over HTTP: writing the sensitive reads of a response, and
``GET /admin/audit`` for admins. There is no route that changes or deletes an entry."""

from __future__ import annotations

import datetime as dt
from typing import Optional
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from hikitsugi.access import audit as audit_store
from hikitsugi.access.policy import Reads
from hikitsugi.api.deps import Principal, require_role
from hikitsugi.api.schemas import AuditOut, ErrorOut
from hikitsugi.config import Settings, get_settings
from hikitsugi.storage.database import session_for

router = APIRouter(tags=["access"])


def record_reads(settings: Settings, principal: Principal, reads: Reads, via: str) -> None:
    """One audit row per sensitive read in a response, written before the response leaves."""
    if not reads.items:
        return
    session = session_for(settings.db_url)
    try:
        audit_store.append(session, [
            {"actor": principal.user, "role": principal.role, "key_id": principal.key_id, "action": "read",
             "target": target, "field": what, "source": principal.source, "detail": {**detail, "via": via}}
            for target, what, detail in reads.items])
        session.commit()
    finally:
        session.close()


@router.get("/admin/audit", response_model=AuditOut, responses={403: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def get_audit(actor: Optional[str] = Query(None, max_length=256, description="Staff user (or cli:<name>)."),
              action: Optional[str] = Query(None, max_length=32, description="read, grant.add, grant.revoke, …"),
              target: Optional[str] = Query(None, max_length=512, description="Prefix: customer:C001, document:, …"),
              since: Optional[dt.datetime] = Query(None), until: Optional[dt.datetime] = Query(None),
              limit: int = Query(100, ge=1, le=1000),
              _: Principal = Depends(require_role("admin"))) -> AuditOut:
    """Audit entries, newest first (admins only)."""
    settings = get_settings()
    tz = ZoneInfo(settings.timezone)
    session = session_for(settings.db_url)
    try:
        rows = audit_store.query(session, actor=actor, action=action, target=target,
                                 since=_utc(since, tz), until=_utc(until, tz), limit=limit)
        return AuditOut(events=[r.to_dict() for r in rows])
    finally:
        session.close()


def _utc(value: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)  # naive = the desk's local time
    return value.astimezone(dt.timezone.utc)
