"""The FastAPI application: ``POST /search``, ``GET /documents/{id}``, ``GET /healthz``,
the OpenAPI docs and the Japanese search page at ``/``.

Every failure the user can cause is a 4xx with a message that says what to fix; no
stack trace or SQL ever reaches a response.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from hikitsugi.access.policy import Forbidden, Reads
from hikitsugi.api import audit as audit_routes
from hikitsugi.api import auth, feedback, knowledge, leads
from hikitsugi.api.audit import record_reads
from hikitsugi.api.deps import Principal, current_principal
from hikitsugi.api.hardening import check_secret, document_auth_errors, mask_pii_in_logs
from hikitsugi.api.limits import BodySizeLimit
from hikitsugi.api.schemas import (
    DocumentOut,
    ErrorOut,
    Health,
    SearchRequest,
    SearchResponseOut,
)
from hikitsugi.config import ConfigError, get_settings
from hikitsugi.index.filters import Filters
from hikitsugi.search.retrieve import NoIndexError, get_snapshot
from hikitsugi.search.service import get_document, search

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("hikitsugi.api")


def create_app() -> FastAPI:
    app = FastAPI(title="Hikitsugi", version="0.1.0",
                  description="引き継ぎナレッジ検索 API: 過去の事例・マニュアル・顧客メモから似た事例と解決策を返します。")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        settings = get_settings()
        try:
            snap = get_snapshot(settings.index_dir)
        except NoIndexError:
            return Health(status="empty")
        return Health(status="ok", index=snap.name, chunks=int(snap.manifest.get("chunks", 0)))

    @app.post("/search", response_model=SearchResponseOut,
              responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    def post_search(req: SearchRequest, background: BackgroundTasks,
                    principal: Principal = Depends(current_principal)) -> dict:
        settings = get_settings()
        try:
            filters = None
            if req.filters is not None:
                f = req.filters
                filters = Filters(list(f.kinds), list(f.customers), list(f.statuses), list(f.products),
                                  list(f.categories), f.date_from and f.date_from.isoformat(),
                                  f.date_to and f.date_to.isoformat())
            resp = search(req.query, settings, k=req.k, mode=req.mode, customer=req.customer, filters=filters,
                          viewer=principal)
        except NoIndexError as exc:
            raise HTTPException(503, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(422, [{"field": "customer", "message": str(exc)}]) from None
        except ConfigError as exc:  # the server's own files, not the caller's input
            log.error("configuration error: %s", exc)
            raise HTTPException(500, "server configuration error (see the server log)") from None
        except ValueError as exc:
            raise HTTPException(422, [{"field": "query", "message": str(exc)}]) from None
        record_reads(settings, principal, resp.sensitive_reads, "search")
        out = resp.to_dict()
        out["search_id"] = feedback.log_search(background, principal, req.model_dump(mode="json"), out)
        return out

    @app.get("/documents/{source_id:path}", response_model=DocumentOut,
             responses={403: {"model": ErrorOut}, 404: {"model": ErrorOut}})
    def document(source_id: str, principal: Principal = Depends(current_principal)) -> dict:
        settings = get_settings()
        reads = Reads()
        try:
            doc = get_document(source_id, settings, viewer=principal, reads=reads)
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from None
        if doc is None:
            raise HTTPException(404, f"no document with id '{source_id}'")
        record_reads(settings, principal, reads, "document")
        return doc

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript; charset=utf-8")

    app.include_router(feedback.router)
    app.include_router(leads.router)
    app.include_router(leads.page_router)
    app.include_router(knowledge.router)
    app.include_router(knowledge.page_router)
    origins = [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()]
    if origins:  # pages on other origins that embed the search box (widget.js)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"], max_age=600)
    app.include_router(auth.router)
    app.include_router(audit_routes.router)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    document_auth_errors(app)
    mask_pii_in_logs()
    check_secret()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
