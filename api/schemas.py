"""Request and response models: the documented, stable JSON of the API (and of ``search --json``)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

# Text fields refuse NUL: it means nothing in a query or a name, and PostgreSQL cannot
# store it (an insert would fail after the answer was given).
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(pattern=NO_NUL, max_length=200)]


class FiltersIn(BaseModel):
    """Applied inside retrieval: the best matches *among* the allowed documents are returned."""

    model_config = ConfigDict(extra="forbid")
    kinds: list[Literal["case", "manual", "note", "customer"]] = Field(default_factory=list, max_length=4)
    customers: list[Text] = Field(default_factory=list, max_length=50, description="Customer names.")
    statuses: list[Text] = Field(default_factory=list, max_length=20, description="e.g. 完了")
    products: list[Text] = Field(default_factory=list, max_length=50)
    categories: list[Text] = Field(default_factory=list, max_length=50)
    date_from: Optional[datetime.date] = None
    date_to: Optional[datetime.date] = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(..., min_length=1, max_length=1000, pattern=NO_NUL, description="お客様の問題を自分の言葉で。",
                       examples=["MX-3100で紙が詰まる"])
    k: int = Field(5, ge=1, le=100, description="Number of result cards.")
    customer: Optional[str] = Field(None, max_length=200, pattern=NO_NUL,
                                    description="Customer id (C001) or name in context.")
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    filters: Optional[FiltersIn] = None


class ConflictSide(BaseModel):
    hidden: bool = Field(description="The caller may not see this side: only its kind and date are given.")
    kind: str
    date: Optional[str] = None
    source_id: Optional[str] = None
    title: str
    url: Optional[str] = None


class ConflictNotice(BaseModel):
    conflict_id: str
    kind: str = Field(description="case_case | manual_newer | commitment_note")
    side: str = Field(description="older: this card is the advice a newer record contradicts; newer: the reverse.")
    message: str = Field(description="e.g. 「この手順と矛盾する新しい事例があります」")
    other: ConflictSide


class ResultCard(BaseModel):
    source_id: str = Field(description="The record's own id: 受付番号, 記録ID, customer id or the file path.")
    kind: str = Field(description="manual | case | note | customer")
    title: str
    score: float = Field(description="Relevance of the best passage: in hybrid mode the weighted sum of per-query z-scores (higher is better; compare within one response only).")
    snippet: str = Field(description="HTML-escaped best passage with query terms in <mark>.")
    passage: str = Field(description="The best passage as plain text.")
    context: str = Field(description="Heading path of the passage.")
    source_path: str
    url: str
    customer: Optional[str] = None
    occurred_at: Optional[str] = None
    resolution: Optional[str] = None
    cause: Optional[str] = None
    status: Optional[str] = None
    resolved_by: Optional[str] = None
    dense_score: Optional[float] = Field(None, description="Cosine similarity of the best passage to the query.")
    similar_count: int = Field(0, description="Other cases with the same resolution folded into this card (同様の事例).")
    similar_ids: list[str] = Field(default_factory=list)
    redacted: bool = Field(False, description="Personal data was masked (●●●) or private parts left out, because "
                           "the caller is not assigned to this customer.")
    conflicts: list[ConflictNotice] = Field(default_factory=list, description="Open conflicts this card is part of: "
                                            "do not act on it before reading the other side.")


class Commitment(BaseModel):
    what: str
    reason: Optional[str] = None
    approved_by: Optional[str] = None
    valid_from: Optional[str] = None
    valid_until: Optional[str] = None
    expired: bool
    conflicts: list[ConflictNotice] = Field(default_factory=list, description="A newer note contradicts it.")


class EmergencyContact(BaseModel):
    name: Optional[str] = None
    role: Optional[str] = None
    phone: Optional[str] = None
    email: Optional[str] = None
    note: Optional[str] = None


class CustomerContextOut(BaseModel):
    customer_id: str
    name: str
    rank: Optional[str] = None
    owner: Optional[str] = None
    commitments: list[Commitment]
    arrangements: list[str]
    preferences: list[str]
    matched_by: str
    emergency_contacts: list[EmergencyContact] = Field(
        default_factory=list, description="Only for staff assigned to the customer (each read is audited).")
    restricted: bool = Field(False, description="Only the basic part is shown: the caller is not assigned to "
                             "this customer (no arrangements, preferences, contacts, reasons or approvers).")


class GuidanceOut(BaseModel):
    action: Literal["self_resolve", "escalate"]
    confidence: float = Field(description="Cosine similarity of the best hit (the calibrated confidence).")
    reason: str
    escalate_to: Optional[str] = None
    rules: list[str] = Field(description="Ids of the escalation rules that fired.")
    steps: list[str] = Field(description="What resolved the most similar cases (self_resolve).")
    based_on: list[str] = Field(description="Source ids of the cases the steps come from.")


class SearchResponseOut(BaseModel):
    query: str
    normalized_query: str
    mode: str
    results: list[ResultCard]
    customer: Optional[CustomerContextOut] = None
    guidance: Optional[GuidanceOut] = None
    took_ms: float
    timings_ms: dict[str, float]
    generation: str = Field("", description="The index generation that answered; every API replica on the same "
                                            "database serves the same one, and names it alike.")
    search_id: Optional[str] = Field(None, description="Id of this search in the search log; send it with POST /feedback.")


class DocumentOut(BaseModel):
    source_id: str
    kind: str
    title: str
    source_path: str
    customer: Optional[str] = None
    occurred_at: Optional[str] = None
    meta: dict[str, Any]
    chunks: list[dict[str, str]]
    redacted: bool = Field(False, description="Personal data masked / private parts left out for this caller.")


class Health(BaseModel):
    status: str
    index: Optional[str] = None
    chunks: int = 0


class ErrorOut(BaseModel):
    detail: Any


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(..., min_length=1, max_length=256, pattern=r"^[^\s\x00]([^\x00\n]*[^\s\x00])?$",
                      description="The staff user signed in to the host tool.")
    role: Literal["agent", "lead", "admin"] = "agent"
    ttl_s: Optional[int] = Field(None, ge=60, le=43200, description="Lifetime in seconds (default from settings).")


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: str
    user: str
    role: str


class AuditEventOut(BaseModel):
    id: int
    at: str
    actor: str
    role: Optional[str] = None
    key_id: Optional[str] = None
    action: str
    target: str
    field: Optional[str] = None
    source: Optional[str] = None
    detail: dict[str, Any]


class AuditOut(BaseModel):
    events: list[AuditEventOut]
