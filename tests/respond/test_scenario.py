"""Scenario: two tenants sharing 10.10.0.0/16, attack chains shaped like the generator's, one night.

acme's C2-beaconing workstation is isolated automatically inside its authority; the file
server reached by lateral movement waits for approval and escalates; nothing of globex
(same private addresses, a host with the same address) is touched.
"""

from __future__ import annotations

from openmdr.models import Observable
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.webhook import WebhookNotifier, WebhookSender
from openmdr.respond.service import ResponseService
from openmdr.store.state import StateStore
from tests.respond.cases import c2_case, lateral_alerts, lateral_case
from tests.respond.conftest import Receiver


def test_one_night_of_two_tenants(tenants_store: StateStore, receiver: Receiver, clock: ManualClock) -> None:
    registry = ConnectorRegistry()
    registry.add(WebhookEdrConnector(WebhookSender(receiver.url, receiver.secret)), "acme")
    registry.add(WebhookEdrConnector(WebhookSender(receiver.url, receiver.secret)), "globex")
    contained: dict[str, object] = {}
    svc = ResponseService(tenants_store, registry, clock, notifiers={"default": WebhookNotifier(
        WebhookSender(receiver.url, receiver.secret), sleep=lambda s: None)}, retry=RetryPolicy(attempts=2),
        sleep=lambda s: None, on_contained=lambda t, c, at: contained.__setitem__(f"{t}/{c}", at))  # fmt: skip

    # 03:00 Berlin: the C2 chain's case arrives 30 s after detection.
    c2 = c2_case(clock())
    result = svc.on_case(c2)
    assert result.contained
    assert c2.sla.detected_at is not None and result.containment.contained_at is not None
    detect_to_contain = (result.containment.contained_at - c2.sla.detected_at).total_seconds()
    assert detect_to_contain == 30.0  # contained the moment the case arrived, nobody woken up

    # 03:20: lateral movement onto the file server with the stolen admin account.
    clock.advance(minutes=20)
    lateral = lateral_case(clock())
    lateral.observables.append(Observable("user", "CORP\\adm-l.mueller", True))
    pending = svc.on_case(lateral, lateral_alerts(clock())).actions
    states = {(r.kind, r.target): r.status for r in pending}
    assert states[("isolate_host", "ACME-FS01")] == "awaiting_approval"
    assert states[("kill_process", "PSEXESVC.exe")] == "awaiting_approval"
    assert states[("revoke_sessions", "CORP\\adm-l.mueller")] == "awaiting_approval"  # privileged: two people
    assert "acme/case-lateral" not in contained
    clock.advance(minutes=16)
    escalated = svc.tick()
    assert {r.status for r in escalated} == {"escalated"} and len(escalated) == 3
    assert ("acme", "acme-fs01") not in receiver.isolated

    # the duty manager approves the isolation after the escalation; the rest expires
    fs = next(r for r in escalated if r.kind == "isolate_host")
    assert svc.approve("acme", fs.action_id, "duty-manager@mdr").status == "executed"
    clock.advance(minutes=16)
    assert {r.status for r in svc.tick()} == {"expired"}
    assert "acme/case-lateral" in contained  # decided: isolation executed, the rest expired

    # nothing of globex was touched, although it uses the same addresses and a host at 10.10.10.27
    edr_calls = [r.payload for r in receiver.requests if r.payload.get("operation")]
    assert {p["tenant"] for p in edr_calls} == {"acme"}
    assert {(p["tenant"], p["host"].lower()) for p in edr_calls} == {("acme", "ber-ws-007"), ("acme", "acme-fs01")}
    assert svc.list_actions("globex") == [] and svc.store.list_blocks("globex") == []
    assert tenants_store.list_audit("globex", limit=1000) == [
        r for r in tenants_store.list_audit("globex", limit=1000) if not r.action.startswith("response.")
    ]
    assert tenants_store.verify_audit().ok
