"""The response service on both backends: authority, approvals, timeouts, two-person rule, rollback, audit."""

from __future__ import annotations

import threading

import pytest

from openmdr.models import Alert, AssetInfo, Observable
from openmdr.models.action import ActionRecord
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.webhook import WebhookNotifier, WebhookSender
from openmdr.respond.playbook import builtin_playbooks
from openmdr.respond.policy import AllowList, AuthorityPolicy, AuthorityRule, default_policy
from openmdr.respond.service import ResponseService
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.state import StateStore
from tests.respond.cases import c2_case, credential_case, dc_case, lateral_case
from tests.respond.conftest import Receiver


class Sleeps(list[float]):
    """Records the backoff delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def service(
    state: StateStore, receiver: Receiver, clock: ManualClock, retry: RetryPolicy | None = None, **kw: object
) -> tuple[ResponseService, Sleeps, list[tuple[str, str, object]]]:
    sleeps = Sleeps()
    contained: list[tuple[str, str, object]] = []
    registry = ConnectorRegistry()
    registry.add(WebhookEdrConnector(WebhookSender(receiver.url, receiver.secret, timeout=5)), "acme")
    notifier = WebhookNotifier(WebhookSender(receiver.url, receiver.secret, timeout=5), sleep=sleeps)
    svc = ResponseService(state, registry, clock, builtin_playbooks(), {"default": notifier},
                          retry or RetryPolicy(attempts=3, base_delay=0.5, attempt_timeout=5), sleeps,
                          on_contained=lambda t, c, at: contained.append((t, c, at)), **kw)  # type: ignore[arg-type]  # fmt: skip
    return svc, sleeps, contained


def by_kind(records: list[ActionRecord]) -> dict[tuple[str, str], ActionRecord]:
    return {(r.kind, r.target): r for r in records}


def test_c2_workstation_is_isolated_inside_authority_and_the_case_counts_as_contained(
    tenants_store: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, contained = service(tenants_store, receiver, clock)
    result = svc.on_case(c2_case(clock()))
    got = by_kind(result.actions)
    assert got[("isolate_host", "BER-WS-007")].status == "executed"
    assert got[("block_ip", "45.153.160.140")].status == "executed"
    assert got[("block_ip", "8.8.8.8")].status == "denied"
    assert ("acme", "ber-ws-007") in receiver.isolated
    assert result.contained and contained == [("acme", "case-c2", clock())]
    blocked = {e.value for e in svc.store.list_blocks("acme", "ip", now=clock())}
    assert blocked == {"45.153.160.140"}
    # every decision is audited with the policy version that decided it
    trail = tenants_store.list_audit("acme", limit=10_000)
    decisions = [r for r in trail if r.action.startswith("response.action.")]
    assert {r.action for r in decisions} >= {"response.action.allowed", "response.action.executed",
                                            "response.action.denied"}  # fmt: skip
    assert all(r.details["policy_version"] == 0 for r in decisions)
    assert any(r.action == "response.case.contained" for r in trail)
    assert tenants_store.verify_audit().ok


def test_on_case_is_idempotent(sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    svc, _, contained = service(sqlite_tenants, receiver, clock)
    start = clock()
    first = svc.on_case(c2_case(clock()))
    clock.advance(minutes=5)
    second = svc.on_case(c2_case(clock()))
    assert [r.action_id for r in first.actions] == [r.action_id for r in second.actions]
    assert len(svc.list_actions("acme")) == len(first.actions)  # the denied 8.8.8.8 block is not asked again
    assert sum(1 for r in receiver.requests if r.event == "edr.isolate_host") == 1
    assert sum(1 for r in receiver.requests if r.event == "response.notification") == 1
    assert second.notifications[0].get("repeat") is True
    assert len(contained) == 1
    sent = [r for r in sqlite_tenants.list_audit("acme", limit=10_000) if r.action == "response.notification"]
    assert sent and all(start <= r.time <= clock() for r in sent)  # the service's clock, not the wall clock
    # a rolled-back action stays rolled back when the same case is seen again
    isolate = next(r for r in first.actions if r.kind == "isolate_host")
    svc.rollback("acme", isolate.action_id, "analyst", "false positive")
    third = svc.on_case(c2_case(clock()))
    assert next(r for r in third.actions if r.kind == "isolate_host").status == "rolled_back"
    assert sum(1 for r in receiver.requests if r.event == "edr.isolate_host") == 1


def test_server_waits_for_approval_escalates_then_expires(
    tenants_store: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, contained = service(tenants_store, receiver, clock)
    result = svc.on_case(lateral_case(clock()))
    assert {(r.kind, r.target) for r in result.actions} == {("isolate_host", "ACME-FS01"),
                                                            ("kill_process", "PSEXESVC.exe")}  # fmt: skip
    for action in result.actions:
        assert action.status == "awaiting_approval" and action.asset_class == "server"
        assert action.deadline_at is not None and (action.deadline_at - clock()).total_seconds() == 15 * 60
    assert not result.contained and not receiver.isolated
    assert [r.event for r in receiver.requests] == ["response.approval_requested"] * 2 + ["response.notification"]

    clock.advance(minutes=14)
    assert svc.tick() == []
    clock.advance(minutes=2)
    escalated = svc.tick()
    assert [(r.status, r.escalation_level) for r in escalated] == [("escalated", 1)] * 2
    assert receiver.requests[-1].event == "response.approval_escalated"
    assert receiver.requests[-1].payload["action"]["status"] == "escalated"
    clock.advance(minutes=16)
    assert [r.status for r in svc.tick()] == ["expired"] * 2
    assert not receiver.isolated and contained == []
    actions = [r.action for r in tenants_store.list_audit("acme", limit=10_000)]
    assert actions.index("response.action.escalated") < actions.index("response.action.expired")


def test_approval_executes_and_a_late_approval_is_refused(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, contained = service(sqlite_tenants, receiver, clock)
    case = c2_case(clock(), host="ACME-FS01", case_id="case-fs")
    (pending,) = [r for r in svc.on_case(case).actions if r.kind == "isolate_host"]
    clock.advance(minutes=3)
    done = svc.approve("acme", pending.action_id, "k.weber@acme.example", "go")
    assert done.status == "executed" and done.approvals == ["k.weber@acme.example"]
    assert ("acme", "acme-fs01") in receiver.isolated
    assert contained and contained[0][1] == "case-fs"
    with pytest.raises(ConflictError):
        svc.approve("acme", pending.action_id, "someone.else")
    approvals = svc.store.approvals("acme", pending.action_id)
    assert [(a.approver, a.decision) for a in approvals] == [("k.weber@acme.example", "approve")]
    trail = [
        r for r in sqlite_tenants.list_audit("acme", limit=1000) if r.details.get("action_id") == pending.action_id
    ]
    assert [(r.action, r.actor) for r in trail] == [
        ("response.action.awaiting_approval", "response"), ("response.notification", "response"),
        ("response.action.approved", "k.weber@acme.example"), ("response.action.executed", "k.weber@acme.example"),
    ]  # fmt: skip
    assert all(r.details["policy_version"] == 0 for r in trail)


def test_two_person_rule_for_critical_assets(tenants_store: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    svc, _, _ = service(tenants_store, receiver, clock)
    (pending,) = [r for r in svc.on_case(dc_case(clock())).actions if r.kind == "isolate_host"]
    assert pending.approvals_required == 2
    first = svc.approve("acme", pending.action_id, "alice")
    assert first.status == "awaiting_approval" and not receiver.isolated
    with pytest.raises(ConflictError, match="different person"):
        svc.approve("acme", pending.action_id, "alice")
    with pytest.raises(ValidationError):
        svc.approve("acme", pending.action_id, "response")  # the automation cannot approve itself
    second = svc.approve("acme", pending.action_id, "bob")
    assert second.status == "executed" and second.approvals == ["alice", "bob"]
    assert ("acme", "acme-dc01") in receiver.isolated


def test_tenant_isolation_an_approval_cannot_act_on_another_tenants_action(
    tenants_store: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, _ = service(tenants_store, receiver, clock)
    (pending,) = [r for r in svc.on_case(dc_case(clock())).actions if r.kind == "isolate_host"]
    for call in (lambda: svc.approve("globex", pending.action_id, "mallory"),
                 lambda: svc.deny("globex", pending.action_id, "mallory"),
                 lambda: svc.rollback("globex", pending.action_id, "mallory"),
                 lambda: svc.get_action("globex", pending.action_id)):  # fmt: skip
        with pytest.raises(NotFoundError):
            call()
    assert svc.list_actions("globex") == []
    assert svc.get_action("acme", pending.action_id).approvals == []
    rejected = svc.deny("acme", pending.action_id, "alice", "maintenance window")
    assert rejected.status == "rejected"


def test_allow_list_is_never_touched_even_when_added_after_approval_was_requested(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    case = c2_case(clock(), host="ACME-FS01", case_id="case-fs")
    (pending,) = [r for r in svc.on_case(case).actions if r.kind == "isolate_host"]
    policy = default_policy()
    svc.set_policy("acme", AuthorityPolicy(rules=policy.rules, allow_list=AllowList(hosts=("ACME-FS01",))), "admin")
    result = svc.approve("acme", pending.action_id, "alice")
    assert result.status == "denied" and "allow-list" in result.reason and result.policy_version == 1
    assert not receiver.isolated
    assert not any(r.payload.get("operation") for r in receiver.requests)


def test_rollback_restores_state(tenants_store: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    svc, _, _ = service(tenants_store, receiver, clock)
    result = by_kind(svc.on_case(c2_case(clock())).actions)
    isolate, block = result[("isolate_host", "BER-WS-007")], result[("block_ip", "45.153.160.140")]
    clock.advance(minutes=30)
    undone = svc.rollback("acme", isolate.action_id, "analyst", "false positive")
    assert undone.status == "rolled_back" and ("acme", "ber-ws-007") not in receiver.isolated
    svc.rollback("acme", block.action_id, "analyst")
    assert svc.store.list_blocks("acme", "ip", now=clock()) == []
    reverse = [r for r in svc.list_actions("acme") if r.rollback_of]
    assert {r.kind for r in reverse} == {"unisolate_host", "unblock_ip"}
    with pytest.raises(ConflictError):
        svc.rollback("acme", isolate.action_id, "analyst")


def test_rollback_leaves_what_was_already_in_place(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.isolated.add(("acme", "ber-ws-007"))  # the EDR console had isolated it already
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    isolate = by_kind(svc.on_case(c2_case(clock())).actions)[("isolate_host", "BER-WS-007")]
    assert isolate.outcome["prior"] == {"isolated": True}
    svc.rollback("acme", isolate.action_id, "analyst")
    assert ("acme", "ber-ws-007") in receiver.isolated


def test_irreversible_actions_say_so(sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    kill = by_kind(svc.on_case(credential_case(clock())).actions)[("kill_process", "procdump64.exe")]
    assert kill.status == "executed" and receiver.killed == [("acme", "ber-ws-007", "procdump64.exe")]
    with pytest.raises(ConflictError, match="cannot be undone"):
        svc.rollback("acme", kill.action_id, "analyst")


def test_retries_with_backoff_then_success_and_no_retry_on_client_errors(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, sleeps, _ = service(sqlite_tenants, receiver, clock)
    receiver.fail_next = [503, 502]
    isolate = by_kind(svc.on_case(c2_case(clock())).actions)[("isolate_host", "BER-WS-007")]
    assert isolate.status == "executed" and isolate.attempts == 3 and sleeps[:2] == [0.5, 1.0]
    deliveries = {r.delivery for r in receiver.requests if r.event == "edr.isolate_host"}
    assert deliveries == {isolate.action_id}  # every retry carries the same idempotency key

    receiver.fail_next = [400]
    case = c2_case(clock(), host="BER-NB-012", case_id="case-2")
    failed = by_kind(svc.on_case(case).actions)[("isolate_host", "BER-NB-012")]
    assert failed.status == "failed" and failed.attempts == 1 and "400" in (failed.error or "")
    assert not svc.containment("acme", "case-2").contained


def test_attempts_time_out_cleanly(sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    receiver.hold = threading.Event()
    svc, _, _ = service(sqlite_tenants, receiver, clock, RetryPolicy(attempts=2, base_delay=0.01, attempt_timeout=0.2))
    isolate = by_kind(svc.on_case(c2_case(clock())).actions)[("isolate_host", "BER-WS-007")]
    receiver.hold.set()
    assert isolate.status == "failed" and isolate.attempts == 2 and "timed out" in (isolate.error or "")
    audit = [r for r in sqlite_tenants.list_audit("acme", limit=10_000) if r.action == "response.action.failed"]
    assert audit and audit[-1].details["attempt_errors"][0].startswith("attempt 1 timed out")


def test_dry_run_plans_and_audits_but_never_acts(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, contained = service(sqlite_tenants, receiver, clock)
    result = svc.on_case(c2_case(clock()), dry_run=True)
    assert {r.status for r in result.actions} == {"planned"}
    assert receiver.requests == [] and svc.store.list_blocks("acme") == [] and contained == []
    assert any(r.action == "response.action.dry_run" for r in sqlite_tenants.list_audit("acme", limit=1000))


def test_policy_versions_are_stored_audited_and_cited(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    assert svc.get_policy("acme").version == 0
    strict = AuthorityPolicy(rules=(AuthorityRule("nothing unattended", "approve"),), approval_timeout_minutes=5)
    assert svc.set_policy("acme", strict, "tenant-admin@acme", "freeze").version == 1
    assert svc.get_policy("globex").version == 0  # another tenant's policy is untouched
    isolate = by_kind(svc.on_case(c2_case(clock())).actions)[("isolate_host", "BER-WS-007")]
    assert isolate.status == "awaiting_approval" and isolate.policy_version == 1
    assert (isolate.deadline_at - clock()).total_seconds() == 300  # type: ignore[operator]
    history = svc.store.policy_history("acme")
    assert [p.version for p in history] == [1] and history[0].created_by == "tenant-admin@acme"
    audit = [r for r in sqlite_tenants.list_audit("acme", limit=1000) if r.action == "response.policy.set"]
    assert audit[0].details["policy"]["rules"][0]["mode"] == "approve"


def test_missing_connector_fails_clearly(sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    clock.set(clock().replace(hour=2))
    result = by_kind(svc.on_case(c2_case(clock(), tenant="globex", host="NYC-WS-007")).actions)
    isolate = result[("isolate_host", "NYC-WS-007")]
    assert isolate.status == "failed" and "no connector runs isolate_host for tenant globex" in (isolate.error or "")
    assert not any(r.payload.get("tenant") == "globex" and r.payload.get("operation") for r in receiver.requests)


def test_concurrent_approvals_are_both_counted(
    tenants_store: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, _ = service(tenants_store, receiver, clock)
    (pending,) = [r for r in svc.on_case(dc_case(clock())).actions if r.kind == "isolate_host"]
    barrier = threading.Barrier(2)
    results: dict[str, ActionRecord] = {}

    def approve(name: str) -> None:
        barrier.wait()
        results[name] = svc.approve("acme", pending.action_id, name)

    threads = [threading.Thread(target=approve, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    final = svc.get_action("acme", pending.action_id)
    assert final.status == "executed" and sorted(final.approvals) == ["alice", "bob"]
    assert sorted(r.status for r in results.values()) == ["awaiting_approval", "executed"]
    assert sum(1 for r in receiver.requests if r.event == "edr.isolate_host") == 1


def test_a_host_without_edr_agent_fails_clearly_and_is_not_contained(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    sqlite_tenants.upsert_assets("acme", [AssetInfo("ACME-ERP-OLD", ("10.10.0.50",), asset_class="workstation",
                                                    criticality="high", has_edr=False)], "test")  # fmt: skip
    svc, _, contained = service(sqlite_tenants, receiver, clock)
    result = svc.on_case(c2_case(clock(), host="ACME-ERP-OLD", case_id="case-old"))
    isolate = by_kind(result.actions)[("isolate_host", "ACME-ERP-OLD")]
    assert isolate.status == "failed" and "no EDR agent" in (isolate.error or "")
    assert not result.contained and contained == []
    assert not any(r.payload.get("operation") for r in receiver.requests)


def test_confidence_comes_from_the_cases_alerts(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    sure = Alert("acme", "r1", "LSASS read", "critical", "sigma", clock(), clock(), confidence=0.95,
                 entities={"host": "BER-WS-007", "user": "l.mueller", "process": "procdump64.exe"})  # fmt: skip
    asked: list[tuple[str, str]] = []
    svc, _, _ = service(sqlite_tenants, receiver, clock, alerts_for=lambda t, c: asked.append((t, c)) or [sure])
    plan = svc.plan(credential_case(clock()))
    assert asked == [("acme", "case-cred")] and plan.confidence == 0.95
    verdicts = {(i.kind, i.target): i.decision.verdict for i in plan.actions if i.decision}
    assert verdicts[("disable_account", "l.mueller")] == "run"  # 3 a.m., confident: inside authority
    unsure, _, _ = service(sqlite_tenants, receiver, clock)
    assert unsure.plan(credential_case(clock())).confidence == 0.7  # no alerts: the default


def test_invalid_targets_are_reported_once_and_never_reach_a_connector(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    svc, _, _ = service(sqlite_tenants, receiver, clock)
    case = c2_case(clock())
    case.observables.append(Observable("ip", "45.153.160.141\n0.0.0.0/0", False))
    for _ in range(2):
        svc.on_case(case)
    invalid = [r for r in sqlite_tenants.list_audit("acme", limit=1000) if r.action == "response.target.invalid"]
    assert len(invalid) == 1 and "whitespace" in invalid[0].details["reason"]
    assert {e.value for e in svc.store.list_blocks("acme", "ip")} == {"45.153.160.140"}
