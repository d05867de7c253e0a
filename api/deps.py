"""Who is calling: the principal behind a request, and role checks.

Every route that needs a caller depends on :func:`current_principal`; routes limited to
a role use ``Depends(require_role("lead", "admin"))``. The access layer (API keys, tokens,
per-customer assignments) lives behind this one function, so routes never parse
headers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request

ROLES = ("agent", "lead", "admin")


@dataclass(frozen=True)
class Principal:
    user: str
    role: str  # agent | lead | admin
    key_id: str | None = None
    customers: frozenset[str] = field(default_factory=frozenset)  # customer ids this user may fully see


def current_principal(request: Request) -> Principal:
    """Placeholder until API keys land: everyone is a local admin."""
    return Principal(user="local", role="admin")


def require_role(*roles: str):
    def check(p: Principal = Depends(current_principal)) -> Principal:
        if p.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}; your key has '{p.role}'")
        return p

    return check
