"""Access control: API keys, staff assignments, handover grants and the audit log.

The audit log is append-only in the database too: triggers make ``UPDATE`` and
``DELETE`` on ``audit_log`` fail (SQLite: ``RAISE(ABORT)``; PostgreSQL: a plpgsql
function raising an exception), so not even a bug in the application can rewrite it.

Revision ID: 0004_access
Revises: 0003_feedback
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_access"
down_revision = "0003_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_user", "api_keys", ["user"])
    op.create_table(
        "staff_assignments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("valid_until", sa.String(10), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.UniqueConstraint("user", "customer", name="uq_staff_assignments_user_customer"),
    )
    op.create_index("ix_staff_assignments_user", "staff_assignments", ["user"])
    op.create_index("ix_staff_assignments_customer", "staff_assignments", ["customer"])
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("from_user", sa.String(256), nullable=False),
        sa.Column("to_user", sa.String(256), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("valid_from", sa.String(10), nullable=False),
        sa.Column("valid_until", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(256), nullable=True),
    )
    op.create_index("ix_access_grants_to_user", "access_grants", ["to_user"])
    op.create_index("ix_access_grants_customer", "access_grants", ["customer"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    for col in ("at", "actor", "action", "target"):
        op.create_index(f"ix_audit_log_{col}", "audit_log", [col])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{what.lower()} BEFORE {what} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
    elif dialect == "postgresql":
        op.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("access_grants")
    op.drop_table("staff_assignments")
    op.drop_table("api_keys")
