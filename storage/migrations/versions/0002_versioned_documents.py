"""Sources keyed by absolute path; documents versioned (retired rows kept until unused).

* ``sources.path`` becomes the absolute path of the file (existing rows keep their
  relative path, copied to ``rel``, and are adopted on the next ingest of that file);
  new ``rel``, ``root`` and ``parse_hash`` columns.
* ``documents.source_key`` links a document to its ``sources.path``;
  ``documents.retired_at`` marks a superseded version that an index generation may
  still serve. ``source_id`` is unique only among live rows (partial unique index).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE = sa.text("retired_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("rel", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("root", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("parse_hash", sa.String(64), nullable=True))
    op.create_index("ix_sources_root", "sources", ["root"])
    op.execute("UPDATE sources SET rel = path")

    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("source_key", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE documents SET source_key = source_path")
    op.drop_index("ix_documents_source_id", table_name="documents")
    op.create_index("ix_documents_source_id", "documents", ["source_id"])
    op.create_index("ix_documents_source_key", "documents", ["source_key"])
    op.create_index("ix_documents_retired_at", "documents", ["retired_at"])
    op.create_index("uq_documents_source_id_live", "documents", ["source_id"], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    op.execute("DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE retired_at IS NOT NULL)")
    op.execute("DELETE FROM documents WHERE retired_at IS NOT NULL")
    op.drop_index("uq_documents_source_id_live", table_name="documents")
    op.drop_index("ix_documents_retired_at", table_name="documents")
    op.drop_index("ix_documents_source_key", table_name="documents")
    op.drop_index("ix_documents_source_id", table_name="documents")
    op.create_index("ix_documents_source_id", "documents", ["source_id"], unique=True)
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("source_key")
    op.drop_index("ix_sources_root", table_name="sources")
    op.execute("UPDATE sources SET path = rel WHERE rel IS NOT NULL")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("parse_hash")
        batch.drop_column("root")
        batch.drop_column("rel")
