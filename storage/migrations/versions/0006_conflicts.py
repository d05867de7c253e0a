"""Conflicts: pairs of stored knowledge that contradict each other (issue 16).

One row per pair found by the detection that runs after each index generation
(``hikitsugi.insights.conflicts``): the kind, both sides (source id, part, title, date,
the text that disagrees), the scorer's explained signals, and the lead's resolution
(which side wins, or both valid in different conditions; who, when, why). Resolving is
also written to the audit log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sides = []
    for s in ("a", "b"):
        sides += [
            sa.Column(f"{s}_source_id", sa.String(512), nullable=False),
            sa.Column(f"{s}_kind", sa.String(16), nullable=False),
            sa.Column(f"{s}_part", sa.String(512), nullable=False),
            sa.Column(f"{s}_title", sa.Text(), nullable=False),
            sa.Column(f"{s}_date", sa.String(32), nullable=True),
            sa.Column(f"{s}_text", sa.Text(), nullable=False),
            sa.Column(f"{s}_customer", sa.String(256), nullable=True),
        ]
    op.create_table(
        "conflicts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("customer", sa.String(256), nullable=True),
        *sides,
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(256), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    for col in ("kind", "status", "customer", "a_source_id", "b_source_id"):
        op.create_index(f"ix_conflicts_{col}", "conflicts", [col])


def downgrade() -> None:
    op.drop_table("conflicts")
