"""The rule library in the state store: versions, per-tenant overrides, audit, isolation (both backends)."""

from __future__ import annotations

import pytest

from openmdr.detect import library_from_texts
from openmdr.models.tenant import TenantInfo
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.rules import RuleStore
from openmdr.store.state import StateStore
from tests.detect.helpers import engine_for, event, rule_text

RULE_ID = "00000000-0000-4000-8000-000000000001"
EXCEPTION = """
title: backup service is expected
filter:
    rules: [00000000-0000-4000-8000-000000000001]
    selection: {User: svc_backup}
    condition: not selection
"""


@pytest.fixture()
def store(state_store: StateStore) -> RuleStore:
    for name in ("acme", "globex"):
        state_store.create_tenant(TenantInfo(name=name, display_name=name), actor="test")
    return RuleStore(state_store)


def test_versions_install_and_activate(store: RuleStore) -> None:
    assert store.active() is None and store.library() is None
    v1 = store.install(
        library_from_texts([("a.yml", rule_text({"s": {"A": "1"}, "condition": "s"}))]), "dir-a", "alice"
    )
    v2 = store.install(library_from_texts([("b.yml", "title: b\n")]), "dir-b", "alice")
    assert (v1.version, v2.version) == (1, 2)
    assert store.active().version == 2  # type: ignore[union-attr]
    store.activate(1, "bob")
    lib = store.library()
    assert lib is not None and [s.path for s in lib.sources] == ["a.yml"]
    assert lib.content_hash == v1.content_hash
    assert [v.active for v in store.versions()] == [True, False]
    with pytest.raises(NotFoundError):
        store.activate(9, "bob")
    actions = [r.action for r in store.state.list_audit(limit=50, provider_wide=True)]
    assert actions.count("rules.install") == 2 and "rules.activate" in actions


def test_overrides_apply_per_tenant(store: RuleStore) -> None:
    store.set_severity("acme", RULE_ID, "critical", "alice")
    store.add_exception("acme", EXCEPTION, "alice")
    store.set_enabled("globex", RULE_ID, False, "bob")
    eng = engine_for(
        rule_text({"s": {"Action": "x"}, "condition": "s"}, rule_id=RULE_ID, level="low"),
        overrides=store.all_overrides(),
    )
    events = [
        event({"Action": "x", "User": "svc_backup"}, tenant="acme"),
        event({"Action": "x", "User": "mallory"}, tenant="acme"),
        event({"Action": "x", "User": "mallory"}, tenant="globex"),
        event({"Action": "x", "User": "mallory"}, tenant="initech"),
    ]
    alerts = eng.evaluate(events)
    assert [(a.tenant, a.severity) for a in alerts] == [("acme", "critical"), ("initech", "low")]


def test_tenant_isolation_and_validation(store: RuleStore) -> None:
    info = store.add_exception("acme", EXCEPTION, "alice")
    with pytest.raises(NotFoundError):
        store.remove_exception("globex", info.id, "mallory")  # another tenant's id
    assert store.exceptions("globex") == []
    assert [e.id for e in store.exceptions("acme")] == [info.id]
    with pytest.raises(ValidationError):
        store.set_severity("acme", RULE_ID, "urgent", "alice")
    with pytest.raises(ValidationError):
        store.add_exception("acme", "title: no filter here\n", "alice")
    with pytest.raises(NotFoundError):
        store.set_enabled("nobody", RULE_ID, False, "alice")
    store.remove_exception("acme", info.id, "alice")
    assert store.exceptions("acme") == []
    assert store.state.verify_audit().ok
