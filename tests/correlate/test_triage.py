"""Risk score, suppression matching, case summaries and the packaged ATT&CK catalog."""

from __future__ import annotations

from datetime import timedelta

from openmdr.correlate import attack_catalog, risk_score, summarize_case
from openmdr.correlate.triage import Suppression, first_match, internal_checker
from tests.correlate.builders import T0, alert


def test_risk_multiplies_severity_confidence_criticality_and_reputation():
    high = alert("r", 0, severity="high")
    assert risk_score(high, "critical") == 52.5  # 100 x 0.75 x 0.7 x 1.0
    assert risk_score(high, "low") == 21.0
    assert risk_score(high, None) == risk_score(high, "medium") == 31.5
    ioc = alert("ioc", 0, severity="high", source="ioc", details={"reputation": 90})
    assert risk_score(ioc, "critical") == 47.2
    assert risk_score(alert("i", 0, severity="informational"), "low") == 2.8


def test_suppressions_match_their_criteria_and_expire():
    rule = Suppression(
        1,
        "acme",
        "scanner",
        "ann",
        T0,
        rule_id="scan",
        entities={"user": "CORP\\Svc_Scan"},
        expires_at=T0 + timedelta(hours=1),
    )
    hit = alert("scan", 0, user="svc_scan@corp.example")
    assert first_match([rule], hit, T0) is rule
    assert first_match([rule], hit, T0 + timedelta(hours=2)) is None
    assert first_match([rule], alert("other", 0, user="svc_scan"), T0) is None
    assert first_match([rule], alert("scan", 0, tenant="globex", user="svc_scan"), T0) is None


def test_summary_escalates_only_high_multi_stage_stories():
    noise = [
        alert(
            "a",
            0,
            severity="medium",
            host="ws1",
            tactics=["initial_access", "persistence"],
            details={"channel": "identity"},
        ),
        alert("b", 1, severity="low", host="ws1", tactics=["lateral_movement"], details={"channel": "network"}),
    ]
    summary = summarize_case(noise, {a.alert_id: 10.0 for a in noise})
    assert summary.severity == "medium" and summary.tactics == ["initial_access", "persistence", "lateral_movement"]
    attack = [*noise, alert("c", 2, severity="high", host="ws1", attack=["T1003.001"], details={"channel": "endpoint"})]
    summary = summarize_case(attack, {a.alert_id: 40.0 for a in attack}, {"ws1": "critical"})
    assert summary.severity == "critical" and summary.priority == 1
    assert summary.tactics == ["initial_access", "persistence", "credential_access", "lateral_movement"]
    assert summary.risk_score == 40.0 + 5 * 3 + 5 * 2


def test_internal_marking_uses_tenant_networks_and_private_ranges():
    internal = internal_checker(["198.18.0.0/15"])
    assert internal("ip", "10.1.2.3") and internal("ip", "198.18.5.5") and internal("host", "ws01")
    assert not internal("ip", "203.0.113.9") and not internal("domain", "evil.example")


def test_attack_names_and_order_come_from_the_packaged_data():
    catalog = attack_catalog()
    assert catalog.technique("t1059.001").name == "PowerShell"
    assert catalog.tactic("initial-access").external_id == "TA0001"
    assert catalog.tactic("TA0040").name == "Impact"
    order = [t.key for t in catalog.tactics]
    assert (
        order.index("initial_access") < order.index("execution") < order.index("exfiltration") < order.index("impact")
    )
    assert catalog.tactics_of(["T1110.003"]) == ["credential_access"]
    assert catalog.technique("T9999") is None
