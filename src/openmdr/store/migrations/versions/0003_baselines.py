"""Behaviour-analytics baselines: one row per (tenant, analytic, entity).

Revision ID: 0003_baselines
Revises: 0001_initial
Create Date: 2026-12-02

The table is spelled out here (not imported from ``openmdr.store.baselines``) so this
revision keeps creating exactly this shape however the live schema evolves later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_baselines"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("baselines",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the ``analytics_baselines`` table."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "analytics_baselines",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("analytic", sa.String(64), nullable=False),
        sa.Column("entity_key", sa.String(64), nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analytics_baselines"),
        sa.UniqueConstraint(
            "tenant", "analytic", "entity_key", name="uq_analytics_baselines_tenant_analytic_entity_key"
        ),
    )
    op.create_index("ix_analytics_baselines_tenant_id", "analytics_baselines", ["tenant", "id"])


def downgrade() -> None:
    """Drop the ``analytics_baselines`` table."""
    op.drop_index("ix_analytics_baselines_tenant_id", table_name="analytics_baselines")
    op.drop_table("analytics_baselines")
