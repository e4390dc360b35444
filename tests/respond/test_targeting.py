"""Targeting a customer would accept: OS binaries, sprayed victims and network devices are never acted on.

Hand-built cases and alerts shaped like the demo week's (globex password spraying followed by
shadow-copy deletion with Windows' own tools, acme's VPN logon on the FortiGate).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from openmdr.models import Alert, AssetInfo, Case, Observable, SlaClock, TenantInfo
from openmdr.respond.clock import ManualClock
from openmdr.respond.evidence import case_evidence
from openmdr.respond.guards import critical_process, image_of, network_device, normalize_path, protected_file
from openmdr.respond.planner import AssetIndex, ResponsePlan, build_plan
from openmdr.respond.playbook import PlaybookError, builtin_playbooks, parse_playbook
from openmdr.respond.policy import (
    ActionContext,
    AuthorityPolicy,
    AuthorityRule,
    default_policy,
    evaluate,
    parse_policy,
)
from openmdr.respond.service import ResponseService
from openmdr.store.state import StateStore
from tests.respond.cases import endpoint_alert
from tests.respond.conftest import ACME_ASSETS, ACME_NIGHT

GLOBEX = TenantInfo("globex", timezone="America/New_York", working_hours=(9, 18), networks=("10.10.0.0/16",),
                    domains=("globex.example",))  # fmt: skip
ACME = TenantInfo("acme", timezone="Europe/Berlin", working_hours=(8, 17), networks=("10.10.0.0/16",),
                  domains=("acme.example",))  # fmt: skip
GLOBEX_ASSETS = [AssetInfo("NYC-WS-005", ("10.10.10.25",), "jmoore", "low", "workstation", True)]
SPRAYED = ["administrator", "cthomas", "dhernandez", "emiller", "helpdesk", "jlee", "jmoore", "jwilson", "kgarcia",
           "llee", "lmoore", "mgarcia", "nharris", "nwhite", "pdavis", "tjackson", "tlopez"]  # fmt: skip
VSS = "C:\\Windows\\System32\\vssadmin.exe"
WMIC = "C:\\Windows\\System32\\wbem\\WMIC.exe"
EVIL = "C:\\Users\\jmoore\\AppData\\Local\\Temp\\lock.exe"
VSS_SHA, WMIC_SHA, EVIL_SHA = "17" * 32, "c5" * 32, "e1" * 32


def spray_alerts(at: datetime, succeeded: bool = True) -> list[Alert]:
    """Spraying against 17 accounts from one address; optionally jmoore's logon after the failures."""
    spray = Alert("globex", "analytics.password_spray", "Password spraying from 200.98.23.244 against 17 users",
                  "high", "analytics:password_spray", at, at, attack=["T1110.003"],
                  entities={"src_ip": "200.98.23.244", "user": SPRAYED},
                  details={"failures": "23", "users": str(SPRAYED)})  # fmt: skip
    if not succeeded:
        return [spray]
    success = Alert("globex", "analytics.logon_after_failures", "Successful logon after 23 failures", "high",
                    "analytics:logon_after_failures", at, at, attack=["T1110", "T1078"],
                    entities={"src_ip": "200.98.23.244", "user": "jmoore"},
                    details={"failures": "23", "other_party": str([u for u in SPRAYED if u != "jmoore"])})  # fmt: skip
    vpn = Alert("globex", "analytics.new_country_logon", "Logon by jmoore from new country BR", "medium",
                "analytics:new_country_logon", at, at, attack=["T1078"],
                entities={"user": "jmoore", "host": "fgt-globex-01", "src_ip": "200.98.23.244"})  # fmt: skip
    return [spray, success, vpn]


