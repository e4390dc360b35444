"""Playbooks: the built-in set loads, triggers match the generator's chains, bad documents are reported."""

from __future__ import annotations

import pytest

from openmdr.models import AssetInfo, Observable, TenantInfo
from openmdr.respond.planner import AssetIndex, build_plan
from openmdr.respond.playbook import PlaybookError, builtin_playbooks, load_playbooks, parse_playbook
from openmdr.respond.policy import default_policy
from tests.respond.cases import brute_case, c2_case, credential_case, dc_case, endpoint_alert, lateral_case
from tests.respond.conftest import ACME_ASSETS, ACME_DAY, ACME_NIGHT

ACME = TenantInfo("acme", timezone="Europe/Berlin", working_hours=(8, 17), networks=("10.10.0.0/16",),
                  domains=("acme.example",))  # fmt: skip


def test_builtin_playbooks_load_and_trigger_on_their_chains() -> None:
    books = builtin_playbooks()
    assert books.problems == []
    assert {p.name for p in books.playbooks} == {
        "c2-beacon", "credential-theft", "ransomware-precursors", "brute-force", "lateral-movement"
    }  # fmt: skip
    assert [p.name for p in books.matching(c2_case(ACME_NIGHT), 0.9)] == ["c2-beacon"]
    assert [p.name for p in books.matching(credential_case(ACME_NIGHT), 0.9)] == ["credential-theft"]
    assert [p.name for p in books.matching(brute_case(ACME_NIGHT), 0.9)] == ["brute-force"]
    assert [p.name for p in books.matching(dc_case(ACME_NIGHT), 0.9)] == ["ransomware-precursors"]
    assert [p.name for p in books.matching(lateral_case(ACME_NIGHT), 0.9)] == ["lateral-movement"]


def test_c2_plan_isolates_the_workstation_blocks_the_c2_and_never_the_resolver() -> None:
    case = c2_case(ACME_NIGHT)
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex(ACME_ASSETS), ACME_NIGHT, 0.9)  # fmt: skip
    got = {(i.kind, i.target): i.decision.verdict for i in plan.actions if i.decision}
    assert got == {
        ("isolate_host", "BER-WS-007"): "run",
        ("block_ip", "45.153.160.140"): "run",
        ("block_ip", "8.8.8.8"): "deny",  # allow-listed resolver
        ("block_domain", "cdn-telemetry-update.xyz"): "run",
    }
    assert not plan.working_time
    assert [i.notify for i in plan.items if i.notify] == ["soc"]


def test_ransomware_gate_turns_later_actions_into_approvals_and_dc_needs_two_people() -> None:
    case = dc_case(ACME_NIGHT)
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex(ACME_ASSETS), ACME_NIGHT, 0.9)  # fmt: skip
    isolate = next(i for i in plan.actions if i.kind == "isolate_host")
    assert isolate.decision is not None and isolate.decision.verdict == "approve"
    assert isolate.decision.approvals_required == 2 and isolate.asset_class == "domain_controller"


def test_gate_applies_to_workstation_account_actions() -> None:
    case = dc_case(ACME_NIGHT)
    case.observables = [Observable("host", "BER-WS-007", True), Observable("user", "l.mueller", True)]
    alerts = [endpoint_alert(ACME_NIGHT, "Shadow copies deleted", "BER-WS-007", "l.mueller", "vssadmin.exe")]
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex(ACME_ASSETS), ACME_NIGHT, 0.9, alerts=alerts)  # fmt: skip
    verdicts = {i.kind: i.decision.verdict for i in plan.actions if i.decision}
    assert verdicts["isolate_host"] == "run"
    assert verdicts["disable_account"] == "approve"  # policy says run off hours, the playbook gate says wait
    gate = next(i for i in plan.items if i.gate)
    assert gate.params["timeout_minutes"] == 30


def test_step_conditions_and_office_hours() -> None:
    case = brute_case(ACME_DAY)
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex(ACME_ASSETS), ACME_DAY, 0.9)  # fmt: skip
    skipped = [i.kind for i in plan.items if i.skipped]
    assert skipped == ["revoke_sessions", "disable_account"]  # no T1078: the spraying did not succeed
    block = plan.actions[0]
    assert (block.kind, block.target) == ("block_ip", "185.220.101.4")
    assert block.decision is not None and block.decision.verdict == "approve"  # medium severity: ask first


def test_unknown_host_is_treated_as_unknown_not_as_another_tenants_asset() -> None:
    case = c2_case(ACME_NIGHT, host="NYC-WS-007")  # a globex host name in an acme case
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex([AssetInfo("BER-WS-007")]), ACME_NIGHT, 0.9)  # fmt: skip
    isolate = next(i for i in plan.actions if i.kind == "isolate_host")
    assert isolate.asset_class == "unknown" and isolate.decision is not None
    assert isolate.decision.verdict == "approve"


def test_bad_playbooks_are_reported_with_every_problem() -> None:
    with pytest.raises(PlaybookError) as err:
        parse_playbook({"name": "x", "steps": [{"action": "format_disk"}, {"notify": "soc", "action": "block_ip"},
                                               {"action": "block_ip", "targets": {"type": "host"}}],
                        "trigger": {"min_severity": "apocalyptic"}, "owner": "me"})  # fmt: skip
    text = str(err.value)
    for fragment in ("unknown action 'format_disk'", "exactly one of", "type must be 'ip'", "min_severity",
                     "unknown key 'owner'"):  # fmt: skip
        assert fragment in text
    books = load_playbooks([("a.yml", "name: [unclosed"), ("b.yml", "name: b\nsteps: []\n"),
                            ("c.yml", "name: c\nsteps:\n  - notify: soc\n")])  # fmt: skip
    assert [p.name for p in books.playbooks] == ["c"]
    assert [e.source for e in books.problems] == ["a.yml", "b.yml"]


def test_invalid_targets_are_skipped_with_their_reason_never_published() -> None:
    case = c2_case(ACME_NIGHT)
    case.observables = [
        Observable("host", "BER-WS-007", True),
        Observable("ip", "45.153.160.140\n0.0.0.0/0", False),
        Observable("ip", "not-an-ip", False),
        Observable("domain", "evil..example", False),
        Observable("domain", "ok.example.net", False),
    ]
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME,
                      AssetIndex(ACME_ASSETS), ACME_NIGHT, 0.9)  # fmt: skip
    skipped = sorted(i.skipped or "" for i in plan.items if i.skipped)
    assert len(skipped) == 3 and all(s.startswith("invalid ") for s in skipped)
    assert {(i.kind, i.target) for i in plan.actions} == {("isolate_host", "BER-WS-007"),
                                                         ("block_domain", "ok.example.net")}  # fmt: skip


def test_blast_radius_limit_asks_before_isolating_many_hosts_of_one_case() -> None:
    hosts = [f"BER-WS-{i:03d}" for i in range(8)]
    case = c2_case(ACME_NIGHT)
    case.observables = [Observable("host", h, True) for h in hosts]
    assets = AssetIndex([AssetInfo(h, asset_class="workstation", criticality="low", has_edr=True) for h in hosts])
    plan = build_plan(case, builtin_playbooks().matching(case, 0.9), default_policy(), 0, ACME, assets,
                      ACME_NIGHT, 0.9)  # fmt: skip
    verdicts = [i.decision.verdict for i in plan.actions if i.decision]
    assert verdicts == ["run"] * 5 + ["approve"] * 3
    assert "blast-radius" in (plan.actions[-1].decision.reason if plan.actions[-1].decision else "")
