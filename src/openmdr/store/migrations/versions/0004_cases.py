"""Alerts, suppressions, cases, case membership, notes and per-tenant case revisions.

Revision ID: 0004_cases
Revises: 0001_initial
Create Date: 2026-12-02

The tables are spelled out here (not imported from ``openmdr.store.schema``) so this
revision keeps creating exactly this shape however the live schema evolves later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_cases"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("cases",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the alert and case tables."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "alerts",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("first_seen", ts, nullable=False),
        sa.Column("last_seen", ts, nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("dedup_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suppression_id", sa.Integer, nullable=True),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("tenant", "alert_id", name="uq_alerts_tenant_alert_id"),
    )
    op.create_index("ix_alerts_tenant_first_seen", "alerts", ["tenant", "first_seen"])
    op.create_index("ix_alerts_tenant_case_id", "alerts", ["tenant", "case_id"])
    op.create_table(
        "alert_suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=True),
        sa.Column("source", sa.String(100), nullable=True),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("revoked_at", ts, nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_suppressions"),
    )
    op.create_index("ix_alert_suppressions_tenant_id", "alert_suppressions", ["tenant", "id"])
    op.create_table(
        "cases",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("merged_into", sa.String(32), nullable=True),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("first_event_at", ts, nullable=True),
        sa.Column("last_event_at", ts, nullable=True),
        sa.Column("detected_at", ts, nullable=True),
        sa.Column("acknowledged_at", ts, nullable=True),
        sa.Column("contained_at", ts, nullable=True),
        sa.Column("resolved_at", ts, nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("tenant", "case_id", name="uq_cases_tenant_case_id"),
    )
    op.create_index("ix_cases_tenant_status_updated_at", "cases", ["tenant", "status", "updated_at"])
    op.create_index("ix_cases_status_updated_at", "cases", ["status", "updated_at"])
    op.create_table(
        "case_alerts",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("added_at", ts, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "alert_id", name="pk_case_alerts"),
    )
    op.create_index("ix_case_alerts_tenant_case_id", "case_alerts", ["tenant", "case_id"])
    op.create_table(
        "case_notes",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("time", ts, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_notes"),
    )
    op.create_index("ix_case_notes_tenant_case_id_id", "case_notes", ["tenant", "case_id", "id"])
    op.create_table(
        "case_revisions",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_case_revisions"),
    )


def downgrade() -> None:
    """Drop the alert and case tables (destroys the data)."""
    for table in ("case_revisions", "case_notes", "case_alerts", "cases", "alert_suppressions", "alerts"):
        op.drop_table(table)
