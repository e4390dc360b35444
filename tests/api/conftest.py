"""Fixtures of the API tests: a platform on each backend, a controllable clock, two populated tenants."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openmdr.api.app import create_app
from openmdr.config import load_settings
from openmdr.models import Alert, AssetInfo, RawRecord, TenantInfo
from openmdr.models.action import ActionRecord
from openmdr.models.indicator import Indicator
from openmdr.runtime import Platform
from openmdr.store.identity import ROLES, Grant, IdentityStore
from openmdr.store.response import ResponseStore
from openmdr.store.rules import RuleStore

PASSWORD = "correct horse battery staple"
#: For tests whose logic does not depend on the backend: run them on SQLite only (the matrix, the
#: identity store and the audit chain run on both).
sqlite_only = pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
TENANTS = ("alpha", "bravo")


class FakeClock:
    """A clock the tests move by hand (no sleeps)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        """Move time forward."""
        self.now += timedelta(**kwargs)


def cheap_hasher() -> PasswordHasher:
    """Argon2id with tiny cost: the same code path, fast enough for tests."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture()
def clock() -> FakeClock:
    """The controllable clock of the identity store."""
    return FakeClock()


@pytest.fixture()
def platform(state_url: str, tmp_path: Path) -> Iterator[Platform]:
    """A platform whose state store is on the backend of ``state_url``."""
    p = Platform(load_settings(data_dir=tmp_path / "data", database_url=state_url))
    p.lake  # noqa: B018
    try:
        yield p
    finally:
        p.close()


@pytest.fixture()
def identity(platform: Platform, clock: FakeClock) -> IdentityStore:
    """The identity store with the fake clock and a cheap hasher."""
    return IdentityStore(platform.state, clock=clock, hasher=cheap_hasher())


@pytest.fixture()
def app(platform: Platform, identity: IdentityStore) -> FastAPI:
    """The API application."""
    return create_app(platform, identity=identity)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client of the app (no credentials)."""
    with TestClient(app) as c:
        yield c


@dataclass
class World:
    """Two tenants with data, one user per role in each, and an API token per user."""

    platform: Platform
    identity: IdentityStore
    tokens: dict[str, str] = field(default_factory=dict)  # username -> API token secret
    letters: dict[str, list[int]] = field(default_factory=dict)  # tenant -> dead-letter ids
    ingest_tokens: dict[str, str] = field(default_factory=dict)  # tenant -> ingest token name
    alerts: dict[str, list[str]] = field(default_factory=dict)  # tenant -> alert ids
    cases: dict[str, list[str]] = field(default_factory=dict)  # tenant -> case ids
    exceptions: dict[str, int] = field(default_factory=dict)  # tenant -> rule exception id
    indicators: dict[str, str] = field(default_factory=dict)  # tenant -> indicator id
    proposals: dict[str, str] = field(default_factory=dict)  # tenant -> sharing proposal id
    suppressions: dict[str, int] = field(default_factory=dict)  # tenant -> alert suppression id

    def headers(self, username: str) -> dict[str, str]:
        """Bearer headers of the user's API token."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def add_user(self, username: str, grants: list[Grant], **token: object) -> str:
        """Create a user with a password and an API token; returns the token secret."""
        self.identity.create_user(username, "test", password=PASSWORD, grants=grants)
        expires = self.identity.now() + timedelta(days=30)
        _, secret = self.identity.create_api_token(username, "t", "test", expires_at=expires, **token)  # type: ignore[arg-type]
        self.tokens[username] = secret
        return secret


def tenant_user(role: str, tenant: str) -> str:
    """The name of the test user holding ``role`` in ``tenant``."""
    return f"{role.replace('_', '-')}.{tenant}"


def build_world(platform: Platform, identity: IdentityStore, domain: bool = True) -> World:
    """Populate both tenants: assets, an ingest token, events, dead letters, users of every role.

    ``domain`` adds alerts, a case, a response action, rule overrides, an indicator and a proposal.
    """
    world = World(platform, identity)
    state = platform.state
    for tenant in TENANTS:
        state.create_tenant(TenantInfo(tenant, networks=("10.0.0.0/8",)), "test")
        state.upsert_assets(tenant, [AssetInfo(f"host-{tenant}", ("10.0.0.1",), owner=f"owner-{tenant}")], "test")
        state.create_ingest_token(tenant, f"edge-{tenant}", "test")
        world.ingest_tokens[tenant] = f"edge-{tenant}"
        good = RawRecord(
            f'{{"@timestamp": "2026-12-01T10:00:00Z", "message": "marker-{tenant}", "host": "host-{tenant}"}}'.encode(),
            "json",
            f"t:{tenant}",
        )
        bad = RawRecord(f"not json marker-{tenant}".encode(), "json", f"t:{tenant}:bad")
        report = platform.pipeline.submit(tenant, [good, bad])
        assert (report.stored, report.rejected) == (1, 1)
        world.letters[tenant] = [d.id for d in state.list_dead_letters(tenant)]
        assert world.letters[tenant], "the malformed record must be dead-lettered"
        if domain:
            add_domain_data(world, tenant)
        for role in ROLES:
            if role == "provider_admin":
                continue
            world.add_user(tenant_user(role, tenant), [Grant(role, tenant)])
    world.add_user("root", [Grant("provider_admin")])
    world.add_user("soc.all", [Grant("soc_analyst")])
    world.add_user("auditor.all", [Grant("auditor")])
    world.add_user("root.alpha-token", [Grant("provider_admin")], tenant="alpha")
    return world


EXCEPTION = """
title: marker-{tenant} exception
filter:
    rules: [rule-{tenant}]
    selection: {{User: svc_backup}}
    condition: not selection
