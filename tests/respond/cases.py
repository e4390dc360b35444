"""Hand-built cases shaped like the generator's attack chains and the correlator's output."""

from __future__ import annotations

from datetime import datetime, timedelta

from openmdr.models import Alert, Case, Observable, SlaClock


def c2_case(at: datetime, tenant: str = "acme", host: str = "BER-WS-007", case_id: str = "case-c2") -> Case:
    """A workstation beaconing to an external C2 server (network analytics + a Sigma hit)."""
    return Case(
        case_id=case_id, tenant=tenant, title=f"C2 beaconing from {host}", severity="high", risk_score=82.0,
        alert_ids=["a-beacon", "a-rundll"], techniques=["T1071.001", "T1218.011"],
        tactics=["command_and_control", "defense_evasion"], sources=["analytics:beaconing", "sigma"],
        observables=[
            Observable("host", host, True), Observable("ip", "10.10.10.27", True, "source"),
            Observable("ip", "45.153.160.140", False, "destination"), Observable("ip", "8.8.8.8", False, "destination"),
            Observable("domain", "cdn-telemetry-update.xyz", False), Observable("user", "l.mueller", True),
        ],
        entities={"host": [host], "dst_ip": ["45.153.160.140", "8.8.8.8"], "user": ["l.mueller"]},
        sla=SlaClock(first_event_at=at - timedelta(minutes=40), detected_at=at - timedelta(seconds=30)),
        created_at=at,
    )  # fmt: skip


def lateral_case(at: datetime, tenant: str = "acme", case_id: str = "case-lateral") -> Case:
    """A workstation reaching the file server with stolen admin credentials (PsExec-style lateral movement)."""
    return Case(
        case_id=case_id, tenant=tenant, title="Lateral movement BER-NB-012 -> ACME-FS01", severity="high",
        risk_score=77.0, techniques=["T1021.002", "T1569.002"], tactics=["lateral_movement", "execution"],
        sources=["sigma", "analytics:lateral_movement"],
        observables=[Observable("host", "ACME-FS01", True), Observable("process", "PSEXESVC.exe", True)],
        entities={"host": ["ACME-FS01"]},
        sla=SlaClock(detected_at=at - timedelta(seconds=20)), created_at=at,
    )  # fmt: skip


def credential_case(at: datetime, tenant: str = "acme", case_id: str = "case-cred") -> Case:
    """LSASS memory read on a workstation followed by the admin account's use elsewhere."""
    return Case(
        case_id=case_id, tenant=tenant, title="LSASS access by procdump on BER-WS-007", severity="critical",
        techniques=["T1003.001", "T1078"], tactics=["credential_access"], sources=["sigma"],
        observables=[
            Observable("host", "BER-WS-007", True), Observable("process", "procdump64.exe", True),
            Observable("user", "l.mueller", True), Observable("user", "CORP\\adm-l.mueller", True),
        ],
        sla=SlaClock(detected_at=at), created_at=at,
    )  # fmt: skip


def brute_case(at: datetime, tenant: str = "acme", case_id: str = "case-brute") -> Case:
    """Password spraying from an external address against the VPN."""
    return Case(
        case_id=case_id, tenant=tenant, title="Password spraying from 185.220.101.4", severity="medium",
        techniques=["T1110.003"], tactics=["credential_access"], sources=["analytics:spraying"],
        observables=[Observable("ip", "185.220.101.4", False, "source"), Observable("user", "a.schmidt", True)],
        sla=SlaClock(detected_at=at), created_at=at,
    )  # fmt: skip


def dc_case(at: datetime, tenant: str = "acme", case_id: str = "case-dc") -> Case:
    """Ransomware precursors on the domain controller (shadow copies deleted)."""
    return Case(
        case_id=case_id, tenant=tenant, title="Shadow copies deleted on ACME-DC01", severity="critical",
        techniques=["T1490"], tactics=["impact"], sources=["sigma"],
        observables=[Observable("host", "ACME-DC01", True), Observable("process", "vssadmin.exe", True)],
        sla=SlaClock(detected_at=at), created_at=at,
    )  # fmt: skip


def endpoint_alert(
    at: datetime, title: str, host: str, user: str, process: str, tenant: str = "acme", **entities: object
) -> Alert:
    """A Sigma hit on host telemetry: ``user`` ran ``process`` on ``host`` (what makes an account an actor)."""
    ents: dict[str, object] = {"host": host, "user": user, "process": process, **entities}
    return Alert(tenant, f"rule-{title}", title, "high", "sigma", at, at, attack=["T1059"], entities=ents,
                 confidence=0.9)  # fmt: skip


def credential_alerts(at: datetime, tenant: str = "acme") -> list[Alert]:
    """The alerts behind :func:`credential_case`: l.mueller ran procdump, then adm-l.mueller was used on the FS."""
    dump = endpoint_alert(at, "LSASS access by procdump", "BER-WS-007", "l.mueller",
                          "C:\\Users\\l.mueller\\Downloads\\procdump64.exe", tenant)  # fmt: skip
    dump.attack = ["T1003.001"]
    logon = Alert(tenant, "explicit-logon", "Logon with explicit credentials", "high", "sigma", at, at,
                  attack=["T1078"], entities={"host": "ACME-FS01", "user": "CORP\\adm-l.mueller"},
                  confidence=0.9)  # fmt: skip
    return [dump, logon]


def lateral_alerts(at: datetime, tenant: str = "acme") -> list[Alert]:
    """The alert behind :func:`lateral_case` with the admin account: PsExec's service ran as adm-l.mueller."""
    return [endpoint_alert(at, "PsExec service on ACME-FS01", "ACME-FS01", "adm-l.mueller", "PSEXESVC.exe", tenant)]
