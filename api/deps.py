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
Failed authentications are limited per client address: once an address has spent its
failures, every request from it gets 429 — before any key is checked, so guessing keys
cannot tell a hit from a miss — until its bucket refills.

The client address is the connection's, or — only when the connection comes from a
proxy named in ``trusted_proxies`` — the last address in ``X-Forwarded-For`` that is not
one of those proxies. A client cannot write its own audit ``source``.
"""

from __future__ import annotations

import ipaddress
import math
from functools import lru_cache

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


@lru_cache(maxsize=16)
def _networks(spec: str) -> tuple:
    out = []
    for part in spec.split(","):
        if part.strip():
            out.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(out)


def _trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: str) -> str | None:
    """Who is calling: ``peer`` (the connection's address) unless it is a trusted proxy; then
    the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (the ones to
    its left were written by the client and prove nothing)."""
    networks = _networks(trusted_proxies)
    if not peer or not networks or not _trusted(peer, networks) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:256]
    return hops[0][:256] if hops else peer


def _too_many(wait: float, message: str) -> HTTPException:
    return HTTPException(429, message, headers={"Retry-After": str(max(1, math.ceil(wait)))})


def current_principal(request: Request, api_key: str | None = Security(_api_key),
                      bearer: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
    settings = get_settings()
    source = client_address(request.client.host if request.client else None,
                            request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    failures = limiter_for(settings, settings.auth_failures_per_min / 60.0, settings.auth_failures_burst,
                           scope="auth-failures")
    fail_key = f"auth:{source}"
    if wait := failures.wait(fail_key):
        raise _too_many(wait, "too many failed authentications from this address; wait and try again")
    try:
        return _authenticate(settings, source, api_key, bearer)
    except HTTPException as exc:  # a key or token was presented and is not valid: a guess
        if exc.status_code == 401 and (api_key or bearer) and (wait := failures.take(fail_key)):
            raise _too_many(wait, "too many failed authentications from this address; wait and try again") \
                from None
        raise


def _authenticate(settings, source: str | None, api_key: str | None,
                  bearer: HTTPAuthorizationCredentials | None) -> Principal:
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
    if wait := limiter_for(settings).take(bucket):
        raise _too_many(wait, "too many requests for this key; slow down")
    return Principal(user=user, role=role, key_id=key_id, customers=customers, source=source)


def require_role(*roles: str):
    def check(p: Principal = Depends(current_principal)) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}; your key has '{p.role}'")
        return p

    return check
