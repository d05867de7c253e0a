"""Start-up hardening of the app: auth errors in the OpenAPI schema, PII masked in every
log line, and a clear refusal to start with a weak token secret.

* Every route except ``/healthz`` needs a caller, so every such route documents the 401
  (no or bad key), 400/413 (undecodable or too large body) and 429 (rate limit) answers it can give —
  added here once, after all routers are in, instead of on each route.
* Log masking is installed as a log-record factory, so it covers every logger of the
  process (ours, uvicorn's, libraries') whatever handlers uvicorn configures later:
  phone numbers, e-mail addresses and postal addresses never reach a log file.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from hikitsugi.access.masking import mask_text
from hikitsugi.api import tokens
from hikitsugi.api.schemas import ErrorOut
from hikitsugi.config import get_settings

OPEN_PATHS = {"/healthz"}
log = logging.getLogger("hikitsugi.api")


def document_auth_errors(app: FastAPI) -> None:
    """Post-process the OpenAPI schema (whatever router a route came from): 401/429 on
    every route but /healthz, 400/413 on routes with a body, and our 422 body
    (``{"detail": [{"field", "message"}]}``) instead of FastAPI's default one."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                responses = op.setdefault("responses", {})
                if path not in OPEN_PATHS:
                    responses.setdefault("401", {"description": "No API key or token, or not valid.", "content": body})
                    responses.setdefault("429", {"description": "Rate limit of this key exceeded.", "content": body})
                if method in ("post", "put", "patch"):
                    responses.setdefault("400", {"description": "Body is not decodable JSON.", "content": body})
                    responses.setdefault("413", {"description": "Request body too large.", "content": body})
                if "422" in responses:
                    responses["422"]["content"] = body
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def mask_pii_in_logs() -> None:
    old = logging.getLogRecordFactory()
    if getattr(old, "hikitsugi_masking", False):
        return

    def factory(*args, **kwargs):
        record = old(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    factory.hikitsugi_masking = True
    logging.setLogRecordFactory(factory)


def check_secret() -> None:
    """Refuse to start with a secret too short to sign tokens; say so when tokens are off."""
    settings = get_settings()
    if not settings.secret_key.get_secret_value():
        log.warning("HIKITSUGI_SECRET_KEY is not set: POST /auth/token is disabled (API keys still work)")
        return
    tokens.secret(settings)  # raises TokenError with the reason
