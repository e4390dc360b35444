"""Response on cases made by the real case service: alerts -> correlated case -> response -> SLA contained_at."""

from __future__ import annotations

from datetime import timedelta

from openmdr.correlate import CaseService
from openmdr.models import Alert
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.webhook import WebhookActionConnector, WebhookSender
from openmdr.respond.service import ResponseService
from openmdr.store.state import StateStore
from tests.respond.conftest import Receiver


def test_correlated_c2_and_lateral_movement_case(
    sqlite_tenants: StateStore, receiver: Receiver, clock: ManualClock
) -> None:
    t = clock()
    cases = CaseService(sqlite_tenants, clock=clock)
    beacon = Alert("acme", "beacon", "Periodic beaconing to 45.153.160.140", "high", "analytics:beacon",
                   t - timedelta(hours=1), t - timedelta(minutes=2), attack=["T1071.001"],
                   tactics=["command-and-control"], confidence=0.85,
                   entities={"host": "BER-WS-007", "src_ip": "10.10.10.27", "dst_ip": "45.153.160.140",
                             "domain": "cdn-telemetry-update.xyz"})  # fmt: skip
    winrm = Alert("acme", "winrm", "WinRM lateral movement", "high", "sigma", t - timedelta(minutes=1),
                  t - timedelta(minutes=1), attack=["T1021.006"], tactics=["lateral-movement"], confidence=0.8,
                  entities={"host": "ACME-FS01", "src_ip": "10.10.10.27", "user": "ext.pnowak"})  # fmt: skip
    (case_id,) = {c.case_id for c in cases.add_alerts([beacon, winrm])}
    case = cases.get("acme", case_id)
    assert case is not None

    registry = ConnectorRegistry()
    registry.add(WebhookEdrConnector(WebhookSender(receiver.url, receiver.secret)), "acme")
    registry.add(WebhookActionConnector("idp", WebhookSender(receiver.url, receiver.secret), ["revoke_sessions"]),
                 "acme")  # fmt: skip
    svc = ResponseService(
        sqlite_tenants, registry, clock, retry=RetryPolicy(attempts=2), sleep=lambda s: None,
        alerts_for=cases.alerts, on_contained=lambda tn, c, at: cases.mark_contained(tn, c, "response", at=at),
    )  # fmt: skip
    result = svc.on_case(case)
    assert result.plan.playbooks == ["c2-beacon", "lateral-movement"] and result.plan.confidence == 0.85
    states = {(r.kind, r.target): r.status for r in result.actions}
    assert states == {
        ("isolate_host", "BER-WS-007"): "executed",
        ("isolate_host", "ACME-FS01"): "awaiting_approval",
        ("block_ip", "45.153.160.140"): "executed",
        ("block_domain", "cdn-telemetry-update.xyz"): "executed",
        ("revoke_sessions", "ext.pnowak"): "executed",  # 03:00, confidence 0.85: inside authority
    }
    assert not result.contained
    clock.advance(minutes=4)
    server = next(r for r in result.actions if r.target == "ACME-FS01")
    svc.approve("acme", server.action_id, "k.weber@acme.example")
    updated = cases.get("acme", case_id)
    assert updated is not None and updated.status == "contained"
    assert updated.sla.contained_at == clock()
    assert updated.sla.time_to_contain() is not None
