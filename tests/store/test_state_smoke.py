"""The state store on SQLite and PostgreSQL: tenants, tokens, dead letters, audit chain."""

from __future__ import annotations

from openmdr.models import Rejection, TenantInfo
from openmdr.store.state import StateStore


def test_tenant_token_deadletter_and_audit_round_trip(state_store: StateStore) -> None:
    state_store.create_tenant(TenantInfo(name="acme", networks=("10.1.2.3/16",)), actor="t")
    assert state_store.get_tenant("acme").networks == ("10.1.0.0/16",)
    secret = state_store.create_ingest_token("acme", "edge", actor="t")
    assert state_store.resolve_ingest_token(secret).tenant == "acme"
    state_store.revoke_ingest_token("acme", "edge", actor="t")
    assert state_store.resolve_ingest_token(secret) is None
    ids = state_store.add_dead_letters([Rejection(b"x" * 100_000, "bad: thing", "f:1", "json", "acme")])
    assert state_store.get_dead_letter_payload(ids[0]) == b"x" * 100_000
    assert state_store.dead_letter_counts("acme") == {"bad": 1}
    assert state_store.verify_audit().ok
    assert [r.action for r in state_store.list_audit(tenant="acme")][:2] == ["tenant.create", "ingest_token.create"]
