"""Search log scope: which customers' private parts a logged search showed.

``search_log.scope`` holds the sorted, comma-joined keys of the customers whose
sensitive parts the answer to that search showed ("" = none). The lead reports show a
logged query only to viewers in charge of every customer in its scope. Rows logged
before this revision keep ``NULL``: their text was masked by patterns alone, so the
reports show them to admins only.

Revision ID: 0005
Revises: 0004_access
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("search_log", sa.Column("scope", sa.String(1024), nullable=True))
    op.create_index("ix_search_log_scope", "search_log", ["scope"])


def downgrade() -> None:
    op.drop_index("ix_search_log_scope", table_name="search_log")
    with op.batch_alter_table("search_log") as batch:
        batch.drop_column("scope")
