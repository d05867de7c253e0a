"""Start-up hardening of the app: auth errors in the OpenAPI schema, PII masked in every
log line, and a clear refusal to start with a weak token secret.

* Every route except ``/healthz`` needs a caller, so every such route documents the 401
  (no or bad key), 400/413 (undecodable or too large body) and 429 (rate limit) answers it can give —
  added here once, after all routers are in, instead of on each route.
* Log masking is installed as a log-record factory, so it covers every logger of the
  process (ours, uvicorn's, libraries') whatever handlers uvicorn configures later:
  phone numbers, e-mail addresses (URL-encoded too), postal addresses, the names the
  customer records know, and credentials in query strings (``?token=``) never reach a log.
* Security headers on every response, a Content-Security-Policy on the pages.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from pathlib import Path

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


def _mask_arg(value):
    return mask_text(value) if isinstance(value, str) else value


def mask_pii_in_logs() -> None:
    """Install a log-record factory that masks personal data and credentials in every log
    record of the process: each argument (uvicorn's access line keeps its five arguments,
    which its formatter unpacks — collapsing them dropped the line with a traceback), the
    message itself when it still carries something after that, and tracebacks."""
    old = logging.getLogRecordFactory()
    if getattr(old, "hikitsugi_masking", False):
        return

    def factory(*args, **kwargs):
        record = old(*args, **kwargs)
        try:
            if isinstance(record.args, tuple):
                record.args = tuple(_mask_arg(a) for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: _mask_arg(v) for k, v in record.args.items()}
            message = record.getMessage()
            masked = mask_text(message)
            if masked != message and not record.name.startswith("uvicorn.access"):
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        except Exception:  # a broken format string is the logger's problem, not ours
            return record
        return record

    factory.hikitsugi_masking = True
    logging.setLogRecordFactory(factory)


class SecurityHeaders:
    """Headers on every response: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
    DENY``, ``Referrer-Policy: no-referrer``; on HTML pages a Content-Security-Policy.

    Our pages (``/``, ``/leads``) run only their own script: the inline scripts of the
    shipped pages are allowed by their SHA-256 (computed from the files at start-up), so
    an injected ``<script>`` or event handler would not run; they may connect only to this
    server and be framed by nobody. The API reference pages (/docs, /redoc) load their
    script from a CDN and get a looser policy."""

    def __init__(self, app, pages: Path) -> None:
        self.app = app
        hashes = sorted({_sha256(m.group(1)) for f in pages.glob("*.html")
                         for m in _INLINE_SCRIPT.finditer(f.read_text("utf-8"))})
        scripts = " ".join(f"'sha256-{h}'" for h in hashes)
        self.page_csp = ("default-src 'self'; script-src 'self' " + scripts + "; style-src 'self' 'unsafe-inline'; "
                         "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                         "form-action 'self'; object-src 'none'").encode()
        self.docs_csp = (b"default-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' "
                         b"https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
                         b"img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
                         b"frame-ancestors 'none'; object-src 'none'")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-content-type-options", b"x-frame-options", b"referrer-policy")]
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"no-referrer")]
                ctype = dict(headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html"):
                    csp = self.docs_csp if path.startswith(("/docs", "/redoc")) else self.page_csp
                    headers.append((b"content-security-policy", csp))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def check_secret() -> None:
    """Refuse to start with a secret too short to sign tokens; say so when tokens are off."""
    settings = get_settings()
    if not settings.secret_key.get_secret_value():
        log.warning("HIKITSUGI_SECRET_KEY is not set: POST /auth/token is disabled (API keys still work)")
        return
    tokens.secret(settings)  # raises TokenError with the reason
