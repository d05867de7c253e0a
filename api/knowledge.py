"""Knowledge upkeep for leads: the conflicts list and its resolution, draft articles from
content gaps and their acceptance, and the page ``/leads/knowledge`` that shows both.

Lead and admin only. Every route takes the caller's view (:mod:`hikitsugi.api.scope`, the
one access layer): conflicts are read through ``view.records`` (each side at the caller's
own level for that customer: a lead not assigned to a customer sees neither the text of
its notes nor its commitments' reasons; the reads it does see are audited), drafts through
``view.report`` (only logged queries whose scope the caller may read, only cases it may
see). The handlers only translate HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from hikitsugi.api.schemas import ErrorOut
from hikitsugi.api.scope import View, scoped
from hikitsugi.config import get_settings
from hikitsugi.insights import conflicts as conflict_store
from hikitsugi.insights import drafts as draft_store

STATIC = Path(__file__).parent / "static"
LEADS = scoped("lead", "admin")
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def _id(what: str):
    """A fresh path parameter per route (FastAPI binds a Param object to the first name it is used for)."""
    return PathParam(..., min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description=f"The {what}'s id.")



router = APIRouter(tags=["knowledge"], responses=ERRORS)
page_router = APIRouter()


# ------------------------------------------------------------------ models

class SideOut(BaseModel):
    hidden: bool = Field(description="The caller may not see this side (a customer it is not assigned to).")
    kind: str
    date: Optional[str] = None
    level: Optional[str] = None
    source_id: Optional[str] = None
    part: Optional[str] = None
    title: Optional[str] = None
    text: Optional[str] = None
    url: Optional[str] = None
    redacted: bool = False


class SignalOut(BaseModel):
    signal: str
    weight: float
    text: str
    quote_a: str = ""
    quote_b: str = ""


class ConflictOut(BaseModel):
    id: str
    kind: str = Field(description="case_case | manual_newer | commitment_note")
    status: str = Field(description="open | resolved | gone")
    score: float
    why: list[SignalOut]
    a: SideOut = Field(description="The older advice.")
    b: SideOut = Field(description="The newer case or note.")
    detected_at: Optional[str] = None
    last_seen_at: Optional[str] = None
    resolution: Optional[str] = None
    resolution_note: Optional[str] = None
    resolved_by: Optional[str] = None
    resolved_at: Optional[str] = None


class ConflictListOut(BaseModel):
    status: str
    counts: dict[str, int]
    by_kind: dict[str, int]
    items: list[ConflictOut]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Literal["a", "b", "both"] = Field(description="a: the older side stands; b: the newer side wins; both: "
                                                          "both valid in different conditions (say which in note).")
    note: Optional[str] = Field(None, max_length=2000)


class LineOut(BaseModel):
    text: str
    sources: list[dict[str, Any]]


class DraftOut(BaseModel):
    id: str
    title: str
    title_source: dict[str, Any]
    queries: list[LineOut]
    symptoms: list[LineOut]
    causes: list[LineOut]
    resolutions: list[LineOut]
    cases: list[dict[str, Any]]
    searches: int
    first_seen: Optional[str] = None
    last_seen: Optional[str] = None
    markdown: str


class DraftListOut(BaseModel):
    days: int
    items: list[DraftOut]


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ingest: bool = Field(True, description="Ingest the article as a manual right away (in the background).")


class AcceptOut(BaseModel):
    id: str
    title: str
    path: str
    ingest: str = Field(description="scheduled | skipped")
    sources_listed: Optional[bool] = Field(None, description="Whether the sources file lists the knowledge folder "
                                                             "(null: there is no sources file).")
    warning: Optional[str] = None


# ------------------------------------------------------------------ conflicts

@router.get("/conflicts", response_model=ConflictListOut)
def list_conflicts(status: Literal["open", "resolved", "gone", "all"] = "open",
                   kind: Optional[Literal["case_case", "manual_newer", "commitment_note"]] = None,
                   limit: int = Query(200, ge=1, le=1000), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Contradictions found at the last re-index: both sides, their dates and why (newest first)."""
    return view.records(conflict_store.list_conflicts, status, kind, limit, via="conflicts")


@router.get("/conflicts/{conflict_id}", response_model=ConflictOut)
def get_conflict(conflict_id: str = _id("conflict"), view: View = Depends(LEADS)) -> dict[str, Any]:
    """One conflict."""
    try:
        return view.records(conflict_store.get_conflict, conflict_id, via="conflicts")
    except conflict_store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/conflicts/{conflict_id}/resolve", response_model=ConflictOut)
def resolve_conflict(body: ResolveIn, conflict_id: str = _id("conflict"), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Mark a conflict resolved: which side wins, or both valid in different conditions. Audited."""
    try:
        return view.records(lambda session, settings, principal, _reads: conflict_store.resolve(
            session, settings, conflict_id, body.winner, body.note, principal, principal.user, principal.source),
            via="conflicts")
    except conflict_store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, [{"field": "note", "message": str(exc)}]) from None


# ------------------------------------------------------------------ drafts

@router.get("/drafts", response_model=DraftListOut)
def list_drafts(days: Optional[int] = Query(None, ge=1, le=3650, description="Window of the content gaps "
                                                                             "(default analytics_days)."),
                limit: int = Query(20, ge=1, le=200), view: View = Depends(LEADS)) -> dict[str, Any]:
    """A draft article per content gap the caller may read: title, phrasings, and symptoms / cause / fix from
    later cases, each sentence with its source."""
    settings = get_settings()
    days = days or settings.analytics_days
    return {"days": days, "items": [d.to_dict() for d in view.report(draft_store.build_drafts, settings, days, limit)]}


@router.get("/drafts/{draft_id}", response_model=DraftOut)
def get_draft(draft_id: str = _id("draft"), days: Optional[int] = Query(None, ge=1, le=3650),
              view: View = Depends(LEADS)) -> dict[str, Any]:
    """One draft."""
    try:
        return view.report(draft_store.get_draft, get_settings(), draft_id, days).to_dict()
    except draft_store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/drafts/{draft_id}/accept", response_model=AcceptOut)
def accept_draft(background: BackgroundTasks, body: AcceptIn = AcceptIn(), draft_id: str = _id("draft"),
                 days: Optional[int] = Query(None, ge=1, le=3650), view: View = Depends(LEADS)) -> dict[str, Any]:
    """Accept a draft: write it to the knowledge folder as a manual (audited) and ingest it in the background."""
    settings = get_settings()
    p = view.principal
    try:
        out = view.report(draft_store.accept, settings, draft_id, p.user, p.role, p.key_id, p.source, ingest=False,
                          days=days)
    except draft_store.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if body.ingest:
        background.add_task(draft_store.ingest_accepted, Path(out["path"]), settings)
    out["ingest"] = "scheduled" if body.ingest else "skipped"
    return out


@page_router.get("/leads/knowledge", include_in_schema=False)
def knowledge_page() -> FileResponse:
    return FileResponse(STATIC / "knowledge.html", media_type="text/html; charset=utf-8")
