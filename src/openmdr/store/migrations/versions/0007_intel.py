"""Threat intelligence: indicators, allow-lists, feeds, sharing proposals, retro-hunts, leaked credentials.

Revision ID: 0007_intel
Revises: 0001_initial
Create Date: 2026-12-02

Its own branch (label ``intel``) off the initial schema; the tables are spelled out here so
this revision keeps creating exactly this shape however :mod:`openmdr.store.intel` evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_intel"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("intel",)
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the intel tables."""
    op.create_table(
        "intel_indicators",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("confidence", sa.SmallInteger, nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        _time("first_seen", True),
        _time("last_seen", True),
        _time("expires_at", True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("origin", sa.JSON, nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_indicators"),
    )
    op.create_index("ix_intel_indicators_scope_type", "intel_indicators", ["scope", "type"])
    op.create_index("ix_intel_indicators_updated_at", "intel_indicators", ["updated_at"])
    op.create_index("ix_intel_indicators_revision", "intel_indicators", ["revision"])
    op.create_table(
        "intel_allowlist",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_intel_allowlist"),
    )
    op.create_index("ix_intel_allowlist_scope", "intel_allowlist", ["scope"])
    op.create_table(
        "intel_sources",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("collection", sa.String(200), nullable=True),
        sa.Column("default_tlp", sa.String(16), nullable=False),
        sa.Column("default_confidence", sa.SmallInteger, nullable=False),
        _time("last_pulled_at", True),
        sa.Column("indicators", sa.Integer, nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_intel_sources"),
    )
    op.create_table(
        "intel_proposals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("confidence", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("indicator_id", sa.String(36), nullable=True),
        _time("created_at"),
        _time("decided_at", True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_intel_proposals"),
    )
    op.create_index("ix_intel_proposals_tenant_status", "intel_proposals", ["tenant", "status"])
    op.create_table(
        "intel_retrohunts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("indicator_ids", sa.JSON, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("tenants", sa.Integer, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("rows_matched", sa.Integer, nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("by_tenant", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_retrohunts"),
    )
    op.create_table(
        "intel_leaked_credentials",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(320), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        _time("leaked_at", True),
        sa.Column("password_hash_present", sa.Boolean, nullable=False),
        sa.Column("known_user", sa.Boolean, nullable=False),
        _time("imported_at"),
        sa.Column("alert_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_intel_leaked_credentials"),
    )
    op.create_index("ix_intel_leaked_credentials_tenant_identity", "intel_leaked_credentials", ["tenant", "identity"])
    revision_table = op.create_table(
        "intel_revision",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intel_revision"),
    )
    # Row 1 counts indicator writes, row 2 allow-list writes.
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}, {"id": 2, "revision": 0}])


def downgrade() -> None:
    """Drop the intel tables."""
    for name in (
        "intel_revision", "intel_leaked_credentials", "intel_retrohunts", "intel_proposals", "intel_sources",
        "intel_allowlist", "intel_indicators",
    ):  # fmt: skip
        op.drop_table(name)
