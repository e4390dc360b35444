"""Initial state store: tenants, assets, ingest tokens, dead letters, audit chain.

Revision ID: 0001_initial
Revises:
Create Date: 2026-03-01

The tables are spelled out here (not imported from ``openmdr.store.schema``) so this
revision keeps creating exactly this shape however the live schema evolves later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    """Create the first tables and the audit chain's head row."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("work_start_hour", sa.SmallInteger, nullable=False),
        sa.Column("work_end_hour", sa.SmallInteger, nullable=False),
        sa.Column("working_days", sa.JSON, nullable=False),
        sa.Column("networks", sa.JSON, nullable=False),
        sa.Column("domains", sa.JSON, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("hostname_key", sa.String(255), nullable=False),
        sa.Column("ips", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("criticality", sa.String(16), nullable=False),
        sa.Column("asset_class", sa.String(32), nullable=False),
        sa.Column("has_edr", sa.Boolean, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assets"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_assets_tenant_id_tenants", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "hostname_key", name="uq_assets_tenant_id_hostname_key"),
    )
    op.create_table(
        "ingest_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_tokens"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_ingest_tokens_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("token_hash", name="uq_ingest_tokens_token_hash"),
    )
    op.create_index(
        "uq_ingest_tokens_active_name",
        "ingest_tokens",
        ["tenant_id", "name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reason_key", sa.String(80), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("format", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("blob_path", sa.Text, nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("context", sa.JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("replay_count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_tenant_status_id", "dead_letters", ["tenant", "status", "id"])
    op.create_index("ix_dead_letters_status_id", "dead_letters", ["status", "id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_seq", "audit_log", ["tenant", "seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    """Drop everything this revision created (destroys the data)."""
    for table in ("audit_head", "audit_log", "dead_letters", "ingest_tokens", "assets", "tenants"):
        op.drop_table(table)