def ransomware_alerts(at: datetime) -> list[Alert]:
    """jmoore runs vssadmin and wmic (OS binaries) and an attacker tool on NYC-WS-005."""
    host = "NYC-WS-005.ad.globex.example"
    out = [
        endpoint_alert(at, "Shadow copies deleted", host, "GLOBEX\\jmoore", VSS, "globex", hash=VSS_SHA,
                       parent_process="C:\\Windows\\System32\\cmd.exe",
                       command_line="vssadmin.exe delete shadows /all /quiet"),
        endpoint_alert(at, "Shadow copies deleted", host, "jmoore@globex.example", WMIC, "globex", hash=WMIC_SHA),
        endpoint_alert(at, "Ransomware note written", host, "jmoore", EVIL, "globex", hash=EVIL_SHA, file=EVIL),
    ]  # fmt: skip
    for a in out:
        a.attack = ["T1490"]
    return out


def spray_then_ransomware_case(at: datetime) -> Case:
    """The correlated globex case: 17 sprayed users, the VPN gateway, the workstation and what ran on it."""
    observables = [Observable("ip", "200.98.23.244", False, "source")]
    observables += [Observable("user", u, True) for u in SPRAYED]
    observables += [
        Observable("host", "fgt-globex-01", True), Observable("host", "NYC-WS-005.ad.globex.example", True),
        Observable("process", VSS, True), Observable("process", WMIC, True), Observable("process", EVIL, True),
        Observable("process", "C:\\Windows\\System32\\cmd.exe", True),
        Observable("file", VSS, True), Observable("file", "%SystemRoot%\\System32\\wbem\\WMIC.exe", True),
        Observable("file", EVIL, True),
        Observable("hash_sha256", VSS_SHA), Observable("hash_sha256", WMIC_SHA), Observable("hash_sha256", EVIL_SHA),
    ]  # fmt: skip
    return Case(
        case_id="C-spray", tenant="globex", title="Password spraying from 200.98.23.244 against 17 users",
        severity="critical", techniques=["T1110.003", "T1110", "T1078", "T1490"], tactics=["credential-access"],
        sources=["analytics:password_spray", "analytics:logon_after_failures", "sigma"], observables=observables,
        sla=SlaClock(detected_at=at), created_at=at,
    )  # fmt: skip


def plan_for(case: Case, alerts: list[Alert], tenant: TenantInfo = GLOBEX, assets: list[AssetInfo] | None = None,
             policy: AuthorityPolicy | None = None) -> ResponsePlan:  # fmt: skip
    index = AssetIndex(GLOBEX_ASSETS if assets is None else assets)
    return build_plan(case, builtin_playbooks().matching(case, 0.9), policy or default_policy(), 0, tenant, index,
                      ACME_NIGHT, 0.9, alerts=alerts)  # fmt: skip


def acted(plan: ResponsePlan, kind: str) -> set[str]:
    return {i.target or "" for i in plan.actions if i.kind == kind}


def skipped(plan: ResponsePlan, kind: str) -> dict[str, str]:
    return {i.target or "": i.skipped or "" for i in plan.items if i.kind == kind and i.skipped and i.target}


# ---------------------------------------------------------------- 1. protected binaries
def test_os_binaries_are_killed_but_never_quarantined_or_blocked() -> None:
    plan = plan_for(spray_then_ransomware_case(ACME_NIGHT), [*spray_alerts(ACME_NIGHT), *ransomware_alerts(ACME_NIGHT)])
    assert {VSS, WMIC, EVIL} <= acted(plan, "kill_process")  # stopping the running instance is fine
    assert acted(plan, "quarantine_file") == {EVIL}
    assert acted(plan, "block_hash") == {EVIL_SHA}
    files, hashes = skipped(plan, "quarantine_file"), skipped(plan, "block_hash")
    assert set(files) == {VSS, "%SystemRoot%\\System32\\wbem\\WMIC.exe"} and set(hashes) == {VSS_SHA, WMIC_SHA}
    assert all(r.startswith("protected: ") and "operating-system" in r for r in (*files.values(), *hashes.values()))
    assert "vssadmin.exe" in hashes[VSS_SHA].lower() and "kill the process instead" in hashes[VSS_SHA]
    assert all(i.guard == "protected" for i in plan.items if i.skipped and i.skipped.startswith("protected"))


def test_without_alerts_an_os_path_is_still_protected_but_a_hash_cannot_be_recognised() -> None:
    plan = plan_for(spray_then_ransomware_case(ACME_NIGHT), [])
    assert VSS in skipped(plan, "quarantine_file")
    assert VSS_SHA in acted(plan, "block_hash")  # nothing says what the hash is: the case service should say


