"""One attack across identity, endpoint and network alerts, inside realistic background noise.

The tenant has the usual shared infrastructure (a DNS server, a proxy, a VPN gateway, a
domain controller, a busy file server); background alerts touch all of it.  The attack
must become exactly one case holding all its alerts and nothing else, with an ATT&CK
kill-chain timeline; no background case may rank above medium.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from openmdr.correlate import CaseService
from openmdr.models import AssetInfo, Event, TenantInfo, events_to_table
from openmdr.models.alert import severity_rank
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore
from tests.correlate.builders import T0, Clock, alert

INVENTORY = [
    AssetInfo("ws-alice-01", ("10.20.0.15",), owner="alice", criticality="medium"),
    AssetInfo("fs01", ("10.20.0.40",), criticality="high", asset_class="server"),
    AssetInfo("dns01", ("10.20.0.53",), criticality="high", asset_class="network"),
    AssetInfo("proxy01", ("10.20.0.80",), criticality="high", asset_class="network"),
    AssetInfo("vpn01", ("10.20.0.1",), criticality="high", asset_class="network"),
    AssetInfo("dc01", ("10.20.0.10",), criticality="critical", asset_class="domain_controller"),
] + [AssetInfo(f"ws-{i:02d}", (f"10.20.1.{i}",)) for i in range(30)]

C2 = "185.220.101.4"


def attack_alerts() -> list:
    """Identity -> endpoint -> network: the chain of one intrusion, in the order it was detected."""
    return [
        alert("spray", 60, source="analytics:password_spray", severity="medium", user="alice", src_ip="45.155.205.10",
              host="vpn01", attack=["T1110.003"], details={"channel": "identity"}, evidence=["ev-spray"]),
        alert("new-country", 64, source="analytics:new_country_logon", severity="medium", user="CORP\\alice",
              src_ip="45.155.205.10", host="vpn01", attack=["T1078"], tactics=["initial_access"],
              details={"channel": "identity"}, evidence=["ev-logon"]),
        alert("office-ps", 80, severity="high", host="ws-alice-01", user="CORP\\alice",
              process="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
              parent_process="C:\\Program Files\\Microsoft Office\\WINWORD.EXE", attack=["T1059.001"],
              tactics=["execution"], details={"logsource": {"product": "windows", "category": "process_creation"}},
              evidence=["ev-ps"]),
        alert("run-key", 82, severity="high", host="ws-alice-01", user="alice", attack=["T1547.001"],
              tactics=["persistence"], details={"logsource": {"product": "windows", "category": "registry_set"}},
              evidence=["ev-run"]),
        alert("beacon", 90, source="analytics:beaconing", severity="high", src_ip="10.20.0.15", dst_ip=C2,
              domain="cdn-update.example", attack=["T1071.001"], tactics=["command_and_control"],
              evidence=["ev-beacon"]),
        alert("lsass", 105, severity="critical", host="ws-alice-01", user="alice", attack=["T1003.001"],
              tactics=["credential_access"], evidence=["ev-lsass"],
              details={"logsource": {"product": "windows", "category": "process_access"}}),
        alert("smb-lateral", 130, source="analytics:lateral_movement", severity="high", user="alice",
              src_ip="10.20.0.15", dst_ip="10.20.0.40", attack=["T1021.002"], tactics=["lateral_movement"],
              evidence=["ev-smb"]),
        alert("exfil", 160, source="analytics:exfiltration_volume", severity="high", src_ip="10.20.0.40", dst_ip=C2,
              domain="cdn-update.example", attack=["T1048"], tactics=["exfiltration"], evidence=["ev-exfil"]),
    ]  # fmt: skip


def background_alerts() -> list:
    """What every tenant produces all day: noisy but benign, touching the shared infrastructure."""
    out = []
    for i in range(30):
        host = f"ws-{i:02d}"
        out.append(
            alert(
                "dns-rare-tld",
                50 + i * 4,
                severity="low",
                source="analytics:dns_rare_tld",
                host=host,
                src_ip=f"10.20.1.{i}",
                dst_ip="10.20.0.53",
                domain="update.example.net",
            )
        )
        out.append(
            alert(
                "proxy-category",
                52 + i * 4,
                severity="low",
                src_ip=f"10.20.1.{i}",
                dst_ip="10.20.0.80",
                details={"logsource": {"product": "proxy"}},
            )
        )
        out.append(
            alert(
                "failed-logons",
                53 + i * 4,
                severity="low",
                source="analytics:failed_logons",
                host="dc01",
                user=f"user{i:02d}",
                details={"channel": "identity"},
            )
        )
        out.append(
            alert(
                "share-enum",
                40 + i * 2,
                severity="low",
                host="fs01",
                user=f"user{i:02d}",
                details={"logsource": {"product": "windows", "service": "security"}},
            )
        )
        out.append(
            alert(
                "vpn-logon",
                45 + i * 5,
                severity="informational",
                source="analytics:vpn_logon",
                host="vpn01",
                user=f"user{i:02d}",
                src_ip=f"198.51.100.{i + 1}",
            )
        )
    out.append(
        alert(
            "schtask",
            100,
            severity="medium",
            host="ws-07",
            user="user07",
            attack=["T1053.005"],
            tactics=["persistence"],
            details={"logsource": {"product": "windows", "category": "process_creation"}},
        )
    )
    return out  # fmt: skip


def interleave(attack: list, background: list) -> list:
    """Arrival order: by detection time, as the stream would deliver them."""
    return sorted(attack + background, key=lambda a: (a.first_seen, a.rule_id))


@pytest.fixture()
def setup(state_store: StateStore, tmp_path: Path) -> tuple[CaseService, EventLake]:
    state_store.create_tenant(TenantInfo(name="acme", networks=("10.20.0.0/16",)), actor="t")
    state_store.upsert_assets("acme", INVENTORY, actor="t")
    lake = EventLake(tmp_path / "lake")
    events = [
        Event(time=T0 + timedelta(minutes=79, seconds=50), source_format="winevent_json", fields={}, tenant="acme",
              event_id="ev-ps", host="ws-alice-01", user="alice", action="process_create",
              process_image="powershell.exe", process_command_line="powershell -enc SQBFAFgA",
              ingested_at=T0),
        Event(time=T0 + timedelta(minutes=160), source_format="zeek_tsv", fields={}, tenant="acme",
              event_id="ev-exfil", src_ip="10.20.0.40", dst_ip=C2, action="conn", bytes_out=900_000_000,
              ingested_at=T0),
    ]  # fmt: skip
    lake.append(events_to_table(events))
    return CaseService(state_store, clock=Clock(T0 + timedelta(hours=3)), lake=lake), lake


def test_the_attack_is_one_pure_complete_case_and_noise_stays_low(setup) -> None:
    service, _ = setup
    attack = attack_alerts()
    attack_ids = {a.alert_id for a in attack}
    changes = service.add_alerts(interleave(attack, background_alerts()))
    assert not [c for c in changes if c.kind == "rejected"]
    cases = service.list("acme", limit=1000)
    holding = [c for c in cases if attack_ids & set(c.alert_ids)]
    assert len(holding) == 1, [(c.case_id, c.title) for c in holding]
    case = holding[0]
    assert set(case.alert_ids) == attack_ids  # complete and pure
    assert {"identity", "endpoint", "network"} <= set(case.channels)
    assert severity_rank(case.severity) >= severity_rank("high") and case.priority <= 2
    for other in cases:
        if other.case_id != case.case_id:
            assert severity_rank(other.severity) <= severity_rank("medium"), other.title
    assert any("host ws-alice-01 (10.20.0.15)" in r for r in case.reasons)
    assert all(r for r in case.reasons)
    external = {o.value for o in case.observables if not o.internal}
    assert {C2, "45.155.205.10", "cdn-update.example"} <= external
    assert "10.20.0.40" not in external
    assert {"ev-spray", "ev-ps", "ev-exfil"} <= set(case.evidence)


def test_the_timeline_tells_the_kill_chain_with_attack_names_and_lake_events(setup) -> None:
    service, _ = setup
    changes = service.add_alerts(interleave(attack_alerts(), background_alerts()))
    case_id = next(c.case_id for c in changes if c.kind == "opened" and "spray" in c.reason)
    timeline = service.timeline("acme", case_id)
    assert timeline is not None
    assert timeline.progression_text() == (
        "Initial Access -> Execution -> Persistence -> Credential Access -> Lateral Movement -> Command and Control"
        " -> Exfiltration"
    )  # the Enterprise matrix's own column order
    assert [s.tactic_id for s in timeline.progression][:2] == ["TA0001", "TA0002"]
    times = [e.time for e in timeline.entries]
    assert times == sorted(times)
    by_alert = {e.title: e for e in timeline.entries if e.kind == "alert"}
    assert by_alert["rule office-ps"].techniques == [("T1059.001", "PowerShell")]
    assert by_alert["rule spray"].tactics == [("TA0006", "Credential Access")]  # derived from T1110.003
    events = [e for e in timeline.entries if e.kind == "event"]
    assert [e.event_id for e in events] == ["ev-ps", "ev-exfil"]
    assert events[0].alert_id == by_alert["rule office-ps"].alert_id
    assert timeline.events_missing == 6
