"""Short-lived signed tokens for users signed in to the host tool (the embeddable box).

The host tool's backend holds an admin key and asks ``POST /auth/token`` for a token for
the user currently signed in; the browser then sends ``Authorization: Bearer <token>``
and never sees a key. Tokens are JWTs (HS256, PyJWT) signed with
``HIKITSUGI_SECRET_KEY`` and carry the user, the role and the id of the key that issued
them; revoking that key invalidates every token it issued (checked on each request).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt

from hikitsugi.config import Settings

ISSUER = "hikitsugi"
MIN_SECRET_CHARS = 32


class TokenError(ValueError):
    """A token that is malformed, forged, expired, or cannot be checked (no secret)."""


def secret(settings: Settings) -> str:
    value = settings.secret_key.get_secret_value()
    if not value:
        raise TokenError("tokens are disabled on this server: set HIKITSUGI_SECRET_KEY")
    if len(value) < MIN_SECRET_CHARS:
        raise TokenError(f"HIKITSUGI_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters")
    return value


def issue(settings: Settings, user: str, role: str, issuer_key_id: str, ttl_s: int) -> tuple[str, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    exp = now + dt.timedelta(seconds=ttl_s)
    claims = {"iss": ISSUER, "aud": ISSUER, "sub": user, "role": role, "kid": issuer_key_id,
              "iat": int(now.timestamp()), "exp": int(exp.timestamp())}
    return jwt.encode(claims, secret(settings), algorithm="HS256"), exp.replace(microsecond=0)


def verify(settings: Settings, token: str) -> dict[str, Any]:
    key = secret(settings)
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], audience=ISSUER, issuer=ISSUER,
                            options={"require": ["exp", "sub", "role", "kid"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired; ask the host tool for a new one") from None
    except jwt.PyJWTError:
        raise TokenError("the token is not valid") from None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("kid"), str):
        raise TokenError("the token is not valid")
    return claims
