"""``GET /admin/audit`` for admins, through the access layer. There is no route that
changes or deletes an entry; the access layer writes them (:mod:`hikitsugi.api.scope`)."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from fastapi import APIRouter, Depends, Query

from hikitsugi.api.schemas import NO_NUL, AuditOut, ErrorOut
from hikitsugi.api.scope import View, scoped

router = APIRouter(tags=["access"])


@router.get("/admin/audit", response_model=AuditOut, responses={403: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def get_audit(actor: Optional[str] = Query(None, max_length=256, pattern=NO_NUL,
                                           description="Staff user (or cli:<name>)."),
              action: Optional[str] = Query(None, max_length=32, pattern=NO_NUL,
                                            description="read, grant.add, grant.revoke, …"),
              target: Optional[str] = Query(None, max_length=512, pattern=NO_NUL,
                                            description="Prefix: customer:C001, document:, …"),
              since: Optional[dt.datetime] = Query(None, description="From (naive = the desk's local time)."),
              until: Optional[dt.datetime] = Query(None, description="Until (naive = the desk's local time)."),
              limit: int = Query(100, ge=1, le=1000),
              view: View = Depends(scoped("admin"))) -> AuditOut:
    """Audit entries, newest first (admins only)."""
    return AuditOut(events=view.audit_events(actor=actor, action=action, target=target, since=since, until=until,
                                             limit=limit))
