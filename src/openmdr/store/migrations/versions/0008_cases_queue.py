"""The SOC queue index on cases: priority, then newest first, unmerged cases only.

Revision ID: 0008_cases_queue
Revises: 0004_cases
Create Date: 2026-12-02

The cross-tenant case list of provider roles orders every tenant's cases by priority and
recency; without this index the database sorts the whole table on each page.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_cases_queue"
down_revision: str | None = "0004_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the queue index (partial: merged cases are never listed)."""
    op.create_index(
        "ix_cases_queue",
        "cases",
        [sa.text("priority"), sa.text("updated_at DESC"), sa.text("id DESC")],
        sqlite_where=sa.text("merged_into IS NULL"),
        postgresql_where=sa.text("merged_into IS NULL"),
    )


def downgrade() -> None:
    """Drop the queue index."""
    op.drop_index("ix_cases_queue", table_name="cases")
