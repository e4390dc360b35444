"""Rule library: versioned rulesets with their files, per-tenant overrides and exceptions.

Revision ID: 0002_rules
Revises: 0001_initial
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_rules"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("rules",)
depends_on: str | Sequence[str] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the rule library tables."""
    op.create_table(
        "rule_sets",
        sa.Column("id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_sets"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(2000), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("rule_files", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("installed_at", _time(), nullable=False),
        sa.Column("installed_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("version", name="uq_rule_sets_version"),
    )
    op.create_table(
        "rule_set_files",
        sa.Column("id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_set_files"),
        sa.Column(
            "rule_set_id",
            sa.Integer,
            sa.ForeignKey("rule_sets.id", ondelete="CASCADE", name="fk_rule_set_files_rule_set_id_rule_sets"),
            nullable=False,
        ),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "rule_overrides",
        sa.Column("id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_overrides"),
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_rule_overrides_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        sa.UniqueConstraint("tenant_id", "rule_id", name="uq_rule_overrides_tenant_id_rule_id"),
    )
    op.create_table(
        "rule_exceptions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_exceptions"),
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_rule_exceptions_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("filter", sa.Text, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop the rule library tables."""
    for name in ("rule_exceptions", "rule_overrides", "rule_set_files", "rule_sets"):
        op.drop_table(name)
