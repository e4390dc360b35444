"""Leaked-credential monitoring: feed parsing, matching tenants' domains and users, alerts, no repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmdr.intel import LeakMonitor, parse_leak_feed
from openmdr.intel.leaks import LEAK_PLAYBOOK, RECOMMENDED_ACTIONS
from openmdr.store.intel import IntelStore
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore
from tests.intel.helpers import ACME, GLOBEX, Clock, event, table

DATA = Path(__file__).with_name("data")


@pytest.fixture()
def state(state_store: StateStore) -> StateStore:
    state_store.create_tenant(ACME, "test")
    state_store.create_tenant(GLOBEX, "test")
    return state_store


@pytest.fixture()
def users(lake: EventLake) -> EventLake:
    """acme has seen ACME\\svc_backup and alice.smith@acme.example; globex only bob."""
    lake.append(table(event("1", user="ACME\\svc_backup"), event("2", user="Alice.Smith@acme.example"),
                      event("3", tenant="globex", user="bob")))  # fmt: skip
    return lake


def test_feed_parsing_keeps_bad_lines_with_reasons() -> None:
    records, rejected = parse_leak_feed((DATA / "leaks.jsonl").read_bytes(), "leaks.jsonl")
    assert [r.identity for r in records] == [
        "alice.smith@acme.example", "bob@sub.acme.example", "carol@globex-mail.example", "dave@unrelated.example",
        "svc_backup", "nobody_seen",
    ]  # fmt: skip
    assert records[0].password_hash_present and not records[1].password_hash_present
    assert records[0].leaked_at is not None and records[0].leaked_at.isoformat().startswith("2026-11-15")
    assert [r.origin for r in rejected] == ["leaks.jsonl:7", "leaks.jsonl:8", "leaks.jsonl:9"]
    csv_records, csv_rejected = parse_leak_feed((DATA / "leaks.csv").read_text(), "leaks.csv")
    assert [r.identity for r in csv_records] == ["alice.smith@acme.example", "svc_backup"]
    assert len(csv_rejected) == 1 and csv_rejected[0].origin == "leaks.csv:4"


def test_leaks_match_tenant_domains_and_known_users(state: StateStore, users: EventLake) -> None:
    monitor = LeakMonitor(state, users, Clock())
    report = monitor.import_file(DATA / "leaks.jsonl", source="combo")
    found = {(a.tenant, a.entities["user"][0]): a for a in report.alerts}
    assert set(found) == {
        ("acme", "alice.smith@acme.example"),
        ("acme", "bob@sub.acme.example"),  # subdomain of acme's domain
        ("acme", "svc_backup"),  # bare user name seen in acme's lake
        ("globex", "carol@globex-mail.example"),  # second domain of globex
    }
    alice = found[("acme", "alice.smith@acme.example")]
    assert alice.severity == "high"  # password hash and an active user
    assert alice.details["leak"]["known_user"] is True and alice.details["leak"]["password_hash_present"] is True
    assert found[("acme", "bob@sub.acme.example")].severity == "low"
    assert (
        alice.details["recommended_actions"] == list(RECOMMENDED_ACTIONS) == ["force_password_reset", "revoke_sessions"]
    )
    assert alice.details["playbook"] == LEAK_PLAYBOOK and f"playbook:{LEAK_PLAYBOOK}" in alice.tags
    assert alice.source == "ioc" and "$2y$" not in str(alice.to_json_dict())
    assert len({a.alert_id for a in report.alerts}) == 4
    assert report.by_tenant == {"acme": 3, "globex": 1} and len(report.rejected) == 3
    again = monitor.import_file(DATA / "leaks.jsonl", source="combo")
    assert again.alerts == [] and again.new == 0 and again.matched == 4
    assert [x.identity for x in IntelStore(state).list_leaks("globex")] == ["carol@globex-mail.example"]


def test_a_second_source_for_the_same_identity_alerts_again(state: StateStore, users: EventLake) -> None:
    monitor = LeakMonitor(state, users, Clock())
    monitor.import_file(DATA / "leaks.jsonl", source="combo")
    report = monitor.import_file(DATA / "leaks.csv")
    assert sorted(a.entities["user"][0] for a in report.alerts) == ["alice.smith@acme.example", "svc_backup"]
    assert {a.details["leak"]["source"] for a in report.alerts} == {"paste-77"}