def test_the_policy_itself_refuses_protected_targets_whatever_its_rules_say() -> None:
    eager = AuthorityPolicy(rules=(AuthorityRule("everything", "run"),))

    def ctx(
        kind: str, target: str, target_type: str, asset_class: str = "workstation", asset: str | None = "WS1"
    ) -> ActionContext:
        return ActionContext(kind, target, target_type, asset_class, "critical", 1.0, False, asset=asset)

    for c in (
        ctx("quarantine_file", "c:\\windows\\syswow64\\WindowsPowerShell\\v1.0\\powershell.exe", "file"),
        ctx("quarantine_file", "\\\\?\\C:\\Windows\\WinSxS\\amd64_x\\bcdedit.exe", "file"),
        ctx("quarantine_file", "/usr/bin/curl", "file"),
        ctx("quarantine_file", "vssadmin.exe", "file"),
        ctx("kill_process", "C:\\Windows\\System32\\lsass.exe", "process"),
        ctx("kill_process", "csrss.exe", "process"),
        ctx("isolate_host", "fgt-globex-01", "host", "unknown", "fgt-globex-01"),
        ctx("isolate_host", "ACME-GW01", "host", "network", "ACME-GW01"),
        ctx("kill_process", "evil.exe", "process", "network", "edge-router"),
    ):
        d = evaluate(eager, c)
        assert d.verdict == "deny" and d.rule == "protected", (c, d)
    for c in (
        ctx("quarantine_file", EVIL, "file"),
        ctx("kill_process", VSS, "process"),
        ctx("isolate_host", "NYC-WS-005", "host", "workstation", "NYC-WS-005"),
        ctx("quarantine_file", "C:\\Program Files\\7-Zip\\7z.exe", "file"),
    ):
        assert evaluate(eager, c).verdict == "run", c
    tenant = parse_policy({**eager.to_dict(), "protected_paths": ["C:\\Program Files\\7-Zip\\*"],
                           "network_devices": ["edge-*"]})  # fmt: skip
    assert evaluate(tenant, ctx("quarantine_file", "C:\\Program Files\\7-Zip\\7z.exe", "file")).verdict == "deny"
    assert evaluate(tenant, ctx("isolate_host", "edge-01", "host", "unknown", "edge-01")).verdict == "deny"
    assert parse_policy(tenant.to_dict()) == tenant


def test_guard_helpers_normalize_paths_and_command_lines() -> None:
    assert normalize_path('"C:\\Windows\\System32\\cmd.exe"') == "?:/windows/system32/cmd.exe"
    assert normalize_path("%windir%\\explorer.exe") == "?:/windows/explorer.exe"
    assert protected_file("D:\\Windows\\System32\\x.dll") is not None  # the OS on another drive
    assert protected_file("C:\\Windows.old.evil\\x.exe") is None and protected_file("C:\\Temp\\cmd.exe") is None
    assert image_of('"C:\\Program Files\\7-Zip\\7z.exe" a -t7z x.7z') == "C:\\Program Files\\7-Zip\\7z.exe"
    assert image_of("vssadmin.exe delete shadows /all /quiet") == "vssadmin.exe"
    assert critical_process("C:\\Windows\\system32\\svchost.exe -k netsvcs") is not None
    assert critical_process("C:\\Windows\\System32\\vssadmin.exe") is None
    assert network_device("FGT-ACME-01.corp.acme.example", None) is not None
    assert network_device("BER-WS-004", "workstation") is None