"""


def add_domain_data(world: World, tenant: str) -> None:
    """Alerts grouped into a case, a response action waiting for approval, a rule override, an indicator."""
    platform = world.platform
    seen = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    alerts = [
        Alert(tenant, f"rule-{tenant}-{i}", f"marker-{tenant} alert {i}", "high", "sigma", seen, seen,
              entities={"host": f"host-{tenant}", "user": f"user-{tenant}"}, attack=["T1059.001"], evidence=[f"ev{i}"])
        for i in range(3)
    ]  # fmt: skip
    platform.cases.add_alerts(alerts)
    world.alerts[tenant] = [a.alert_id for a in alerts]
    world.cases[tenant] = sorted({c.case_id for c in platform.cases.list(tenant)})
    assert world.cases[tenant], "the alerts must form a case"
    now = datetime.now(UTC)
    action = ActionRecord(f"act-{tenant}", tenant, "isolate_host", f"host-{tenant}", "awaiting_approval", "approve",
                          f"marker-{tenant}", 0, case_id=world.cases[tenant][0], requested_at=now, updated_at=now,
                          deadline_at=now + timedelta(hours=1), approvals_required=1)  # fmt: skip
    ResponseStore(platform.state).insert_action(action, f"k-{tenant}", "test", "response.action.awaiting_approval", {})
    rules = RuleStore(platform.state)
    rules.set_enabled(tenant, f"rule-{tenant}-0", False, "test")
    world.exceptions[tenant] = rules.add_exception(tenant, EXCEPTION.format(tenant=tenant), "test").id
    platform.intel.upsert_indicators([Indicator("domain", f"marker-{tenant}.example", tenant=tenant)], "test")
    world.indicators[tenant] = Indicator("domain", f"marker-{tenant}.example", tenant=tenant).id
    world.suppressions[tenant] = platform.cases.add_suppression(
        tenant, f"marker-{tenant} maintenance", "test", rule_id=f"rule-{tenant}-9"
    ).id
    proposal = {"type": "domain", "value": f"marker-{tenant}-c2.example", "tlp": "amber", "confidence": 70}
    world.proposals[tenant] = platform.intel.add_proposals(tenant, world.cases[tenant][0], [proposal], "test")[0].id


@pytest.fixture()
def world(platform: Platform, identity: IdentityStore) -> World:
    """Two populated tenants with users of every role."""
    return build_world(platform, identity)


@pytest.fixture()
def base_world(platform: Platform, identity: IdentityStore) -> World:
    """Two tenants with assets, events, dead letters and users of every role (no alerts or cases)."""
    return build_world(platform, identity, domain=False)
