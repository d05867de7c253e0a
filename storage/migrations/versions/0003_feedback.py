"""Search log and feedback: every search served and every outcome reported on it.

* ``search_log``: who searched what (query as typed and normalized, customer in
  context), the result ids shown, the best hit's confidence and the guidance given.
* ``feedback``: 解決した / 役に立たなかった / エスカレーションした, with the query and the
  result ids shown, the card it was about and the key's user.

Revision ID: 0003_feedback
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_feedback"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("search_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("normalized_query", sa.Text(), nullable=False),
        sa.Column("customer", sa.String(256), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("result_ids", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("confident", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("took_ms", sa.Float(), nullable=True),
    )
    op.create_index("ix_search_log_search_id", "search_log", ["search_id"], unique=True)
    op.create_index("ix_search_log_created_at", "search_log", ["created_at"])
    op.create_index("ix_search_log_user", "search_log", ["user"])
    op.create_index("ix_search_log_confident", "search_log", ["confident"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(512), nullable=True),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("result_ids", sa.JSON(), nullable=False),
        sa.Column("customer", sa.String(256), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])
    op.create_index("ix_feedback_search_id", "feedback", ["search_id"])
    op.create_index("ix_feedback_outcome", "feedback", ["outcome"])
    op.create_index("ix_feedback_source_id", "feedback", ["source_id"])
    op.create_index("ix_feedback_user", "feedback", ["user"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("search_log")
