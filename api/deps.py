"""Who is calling: the principal behind a request, and role checks.

Every route that needs a caller depends on :func:`current_principal`; routes limited to
a role use ``Depends(require_role("lead", "admin"))``. The access layer lives behind this
one function, so routes never parse headers themselves:

* ``X-API-Key: hk_…`` — a key made with ``hikitsugi keys create`` (stored hashed), or
* ``Authorization: Bearer <token>`` — a short-lived token from ``POST /auth/token``.

The principal carries the customers the user fully sees *today* (assignments and live
handover grants, read on every request, so a revocation takes effect at once). Each
key (each token user) is rate limited — across every replica when the limits live in the
database (api/limits.py); over the limit the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import math

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from hikitsugi.access import principals
from hikitsugi.access.policy import Principal, today
from hikitsugi.api import tokens
from hikitsugi.api.limits import limiter_for
from hikitsugi.config import get_settings
from hikitsugi.storage.database import session_for

ROLES = principals.ROLES
__all__ = ["Principal", "current_principal", "require_role", "ROLES"]

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key from `hikitsugi keys create` (shown once when it is created).")
_bearer = HTTPBearer(auto_error=False, description="A short-lived token from POST /auth/token.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'})


def current_principal(request: Request, api_key: str | None = Security(_api_key),
                      bearer: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
    settings = get_settings()
    source = request.client.host if request.client else None
    session = session_for(settings.db_url)
    try:
        if api_key:
            row = principals.find_key(session, api_key.strip())
            if row is None:
                raise _unauthorized("the API key is not valid (unknown or revoked)")
            user, role, key_id, bucket = row.user, row.role, row.key_id, row.key_id
        elif bearer is not None and bearer.credentials:
            try:
                claims = tokens.verify(settings, bearer.credentials)
            except tokens.TokenError as exc:
                raise _unauthorized(str(exc)) from None
            if principals.active_key(session, claims["kid"]) is None:
                raise _unauthorized("the key that issued this token has been revoked")
            user, role, key_id = claims["sub"], claims["role"], claims["kid"]
            bucket = f"{key_id}/{user}"
            if role not in ROLES:
                raise _unauthorized("the token is not valid")
        else:
            raise _unauthorized("this needs an API key (header X-API-Key) or a token (Authorization: Bearer …)")
        customers = principals.visible_customers(session, user, today(settings.timezone))
    finally:
        session.close()
    wait = limiter_for(settings).allow(bucket)
    if wait:
        raise HTTPException(429, "too many requests for this key; slow down",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return Principal(user=user, role=role, key_id=key_id, customers=customers, source=source)


def require_role(*roles: str):
    def check(p: Principal = Depends(current_principal)) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}; your key has '{p.role}'")
        return p

    return check