def test_protected_targets_are_audited_once_and_never_reach_a_block_list(
    sqlite_tenants: StateStore, clock: ManualClock
) -> None:
    sqlite_tenants.upsert_assets("globex", GLOBEX_ASSETS, "test")
    case = spray_then_ransomware_case(clock())
    alerts = [*spray_alerts(clock()), *ransomware_alerts(clock())]
    svc = ResponseService(sqlite_tenants, clock=clock, sleep=lambda s: None, alerts_for=lambda t, c: alerts)

    def protected() -> list[dict[str, object]]:
        return [r.details for r in sqlite_tenants.list_audit("globex", limit=5000)
                if r.action == "response.target.protected"]  # fmt: skip

    svc.on_case(case)
    audit = protected()
    assert {str(d["target"]) for d in audit} == {"fgt-globex-01", VSS, "%SystemRoot%\\System32\\wbem\\WMIC.exe",
                                                 VSS_SHA, WMIC_SHA}  # fmt: skip
    svc.on_case(case)
    assert len(protected()) == len(audit)  # once per case, step and target
    assert all("protected: " in str(d["reason"]) and d["policy_version"] == 0 for d in audit)
    assert {e.value for e in svc.store.list_blocks("globex", "hash")} == {EVIL_SHA}
    records = svc.list_actions("globex")
    assert not any(r.target in (VSS, VSS_SHA, WMIC_SHA) and r.kind in ("quarantine_file", "block_hash")
                   for r in records)  # fmt: skip
    assert not any(r.target.lower() == "fgt-globex-01" or (r.asset or "").lower() == "fgt-globex-01" for r in records)


# ---------------------------------------------------------------- 2. accounts with evidence only
def test_password_spray_acts_only_on_the_account_that_logged_on_after_the_failures() -> None:
    plan = plan_for(spray_then_ransomware_case(ACME_NIGHT), spray_alerts(ACME_NIGHT))
    for kind in ("revoke_sessions", "disable_account"):
        assert acted(plan, kind) == {"jmoore"}, kind
        passed = skipped(plan, kind)
        assert set(passed) == set(SPRAYED) - {"jmoore"}
        assert all("not acted on" in r and "target of" in r and "failed logons" in r for r in passed.values())
    item = next(i for i in plan.actions if i.kind == "disable_account")
    assert "logged on successfully after 23 failed logons from 200.98.23.244" in item.params["evidence"]


def test_password_spray_without_a_successful_logon_touches_no_account() -> None:
    case = spray_then_ransomware_case(ACME_NIGHT)
    case.techniques, case.tactics = ["T1110.003"], []
    case.observables = [o for o in case.observables if o.type in ("ip", "user")]
    plan = plan_for(case, spray_alerts(ACME_NIGHT, succeeded=False))
    assert plan.playbooks == ["brute-force"]
    assert acted(plan, "block_ip") == {"200.98.23.244"}
    assert not [i for i in plan.actions if i.kind in ("revoke_sessions", "disable_account")]


def test_endpoint_alerts_make_the_account_that_ran_the_tool_the_one_acted_on() -> None:
    case = spray_then_ransomware_case(ACME_NIGHT)
    case.techniques, case.tactics, case.title = ["T1490"], [], "Shadow copies deleted on NYC-WS-005"
    case.observables.append(Observable("user", "GLOBEX\\svc_backup", True))
    alerts = ransomware_alerts(ACME_NIGHT)
    alerts.append(Alert("globex", "account-created", "Account svc_backup changed", "medium", "analytics:account",
                        ACME_NIGHT, ACME_NIGHT, attack=["T1098"], entities={"user": "svc_backup"}))  # fmt: skip
    plan = plan_for(case, alerts)
    assert plan.playbooks == ["ransomware-precursors"]
    assert acted(plan, "disable_account") == {"jmoore"}
    assert "changed" in skipped(plan, "disable_account")["GLOBEX\\svc_backup"]
    evidence = case_evidence(case, alerts)
    assert evidence.roles("GLOBEX\\jmoore") == {"actor"} and evidence.roles("svc_backup") == {"subject"}
    assert "ran C:\\Windows\\System32\\vssadmin.exe on NYC-WS-005" in evidence.explain("jmoore")


def test_without_alerts_no_account_is_acted_on_and_the_plan_says_why() -> None:
    case = spray_then_ransomware_case(ACME_NIGHT)
    plan = plan_for(case, [])
    assert not [i for i in plan.actions if i.kind in ("revoke_sessions", "disable_account")]
    assert "no alerts of the case are at hand" in skipped(plan, "disable_account")["jmoore"]
    case.observables.append(Observable("user", "jmoore", True, "compromised"))  # set upstream by the case service
    assert acted(plan_for(case, []), "disable_account") == {"jmoore"}


