"""Baselines in the state store (SQLite and PostgreSQL): save, load, restore, isolation, audit."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings, BaselineRecord
from openmdr.models import TenantInfo
from openmdr.store.baselines import BaselineRepository, analytics_baselines, entity_key
from openmdr.store.errors import ValidationError
from openmdr.store.schema import metadata
from openmdr.store.state import StateStore

from .builders import logon

DAY = 86_400.0
HOUR = 3600.0
TENANTS = [TenantInfo(name="acme", timezone="UTC"), TenantInfo(name="globex", timezone="UTC")]
# alert as soon as possible: one day of tenant history, five logons for a user profile
FAST_WARMUP = AnalyticsSettings(warmup={"tenant_days": 1.0, "user_events": 5})


def train(engine: AnalyticsEngine, tenant: str) -> None:
    """Three weekdays of office-hours logons of alice (10:00 UTC) for ``tenant``."""
    engine.analyze([logon(d * DAY + 10 * HOUR + m * 60, "alice", tenant=tenant) for d in range(3) for m in range(4)])


def night_logon(tenant: str):
    """Alice at 03:00 UTC on Thursday 2024-01-04: off-hours and unusual for her."""
    return logon(3 * DAY + 3 * HOUR, "alice", tenant=tenant)


def test_saved_baselines_restore_a_warm_engine(state_store: StateStore) -> None:
    trained = AnalyticsEngine(FAST_WARMUP, tenants=TENANTS)
    train(trained, "acme")
    repo = BaselineRepository(state_store)
    report = repo.persist(trained, actor="pipeline")
    assert report.rows == {"acme": len(trained.snapshot())} and report.total > 0

    loaded = repo.load("acme")
    assert loaded == trained.snapshot()  # same rows, same (least recently used first) order
    assert all(isinstance(r, BaselineRecord) for r in loaded)

    restored = AnalyticsEngine(FAST_WARMUP, tenants=TENANTS)
    assert repo.restore_into(restored, ["acme"]) == len(loaded)
    assert restored.state_size() == trained.state_size()
    # the restored engine knows alice's hours and the tenant's history: the night logon alerts
    fired = {a.source for a in restored.analyze([night_logon("acme")])}
    assert "analytics:offhours_logon" in fired
    # a cold engine that never saw the history stays silent (warm-up)
    cold = AnalyticsEngine(FAST_WARMUP, tenants=TENANTS)
    assert cold.analyze([night_logon("acme")]) == []


def test_tenants_are_isolated_and_saves_replace(state_store: StateStore) -> None:
    engine = AnalyticsEngine(FAST_WARMUP, tenants=TENANTS)
    train(engine, "acme")
    train(engine, "globex")
    repo = BaselineRepository(state_store)
    repo.persist(engine, actor="pipeline")
    acme, globex = repo.load("acme"), repo.load("globex")
    assert acme and globex
    assert {r.tenant for r in acme} == {"acme"} and {r.tenant for r in globex} == {"globex"}

    # a smaller snapshot of acme replaces acme's rows and leaves globex untouched
    only_user = [r for r in acme if r.analytic == "identity.user"]
    assert repo.save("acme", only_user, actor="pipeline") == len(only_user)
    assert repo.load("acme") == only_user
    assert repo.load("globex") == globex
    assert repo.load("acme", analytic="identity.tenant") == []

    # a row of another tenant is refused and nothing is written
    with pytest.raises(ValidationError):
        repo.save("acme", [*only_user, BaselineRecord("globex", "identity.user", "eve", b"{}")], actor="x")
    assert repo.load("acme") == only_user
    with pytest.raises(ValidationError):
        repo.load("")

    assert repo.delete("acme", actor="analyst") == len(only_user)
    assert repo.count("acme") == 0 and repo.count("globex") == len(globex)

    audit = [r.action for r in state_store.list_audit(tenant="acme")]
    assert audit == ["analytics.baselines.save", "analytics.baselines.save", "analytics.baselines.delete"]
    assert state_store.list_audit(tenant="acme")[0].details["per_analytic"]["identity.user"] == 1
    assert state_store.verify_audit().ok


def test_any_entity_text_round_trips_in_the_migrated_table(state_store: StateStore) -> None:
    repo = BaselineRepository(state_store)
    odd = ["x" * 5000, "münchen\\admin", "' OR 1=1 --", "*", "a\tb"]
    rows = [BaselineRecord("acme", "identity.user", e, f'{{"n": {i}}}'.encode()) for i, e in enumerate(odd)]
    rows.append(BaselineRecord("acme", "identity.user", "*", b'{"n": 99}'))  # repeated: the last wins
    assert repo.save("acme", rows, actor="t") == len(odd)
    back = {r.entity: r.state for r in repo.load("acme")}
    assert set(back) == set(odd)
    assert back["*"] == b'{"n": 99}'
    assert len(entity_key("x" * 5000)) == 64
    # and the migration created exactly the table this module describes
    with state_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    ours = [d for d in diff if analytics_baselines.name in repr(d)]
    assert ours == []
    assert any(r == "0003_baselines" for r in state_store.schema_revisions())
