"""What leads see: JSON endpoints under ``/analytics`` (role lead or admin) and the lead
page at ``/leads`` (a static page that calls them with the lead's key).

Every report that shows stored content runs through the caller's view (:mod:`hikitsugi.api.scope`):
what a lead sees of a customer's private parts depends on whether it is in charge of that
customer. The reports themselves live in :mod:`hikitsugi.insights.reports`; windows default to the settings
in ``hikitsugi/config.py`` (``analytics_days``, ``unretrieved_days``, ``stale_days``,
``stale_kinds``, ``expiring_days``, ``gap_similarity``) and can be overridden per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from hikitsugi.api.deps import Principal, require_role
from hikitsugi.api.schemas import ErrorOut
from hikitsugi.api.scope import View, scoped
from hikitsugi.config import get_settings
from hikitsugi.insights import reports as analytics
from hikitsugi.storage.database import session_for


def _session():
    session = session_for(get_settings().db_url)
    try:
        yield session
    finally:
        session.close()


STATIC = Path(__file__).parent / "static"
LEADS = scoped("lead", "admin")
Kind = Literal["case", "manual", "note", "customer"]
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=ERRORS)
page_router = APIRouter()


@router.get("/top-queries")
def top_queries(days: Optional[int] = Query(None, ge=1, le=3650, description="Window in days (default analytics_days)."),
                limit: int = Query(20, ge=1, le=500), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Most frequent queries (by normalized text), with users, mean confidence and share of
    confident hits — of the searches the caller may read (``withheld``: how many not)."""
    return view.report(analytics.top_queries, days or get_settings().analytics_days, limit)


@router.get("/content-gaps")
def content_gaps(days: Optional[int] = Query(None, ge=1, le=3650),
                 similarity: Optional[float] = Query(None, gt=0, le=1, description="Cosine that joins two queries "
                                                                                   "(default gap_similarity)."),
                 limit: int = Query(30, ge=1, le=500), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Queries with no confident hit, clustered by meaning: the articles to write next, biggest first."""
    settings = get_settings()
    return view.report(analytics.content_gaps, settings, days or settings.analytics_days, limit, similarity)


@router.get("/unretrieved")
def unretrieved(days: Optional[int] = Query(None, ge=1, le=3650, description="Default unretrieved_days (90)."),
                kind: list[Kind] = Query([], description="Only these kinds (repeatable)."),
                limit: int = Query(200, ge=1, le=5000), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Documents that appeared in no result list in the window (of those the caller may see)."""
    return view.report(analytics.unretrieved_documents, days or get_settings().unretrieved_days, kind, limit)


@router.get("/stale")
def stale(days: Optional[int] = Query(None, ge=0, le=36500, description="Default stale_days."),
          kind: list[Kind] = Query([], description="Kinds to check (default stale_kinds: manual, customer)."),
          limit: int = Query(200, ge=1, le=5000), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Documents whose stored version is older than the threshold (of those the caller may see)."""
    settings = get_settings()
    return view.report(analytics.stale_documents, settings.stale_days if days is None else days,
                       kind or settings.stale_kinds, limit)


@router.get("/expiring-commitments")
def expiring(days: Optional[int] = Query(None, ge=0, le=3650, description="Default expiring_days (30)."),
             view: View = Depends(LEADS)) -> dict[str, Any]:
    """Customer commitments (特別対応) ending within the window, soonest first; the reason and
    approver only for customers the caller is in charge of (``restricted`` otherwise)."""
    settings = get_settings()
    return view.report(analytics.expiring_commitments, settings.expiring_days if days is None else days,
                       today=analytics.desk_today(settings))


@router.get("/deflection")
def deflection(weeks: Optional[int] = Query(None, ge=1, le=520, description="Only the last N weeks."),
               _: Principal = Depends(require_role("lead", "admin")), session=Depends(_session)) -> dict[str, Any]:
    """Live self-resolution rate by week, from the outcomes agents reported (counts only)."""
    return analytics.weekly_deflection(session, weeks, tz=getattr(get_settings(), "timezone", None))


@router.get("/report")
def report(view: View = Depends(LEADS)) -> dict[str, Any]:
    """Every report above with the configured windows (what the lead page shows), as the caller may see it."""
    return view.report(analytics.lead_report, get_settings())


@page_router.get("/leads", include_in_schema=False)
def leads_page() -> FileResponse:
    return FileResponse(STATIC / "leads.html", media_type="text/html; charset=utf-8")
