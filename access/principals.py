"""Who may see what, as data: API keys, customer assignments and handover grants.

* ``api_keys`` — a key belongs to a staff user and carries a role (agent, lead, admin).
  Only the SHA-256 of the key is stored: keys are 256-bit random strings, so a fast
  hash is enough (there is nothing to brute-force), and a lookup costs one indexed
  query. The plain key is returned once, by :func:`create_key`, and never again.
* ``staff_assignments`` — user U is in charge of customer C (customer *key*: the
  record id such as ``C001``, or the normalized customer name when the customer has no
  record). ``valid_until`` (a date, inclusive) ends an assignment, e.g. the
  predecessor's at the end of a handover.
* ``access_grants`` — a handover: the successor sees the customer like its owner from
  now until ``valid_until`` (inclusive); revocable. Adding one also ends the
  predecessor's assignment on that date, as the handover rule says (seed 000).

Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hikitsugi.access import audit as audit_store
from hikitsugi.storage.schema import Base

ROLES = ("agent", "lead", "admin")
KEY_PREFIX = "hk"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user: Mapped[str] = mapped_column(String(256), index=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Assignment(Base):
    __tablename__ = "staff_assignments"
    __table_args__ = (UniqueConstraint("user", "customer", name="uq_staff_assignments_user_customer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(256), index=True)
    customer: Mapped[str] = mapped_column(String(256), index=True)
    valid_until: Mapped[str | None] = mapped_column(String(10), nullable=True)  # ISO date, inclusive
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)


class Grant(Base):
    __tablename__ = "access_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    from_user: Mapped[str] = mapped_column(String(256))
    to_user: Mapped[str] = mapped_column(String(256), index=True)
    customer: Mapped[str] = mapped_column(String(256), index=True)
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_until: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(256), nullable=True)

    def to_dict(self, today: str | None = None) -> dict[str, Any]:
        state = "revoked" if self.revoked_at else ("expired" if today and self.valid_until < today else "active")
        return {"id": self.id, "from": self.from_user, "to": self.to_user, "customer": self.customer,
                "valid_from": self.valid_from, "valid_until": self.valid_until, "reason": self.reason,
                "state": state, "created_by": self.created_by}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _audit(session: Session, actor: str, action: str, target: str, **detail: Any) -> None:
    audit_store.append(session, [{"actor": actor, "action": action, "target": target, "source": "cli",
                                  "detail": detail}])


def create_key(session: Session, user: str, role: str, label: str | None = None,
               created_by: str = "cli") -> tuple[ApiKey, str]:
    """A new key for ``user``: (row, the plain key). The plain key is not stored anywhere."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not user.strip():
        raise ValueError("user must not be empty")
    key_id = secrets.token_hex(5)
    plain = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(key_id=key_id, key_hash=hash_key(plain), user=user.strip(), role=role, label=label,
                 created_by=created_by)
    session.add(row)
    _audit(session, created_by, "key.create", f"key:{key_id}", user=row.user, role=role, label=label)
    session.commit()
    return row, plain


def find_key(session: Session, plain: str) -> ApiKey | None:
    """The active key row for a presented key, or None (unknown, malformed or revoked)."""
    parts = (plain or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1].isalnum():
        return None
    row = session.get(ApiKey, parts[1])
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, hash_key(plain)):
        return None
    return row


def active_key(session: Session, key_id: str) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    return row if row is not None and row.revoked_at is None else None


def revoke_key(session: Session, key_id: str, by: str = "cli") -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = _now()
    _audit(session, by, "key.revoke", f"key:{key_id}", user=row.user)
    session.commit()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def assign(session: Session, user: str, customer: str, by: str = "cli", until: str | None = None) -> Assignment:
    row = session.scalar(select(Assignment).where(Assignment.user == user, Assignment.customer == customer))
    if row is None:
        row = Assignment(user=user, customer=customer, valid_until=until, created_by=by)
        session.add(row)
    else:
        row.valid_until = until
    _audit(session, by, "assign", f"customer:{customer}", user=user, valid_until=until)
    session.commit()
    return row


def unassign(session: Session, user: str, customer: str, by: str = "cli") -> bool:
    row = session.scalar(select(Assignment).where(Assignment.user == user, Assignment.customer == customer))
    if row is None:
        return False
    session.delete(row)
    _audit(session, by, "unassign", f"customer:{customer}", user=user)
    session.commit()
    return True


def list_assignments(session: Session, user: str | None = None) -> list[Assignment]:
    stmt = select(Assignment).order_by(Assignment.user, Assignment.customer)
    if user:
        stmt = stmt.where(Assignment.user == user)
    return list(session.scalars(stmt))


def add_grant(session: Session, from_user: str, to_user: str, customer: str, until: str, today: str,
              by: str = "cli", reason: str | None = None) -> Grant:
    """Successor ``to_user`` sees ``customer`` fully through ``until``; the predecessor's
    assignment (if any) ends on the same date."""
    until = dt.date.fromisoformat(until).isoformat()
    if until < today:
        raise ValueError(f"--until {until} is in the past (today is {today})")
    if from_user == to_user:
        raise ValueError("--from and --to are the same user")
    grant = Grant(from_user=from_user, to_user=to_user, customer=customer, valid_from=today, valid_until=until,
                  reason=reason, created_by=by)
    session.add(grant)
    pred = session.scalar(select(Assignment).where(Assignment.user == from_user, Assignment.customer == customer))
    ended = None
    if pred is not None and (pred.valid_until is None or pred.valid_until > until):
        pred.valid_until = ended = until
    session.flush()
    _audit(session, by, "grant.add", f"customer:{customer}", grant=grant.id, **{"from": from_user}, to=to_user,
           valid_until=until, predecessor_access_ends=ended, reason=reason)
    session.commit()
    return grant


def revoke_grant(session: Session, grant_id: int, by: str = "cli") -> Grant | None:
    """Ends the successor's access now. The predecessor's end date stays as set
    (``staff assign`` again to undo it)."""
    grant = session.get(Grant, grant_id)
    if grant is None or grant.revoked_at is not None:
        return None
    grant.revoked_at, grant.revoked_by = _now(), by
    _audit(session, by, "grant.revoke", f"customer:{grant.customer}", grant=grant.id, to=grant.to_user)
    session.commit()
    return grant


def list_grants(session: Session, today: str | None = None, active_only: bool = False) -> list[Grant]:
    stmt = select(Grant).order_by(Grant.id)
    if active_only and today:
        stmt = stmt.where(Grant.revoked_at.is_(None), Grant.valid_from <= today, Grant.valid_until >= today)
    return list(session.scalars(stmt))


def visible_customers(session: Session, user: str, today: str) -> frozenset[str]:
    """Customer keys ``user`` may see fully today: live assignments plus live grants."""
    assigned = session.scalars(select(Assignment.customer).where(
        Assignment.user == user, or_(Assignment.valid_until.is_(None), Assignment.valid_until >= today)))
    granted = session.scalars(select(Grant.customer).where(
        Grant.to_user == user, Grant.revoked_at.is_(None), Grant.valid_from <= today, Grant.valid_until >= today))
    return frozenset(assigned) | frozenset(granted)