def test_evidence_selector_is_validated() -> None:
    with pytest.raises(PlaybookError) as err:
        parse_playbook({"name": "x", "steps": [{"action": "block_ip", "targets": {"type": "ip", "evidence": "actor"}},
                                               {"action": "disable_account",
                                                "targets": {"type": "user", "evidence": ["guilty"]}}]})  # fmt: skip
    assert "evidence applies to user targets only" in str(err.value) and "unknown evidence 'guilty'" in str(err.value)
    account_steps = [s for p in builtin_playbooks().playbooks for s in p.steps
                     if s.action in ("disable_account", "revoke_sessions")]  # fmt: skip
    assert account_steps and all(s.targets is not None and s.targets.evidence for s in account_steps)


# ---------------------------------------------------------------- 3. network devices, where a process ran
def test_vpn_gateway_is_never_isolated_and_processes_are_killed_where_they_ran() -> None:
    case = Case(
        case_id="C-vpn", tenant="acme", title="Lateral movement from BER-WS-007 to ACME-FS01", severity="high",
        techniques=["T1021.006", "T1078"], tactics=["lateral-movement"], sources=["sigma"],
        observables=[Observable("host", "fgt-acme-01", True), Observable("host", "BER-WS-007", True),
                     Observable("host", "ACME-FS01.corp.acme.example", True), Observable("host", "ACME-GW01", True),
                     Observable("process", "C:\\Windows\\System32\\whoami.exe", True),
                     Observable("process", "C:\\Windows\\System32\\svchost.exe", True),
                     Observable("process", "C:\\Users\\Public\\agent.exe", True)],
        sla=SlaClock(detected_at=ACME_NIGHT),
    )  # fmt: skip
    alerts = [
        endpoint_alert(ACME_NIGHT, "WinRM child", "ACME-FS01.corp.acme.example", "ext.pnowak",
                       "C:\\Windows\\System32\\whoami.exe"),
        endpoint_alert(ACME_NIGHT, "RDP logon", "BER-WS-007", "ext.pnowak", "C:\\Windows\\System32\\svchost.exe"),
    ]  # fmt: skip
    plan = plan_for(case, alerts, ACME, ACME_ASSETS)
    assert acted(plan, "isolate_host") == {"BER-WS-007", "ACME-FS01.corp.acme.example"}
    gateways = skipped(plan, "isolate_host")
    assert set(gateways) == {"fgt-acme-01", "ACME-GW01"} and all("network device" in r for r in gateways.values())
    kills = {(i.target, i.asset) for i in plan.actions if i.kind == "kill_process"}
    assert ("C:\\Windows\\System32\\whoami.exe", "ACME-FS01") in kills
    assert not any(t == "C:\\Windows\\System32\\whoami.exe" and a != "ACME-FS01" for t, a in kills)
    assert {a for t, a in kills if t == "C:\\Users\\Public\\agent.exe"} == {"BER-WS-007", "ACME-FS01"}  # not seen
    assert "critical system process" in skipped(plan, "kill_process")["C:\\Windows\\System32\\svchost.exe"]
    assert not any(a in ("fgt-acme-01", "ACME-GW01") for _, a in kills)
    assert acted(plan, "revoke_sessions") == set()  # ext.pnowak is not an observable of this case


def test_public_resolvers_and_internal_addresses_are_never_blocked() -> None:
    case = Case(case_id="C-c2", tenant="acme", title="C2 beaconing", severity="high", techniques=["T1071"],
                observables=[Observable("host", "BER-WS-007", True), Observable("ip", "185.137.80.106"),
                             Observable("ip", "1.0.0.1"), Observable("ip", "2606:4700:4700::1111"),
                             Observable("ip", "208.67.222.222"), Observable("ip", "10.10.0.20")],
                entities={"dst_ip": ["10.10.0.21"]})  # fmt: skip
    plan = plan_for(case, [], ACME, ACME_ASSETS)
    verdicts = {i.target: i.decision.verdict for i in plan.actions if i.kind == "block_ip" and i.decision}
    assert verdicts == {"185.137.80.106": "run", "1.0.0.1": "deny", "2606:4700:4700::1111": "deny",
                        "208.67.222.222": "deny", "10.10.0.20": "deny"}  # fmt: skip
    internal = next(i for i in plan.actions if i.target == "10.10.0.20")
    assert internal.decision is not None and "isolate the host instead" in internal.decision.reason


