"""Response under delegated authority: policies, actions, approvals, block lists, connector state.

Revision ID: 0005_response
Revises: 0001_initial
Create Date: 2026-12-02

The tables are spelled out here (not imported from ``openmdr.store.response``) so this
revision keeps creating exactly this shape however the live schema evolves later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_response"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("response",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the five response tables."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "response_policies",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_response_policies"),
        sa.UniqueConstraint("tenant", "version", name="uq_response_policies_tenant_version"),
    )
    op.create_table(
        "response_actions",
        sa.Column("action_id", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("playbook", sa.String(128), nullable=True),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("asset", sa.String(255), nullable=True),
        sa.Column("asset_class", sa.String(32), nullable=True),
        sa.Column("criticality", sa.String(16), nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("approvals_required", sa.Integer, nullable=False),
        sa.Column("approvals", sa.JSON, nullable=False),
        sa.Column("requested_at", ts, nullable=False),
        sa.Column("deadline_at", ts, nullable=True),
        sa.Column("escalation_level", sa.Integer, nullable=False),
        sa.Column("executed_at", ts, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(64), nullable=True),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("rollback_of", sa.String(40), nullable=True),
        sa.Column("rolled_back_at", ts, nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("action_id", name="pk_response_actions"),
    )
    op.create_index("ix_response_actions_tenant_status", "response_actions", ["tenant", "status"])
    op.create_index("ix_response_actions_tenant_case_id", "response_actions", ["tenant", "case_id"])
    op.create_index("ix_response_actions_tenant_dedupe_key", "response_actions", ["tenant", "dedupe_key"])
    op.create_index("ix_response_actions_status_deadline_at", "response_actions", ["status", "deadline_at"])
    op.create_table(
        "response_approvals",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("action_id", sa.String(40), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_response_approvals"),
        sa.UniqueConstraint("action_id", "approver", name="uq_response_approvals_action_id_approver"),
    )
    op.create_index("ix_response_approvals_tenant_action_id", "response_approvals", ["tenant", "action_id"])
    op.create_table(
        "response_blocklist",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_key", sa.String(64), nullable=False),
        sa.Column("action_id", sa.String(40), nullable=True),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("added_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("removed_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_response_blocklist"),
        sa.UniqueConstraint("tenant", "kind", "value_key", name="uq_response_blocklist_tenant_kind_value_key"),
    )
    op.create_index(
        "ix_response_blocklist_tenant_kind_removed_at", "response_blocklist", ["tenant", "kind", "removed_at"]
    )
    op.create_table(
        "response_connector_state",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_response_connector_state"),
        sa.UniqueConstraint("tenant", "connector", "key", name="uq_response_connector_state_tenant_connector_key"),
    )


def downgrade() -> None:
    """Drop the response tables."""
    for name in ("response_connector_state", "response_blocklist", "response_approvals", "response_actions",
                 "response_policies"):  # fmt: skip
        op.drop_table(name)
