"""The case service over the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openmdr.correlate import CaseService
from openmdr.models import AssetInfo, TenantInfo
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.state import StateStore
from tests.correlate.builders import T0, Clock, alert


@pytest.fixture()
def clock() -> Clock:
    return Clock(T0 + timedelta(minutes=2))


@pytest.fixture()
def service(state_store: StateStore, clock: Clock) -> CaseService:
    return CaseService(state_store, clock=clock)


def _all_members(service: CaseService, tenant: str) -> list[str]:
    return [a for c in service.list(tenant, limit=1000) for a in c.alert_ids]


def test_alerts_are_stored_deduplicated_scored_and_grouped(service: CaseService, state_store: StateStore) -> None:
    state_store.create_tenant(TenantInfo(name="acme"), actor="t")
    state_store.upsert_assets("acme", [AssetInfo("ws01", ("10.1.0.5",), criticality="critical")], actor="t")
    changes = service.add_alerts(
        [
            alert("phish", 0, host="ws01", user="alice", attack=["T1566.001"]),
            alert("ps", 4, host="ws01", user="alice", attack=["T1059.001"]),
            alert("ps", 9, host="ws01", user="alice", attack=["T1059.001"]),
            alert("beacon", 12, source="analytics:beaconing", src_ip="10.1.0.5", dst_ip="203.0.113.80"),
        ]
    )
    assert [c.kind for c in changes] == ["opened", "joined", "deduplicated", "joined"]
    case_id = changes[0].case_id
    assert {c.case_id for c in changes} == {case_id}
    case = service.get("acme", case_id)
    assert case is not None and len(case.alert_ids) == 3
    assert case.sources == ["analytics:beaconing", "sigma"] and "network" in case.channels
    assert case.reasons[1] == "same user alice and host ws01 within 4 min"
    assert "host ws01 (10.1.0.5)" in case.reasons[2]
    ps = service.get_alert("acme", changes[1].alert_ids[0])
    assert ps is not None and ps.dedup_count == 1 and ps.alert.event_count == 2
    assert ps.alert.last_seen == T0 + timedelta(minutes=9)
    # critical asset: 100 x 0.75 (high) x 0.7 (confidence) x 1.0 (critical)
    assert ps.risk_score == pytest.approx(52.5)
    assert case.priority == 1  # high severity on a critical asset
    observables = {(o.type, o.value): o.internal for o in case.observables}
    assert observables[("ip", "203.0.113.80")] is False and observables[("host", "ws01")] is True
    assert service.add_alerts([alert("phish", 0, host="ws01", user="alice", attack=["T1566.001"])])[0].kind == (
        "redelivered"
    )
    assert state_store.verify_audit().ok
    records = [r for r in state_store.list_audit(tenant="acme") if r.action == "alerts.correlate"]
    assert records[0].details["opened"] == [case_id] and records[0].details["deduplicated"] == 1
    assert records[1].details["redelivered"] == 1 and records[1].details["opened"] == []


def test_sla_timestamps_follow_the_lifecycle(service: CaseService, clock: Clock) -> None:
    [opened] = service.add_alerts([alert("a", 0, host="ws01")])
    case_id = opened.case_id
    case = service.get("acme", case_id)
    assert case.sla.first_event_at == T0 and case.sla.detected_at == T0 + timedelta(minutes=2)
    assert case.sla.time_to_detect() == 120
    clock.advance(minutes=10)
    assert service.acknowledge("acme", case_id, "ann").sla.acknowledged_at == clock.now
    contained = service.mark_contained("acme", case_id, "soar", at=T0 + timedelta(minutes=30))
    assert contained.status == "contained" and contained.sla.time_to_contain() == 28 * 60
    assert service.acknowledge("acme", case_id, "bob").sla.acknowledged_at == T0 + timedelta(minutes=12)
    clock.advance(hours=1)
    resolved = service.resolve("acme", case_id, "true_positive", "ann")
    assert (resolved.status, resolved.resolution, resolved.sla.resolved_at) == ("resolved", "true_positive", clock.now)
    with pytest.raises(ConflictError):
        service.acknowledge("acme", case_id, "ann")
    with pytest.raises(ValidationError):
        service.resolve("acme", case_id, "maybe", "ann")
    # a resolved case takes no new alerts: the next one opens a fresh case
    [later] = service.add_alerts([alert("b", 100, host="ws01")])
    assert later.kind == "opened" and later.case_id != case_id
    reopened = service.reopen("acme", case_id, "ann", reason="same actor came back")
    assert (reopened.status, reopened.resolution, reopened.sla.resolved_at) == ("contained", None, None)
    assert reopened.notes[-1].text == "reopened: same actor came back"
    # reopened, it correlates again
    merged, joined = service.add_alerts([alert("c", 101, host="ws01")])
    assert (merged.kind, merged.case_id, merged.related) == ("merged", case_id, [later.case_id])
    assert joined.kind == "joined" and joined.case_id == case_id
    assert service.get("acme", later.case_id).merged_into == case_id
    assert service.get("acme", case_id).status == "contained"
    assigned = service.assign("acme", case_id, "ann", "lead")
    noted = service.add_note("acme", case_id, "isolated ws01", "ann")
    assert assigned.assignee == "ann" and noted.notes[-1].author == "ann"


def test_merge_and_split_keep_every_alert_exactly_once(service: CaseService) -> None:
    changes = service.add_alerts([alert(f"r{i}", i, host=f"ws{i % 3}") for i in range(9)])
    all_ids = sorted({c.alert_ids[0] for c in changes})
    cases = sorted({c.case_id for c in changes})
    assert len(cases) == 3
    merged = service.merge("acme", cases, "ann")
    assert merged.case_id == cases[0] and sorted(merged.alert_ids) == all_ids
    assert service.get("acme", cases[1]).merged_into == cases[0]
    assert sorted(_all_members(service, "acme")) == all_ids
    with pytest.raises(ConflictError):
        service.merge("acme", [cases[1], cases[0]], "ann")
    moving = merged.alert_ids[:2]
    new = service.split("acme", cases[0], moving, "ann")
    assert sorted(new.alert_ids) == sorted(moving) and new.reasons == [f"split from case {cases[0]} by ann"]
    assert sorted(_all_members(service, "acme")) == all_ids
    assert {a.alert_id for a in service.alerts("acme", new.case_id)} == set(moving)
    with pytest.raises(ValidationError):
        service.split("acme", new.case_id, new.alert_ids, "ann")
    with pytest.raises(ValidationError):
        service.split("acme", new.case_id, ["not-an-alert"], "ann")


def test_tenants_are_separated_in_every_call(service: CaseService) -> None:
    a = service.add_alerts([alert("r", 0, tenant="t1", host="ws01", user="alice")])[0]
    b = service.add_alerts([alert("r", 0, tenant="t2", host="ws01", user="alice")])[0]
    assert a.kind == b.kind == "opened" and a.case_id != b.case_id
    assert service.get("t2", a.case_id) is None
    assert service.alerts("t2", a.case_id) == []
    assert service.get_alert("t2", a.alert_ids[0]) is None
    with pytest.raises(NotFoundError):
        service.acknowledge("t2", a.case_id, "mallory")
    with pytest.raises(NotFoundError):
        service.merge("t1", [a.case_id, b.case_id], "mallory")
    assert [c.case_id for c in service.list("t1")] == [a.case_id]
    with pytest.raises(ValidationError):
        service.list(None)
    assert {c.tenant for c in service.list(None, provider_wide=True)} == {"t1", "t2"}


def test_suppressions_match_expire_and_are_audited(service: CaseService, clock: Clock, state_store: StateStore) -> None:
    sup = service.add_suppression(
        "acme",
        "scanner appliance, approved",
        "ann",
        rule_id="scan",
        entities={"host": "SCAN01"},
        expires_at=clock.now + timedelta(hours=1),
    )
    other = service.add_suppression("other", "other tenant's rule", "ann", rule_id="scan")
    changes = service.add_alerts([alert("scan", 0, host="scan01"), alert("scan", 1, host="ws01")])
    assert [c.kind for c in changes] == ["suppressed", "opened"]
    assert "scanner appliance" in changes[0].reason
    stored = service.get_alert("acme", changes[0].alert_ids[0])
    assert stored.status == "suppressed" and stored.case_id is None and stored.suppression_id == sup.id
    clock.advance(hours=2)
    assert [c.kind for c in service.add_alerts([alert("scan", 130, host="scan01")])] == ["opened"]
    assert service.list_suppressions("acme", active_only=True) == []
    assert service.list_suppressions("acme")[0].hits == 1
    with pytest.raises(NotFoundError):
        service.revoke_suppression("acme", other.id, "mallory")
    service.revoke_suppression("other", other.id, "ann")
    with pytest.raises(ValidationError):
        service.add_suppression("acme", "", "ann", rule_id="x")
    actions = [r.action for r in state_store.list_audit(tenant="acme")]
    assert actions.count("suppression.add") == 1


def test_bad_alerts_are_dead_lettered_not_raised(service: CaseService, state_store: StateStore) -> None:
    bad = alert("r", 0, host="ws01")
    bad.severity = "catastrophic"
    changes = service.add_alerts([bad, alert("ok", 1, host="ws01")])
    assert [c.kind for c in changes] == ["rejected", "opened"]
    assert "unknown severity" in changes[0].reason
    assert state_store.dead_letter_counts("acme") == {"unknown severity 'catastrophic'": 1}


def test_another_process_sees_and_respects_analyst_changes(
    service: CaseService, state_store: StateStore, clock: Clock
) -> None:
    """The pipeline's service rebuilds its memory when the console's service changed the cases."""
    first = service.add_alerts([alert("a", 0, host="ws01"), alert("b", 1, host="ws02")])
    console = CaseService(state_store, clock=clock)
    console.resolve("acme", first[0].case_id, "false_positive", "ann")
    after = service.add_alerts([alert("c", 2, host="ws01"), alert("d", 3, host="ws02")])
    assert after[0].kind == "opened"  # ws01's case was resolved elsewhere
    assert after[1].kind == "joined" and after[1].case_id == first[1].case_id
    # a fresh service (a restart) continues the open cases from the store
    restarted = CaseService(state_store, clock=clock)
    assert restarted.add_alerts([alert("e", 4, host="ws02")])[0].case_id == first[1].case_id