def test_a_minor_destination_of_an_outbound_volume_alert_is_not_blocked() -> None:
    case = Case(case_id="C-exfil", tenant="acme", title="C2 beaconing and exfiltration", severity="critical",
                techniques=["T1071", "T1048"],
                observables=[Observable("host", "BER-WS-007", True), Observable("ip", "185.137.80.106"),
                             Observable("ip", "15.80.145.141"), Observable("ip", "153.31.4.229")])  # fmt: skip
    beacon = Alert("acme", "analytics.beacon", "Possible C2 beaconing", "high", "analytics:beacon", ACME_NIGHT,
                   ACME_NIGHT, attack=["T1071"],
                   entities={"src_ip": "10.10.10.27", "dst_ip": "185.137.80.106"})  # fmt: skip
    volume = Alert("acme", "analytics.exfiltration_volume", "Unusual outbound volume from 10.10.0.20", "high",
                   "analytics:exfiltration_volume", ACME_NIGHT, ACME_NIGHT, attack=["T1048"],
                   entities={"src_ip": "10.10.0.20", "dst_ip": ["15.80.145.141", "153.31.4.229"]},
                   details={"top_destinations": "[{'dst_ip': '15.80.145.141', 'bytes': 2929407056.0}, "
                                                "{'dst_ip': '153.31.4.229', 'bytes': 105426.0}]"})  # fmt: skip
    plan = plan_for(case, [beacon, volume], ACME, ACME_ASSETS)
    assert acted(plan, "block_ip") == {"185.137.80.106", "15.80.145.141"}
    assert "only 0.00% of the outbound volume" in skipped(plan, "block_ip")["153.31.4.229"]
    plan = plan_for(case, [volume, Alert("acme", "ioc", "Threat-intel match: ip 153.31.4.229", "high", "ioc",
                                         ACME_NIGHT, ACME_NIGHT, entities={"dst_ip": "153.31.4.229"})], ACME,
                    ACME_ASSETS)  # fmt: skip
    assert "153.31.4.229" in acted(plan, "block_ip")  # another alert gives it a part: evidence wins


def test_what_ran_is_killed_not_its_parent_shell_or_command_line() -> None:
    """The process the alerts saw is killed; the explorer.exe that started it and its command line are not."""
    from openmdr.correlate.triage import summarize_case

    dump = endpoint_alert(ACME_NIGHT, "LSASS access by procdump", "BER-WS-007", "l.mueller",
                          "C:\\Users\\l.mueller\\Downloads\\procdump64.exe", parent_process="C:\\Windows\\explorer.exe",
                          command_line="procdump64.exe -ma lsass.exe out.dmp")  # fmt: skip
    dump.attack = ["T1003.001"]
    summary = summarize_case([dump], {dump.alert_id: 80.0})
    roles = {o.value: o.role for o in summary.observables if o.type == "process"}
    assert roles == {"C:\\Users\\l.mueller\\Downloads\\procdump64.exe": None, "C:\\Windows\\explorer.exe": "parent",
                     "procdump64.exe -ma lsass.exe out.dmp": "command_line"}  # fmt: skip
    case = Case(case_id="C-dump", tenant="acme", title=dump.title, severity="high", techniques=["T1003.001"],
                tactics=["credential-access"], sources=["sigma"], observables=summary.observables,
                entities=summary.entities, sla=SlaClock(detected_at=ACME_NIGHT), created_at=ACME_NIGHT)  # fmt: skip
    plan = plan_for(case, [dump], ACME, ACME_ASSETS)
    assert acted(plan, "kill_process") == {"C:\\Users\\l.mueller\\Downloads\\procdump64.exe"}
