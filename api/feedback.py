"""Feedback in one click, and the search log behind the lead reports.

* ``POST /feedback`` — 「解決した」「役に立たなかった」 on a card, 「エスカレーションする」 on
  the box. Stored with the query and the result ids shown (taken from the search log
  when the request names the ``search_id`` the search returned) and the key's user.
* :func:`log_search` — the one hook ``POST /search`` calls: it gives the response a
  ``search_id`` and appends the search to the log *after* the response is sent (a
  background task), so logging never adds latency and never fails a search.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from hikitsugi.api.deps import Principal, current_principal
from hikitsugi.api.schemas import ErrorOut
from hikitsugi.config import get_settings
from hikitsugi.insights.feedback import record_feedback
from hikitsugi.insights.searchlog import SearchLog, new_search_id, record_search
from hikitsugi.storage.database import session_for

router = APIRouter(tags=["feedback"])


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["resolved", "not_helpful", "escalated"] = Field(
        description="resolved = 解決した, not_helpful = 役に立たなかった, escalated = エスカレーションした")
    search_id: Optional[str] = Field(None, max_length=32, description="The search_id POST /search returned.")
    source_id: Optional[str] = Field(None, max_length=512, description="The result card the outcome is about.")
    query: Optional[str] = Field(None, min_length=1, max_length=1000,
                                 description="The query (needed only without a known search_id).")
    result_ids: list[str] = Field(default_factory=list, max_length=100,
                                  description="Source ids of the cards shown (only without a known search_id).")
    customer: Optional[str] = Field(None, max_length=200, description="Customer id in context.")
    comment: Optional[str] = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    outcome: str
    search_id: Optional[str] = None
    source_id: Optional[str] = None
    query: str
    result_ids: list[str]
    user: str
    recorded_at: str


def log_search(background: BackgroundTasks, principal: Principal, request: dict, response: dict) -> str:
    """Called by ``POST /search`` with the request and the response dict; returns the
    ``search_id`` to put in the response."""
    search_id = new_search_id()
    at = dt.datetime.now(dt.timezone.utc)
    background.add_task(record_search, get_settings(), search_id, principal, request, response, at)
    return search_id


@router.post("/feedback", response_model=FeedbackOut, status_code=201,
             responses={422: {"model": ErrorOut}, 401: {"model": ErrorOut}})
def post_feedback(body: FeedbackIn, principal: Principal = Depends(current_principal)) -> FeedbackOut:
    """Record 解決した / 役に立たなかった / エスカレーションした for a search."""
    settings = get_settings()
    if body.search_id is not None and body.query is None:
        session = session_for(settings.db_url)
        try:
            known = session.query(SearchLog.id).filter(SearchLog.search_id == body.search_id).first() is not None
        finally:
            session.close()
        if not known:
            raise HTTPException(422, [{"field": "search_id",
                                       "message": f"unknown search_id '{body.search_id}'; send the query and "
                                                  "result_ids with it"}])
    elif body.query is None:
        raise HTTPException(422, [{"field": "query", "message": "give the search_id POST /search returned, "
                                                                "or the query and result_ids"}])
    if body.source_id is not None and body.result_ids and body.source_id not in body.result_ids:
        raise HTTPException(422, [{"field": "source_id", "message": "source_id is not among result_ids"}])
    row = record_feedback(settings, principal, body.outcome, body.query or "", body.result_ids,
                          search_id=body.search_id, source_id=body.source_id, customer=body.customer,
                          comment=body.comment)
    return FeedbackOut(id=row.id, outcome=row.outcome, search_id=row.search_id, source_id=row.source_id,
                       query=row.query, result_ids=row.result_ids, user=row.user,
                       recorded_at=row.created_at.isoformat(timespec="seconds"))
