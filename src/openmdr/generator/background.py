"""A tenant's ordinary week: people at work, servers doing their jobs, the internet knocking.

Volume follows each tenant's working hours and days in its own time zone: people log on
when their day starts (with a little spread), browse, mail and open files until it ends;
laptops on remote days come in over the SSL VPN and only their internal traffic crosses
the tunnel (split tunnelling); servers work around the clock (machine-account logons,
nightly backups, patch synchronisation, EDR heartbeats); internet scanners hit the
firewall and the SFTP server.  Near-misses that a careless detector would flag are part
of an ordinary week on purpose: administrators running PowerShell and RDP in working
hours, a travelling employee logging in to the VPN from abroad, late workers, password
typos, an IT helpdesk creating a new hire's account, software updates and a large
nightly offsite backup upload.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from openmdr.generator.clock import HOUR, MINUTE, SECOND
from openmdr.generator.telemetry import SYSTEM, Proc, Telemetry
from openmdr.generator.world import HTTP_SITES, Host, Site, TenantWorld, User, rng_for

_BROWSER = {
    "chrome": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    "msedge": "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
}
_OUTLOOK = "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"
_EXCEL = "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE"
_WORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
_TEAMS = "C:\\Program Files\\WindowsApps\\MSTeams_23335.232.2637.4844_x64__8wekyb3d8bbwe\\ms-teams.exe"
_ONEDRIVE = "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe"
_POWERSHELL = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
_EDGE_UPDATE = "C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe"
_GOOGLE_UPDATE = "C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe"
_SESSION_TASKS = (
    (
        "C:\\Windows\\System32\\backgroundTaskHost.exe",
        '"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider',
    ),
    (
        "C:\\Windows\\System32\\backgroundTaskHost.exe",
        '"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:App.AppXmtcan0h2tfbfy7k9kn8hbxb6dmzz1zh0.mca',
    ),
    ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe"),
    (
        "C:\\Windows\\System32\\SearchProtocolHost.exe",
        '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe_S-1-5-21 '
        'Global\\UsGthrCtrlFltPipeMssGthrPipe_S-1-5-21 1 -2147483646 "Software\\Microsoft\\Windows Search" '
        '"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT; MS Search 4.0 Robot)" '
        '"C:\\ProgramData\\Microsoft\\Search\\Data\\Temp\\usgthrsvc" "DownLevelDaemon" ',
    ),
)
_DOCS = ("Quarterly Report", "Budget 2026", "Meeting notes", "Offer", "Project plan", "Invoice 4711", "Contract draft")
_ADMIN_SCRIPTS = (
    "-NoProfile -File C:\\Scripts\\Get-DiskReport.ps1",
    '-NoLogo -NoProfile -Command "Get-Service -Name Spooler | Restart-Service -Verbose"',
    '-NoProfile -Command "Get-EventLog -LogName System -Newest 50 | Out-GridView"',
    "-NoProfile -File C:\\Scripts\\Export-UserReport.ps1 -OutFile C:\\Reports\\users.csv",
    '-NoProfile -Command "Get-ADUser -Filter * -Properties LastLogonDate | Sort-Object LastLogonDate"',
)
_LINUX_COMMANDS = (
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/usr/bin/apt-get -y upgrade",
    "/usr/bin/journalctl -u sshd --since today",
    "/usr/bin/tail -n 200 /var/log/syslog",
    "/usr/bin/df -h",
)


def _public_ip(rng: random.Random) -> str:
    """A random globally routable IPv4 address (internet background radiation needs no geolocation)."""
    while True:
        a = rng.randrange(1, 224)
        if a in (10, 127, 100, 169, 172, 192, 198, 203):
            continue
        return f"{a}.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


class Background:
    """Generates one tenant's ordinary activity for a run of days (see the module docstring)."""

    def __init__(self, tel: Telemetry, world: TenantWorld, seed: int, scale: float) -> None:
        self.tel = tel
        self.world = world
        self.seed = seed
        self.scale = scale
        self.rng = rng_for(seed, world.name, "background")
        self.clock = tel.clock
        self.windows = [h for h in world.hosts if h.os == "windows"]
        self.servers = [h for h in self.windows if h.asset_class in ("server", "domain_controller")]
        self.linux = [h for h in world.hosts if h.os == "linux"]
        self.tunnel: dict[str, str] = {}
        pool = list(world.vpn_pool)
        for i, u in enumerate(u for u in world.users if u.home_ip):
            self.tunnel[u.sam] = pool[i % len(pool)]
        self.machine_users = {h.name: _machine_user(world, h) for h in self.windows}
        site_rng = rng_for(seed, world.name, "shadow-sites")
        self.shadow_sites = {
            "nas": Site("sync.homecloud-nas.com", (_public_ip(site_rng),)),
            "iot": Site("broker.iot-telemetry.io", (_public_ip(site_rng),)),
        }

    # ------------------------------------------------------------------ days

    def run(self, start: date, days: int) -> None:
        """Generate every day from ``start`` (tenant-local dates)."""
        for offset in range(days):
            day = start + timedelta(days=offset)
            self.server_day(day)
            self.linux_day(day)
            self.shadow_it_day(day)
            self.internet_noise(day)
            workday = day.weekday() in self.world.profile.working_days
            traveller = self.traveller()
            for user in self.world.people():
                if user is traveller and offset < 4 and workday:
                    self.travel_day(user, day)
                elif workday or (user.late_worker and self.rng.random() < 0.25):
                    self.user_day(user, day, short=not workday)
            if workday:
                self.admin_day(day)
            self.special(day, offset)

    # ------------------------------------------------------------------ people

    def user_day(self, user: User, day: date, short: bool = False) -> None:
        """One person's working day on their own machine."""
        rng, tel = self.rng, self.tel
        ws = user.workstation
        if ws is None or rng.random() < 0.05:  # sick, on leave
            return
        begin_h = user.hours[0] + rng.gauss(0, 0.25)
        length = (user.hours[1] - user.hours[0]) * (0.3 if short else 1.0) + rng.gauss(0, 0.3)
        start = self.clock.at(day) + int(begin_h * HOUR)
        end = start + int(max(1.0, length) * HOUR)
        remote = day.weekday() in user.remote_days or (short and bool(user.home_ip))
        if short and not user.home_ip:
            return
        src = ws.ip
        if remote:
            src = self.tunnel.get(user.sam, ws.ip)
            if rng.random() < 0.04:  # mistyped the password once
                tel.vpn_login(start - 3 * MINUTE, user, user.home_ip, ok=False)
            tel.vpn_login(start - 2 * MINUTE, user, user.home_ip, ok=True, tunnel_ip=src)
        # Windows logon (a typo now and then), Kerberos at the DC, the shell starting.
        if rng.random() < 0.05:
            tel.logon_failed(ws, start - 20 * SECOND, user.sam, 2, "127.0.0.1", ws.name)
            tel.tgt(start - 20 * SECOND, user, src, ok=False)
        tel.tgt(start, user, src)
        session = tel.logon(ws, start, user, 11 if remote else 2, "127.0.0.1", ws.name)
        services = tel.system_proc(ws)
        userinit = tel.process(
            ws,
            start + 2 * SECOND,
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            services,
            user,
            session,
        )
        explorer = tel.process(
            ws, start + 4 * SECOND, "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", userinit, user, session
        )
        browser_img = _BROWSER[user.browser]
        apps = [
            (_ONEDRIVE, f'"{_ONEDRIVE}" /background'),
            (_TEAMS, f'"{_TEAMS}" --system-initiated'),
            (_OUTLOOK, f'"{_OUTLOOK}" '),
            (browser_img, f'"{browser_img}" '),
        ]
        procs: dict[str, Proc] = {}
        for i, (image, cmd) in enumerate(apps):
            procs[image] = tel.process(ws, start + (20 + 15 * i) * SECOND, image, cmd, explorer, user, session)
        tel.registry_set(
            ws,
            start + 30 * SECOND,
            procs[_ONEDRIVE],
            f"HKU\\{user.sid}\\Software\\Microsoft\\OneDrive\\Accounts\\Business1\\LastSignInTime",
            f"DWORD (0x{(start // SECOND) & 0xFFFFFFF:08x})",
        )
        # File server: mapped drives at logon, more access during the day.
        fs = self.world.host("file")
        for _k in range(rng.randrange(1, 4)):
            t = start + int(rng.uniform(60, max(120, (end - start) / SECOND - 60)) * SECOND)
            tel.service_ticket(t, user, src, fs)
            s = tel.logon(fs, t + 5000, user, 3, src, ws.name)
            tel.conn(
                t + 10_000,
                src,
                tel.eph_port(),
                fs.ip,
                445,
                service="smb,gssapi",
                duration=round(rng.uniform(5, 900), 6),
                orig_bytes=int(rng.lognormvariate(10, 1.2)),
                resp_bytes=int(rng.lognormvariate(12, 1.3)),
            )
            tel.logoff(fs, t + int(rng.uniform(60, 1800) * SECOND), user, s, 3)
        # The legacy ERP still authenticates with NTLM (finance and purchasing use it daily).
        if user.department in ("Finance", "Purchasing", "Operations"):
            erp = self.world.host("legacy")
            for _ in range(rng.randrange(1, 4)):
                t = start + int(rng.uniform(0.05, 0.95) * (end - start))
                tel.ntlm_check(t, user.sam, ws.name)
                s = tel.logon(erp, t + 20_000, user, 3, src, ws.name, package="NTLM")
                tel.conn(
                    t,
                    src,
                    tel.eph_port(),
                    erp.ip,
                    445,
                    service="smb,ntlm",
                    duration=round(rng.uniform(2, 600), 6),
                    orig_bytes=rng.randrange(5_000, 200_000),
                    resp_bytes=rng.randrange(20_000, 4_000_000),
                )
                tel.logoff(erp, t + int(rng.uniform(60, 900) * SECOND), user, s, 3)
        # Windows' own background work in the user's session.
        for _ in range(rng.randrange(4, 10)):
            t = start + int(rng.random() * (end - start))
            image, cmd = rng.choice(_SESSION_TASKS)
            tel.process(ws, t, image, cmd, tel.system_proc(ws, "dcomlaunch"), user, session)
        # Documents opened now and then.
        for _ in range(rng.randrange(0, 4)):
            t = start + int(rng.uniform(0.05, 0.95) * (end - start))
            image, ext = rng.choice(((_EXCEL, "xlsx"), (_WORD, "docx")))
            doc = f"{rng.choice(_DOCS)}.{ext}"
            folder = rng.choice((f"C:\\Users\\{user.sam}\\Documents", f"C:\\Users\\{user.sam}\\Downloads"))
            p = tel.process(ws, t, image, f'"{image}" "{folder}\\{doc}"', explorer, user, session)
            if "Downloads" in folder:
                tel.file_created(ws, t - 40 * SECOND, procs[browser_img], f"{folder}\\{doc}")
            tel.file_created(ws, t + 3 * SECOND, p, f"{folder}\\~${doc[2:]}")
        # Mail and chat keep connections to their clouds (endpoint view; the network sees the same TLS).
        for image, site_name in ((_OUTLOOK, "outlook.office365.com"), (_TEAMS, "teams.microsoft.com")):
            site = next((s for s in self.world.sites if s.domain == site_name), None)
            if site is None:
                continue
            for _ in range(rng.randrange(1, 3)):
                t = start + int(rng.uniform(0.0, 1.0) * (end - start))
                tel.connect_event(ws, t, procs[image], src, tel.eph_port(), site.ips[0], 443, site.domain)
        # Browsing: only seen by Zeek and the firewall when in the office (split tunnel at home).
        hours = (end - start) / HOUR
        if not remote:
            visits = int(rng.uniform(14.0, 19.0) * hours)
            sites = rng.choices(self.world.sites, weights=self.world.site_weights, k=visits)
            browser = (ws, procs[browser_img])
            for site in sites:
                t = start + int(rng.random() * (end - start))
                self.tel.web_visit(t, src, site, endpoint=browser if rng.random() < 0.35 else None)
            for _ in range(rng.randrange(0, 3)):
                hs = rng.choice(HTTP_SITES)
                t = start + int(rng.random() * (end - start))
                tel.http(t, src, hs.ips[0], hs.domain, hs.http_path, "Microsoft-CryptoAPI/10.0", resp_len=1400)
            self.heartbeats(ws, src, start, end, interval_min=30)
        # Internal: DC LDAP/Kerberos, the file server.
        for _ in range(rng.randrange(3, 7)):
            t = start + int(rng.random() * (end - start))
            port, svc = rng.choice(((389, "ldap"), (88, "krb"), (135, "dce_rpc"), (445, "smb")))
            tel.conn(
                t,
                src,
                tel.eph_port(),
                self.world.host("dc").ip,
                port,
                service=svc,
                proto="tcp",
                duration=round(rng.uniform(0.01, 2.0), 6),
                orig_bytes=rng.randrange(300, 4000),
                resp_bytes=rng.randrange(500, 9000),
            )
            tel.dns(
                t - 5000,
                src,
                self.world.host("dc").ip,
                f"_ldap._tcp.dc._msdcs.{self.world.profile.ad_domain}",
                (self.world.host("dc").fqdn,),
                qtype="SRV",
                ttl=600,
            )
        # Software updates (as SYSTEM, from the scheduler) once a day on some machines.
        if rng.random() < 0.5:
            sched = tel.system_proc(ws, "schedule")
            t = start + int(rng.uniform(0.1, 0.9) * (end - start))
            image, cmd = rng.choice(
                (
                    (_EDGE_UPDATE, f'"{_EDGE_UPDATE}" /ua /installsource scheduler'),
                    (_GOOGLE_UPDATE, f'"{_GOOGLE_UPDATE}" /ua /installsource scheduler'),
                )
            )
            tel.process(ws, t, image, cmd, sched, SYSTEM, integrity="System")
            site = self.world.update_sites[4 if image == _GOOGLE_UPDATE else 5]
            if not remote:
                tel.web_visit(t + 2 * SECOND, src, site, cache_hit=0.0)
        tel.logoff(ws, end, user, session, 11 if remote else 2)
        if remote:
            tel.vpn_logout(
                end + 30 * SECOND,
                user,
                user.home_ip,
                src,
                rng.randrange(5_000_000, 90_000_000),
                rng.randrange(20_000_000, 400_000_000),
                (end - start) / SECOND,
            )

    def admin_day(self, day: date) -> None:
        """IT staff at work: RDP to servers, management PowerShell, SSH to Linux with sudo."""
        rng, tel = self.rng, self.tel
        admins = [u for u in self.world.users if u.kind == "admin"]
        for admin in admins:
            ws = admin.workstation
            if ws is None or rng.random() < 0.2:
                continue
            person = self.world.by_sam.get(admin.person)
            for _ in range(rng.randrange(1, 3)):
                server = rng.choice([h for h in self.servers if h.role not in ("dc2",)])
                t = self.clock.at(day) + int(rng.uniform(admin.hours[0] + 0.5, admin.hours[1] - 1.0) * HOUR)
                mstsc_parent = tel.system_proc(ws)
                if person is not None:
                    tel.process(
                        ws,
                        t - 10 * SECOND,
                        "C:\\Windows\\System32\\mstsc.exe",
                        f'"C:\\Windows\\system32\\mstsc.exe" /v:{server.fqdn}',
                        mstsc_parent,
                        person,
                    )
                tel.tgt(t - 5 * SECOND, admin, ws.ip)
                minutes = rng.uniform(8, 50)
                session = tel.logon(server, t, admin, 10, ws.ip, ws.name)
                tel.conn(
                    t - 2 * SECOND,
                    ws.ip,
                    tel.eph_port(),
                    server.ip,
                    3389,
                    service="ssl",
                    duration=minutes * 60,
                    orig_bytes=rng.randrange(300_000, 3_000_000),
                    resp_bytes=rng.randrange(2_000_000, 30_000_000),
                )
                explorer = tel.process(
                    server,
                    t + 5 * SECOND,
                    "C:\\Windows\\explorer.exe",
                    "C:\\Windows\\Explorer.EXE",
                    tel.system_proc(server),
                    admin,
                    session,
                    integrity="High",
                )
                script = rng.choice(_ADMIN_SCRIPTS)
                tel.process(
                    server,
                    t + int(rng.uniform(60, minutes * 50) * SECOND),
                    _POWERSHELL,
                    f'"{_POWERSHELL}" {script}',
                    explorer,
                    admin,
                    session,
                    integrity="High",
                )
                if rng.random() < 0.5:
                    tel.process(
                        server,
                        t + int(rng.uniform(60, minutes * 50) * SECOND),
                        "C:\\Windows\\System32\\mmc.exe",
                        '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\compmgmt.msc" /s',
                        explorer,
                        admin,
                        session,
                        integrity="High",
                    )
                tel.logoff(server, t + int(minutes * MINUTE), admin, session, 10)
            if admin.linux_admin and person is not None:
                for host in self.linux:
                    if rng.random() < 0.6:
                        t = self.clock.at(day) + int(rng.uniform(admin.hours[0] + 0.5, admin.hours[1] - 1) * HOUR)
                        tel.ssh_session(t, host, person.sam, ws.ip, minutes=rng.uniform(3, 40))
                        for k in range(rng.randrange(1, 4)):
                            tel.sudo(t + (k + 1) * 40 * SECOND, host, person.sam, rng.choice(_LINUX_COMMANDS))

    # ------------------------------------------------------------------ machines

    def heartbeats(self, host: Host, src: str, start: int, end: int, interval_min: float) -> None:
        """EDR sensor check-ins (jittered) and RMM polls while a machine is on."""
        if not host.has_edr:
            return
        rng, tel = self.rng, self.tel
        t = start + int(rng.uniform(1, interval_min) * MINUTE)
        edr = self.world.edr_site
        while t < end:
            tel.tls(
                t,
                src,
                edr.ips[0],
                443,
                edr.domain,
                duration=round(rng.uniform(0.3, 3.0), 6),
                orig_bytes=rng.randrange(4_000, 60_000),
                resp_bytes=rng.randrange(2_000, 9_000),
            )
            t += int(interval_min * MINUTE * rng.uniform(0.6, 1.4))

    def server_day(self, day: date) -> None:
        """Servers around the clock: machine logons at the DC, backups, SQL, patch sync, heartbeats."""
        rng, tel = self.rng, self.tel
        day_start = self.clock.at(day)
        day_end = day_start + 24 * HOUR
        dc = self.world.host("dc")
        # Group-policy refresh: every Windows machine authenticates to the DC about every 90 minutes.
        for host in self.windows:
            if host.role in ("workstation", "laptop") and day.weekday() not in self.world.profile.working_days:
                continue
            mu = self.machine_users[host.name]
            t = day_start + int(rng.uniform(0, 90) * MINUTE)
            step = 90 if host.asset_class != "workstation" else 180
            while t < day_end:
                if host.asset_class == "workstation":
                    local_h = (t - day_start) / HOUR
                    if not 7.0 <= local_h <= 19.0:
                        t += int(step * MINUTE)
                        continue
                tel.tgt(t, mu, host.ip)
                s = tel.logon(dc, t + 40_000, mu, 3, host.ip, "-", privileged=False)
                tel.logoff(dc, t + 3 * SECOND, mu, s, 3)
                t += int(step * MINUTE * rng.uniform(0.8, 1.2))
        for host in self.servers:
            self.heartbeats(host, host.ip, day_start, day_end, interval_min=60)
        # Nightly backup: svc_backup pulls from the file and SQL servers, then ships offsite.
        bkp = self.world.host("backup")
        svc_backup = self.world.by_sam["svc_backup"]
        t = self.clock.at(day, 22) + int(rng.uniform(0, 10) * MINUTE)
        for target in (self.world.host("file"), self.world.host("sql")):
            s = tel.logon(target, t, svc_backup, 3, bkp.ip, bkp.name)
            tel.conn(
                t + SECOND,
                bkp.ip,
                tel.eph_port(),
                target.ip,
                445,
                service="smb,gssapi",
                duration=round(rng.uniform(1200, 3000), 6),
                orig_bytes=rng.randrange(2_000_000, 9_000_000),
                resp_bytes=rng.randrange(3_000_000_000, 9_000_000_000),
            )
            tel.logoff(target, t + 50 * MINUTE, svc_backup, s, 3)
            t += 55 * MINUTE
        vault = self.world.backup_site
        tel.dns(t, bkp.ip, dc.ip, vault.domain, vault.ips, ttl=3600)
        tel.tls(
            t + SECOND,
            bkp.ip,
            vault.ips[0],
            443,
            vault.domain,
            duration=round(rng.uniform(2400, 5400), 6),
            orig_bytes=rng.randrange(20_000_000, 45_000_000),
            resp_bytes=rng.randrange(2_000_000, 6_000_000),
        )
        veeam = "C:\\Program Files\\Veeam\\Backup and Replication\\Backup\\Veeam.Backup.Manager.exe"
        tel.process(
            bkp,
            t - 60 * MINUTE * 2,
            veeam,
            f'"{veeam}" startbackupjob "Nightly-Offsite"',
            tel.system_proc(bkp),
            svc_backup,
            integrity="System",
        )
        # Application server talks to SQL all day (more in working hours).
        app, sql = self.world.host("app"), self.world.host("sql")
        for h in range(24):
            busy = self.world.profile.working_hours[0] <= h < self.world.profile.working_hours[1]
            for _ in range(rng.randrange(4, 9) if busy else 1):
                tt = self.clock.at(day, h) + int(rng.random() * HOUR)
                tel.conn(
                    tt,
                    app.ip,
                    tel.eph_port(),
                    sql.ip,
                    1433,
                    service=None,
                    duration=round(rng.uniform(0.05, 20), 6),
                    orig_bytes=rng.randrange(2_000, 90_000),
                    resp_bytes=rng.randrange(5_000, 2_000_000),
                )
        # WSUS synchronises with Microsoft at night, downloading updates.
        wsus = self.world.host("wsus")
        t = self.clock.at(day, 2) + int(rng.uniform(0, 30) * MINUTE)
        for site in self.world.update_sites[:2]:
            tel.dns(t, wsus.ip, dc.ip, site.domain, site.ips, ttl=300)
            tel.tls(
                t + SECOND,
                wsus.ip,
                site.ips[0],
                443,
                site.domain,
                duration=round(rng.uniform(60, 900), 6),
                orig_bytes=rng.randrange(40_000, 400_000),
                resp_bytes=rng.randrange(50_000_000, 900_000_000),
            )
            t += 20 * MINUTE
        # Scheduled maintenance on every Windows server: an update scan and a policy refresh.
        for host in self.servers:
            sched = tel.system_proc(host, "schedule")
            t = self.clock.at(day, 3) + int(rng.uniform(0, 120) * MINUTE)
            tel.process(
                host,
                t,
                "C:\\Windows\\System32\\usoclient.exe",
                "C:\\Windows\\system32\\usoclient.exe StartScan",
                sched,
                SYSTEM,
                integrity="System",
            )
            tel.process(
                host,
                t + 30 * MINUTE,
                "C:\\Windows\\System32\\gpupdate.exe",
                "gpupdate.exe /target:computer",
                sched,
                SYSTEM,
                integrity="System",
            )

    def shadow_it_day(self, day: date) -> None:
        """Devices nobody inventoried: a NAS syncing to its vendor cloud (and used over SMB), a Raspberry Pi."""
        rng, tel = self.rng, self.tel
        dc = self.world.host("dc")
        for host in self.world.hosts:
            if host.inventoried:
                continue
            site = self.shadow_sites.get(host.role)
            if site is None:
                continue
            t = self.clock.at(day) + int(rng.uniform(0, 60) * MINUTE)
            while t < self.clock.at(day) + 24 * HOUR:
                tel.dns(t, host.ip, dc.ip, site.domain, site.ips, ttl=600)
                tel.tls(
                    t + 30_000,
                    host.ip,
                    site.ips[0],
                    443,
                    site.domain,
                    duration=round(rng.uniform(0.5, 40), 6),
                    orig_bytes=rng.randrange(2_000, 400_000),
                    resp_bytes=rng.randrange(2_000, 80_000),
                )
                t += int(rng.uniform(80, 160) * MINUTE)
            if host.role == "nas" and day.weekday() in self.world.profile.working_days:
                for user in rng.sample(self.world.people(), min(3, len(self.world.people()))):
                    if user.workstation is None:
                        continue
                    t = self.clock.at(day) + int(rng.uniform(user.hours[0] + 1, user.hours[1] - 1) * HOUR)
                    tel.conn(
                        t,
                        user.workstation.ip,
                        tel.eph_port(),
                        host.ip,
                        445,
                        service="smb",
                        duration=round(rng.uniform(5, 600), 6),
                        orig_bytes=rng.randrange(10_000, 5_000_000),
                        resp_bytes=rng.randrange(50_000, 40_000_000),
                    )

    def linux_day(self, day: date) -> None:
        """Linux servers: cron every hour; the SFTP server's partner uploads and internet SSH noise."""
        rng, tel = self.rng, self.tel
        for host in self.linux:
            for h in range(0, 24, 2):
                tel.cron(self.clock.at(day, h) + int(rng.uniform(0, 5) * SECOND) + 17 * MINUTE, host)
            if host.role == "sftp":
                partner_ip = "52.23.144.207"
                t = self.clock.at(day, 6) + int(rng.uniform(0, 20) * MINUTE)
                tel.ssh_session(t, host, "partner-edi", partner_ip, method="password", minutes=rng.uniform(1, 6))
                for _ in range(rng.randrange(2, 6)):  # scanners try a name or two, then move on
                    ip = _public_ip(rng)
                    t = self.clock.at(day) + int(rng.random() * 24 * HOUR)
                    for k in range(rng.randrange(1, 3)):
                        login = rng.choice(("root", "admin", "test", "ubuntu", "oracle", "user"))
                        tel.ssh_failed(t + k * 4 * SECOND, host, login, ip, invalid=login != "root")

    def internet_noise(self, day: date) -> None:
        """Background radiation: unsolicited inbound packets the FortiGate drops."""
        rng, tel = self.rng, self.tel
        for _ in range(int(rng.uniform(60, 110) * self.scale)):
            t = self.clock.at(day) + int(rng.random() * 24 * HOUR)
            port = rng.choice((23, 445, 3389, 22, 8080, 80, 1433, 5900, 8443, 2323, 6379, 5060))
            tel.firewall_session(
                t, _public_ip(rng), tel.eph_port(), self.world.profile.egress_ip, port, "tcp", 0, 0, 0.0, "deny", None
            )

    # ------------------------------------------------------------------ one-off events of an ordinary week

    def special(self, day: date, offset: int) -> None:
        """Near-misses on fixed days: the helpdesk creates a new hire's account on Tuesday."""
        tel, rng = self.tel, self.rng
        admins = [u for u in self.world.users if u.kind == "admin"]
        if offset == 1 and admins:  # Tuesday: the helpdesk creates a new hire's account
            admin = admins[-1]
            dc = self.world.host("dc")
            t = self.clock.at(day, 10) + int(rng.uniform(0, 30) * MINUTE)
            new = User(
                sam="n.hire" if self.world.profile.sam_style != "initial" else "nhire",
                display_name="New Hire",
                sid=f"{self.world.profile.domain_sid}-1999",
                kind="user",
                department="Sales",
                home_country=self.world.profile.country,
                hours=(9.0, 17.0),
            )
            base = {
                "SubjectUserSid": admin.sid,
                "SubjectUserName": admin.sam,
                "SubjectDomainName": self.world.profile.netbios,
                "SubjectLogonId": tel.new_logon_id(),
            }
            tel.out.security(
                t,
                dc.fqdn,
                4720,
                {
                    "TargetUserName": new.sam,
                    "TargetDomainName": self.world.profile.netbios,
                    "TargetSid": new.sid,
                    **base,
                    "PrivilegeList": "-",
                    "SamAccountName": new.sam,
                    "DisplayName": new.display_name,
                    "UserPrincipalName": f"{new.sam}@{self.world.profile.ad_domain}",
                    "HomeDirectory": "-",
                    "HomePath": "-",
                    "ScriptPath": "-",
                    "ProfilePath": "-",
                    "UserWorkstations": "-",
                    "PasswordLastSet": "%%1794",
                    "AccountExpires": "%%1794",
                    "PrimaryGroupId": "513",
                    "AllowedToDelegateTo": "-",
                    "OldUacValue": "0x0",
                    "NewUacValue": "0x15",
                    "UserAccountControl": "%%2080",
                    "UserParameters": "-",
                    "SidHistory": "-",
                    "LogonHours": "%%1793",
                },
            )
            tel.out.security(
                t + 2 * SECOND,
                dc.fqdn,
                4722,
                {
                    "TargetUserName": new.sam,
                    "TargetDomainName": self.world.profile.netbios,
                    "TargetSid": new.sid,
                    **base,
                },
            )
            # Two global groups (4728) and the domain-local group of the sales share (4732).
            groups = (("GRP-Sales", 1301, 4728), ("VPN-Users", 1302, 4728), ("DL-Share-Sales-RW", 1303, 4732))
            for k, (group, rid, event_id) in enumerate(groups):
                tel.out.security(
                    t + (5 + k) * SECOND,
                    dc.fqdn,
                    event_id,
                    {
                        "MemberName": f"CN={new.display_name},OU=Users,DC={self.world.profile.ad_domain.replace('.', ',DC=')}",  # noqa: E501
                        "MemberSid": new.sid,
                        "TargetUserName": group,
                        "TargetDomainName": self.world.profile.netbios,
                        "TargetSid": f"{self.world.profile.domain_sid}-{rid}",
                        **base,
                        "PrivilegeList": "-",
                    },
                )

    def traveller(self) -> User | None:
        """The employee on a business trip this week (a remote worker with a laptop), if any."""
        travellers = [u for u in self.world.people() if u.home_ip and u.workstation is not None and not u.late_worker]
        return travellers[-1] if travellers else None

    def travel_day(self, user: User, day: date) -> None:
        """A day of the business trip (Monday to Thursday): VPN from the hotel morning and evening."""
        tel, rng = self.tel, self.rng
        ws = user.workstation
        assert ws is not None
        tunnel = self.tunnel.get(user.sam, self.world.vpn_pool[-1])
        for k in range(2):
            t = self.clock.at(day, 8 + 10 * k) + int(rng.uniform(0, 40) * MINUTE)
            tel.vpn_login(t, user, self.hotel_ip, ok=True, tunnel_ip=tunnel)
            tel.tgt(t + MINUTE, user, tunnel)
            s = tel.logon(ws, t + MINUTE, user, 11, "127.0.0.1", ws.name)
            minutes = rng.uniform(40, 150)
            tel.logoff(ws, t + int(minutes * MINUTE), user, s, 11)
            tel.vpn_logout(
                t + int(minutes * MINUTE) + 20 * SECOND,
                user,
                self.hotel_ip,
                tunnel,
                rng.randrange(2_000_000, 20_000_000),
                rng.randrange(10_000_000, 90_000_000),
                minutes * 60,
            )

    hotel_ip: str = ""


def _machine_user(world: TenantWorld, host: Host) -> User:
    """The computer account of ``host`` as a directory principal."""
    return User(
        sam=host.account,
        display_name=host.name,
        sid=f"{world.profile.domain_sid}-{1000 + host.guid_prefix % 900}",
        kind="machine",
        department="",
        home_country=world.profile.country,
        hours=(0.0, 24.0),
    )
