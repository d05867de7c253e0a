"""Several machines on one database: the published index generation (a counter every API
replica follows), the replicas' heartbeats, and rate-limit buckets shared by all replicas.

Revision ID: 0007_cluster
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_cluster"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_generations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("chunk_ids", sa.LargeBinary(), nullable=False),
        sa.Column("doc_ids", sa.LargeBinary(), nullable=False),
        sa.Column("built_by", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "index_replicas",
        sa.Column("replica", sa.String(256), primary_key=True),
        sa.Column("generation", sa.String(128), nullable=True),
        sa.Column("previous", sa.String(128), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_index_replicas_seen_at", "index_replicas", ["seen_at"])
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket", sa.String(256), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
    op.drop_index("ix_index_replicas_seen_at", table_name="index_replicas")
    op.drop_table("index_replicas")
    op.drop_table("index_generations")
