"""The response store on both backends: schema = migration, tenant scoping, block lists, policy versions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openmdr.models.action import ActionRecord
from openmdr.respond.policy import AuthorityPolicy, AuthorityRule
from openmdr.store import response as response_module
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.response import ResponseStore
from openmdr.store.state import StateStore
from tests.respond.conftest import ACME_NIGHT

TABLES = {t.name for t in response_module.metadata.sorted_tables if t.name.startswith("response_")}


def test_migration_creates_exactly_the_response_tables(state_store: StateStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert {"response_policies", "response_actions", "response_approvals", "response_blocklist",
                      "response_connector_state"} == TABLES  # fmt: skip
    with state_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), response_module.metadata)

    assert [d for d in diff if "response_" in repr(d)] == []
    assert "0005_response" in state_store.schema_revisions()


def _record(tenant: str, action_id: str) -> ActionRecord:
    return ActionRecord(action_id, tenant, "isolate_host", "WS1", "awaiting_approval", "approve", "test", 0,
                        case_id="c1", requested_at=ACME_NIGHT, updated_at=ACME_NIGHT,
                        deadline_at=ACME_NIGHT + timedelta(minutes=15), approvals_required=1)  # fmt: skip


def test_actions_are_tenant_scoped_even_by_id(tenants_store: StateStore) -> None:
    store = ResponseStore(tenants_store)
    store.insert_action(_record("acme", "a1"), "k1", "test", "response.action.awaiting_approval", {})
    with pytest.raises(NotFoundError):
        store.get_action("globex", "a1")
    forged = _record("globex", "a1")
    forged.status = "executing"
    with pytest.raises(ConflictError):
        store.update_action(forged, "mallory", "response.action.approved", {})
    with pytest.raises(NotFoundError):
        store.record_approval("globex", "a1", "mallory", "approve", ACME_NIGHT)
    assert store.get_action("acme", "a1").status == "awaiting_approval"
    assert store.approvals("acme", "a1") == [] and store.approvals("globex", "a1") == []
    assert store.list_actions("globex") == []
    assert [r.action_id for r in store.overdue_actions(ACME_NIGHT + timedelta(minutes=16))] == ["a1"]
    assert store.overdue_actions(ACME_NIGHT + timedelta(minutes=16), tenant="globex") == []
    with pytest.raises(NotFoundError):
        store.insert_action(_record("nosuch", "a2"), "k", "t", "e", {})


def test_block_list_upsert_is_idempotent_and_keeps_the_later_expiry(tenants_store: StateStore) -> None:
    store = ResponseStore(tenants_store)
    t0 = ACME_NIGHT
    assert store.upsert_block("acme", "domain", "Evil.Example.", "t", t0, t0 + timedelta(hours=2), "a1") is None
    before = store.upsert_block("acme", "domain", "evil.example", "t", t0, t0 + timedelta(hours=1), "a2")
    assert before is not None and before.action_id == "a1"
    (entry,) = store.list_blocks("acme", "domain", now=t0)
    assert entry.expires_at == t0 + timedelta(hours=2) and entry.action_id == "a1"
    assert store.list_blocks("globex") == []
    assert store.expire_blocks(t0 + timedelta(hours=3))[0].value == "evil.example"
    assert store.list_blocks("acme", now=t0 + timedelta(hours=3)) == []
    with pytest.raises(ValidationError):
        store.upsert_block("acme", "mac", "00:11", "t", t0, None)


def test_policy_versions_and_edl_tokens(tenants_store: StateStore) -> None:
    store = ResponseStore(tenants_store)
    one = store.set_policy("acme", AuthorityPolicy(rules=(AuthorityRule("all", "approve"),)), "admin", "v1")
    two = store.set_policy("acme", AuthorityPolicy(default_mode="deny"), "admin2", "v2")
    assert (one.version, two.version) == (1, 2)
    assert store.get_policy("acme").policy.default_mode == "deny"
    assert store.get_policy_version("acme", 1).policy.rules[0].name == "all"
    assert store.get_policy("globex").version == 0
    with pytest.raises(NotFoundError):
        store.get_policy_version("globex", 1)
    token = store.create_edl_token("acme", "admin")
    assert store.check_edl_token("acme", token) and not store.check_edl_token("globex", token)
    assert store.create_edl_token("acme", "admin") != token and not store.check_edl_token("acme", token)
    assert tenants_store.verify_audit().ok
