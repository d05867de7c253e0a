"""``POST /auth/token``: a short-lived token for a user signed in to the host tool.

Called by the host tool's *backend* with an admin key (an integration key), never by a
browser: the backend vouches for who is signed in, the browser gets only the token.
Each issue is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from hikitsugi.access import audit as audit_store
from hikitsugi.api import tokens
from hikitsugi.api.deps import Principal, require_role
from hikitsugi.api.schemas import ErrorOut, TokenOut, TokenRequest
from hikitsugi.config import get_settings
from hikitsugi.storage.database import session_for

router = APIRouter(tags=["access"])
MAX_TTL_S = 12 * 3600


@router.post("/auth/token", response_model=TokenOut,
             responses={403: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
def issue_token(req: TokenRequest, issuer: Principal = Depends(require_role("admin"))) -> TokenOut:
    """A signed token for ``user`` with ``role``, valid for ``ttl_s`` seconds (default from settings)."""
    settings = get_settings()
    ttl = min(req.ttl_s or settings.token_ttl_s, MAX_TTL_S)
    try:
        token, expires = tokens.issue(settings, req.user, req.role, issuer.key_id or "", ttl)
    except tokens.TokenError as exc:
        raise HTTPException(503, str(exc)) from None
    session = session_for(settings.db_url)
    try:
        audit_store.append(session, [{"actor": issuer.user, "role": issuer.role, "key_id": issuer.key_id,
                                      "action": "token.issue", "target": f"user:{req.user}", "source": issuer.source,
                                      "detail": {"role": req.role, "ttl_s": ttl}}])
        session.commit()
    finally:
        session.close()
    return TokenOut(token=token, expires_at=expires.isoformat(), user=req.user, role=req.role)
