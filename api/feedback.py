"""Feedback in one click: ``POST /feedback`` — 「解決した」「役に立たなかった」 on a card,
「エスカレーションする」 on the box.

An outcome belongs to one of the caller's *own* searches (the ``search_id`` that
``POST /search`` returned to it) and may name only cards that search showed: the query
and result ids stored with it come from the search log, never from the request, and the
response echoes nothing the caller was not shown (:meth:`hikitsugi.api.scope.View.feedback`).
The search itself is logged by the access layer after the search response is sent.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from hikitsugi.api.schemas import NO_NUL, ErrorOut
from hikitsugi.api.scope import View, scoped

router = APIRouter(tags=["feedback"])


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["resolved", "not_helpful", "escalated"] = Field(
        description="resolved = 解決した, not_helpful = 役に立たなかった, escalated = エスカレーションした")
    search_id: str = Field(..., min_length=1, max_length=32, pattern=r"^[0-9a-f]+$",
                           description="The search_id POST /search returned to the caller.")
    source_id: Optional[str] = Field(None, max_length=512, pattern=NO_NUL,
                                     description="The result card the outcome is about (one the search showed).")
    query: Optional[str] = Field(None, max_length=1000, pattern=NO_NUL,
                                 description="Ignored: the query is taken from the search log.")
    result_ids: list[Annotated[str, Field(max_length=512, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=100,
        description="Optional check: source ids of the cards shown (must be among what the search showed).")
    customer: Optional[str] = Field(None, max_length=200, pattern=NO_NUL, description="Customer id in context.")
    comment: Optional[str] = Field(None, max_length=2000, pattern=NO_NUL)


class FeedbackOut(BaseModel):
    id: int
    outcome: str
    search_id: Optional[str] = None
    source_id: Optional[str] = None
    query: str
    result_ids: list[str]
    user: str
    recorded_at: str


@router.post("/feedback", response_model=FeedbackOut, status_code=201,
             responses={422: {"model": ErrorOut}, 401: {"model": ErrorOut}})
def post_feedback(body: FeedbackIn, view: View = Depends(scoped())) -> FeedbackOut:
    """Record 解決した / 役に立たなかった / エスカレーションした for one of the caller's own searches."""
    return FeedbackOut(**view.feedback(body))
