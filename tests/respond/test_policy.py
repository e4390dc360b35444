"""The authority policy as a decision table: asset class x severity x hour x action -> run / approve / deny."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openmdr.models import TenantInfo
from openmdr.respond.policy import (
    ActionContext,
    AllowList,
    AuthorityPolicy,
    AuthorityRule,
    PolicyError,
    default_policy,
    evaluate,
    is_privileged_account,
    is_working_time,
    parse_policy,
)

POLICY = default_policy()


def ctx(
    kind: str, asset_class: str, severity: str, working: bool, confidence: float = 0.9, **kw: object
) -> ActionContext:
    target_type = {"isolate_host": "host", "kill_process": "process", "quarantine_file": "file",
                   "disable_account": "user", "revoke_sessions": "user", "block_ip": "ip",
                   "block_domain": "domain", "block_hash": "hash"}[kind]  # fmt: skip
    values: dict[str, object] = {"target": kw.pop("target", "x"), "criticality": kw.pop("criticality", None)}
    values.update(kw)
    return ActionContext(kind, target_type=target_type, asset_class=asset_class, severity=severity,
                         confidence=confidence, working_time=working, **values)  # type: ignore[arg-type]  # fmt: skip


# (action, class, severity, working hours?, criticality) -> verdict, approvals required
TABLE = [
    ("isolate_host", "workstation", "high", False, "low", "run", 0),
    ("isolate_host", "workstation", "high", True, "low", "run", 0),
    ("isolate_host", "workstation", "medium", False, "medium", "run", 0),
    ("isolate_host", "workstation", "low", False, "low", "approve", 1),  # below the rule's minimum severity
    ("kill_process", "workstation", "high", True, "low", "run", 0),
    ("quarantine_file", "workstation", "critical", False, "low", "run", 0),
    ("isolate_host", "workstation", "critical", False, "critical", "approve", 2),  # critical asset: two people
    ("isolate_host", "server", "critical", False, "high", "approve", 1),
    ("isolate_host", "server", "high", True, "high", "approve", 1),
    ("kill_process", "server", "high", False, "high", "approve", 1),
    ("isolate_host", "server", "critical", False, "critical", "approve", 2),
    ("isolate_host", "domain_controller", "critical", False, "critical", "approve", 2),
    ("kill_process", "domain_controller", "high", True, "high", "approve", 1),
    ("isolate_host", "unknown", "high", False, None, "approve", 1),
    ("block_ip", "indicator", "high", False, None, "run", 0),
    ("block_ip", "indicator", "medium", False, None, "approve", 1),
    ("block_domain", "indicator", "critical", True, None, "run", 0),
    ("block_hash", "indicator", "high", True, None, "run", 0),
    ("disable_account", "account", "high", False, None, "run", 0),  # 3 a.m.: nobody to ask
    ("disable_account", "account", "high", True, None, "approve", 1),  # office hours: ask
    ("revoke_sessions", "account", "critical", False, None, "run", 0),
    ("disable_account", "account", "medium", False, None, "approve", 1),
    ("disable_account", "privileged_account", "critical", False, "critical", "approve", 2),
]


@pytest.mark.parametrize(("kind", "asset_class", "severity", "working", "crit", "verdict", "approvals"), TABLE)
def test_default_policy_decision_table(
    kind: str, asset_class: str, severity: str, working: bool, crit: str | None, verdict: str, approvals: int
) -> None:
    decision = evaluate(POLICY, ctx(kind, asset_class, severity, working, criticality=crit))
    assert (decision.verdict, decision.approvals_required) == (verdict, approvals), decision.reason
    if verdict == "approve":
        assert decision.approval_timeout_minutes == 15


def test_low_confidence_needs_approval_and_dc_is_never_automatic_even_if_a_rule_says_run() -> None:
    assert evaluate(POLICY, ctx("isolate_host", "workstation", "high", False, confidence=0.4)).verdict == "approve"
    eager = AuthorityPolicy(rules=(AuthorityRule("everything", "run"),))
    d = evaluate(eager, ctx("isolate_host", "domain_controller", "critical", False, criticality="high"))
    assert d.verdict == "approve" and "never automatic" in d.reason


def test_allow_list_wins_over_every_rule() -> None:
    eager = AuthorityPolicy(
        rules=(AuthorityRule("everything", "run"),),
        allow_list=AllowList(networks=("8.8.8.8/32", "10.10.0.0/29"), domains=("acme.example",), hosts=("ACME-GW01",),
                             users=("breakglass",), hashes=("AB" * 16,)),
    )  # fmt: skip
    cases = [
        ctx("block_ip", "indicator", "critical", False, target="8.8.8.8"),
        ctx("block_domain", "indicator", "critical", False, target="login.acme.example"),
        ctx("isolate_host", "network", "critical", False, target="acme-gw01.corp.acme.example", asset="ACME-GW01"),
        ctx("isolate_host", "server", "critical", False, target="ACME-X", asset="ACME-X", asset_ips=("10.10.0.3",)),
        ctx("disable_account", "account", "critical", False, target="CORP\\breakglass"),
        ctx("block_hash", "indicator", "critical", False, target="ab" * 16),
    ]
    for c in cases:
        d = evaluate(eager, c)
        assert d.verdict == "deny" and d.rule == "allow_list", (c, d)
    assert evaluate(eager, ctx("block_ip", "indicator", "critical", False, target="8.8.4.4")).verdict == "run"
    assert evaluate(POLICY, ctx("block_ip", "indicator", "critical", False, target="8.8.8.8")).verdict == "deny"


def test_internal_addresses_are_never_blocked_at_the_edge() -> None:
    d = evaluate(POLICY, ctx("block_ip", "indicator", "critical", False, target="10.10.10.27", target_internal=True))
    assert d.verdict == "deny" and "isolate the host" in d.reason


def test_working_time_is_tenant_local() -> None:
    seoul = TenantInfo("initech", timezone="Asia/Seoul", working_hours=(9, 18))
    berlin = TenantInfo("acme", timezone="Europe/Berlin", working_hours=(8, 17))
    monday_01_utc = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 10:00 in Seoul, 02:00 in Berlin
    assert is_working_time(seoul, monday_01_utc) and not is_working_time(berlin, monday_01_utc)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    assert not is_working_time(berlin, saturday)


def test_privileged_account_patterns() -> None:
    assert is_privileged_account(POLICY, "CORP\\adm-l.mueller")
    assert is_privileged_account(POLICY, "jsmith-adm@globex.example")
    assert is_privileged_account(POLICY, "svc_backup")
    assert not is_privileged_account(POLICY, "l.mueller")


def test_policy_document_round_trip_and_validation() -> None:
    doc = POLICY.to_dict()
    assert parse_policy(doc) == POLICY
    with pytest.raises(PolicyError) as err:
        parse_policy({"rules": [{"mode": "maybe", "actions": ["nuke_host"], "classes": ["mainframe"],
                                 "min_confidence": 2, "hours": "lunch"}],
                      "allow_list": {"networks": ["not-a-net"]}, "colour": "red"})  # fmt: skip
    text = str(err.value)
    for fragment in ("mode must be", "unknown action 'nuke_host'", "unknown class 'mainframe'", "min_confidence",
                     "hours must be", "bad network", "unknown policy key 'colour'"):  # fmt: skip
        assert fragment in text
