"""What the sources of one tenant record when something happens: the primitives of all activity.

A :class:`Telemetry` knows a tenant's world and its output.  Each method is one thing
happening on the network or on a machine (a process starts, an account logs on, a
workstation opens a TLS connection, a VPN user authenticates) and appends every record
the tenant's real sensors would write for it: Sysmon and the Security log on Windows
machines that have them, Zeek on the core switch span, the FortiGate for traffic that
crosses it.  Background activity and attack chains use the same primitives, so an
attack's records differ from ordinary ones only where the attacker's behaviour does.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from openmdr.generator.clock import SECOND, LocalClock, sysmon_utc
from openmdr.generator.emit import TenantOutput, cef_escape_value
from openmdr.generator.world import Host, Site, TenantWorld, User, stable_hex

SYSTEM = "NT AUTHORITY\\SYSTEM"
LOCAL_SERVICE = "NT AUTHORITY\\LOCAL SERVICE"
NETWORK_SERVICE = "NT AUTHORITY\\NETWORK SERVICE"
_SYSTEM_SIDS = {SYSTEM: "S-1-5-18", LOCAL_SERVICE: "S-1-5-19", NETWORK_SERVICE: "S-1-5-20"}
_INTEGRITY_LABEL = {"System": "S-1-16-16384", "High": "S-1-16-12288", "Medium": "S-1-16-8192", "Low": "S-1-16-4096"}
_B62 = string.ascii_letters + string.digits
#: The privileges Windows lists in 4672 for an administrator's logon.
_PRIVILEGES = "\r\n\t\t\t".join(
    (
        "SeSecurityPrivilege",
        "SeBackupPrivilege",
        "SeRestorePrivilege",
        "SeTakeOwnershipPrivilege",
        "SeDebugPrivilege",
        "SeSystemEnvironmentPrivilege",
        "SeLoadDriverPrivilege",
        "SeImpersonatePrivilege",
    )
)

#: Image path -> (FileVersion, Description, Product, Company, OriginalFileName), as the PE header says.
IMAGES: dict[str, tuple[str, str, str, str, str]] = {}


def _img(path: str, version: str, description: str, product: str, company: str, original: str) -> None:
    IMAGES[path.lower()] = (version, description, product, company, original)


_MS = "Microsoft Corporation"
_WIN = "Microsoft® Windows® Operating System"
_OSV = "10.0.19041.3636 (WinBuild.160101.0800)"
for _p, _d, _o in (
    ("C:\\Windows\\System32\\svchost.exe", "Host Process for Windows Services", "svchost.exe"),
    ("C:\\Windows\\System32\\userinit.exe", "Userinit Logon Application", "USERINIT.EXE"),
    ("C:\\Windows\\explorer.exe", "Windows Explorer", "EXPLORER.EXE"),
    ("C:\\Windows\\System32\\cmd.exe", "Windows Command Processor", "Cmd.Exe"),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "Windows PowerShell", "PowerShell.EXE"),
    ("C:\\Windows\\System32\\taskhostw.exe", "Host Process for Windows Tasks", "taskhostw.exe"),
    ("C:\\Windows\\System32\\backgroundTaskHost.exe", "Background Task Host", "backgroundTaskHost.exe"),
    (
        "C:\\Windows\\System32\\SearchProtocolHost.exe",
        "Microsoft Windows Search Protocol Host",
        "SearchProtocolHost.exe",
    ),
    ("C:\\Windows\\System32\\conhost.exe", "Console Window Host", "CONHOST.EXE"),
    ("C:\\Windows\\System32\\wsmprovhost.exe", "Host process for WinRM plug-ins", "wsmprovhost.exe"),
    ("C:\\Windows\\System32\\whoami.exe", "whoami - displays logged on user information", "whoami.exe"),
    ("C:\\Windows\\System32\\net.exe", "Net Command", "net.exe"),
    ("C:\\Windows\\System32\\net1.exe", "Net Command", "net1.exe"),
    (
        "C:\\Windows\\System32\\vssadmin.exe",
        "Command Line Interface for Microsoft® Volume Shadow Copy Service ",
        "VSSADMIN.EXE",
    ),
    ("C:\\Windows\\System32\\wbem\\WMIC.exe", "WMI Commandline Utility", "wmic.exe"),
    ("C:\\Windows\\System32\\bcdedit.exe", "Boot Configuration Data Editor", "bcdedit.exe"),
    ("C:\\Windows\\System32\\rundll32.exe", "Windows host process (Rundll32)", "RUNDLL32.EXE"),
    ("C:\\Windows\\System32\\usoclient.exe", "UsoClient", "UsoClient"),
    ("C:\\Windows\\System32\\mstsc.exe", "Remote Desktop Connection", "mstsc.exe"),
    ("C:\\Windows\\System32\\rdpclip.exe", "RDP Clipboard Monitor", "rdpclip.exe"),
    ("C:\\Windows\\System32\\gpupdate.exe", "Microsoft® Group Policy Update Utility", "GPUpdate.exe"),
    ("C:\\Windows\\System32\\ipconfig.exe", "IP Configuration Utility", "ipconfig.exe"),
    ("C:\\Windows\\System32\\nslookup.exe", "nslookup", "nslookup.exe"),
    ("C:\\Windows\\System32\\notepad.exe", "Notepad", "NOTEPAD.EXE"),
    ("C:\\Windows\\System32\\mmc.exe", "Microsoft Management Console", "MMC.EXE"),
    ("C:\\Windows\\System32\\wuauclt.exe", "Windows Update", "wuauclt.exe"),
):
    _img(_p, _OSV, _d, _WIN, _MS, _o)
for _p, _v, _d, _pr, _c, _o in (
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        "120.0.6099.217",
        "Google Chrome",
        "Google Chrome",
        "Google LLC",
        "chrome.exe",
    ),
    (
        "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
        "120.0.2210.121",
        "Microsoft Edge",
        "Microsoft Edge",
        _MS,
        "msedge.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        "16.0.17126.20132",
        "Microsoft Outlook",
        "Microsoft Outlook",
        _MS,
        "Outlook.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
        "16.0.17126.20132",
        "Microsoft Excel",
        "Microsoft Office",
        _MS,
        "Excel.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "16.0.17126.20132",
        "Microsoft Word",
        "Microsoft Office",
        _MS,
        "WinWord.exe",
    ),
    (
        "C:\\Program Files\\WindowsApps\\MSTeams_23335.232.2637.4844_x64__8wekyb3d8bbwe\\ms-teams.exe",
        "23335.232.2637.4844",
        "Microsoft Teams",
        "Microsoft Teams",
        _MS,
        "ms-teams.exe",
    ),
    (
        "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe",
        "23.246.1127.0002",
        "Microsoft OneDrive",
        "Microsoft OneDrive",
        _MS,
        "OneDrive.exe",
    ),
    (
        "C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe",
        "1.3.183.29",
        "Microsoft Edge Update",
        "Microsoft Edge Update",
        _MS,
        "msedgeupdate.dll",
    ),
    (
        "C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe",
        "1.3.36.352",
        "Google Installer",
        "Google Update",
        "Google LLC",
        "GoogleUpdate.exe",
    ),
    (
        "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.23110.3-0\\MsMpEng.exe",
        "4.18.23110.3",
        "Antimalware Service Executable",
        _WIN,
        _MS,
        "MsMpEng.exe",
    ),
    (
        "C:\\Windows\\System32\\MpSigStub.exe",
        "4.18.23110.3",
        "Microsoft Malware Protection Signature Update Stub",
        _WIN,
        _MS,
        "MpSigStub.exe",
    ),
    ("C:\\Program Files\\7-Zip\\7z.exe", "23.01", "7-Zip Console", "7-Zip", "Igor Pavlov", "7z.exe"),
    (
        "C:\\Program Files\\Sentrix\\Sensor\\SentrixSensor.exe",
        "6.4.2.1180",
        "Sentrix EDR Sensor",
        "Sentrix EDR",
        "Sentrix Security Inc.",
        "SentrixSensor.exe",
    ),
    (
        "C:\\Windows\\System32\\curl.exe",
        "8.4.0",
        "The curl executable",
        "The curl executable",
        "curl, https://curl.se/",
        "curl.exe",
    ),
    (
        "C:\\Program Files\\Veeam\\Backup and Replication\\Backup\\Veeam.Backup.Manager.exe",
        "12.0.0.1420",
        "Veeam Backup Manager",
        "Veeam Backup & Replication",
        "Veeam Software Group GmbH",
        "Veeam.Backup.Manager.exe",
    ),
):
    _img(_p, _v, _d, _pr, _c, _o)


def image_meta(image: str) -> tuple[str, str, str, str, str]:
    """PE metadata of ``image`` (unknown images report ``-`` like Sysmon does for unsigned files)."""
    return IMAGES.get(image.lower(), ("-", "-", "-", "-", "-"))


def image_hashes(image: str) -> str:
    """A stable Sysmon ``Hashes`` value for an image path (same file, same hash, everywhere)."""
    key = image.lower()
    return f"SHA1={stable_hex('sha1' + key, 40)},MD5={stable_hex('md5' + key, 32)},SHA256={stable_hex(key, 64)}"


@dataclass(slots=True)
class Proc:
    """A running process as the telemetry refers to it (Sysmon GUID, pid, image, account)."""

    guid: str
    pid: int
    image: str
    command_line: str
    user: str
    logon_id: str
    integrity: str


@dataclass(slots=True)
class Session:
    """An interactive or network logon of an account on a machine."""

    logon_id: str
    logon_guid: str
    user: str  # DOMAIN\\sam or a system account


class Telemetry:
    """Appends the records every sensor of one tenant writes for one happening."""

    def __init__(self, world: TenantWorld, out: TenantOutput, rng: random.Random) -> None:
        self.world = world
        self.out = out
        self.rng = rng
        self.clock: LocalClock = out.clock
        self.netbios = world.profile.netbios
        self._pid: dict[str, int] = {}
        self._guid_counter = 0
        self._logon_counter = 0x3E7 + 0x10000
        self._system: dict[str, Proc] = {}
        self.dc = world.host("dc")
        self.firewall = world.profile.firewall
        self.egress = world.profile.egress_ip
        #: Addresses whose firewall policies log every session (servers); workstation policies log only
        #: security events, FortiGate's default ("logtraffic utm"), so their accepted sessions are not logged.
        self.logged_hosts = frozenset(h.ip for h in world.hosts if h.asset_class in ("server", "domain_controller"))

    # ------------------------------------------------------------------ identities

    def account(self, user: User | str) -> str:
        """``DOMAIN\\sam`` of a directory user, or a system account name as is."""
        return user if isinstance(user, str) else f"{self.netbios}\\{user.sam}"

    def sid(self, user: User | str) -> str:
        """The SID of a user or system account."""
        return _SYSTEM_SIDS.get(user, "S-1-5-18") if isinstance(user, str) else user.sid

    def new_pid(self, host: Host) -> int:
        """A fresh process id on ``host`` (Windows pids are multiples of four)."""
        pid = self._pid.get(host.name, 4000 + (host.guid_prefix % 3000) // 4 * 4) + 4 * self.rng.randrange(1, 40)
        if pid > 65000:
            pid = 1000 + pid % 4000 // 4 * 4
        self._pid[host.name] = pid
        return pid

    def new_guid(self, host: Host, us: int) -> str:
        """A Sysmon process GUID: machine part, then a time-derived part, then a counter."""
        self._guid_counter += 1
        t = (us // SECOND) & 0xFFFFFFFF
        return f"{{{host.guid_prefix:08x}-{t >> 16:04x}-{t & 0xFFFF:04x}-{self._guid_counter >> 16 & 0xFFFF:04x}-{self._guid_counter & 0xFFFFFFFF:012x}}}"  # noqa: E501

    def new_logon_id(self) -> str:
        """A fresh logon id (hex, as the Security log prints it)."""
        self._logon_counter += self.rng.randrange(3, 900)
        return hex(self._logon_counter)

    def uid(self) -> str:
        """A Zeek connection uid."""
        return "C" + "".join(self.rng.choice(_B62) for _ in range(17))

    def eph_port(self) -> int:
        """An ephemeral source port (Windows dynamic range)."""
        return self.rng.randrange(49152, 65535)

    def system_proc(self, host: Host, name: str = "services") -> Proc:
        """A long-running system process of ``host`` (services.exe, svchost, wsmprovhost's parent...)."""
        key = f"{host.name}/{name}"
        proc = self._system.get(key)
        if proc is None:
            images = {
                "services": ("C:\\Windows\\System32\\services.exe", "C:\\Windows\\system32\\services.exe"),
                "dcomlaunch": (
                    "C:\\Windows\\System32\\svchost.exe",
                    "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
                ),
                "schedule": (
                    "C:\\Windows\\System32\\svchost.exe",
                    "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
                ),
                "lsass": ("C:\\Windows\\System32\\lsass.exe", "C:\\Windows\\system32\\lsass.exe"),
                "edr": (
                    "C:\\Program Files\\Sentrix\\Sensor\\SentrixSensor.exe",
                    '"C:\\Program Files\\Sentrix\\Sensor\\SentrixSensor.exe" --service',
                ),
            }
            image, cmd = images[name]
            pid = (
                host.lsass_pid
                if name == "lsass"
                else 600 + int(stable_hex(name, 2), 16) % 50 * 4 + host.guid_prefix % 97 * 4
            )
            proc = Proc(
                f"{{{host.guid_prefix:08x}-0001-0000-0010-0000000000{len(self._system) % 100:02d}}}",
                pid,
                image,
                cmd,
                SYSTEM,
                "0x3e7",
                "System",
            )
            self._system[key] = proc
        return proc

    # ------------------------------------------------------------------ endpoint

    def process(
        self,
        host: Host,
        us: int,
        image: str,
        command_line: str,
        parent: Proc,
        user: User | str,
        session: Session | None = None,
        integrity: str = "Medium",
        cwd: str | None = None,
        mark: str | None = None,
    ) -> Proc:
        """A process starts: Sysmon 1 (EDR/Sysmon hosts) and Security 4688 (hosts auditing process creation)."""
        account = self.account(user)
        logon_id = session.logon_id if session else ("0x3e7" if account == SYSTEM else self.new_logon_id())
        proc = Proc(self.new_guid(host, us), self.new_pid(host), image, command_line, account, logon_id, integrity)
        if host.os != "windows":
            return proc
        if host.has_edr:
            version, desc, product, company, original = image_meta(image)
            self.out.sysmon(
                us,
                host.fqdn,
                1,
                {
                    "RuleName": "-",
                    "UtcTime": sysmon_utc(us),
                    "ProcessGuid": proc.guid,
                    "ProcessId": proc.pid,
                    "Image": image,
                    "FileVersion": version,
                    "Description": desc,
                    "Product": product,
                    "Company": company,
                    "OriginalFileName": original,
                    "CommandLine": command_line,
                    "CurrentDirectory": cwd
                    or (
                        "C:\\Windows\\system32\\" if account == SYSTEM else f"C:\\Users\\{account.split(chr(92))[-1]}\\"
                    ),
                    "User": account,
                    "LogonGuid": session.logon_guid
                    if session
                    else f"{{{host.guid_prefix:08x}-0000-0000-0000-0000e7030000}}",
                    "LogonId": logon_id,
                    "TerminalSessionId": 0 if account == SYSTEM else 1,
                    "IntegrityLevel": integrity,
                    "Hashes": image_hashes(image),
                    "ParentProcessGuid": parent.guid,
                    "ParentProcessId": parent.pid,
                    "ParentImage": parent.image,
                    "ParentCommandLine": parent.command_line,
                    "ParentUser": parent.user,
                },
                mark=mark,
            )
        if host.audit_process:
            sam = account.split("\\")[-1]
            domain = account.split("\\")[0] if "\\" in account else self.netbios
            self.out.security(
                us,
                host.fqdn,
                4688,
                {
                    "SubjectUserSid": self.sid(user) if account != SYSTEM else "S-1-5-18",
                    "SubjectUserName": sam if account != SYSTEM else host.account,
                    "SubjectDomainName": domain if account != SYSTEM else self.netbios,
                    "SubjectLogonId": logon_id,
                    "NewProcessId": hex(proc.pid),
                    "NewProcessName": image,
                    "TokenElevationType": "%%1936" if integrity in ("High", "System") else "%%1938",
                    "ProcessId": hex(parent.pid),
                    "CommandLine": command_line,
                    "TargetUserSid": "S-1-0-0",
                    "TargetUserName": "-",
                    "TargetDomainName": "-",
                    "TargetLogonId": "0x0",
                    "ParentProcessName": parent.image,
                    "MandatoryLabel": _INTEGRITY_LABEL.get(integrity, "S-1-16-8192"),
                },
                mark=mark,
            )
        return proc

    def connect_event(
        self,
        host: Host,
        us: int,
        proc: Proc,
        src_ip: str,
        sport: int,
        dst_ip: str,
        dport: int,
        dst_host: str = "",
        mark: str | None = None,
    ) -> None:
        """Sysmon 3: the process opened a TCP connection (only on hosts with the sensor)."""
        if host.os != "windows" or not host.has_edr:
            return
        self.out.sysmon(
            us,
            host.fqdn,
            3,
            {
                "RuleName": "-",
                "UtcTime": sysmon_utc(us),
                "ProcessGuid": proc.guid,
                "ProcessId": proc.pid,
                "Image": proc.image,
                "User": proc.user,
                "Protocol": "tcp",
                "Initiated": "true",
                "SourceIsIpv6": "false",
                "SourceIp": src_ip,
                "SourceHostname": host.fqdn,
                "SourcePort": sport,
                "SourcePortName": "-",
                "DestinationIsIpv6": "false",
                "DestinationIp": dst_ip,
                "DestinationHostname": dst_host or "-",
                "DestinationPort": dport,
                "DestinationPortName": {
                    443: "https",
                    80: "http",
                    445: "microsoft-ds",
                    5985: "-",
                    3389: "ms-wbt-server",
                }.get(dport, "-"),
            },
            mark=mark,
        )

    def file_created(self, host: Host, us: int, proc: Proc, path: str, mark: str | None = None) -> None:
        """Sysmon 11: a file was created."""
        if host.os != "windows" or not host.has_edr:
            return
        self.out.sysmon(
            us,
            host.fqdn,
            11,
            {
                "RuleName": "-",
                "UtcTime": sysmon_utc(us),
                "ProcessGuid": proc.guid,
                "ProcessId": proc.pid,
                "Image": proc.image,
                "TargetFilename": path,
                "CreationUtcTime": sysmon_utc(us),
                "User": proc.user,
            },
            mark=mark,
        )

    def registry_set(self, host: Host, us: int, proc: Proc, target: str, details: str, mark: str | None = None) -> None:
        """Sysmon 13: a registry value was set."""
        if host.os != "windows" or not host.has_edr:
            return
        self.out.sysmon(
            us,
            host.fqdn,
            13,
            {
                "RuleName": "-",
                "EventType": "SetValue",
                "UtcTime": sysmon_utc(us),
                "ProcessGuid": proc.guid,
                "ProcessId": proc.pid,
                "Image": proc.image,
                "TargetObject": target,
                "Details": details,
                "User": proc.user,
            },
            mark=mark,
        )

    def process_access(
        self, host: Host, us: int, source: Proc, target: Proc, access: str, call_trace: str, mark: str | None = None
    ) -> None:
        """Sysmon 10: a process opened another process (e.g. a handle to lsass)."""
        if host.os != "windows" or not host.has_edr:
            return
        self.out.sysmon(
            us,
            host.fqdn,
            10,
            {
                "RuleName": "-",
                "UtcTime": sysmon_utc(us),
                "SourceProcessGUID": source.guid,
                "SourceProcessId": source.pid,
                "SourceThreadId": source.pid + 8,
                "SourceImage": source.image,
                "TargetProcessGUID": target.guid,
                "TargetProcessId": target.pid,
                "TargetImage": target.image,
                "GrantedAccess": access,
                "CallTrace": call_trace,
                "SourceUser": source.user,
                "TargetUser": target.user,
            },
            mark=mark,
        )

    # ------------------------------------------------------------------ identity (Windows)

    def logon(
        self,
        host: Host,
        us: int,
        user: User,
        logon_type: int,
        src_ip: str = "-",
        workstation: str = "-",
        package: str = "Kerberos",
        privileged: bool | None = None,
        mark: str | None = None,
    ) -> Session:
        """4624 (and 4672 for privileged accounts) on ``host``; returns the new session."""
        logon_id = self.new_logon_id()
        guid = (
            f"{{{stable_hex(f'{host.name}{logon_id}{us}', 8).lower()}-{self.rng.getrandbits(16):04x}-"
            f"{self.rng.getrandbits(16):04x}-{self.rng.getrandbits(16):04x}-{self.rng.getrandbits(48):012x}}}"
        )
        session = Session(logon_id, guid, self.account(user))
        if host.os != "windows":
            return session
        process = {
            2: "C:\\Windows\\System32\\svchost.exe",
            10: "C:\\Windows\\System32\\svchost.exe",
            11: "C:\\Windows\\System32\\svchost.exe",
            5: "C:\\Windows\\System32\\services.exe",
        }.get(logon_type)
        interactive = logon_type in (2, 10, 11)
        self.out.security(
            us,
            host.fqdn,
            4624,
            {
                "SubjectUserSid": "S-1-5-18" if interactive or logon_type == 5 else "S-1-0-0",
                "SubjectUserName": host.account if interactive or logon_type == 5 else "-",
                "SubjectDomainName": self.netbios if interactive or logon_type == 5 else "-",
                "SubjectLogonId": "0x3e7" if interactive or logon_type == 5 else "0x0",
                "TargetUserSid": user.sid,
                "TargetUserName": user.sam,
                "TargetDomainName": self.netbios,
                "TargetLogonId": logon_id,
                "LogonType": logon_type,
                "LogonProcessName": "User32 " if interactive else ("Advapi  " if logon_type == 5 else "Kerberos"),
                "AuthenticationPackageName": "Negotiate" if interactive or logon_type == 5 else package,
                "WorkstationName": workstation,
                "LogonGuid": guid if package == "Kerberos" else "{00000000-0000-0000-0000-000000000000}",
                "TransmittedServices": "-",
                "LmPackageName": "NTLM V2" if package == "NTLM" else "-",
                "KeyLength": 128 if package == "NTLM" else 0,
                "ProcessId": hex(self.system_proc(host, "lsass").pid if process is None else 0x2B4),
                "ProcessName": process or "-",
                "IpAddress": src_ip,
                "IpPort": str(self.eph_port()) if src_ip not in ("-", "127.0.0.1") else "0",
                "ImpersonationLevel": "%%1833",
                "RestrictedAdminMode": "%%1843" if logon_type == 10 else "-",
                "TargetOutboundUserName": "-",
                "TargetOutboundDomainName": "-",
                "VirtualAccount": "%%1843",
                "TargetLinkedLogonId": "0x0",
                "ElevatedToken": "%%1842" if (privileged or user.is_admin) else "%%1843",
            },
            mark=mark,
        )
        if privileged if privileged is not None else user.kind in ("admin", "service"):
            self.out.security(
                us,
                host.fqdn,
                4672,
                {
                    "SubjectUserSid": user.sid,
                    "SubjectUserName": user.sam,
                    "SubjectDomainName": self.netbios,
                    "SubjectLogonId": logon_id,
                    "PrivilegeList": _PRIVILEGES,
                },
                mark=mark,
            )
        return session

    def logoff(self, host: Host, us: int, user: User, session: Session, logon_type: int) -> None:
        """4634: the session ended."""
        if host.os != "windows":
            return
        self.out.security(
            us,
            host.fqdn,
            4634,
            {
                "TargetUserSid": user.sid,
                "TargetUserName": user.sam,
                "TargetDomainName": self.netbios,
                "TargetLogonId": session.logon_id,
                "LogonType": logon_type,
            },
        )

    def logon_failed(
        self,
        host: Host,
        us: int,
        sam: str,
        logon_type: int,
        src_ip: str,
        workstation: str,
        status: str = "0xc000006d",
        sub_status: str = "0xc000006a",
        mark: str | None = None,
    ) -> None:
        """4625: a logon attempt with a wrong password (or unknown user: sub status 0xc0000064)."""
        self.out.security(
            us,
            host.fqdn,
            4625,
            {
                "SubjectUserSid": "S-1-0-0",
                "SubjectUserName": "-",
                "SubjectDomainName": "-",
                "SubjectLogonId": "0x0",
                "TargetUserSid": "S-1-0-0",
                "TargetUserName": sam,
                "TargetDomainName": self.netbios,
                "Status": status,
                "FailureReason": "%%2313",
                "SubStatus": sub_status,
                "LogonType": logon_type,
                "LogonProcessName": "NtLmSsp " if logon_type == 3 else "User32 ",
                "AuthenticationPackageName": "NTLM" if logon_type == 3 else "Negotiate",
                "WorkstationName": workstation,
                "TransmittedServices": "-",
                "LmPackageName": "-",
                "KeyLength": 0,
                "ProcessId": "0x0",
                "ProcessName": "-",
                "IpAddress": src_ip,
                "IpPort": str(self.eph_port()),
            },
            failure=True,
            mark=mark,
        )

    def tgt(self, us: int, user: User, client_ip: str, ok: bool = True, mark: str | None = None) -> None:
        """4768 on the DC (Kerberos TGT), or 4771 when pre-authentication failed."""
        ip = f"::ffff:{client_ip}"
        if ok:
            self.out.security(
                us,
                self.dc.fqdn,
                4768,
                {
                    "TargetUserName": user.sam,
                    "TargetDomainName": self.netbios,
                    "TargetSid": user.sid,
                    "ServiceName": "krbtgt",
                    "ServiceSid": f"{self.world.profile.domain_sid}-502",
                    "TicketOptions": "0x40810010",
                    "Status": "0x0",
                    "TicketEncryptionType": "0x12",
                    "PreAuthType": "2",
                    "IpAddress": ip,
                    "IpPort": str(self.eph_port()),
                    "CertIssuerName": "",
                    "CertSerialNumber": "",
                    "CertThumbprint": "",
                },
                mark=mark,
            )
        else:
            self.out.security(
                us,
                self.dc.fqdn,
                4771,
                {
                    "TargetUserName": user.sam,
                    "TargetSid": user.sid,
                    "ServiceName": f"krbtgt/{self.world.profile.ad_domain.upper()}",
                    "TicketOptions": "0x40810010",
                    "Status": "0x18",
                    "PreAuthType": "2",
                    "IpAddress": ip,
                    "IpPort": str(self.eph_port()),
                    "CertIssuerName": "",
                    "CertSerialNumber": "",
                    "CertThumbprint": "",
                },
                failure=True,
                mark=mark,
            )

    def service_ticket(self, us: int, user: User, client_ip: str, service: Host, mark: str | None = None) -> None:
        """4769 on the DC: a Kerberos service ticket for ``cifs/<server>`` (or ``HOST/``)."""
        self.out.security(
            us,
            self.dc.fqdn,
            4769,
            {
                "TargetUserName": f"{user.sam}@{self.world.profile.ad_domain.upper()}",
                "TargetDomainName": self.world.profile.ad_domain.upper(),
                "ServiceName": service.account,
                "ServiceSid": f"{self.world.profile.domain_sid}-{1000 + service.guid_prefix % 900}",
                "TicketOptions": "0x40810000",
                "TicketEncryptionType": "0x12",
                "IpAddress": f"::ffff:{client_ip}",
                "IpPort": "0",
                "Status": "0x0",
                "LogonGuid": "{" + stable_hex(f"{user.sam}{us}", 8).lower() + "-0000-0000-0000-000000000000}",
                "TransmittedServices": "-",
            },
            mark=mark,
        )

    def ntlm_check(self, us: int, sam: str, workstation: str, ok: bool = True, mark: str | None = None) -> None:
        """4776 on the DC: NTLM credential validation."""
        self.out.security(
            us,
            self.dc.fqdn,
            4776,
            {
                "PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                "TargetUserName": sam,
                "Workstation": workstation,
                "Status": "0x0" if ok else "0xc000006a",
            },
            failure=not ok,
            mark=mark,
        )

    # ------------------------------------------------------------------ network (Zeek + FortiGate)

    def conn(
        self,
        us: int,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        *,
        proto: str = "tcp",
        service: str | None = None,
        duration: float = 0.2,
        orig_bytes: int = 600,
        resp_bytes: int = 4000,
        state: str = "SF",
        mark: str | None = None,
    ) -> str:
        """Zeek conn.log row, and the FortiGate session log when the connection crosses the firewall.

        The FortiGate logs denied sessions and every session of the server policies
        (:attr:`logged_hosts`); accepted workstation sessions are not logged (security-events
        logging), as is the default on those policies.
        """
        uid = self.uid()
        local_o, local_r = self.world.is_local(src), self.world.is_local(dst)
        if state == "SF":
            history = "ShADadFf" if proto == "tcp" else "Dd"
            opk = max(2, orig_bytes // 900 + 3) if proto == "tcp" else 1
            rpk = max(2, resp_bytes // 1300 + 2) if proto == "tcp" else 1
        elif state == "S0":
            history, opk, rpk, orig_bytes, resp_bytes, duration = "S", 1, 0, 0, 0, 0.0
        else:  # REJ
            history, opk, rpk, orig_bytes, resp_bytes, duration = "Sr", 1, 1, 0, 0, 0.0
        hdr = 40 if proto == "tcp" else 28
        self.out.zeek(
            "conn",
            us,
            (
                uid,
                src,
                sport,
                dst,
                dport,
                proto,
                service,
                duration if state == "SF" else None,
                orig_bytes if state != "S0" else None,
                resp_bytes if state != "S0" else None,
                state,
                local_o,
                local_r,
                0,
                history,
                opk,
                orig_bytes + opk * hdr,
                rpk,
                resp_bytes + rpk * hdr,
                (),
            ),
            mark,
        )
        if local_o != local_r and (state != "SF" or src in self.logged_hosts or dst in self.logged_hosts):
            self.firewall_session(
                us,
                src,
                sport,
                dst,
                dport,
                proto,
                orig_bytes,
                resp_bytes,
                duration,
                "accept" if state == "SF" else "deny",
                service,
                mark,
            )
        return uid

    def firewall_session(
        self,
        us: int,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        proto: str,
        sent: int,
        rcvd: int,
        duration: float,
        action: str,
        app: str | None,
        mark: str | None = None,
    ) -> None:
        """FortiGate forward-traffic log (CEF): one session through the firewall."""
        outbound = self.world.is_local(src)
        proto_n = {"tcp": 6, "udp": 17, "icmp": 1}.get(proto, 6)
        ext = [
            ("rt", us // 1000),
            ("deviceExternalId", f"FGT60F{stable_hex(self.firewall, 10)}"),
            ("dvchost", self.firewall),
            ("src", src),
            ("spt", sport),
            ("dst", dst),
            ("dpt", dport),
            ("proto", proto_n),
            ("act", action),
            ("deviceInboundInterface", "internal" if outbound else "wan1"),
            ("deviceOutboundInterface", "wan1" if outbound else "internal"),
            ("out", sent),
            ("in", rcvd),
            ("cn1", int(duration)),
            ("cn1Label", "duration"),
            ("app", (app or "").upper() or "-"),
            ("cs1", "1" if outbound else "0"),
            ("cs1Label", "policyid"),
        ]
        if outbound:
            ext += [("sourceTranslatedAddress", self.egress), ("sourceTranslatedPort", self.eph_port())]
        name = "traffic:forward " + ("close" if action == "accept" else action)
        sev = 3 if action == "accept" else 5
        self._cef(us, "0000000013", name, sev, ext, mark)

    def _cef(
        self, us: int, sig: str, name: str, severity: int, ext: list[tuple[str, object]], mark: str | None
    ) -> None:
        head = f"<189>1 {self.clock.rfc3339(us)} {self.firewall} - - - - "
        body = f"CEF:0|Fortinet|Fortigate|v7.2.8|{sig}|{name}|{severity}|"
        body += " ".join(f"{k}={cef_escape_value(v)}" for k, v in ext)
        self.out.line("fw", us, head + body, mark)

    def dns(
        self,
        us: int,
        client: str,
        server: str,
        query: str,
        answers: tuple[str, ...],
        *,
        qtype: str = "A",
        rcode: str = "NOERROR",
        ttl: int = 300,
        mark: str | None = None,
    ) -> None:
        """Zeek dns.log row for one query and its answer."""
        qt = {"A": 1, "AAAA": 28, "SRV": 33, "PTR": 12, "TXT": 16}.get(qtype, 1)
        rc = {"NOERROR": 0, "NXDOMAIN": 3, "SERVFAIL": 2}[rcode]
        self.out.zeek(
            "dns",
            us,
            (
                self.uid(),
                client,
                self.eph_port(),
                server,
                53,
                "udp",
                self.rng.randrange(1, 65535),
                round(self.rng.uniform(0.0004, 0.04), 6),
                query,
                1,
                "C_INTERNET",
                qt,
                qtype,
                rc,
                rcode,
                False,
                False,
                True,
                True,
                0,
                answers if answers else None,
                tuple(f"{ttl}.000000" for _ in answers) if answers else None,
                False,
            ),
            mark,
        )

    def tls(
        self,
        us: int,
        src: str,
        dst: str,
        dport: int,
        sni: str,
        *,
        duration: float = 0.8,
        orig_bytes: int = 1800,
        resp_bytes: int = 9000,
        sport: int = 0,
        mark: str | None = None,
    ) -> str:
        """A TLS session: Zeek conn + ssl (and the firewall session when it leaves the network)."""
        sport = sport or self.eph_port()
        uid = self.conn(
            us,
            src,
            sport,
            dst,
            dport,
            service="ssl",
            duration=duration,
            orig_bytes=orig_bytes,
            resp_bytes=resp_bytes,
            mark=mark,
        )
        self.out.zeek(
            "ssl",
            us + 30_000,
            (
                uid,
                src,
                sport,
                dst,
                dport,
                "TLSv13",
                "TLS_AES_256_GCM_SHA384",
                "x25519",
                sni,
                False,
                None,
                None,
                True,
                "CsiI",
                (),
                (),
                None,
            ),
            mark,
        )
        return uid

    def http(
        self,
        us: int,
        src: str,
        dst: str,
        host: str,
        uri: str,
        user_agent: str,
        *,
        method: str = "GET",
        status: int = 200,
        resp_len: int = 1500,
        mime: str = "application/ocsp-response",
    ) -> None:
        """A plain-HTTP request: Zeek conn + http (and the firewall session)."""
        sport = self.eph_port()
        uid = self.conn(
            us, src, sport, dst, 80, service="http", duration=0.12, orig_bytes=260, resp_bytes=resp_len + 300
        )
        self.out.zeek(
            "http",
            us + 20_000,
            (
                uid,
                src,
                sport,
                dst,
                80,
                1,
                method,
                host,
                uri,
                None,
                "1.1",
                user_agent,
                None,
                0,
                resp_len,
                status,
                "OK" if status == 200 else "Not Modified",
                None,
                None,
                (),
                None,
                None,
                None,
                None,
                None,
                None,
                ("F" + stable_hex(uri + str(us), 17),),
                None,
                (mime,),
            ),
        )

    def web_visit(
        self,
        us: int,
        src: str,
        site: Site,
        *,
        resolver: str | None = None,
        cache_hit: float = 0.5,
        heavy: bool = False,
        endpoint: tuple[Host, Proc] | None = None,
        mark: str | None = None,
    ) -> None:
        """Someone opens a web service: DNS (unless cached), then TLS to one of its addresses.

        With ``endpoint`` (machine, process) the machine's Sysmon also records the connection.
        """
        rng = self.rng
        ip = rng.choice(site.ips)
        if rng.random() > cache_hit:
            self.dns(
                us, src, resolver or self.dc.ip, site.domain, (*site.cname, ip) if site.cname else (ip,), mark=mark
            )
            us += rng.randrange(2_000, 40_000)
        size = int(rng.lognormvariate(10.5 if heavy else 9.3, 1.0))
        sport = self.eph_port()
        if endpoint is not None:
            self.connect_event(endpoint[0], us - 1_000, endpoint[1], src, sport, ip, site.port, site.domain, mark=mark)
        self.tls(
            us,
            src,
            ip,
            site.port,
            site.domain,
            duration=round(rng.uniform(0.2, 30.0), 6),
            orig_bytes=int(rng.uniform(700, 2600)) + size // 30,
            resp_bytes=size,
            sport=sport,
            mark=mark,
        )

    # ------------------------------------------------------------------ VPN (FortiGate user auth + SSL VPN)

    def vpn_login(
        self, us: int, user: User, src_ip: str, ok: bool, tunnel_ip: str = "", mark: str | None = None
    ) -> None:
        """FortiGate user authentication for SSL-VPN (logid 43008 success / 43009 failure), tunnel-up on success."""
        ext: list[tuple[str, object]] = [
            ("rt", us // 1000),
            ("deviceExternalId", f"FGT60F{stable_hex(self.firewall, 10)}"),
            ("dvchost", self.firewall),
            ("src", src_ip),
            ("dst", self.egress),
            ("dpt", 443),
            ("proto", 6),
            ("suser", user.sam),
            ("act", "authentication"),
            ("outcome", "success" if ok else "failure"),
            ("cs2", "SSL-VPN"),
            ("cs2Label", "authproto"),
            ("cs3", "vpn-users"),
            ("cs3Label", "group"),
            ("msg", f"User {user.sam} {'succeeded' if ok else 'failed'} in authentication"),
        ]
        name = "event:user Authentication success" if ok else "event:user Authentication failed"
        self._cef(us, "0102043008" if ok else "0102043009", name, 3 if ok else 5, ext, mark)
        if ok:
            tunnel: list[tuple[str, object]] = [
                ("rt", us // 1000 + 600),
                ("deviceExternalId", f"FGT60F{stable_hex(self.firewall, 10)}"),
                ("dvchost", self.firewall),
                ("src", src_ip),
                ("dst", self.egress),
                ("suser", user.sam),
                ("act", "tunnel-up"),
                ("cs4", "ssl-tunnel"),
                ("cs4Label", "tunneltype"),
                ("cs5", tunnel_ip),
                ("cs5Label", "tunnelip"),
                ("msg", "SSL tunnel established"),
            ]
            self._cef(us + 600_000, "0101039947", "event:vpn SSL VPN tunnel up", 3, tunnel, mark)

    def vpn_logout(
        self,
        us: int,
        user: User,
        src_ip: str,
        tunnel_ip: str,
        sent: int,
        rcvd: int,
        duration: float,
        mark: str | None = None,
    ) -> None:
        """FortiGate SSL VPN tunnel-down (logid 39948) with the session's byte counts."""
        ext: list[tuple[str, object]] = [
            ("rt", us // 1000),
            ("deviceExternalId", f"FGT60F{stable_hex(self.firewall, 10)}"),
            ("dvchost", self.firewall),
            ("src", src_ip),
            ("dst", self.egress),
            ("suser", user.sam),
            ("act", "tunnel-down"),
            ("cs4", "ssl-tunnel"),
            ("cs4Label", "tunneltype"),
            ("cs5", tunnel_ip),
            ("cs5Label", "tunnelip"),
            ("out", sent),
            ("in", rcvd),
            ("cn1", int(duration)),
            ("cn1Label", "duration"),
            ("msg", "SSL tunnel shutdown"),
        ]
        self._cef(us, "0101039948", "event:vpn SSL VPN tunnel down", 3, ext, mark)

    # ------------------------------------------------------------------ Linux (syslog)

    def syslog(
        self,
        us: int,
        host: Host,
        app: str,
        pid: int,
        message: str,
        severity: int = 6,
        facility: int = 4,
        mark: str | None = None,
    ) -> None:
        """One RFC 5424 line of the Linux auth log (``facility`` 4 auth, 10 authpriv)."""
        pri = facility * 8 + severity
        self.out.line("auth", us, f"<{pri}>1 {self.clock.rfc3339(us)} {host.name} {app} {pid} - - {message}", mark)

    def ssh_session(
        self,
        us: int,
        host: Host,
        login: str,
        src_ip: str,
        method: str = "publickey",
        minutes: float = 12.0,
        mark: str | None = None,
    ) -> None:
        """sshd accepts a login (key or password), PAM opens and later closes the session; Zeek sees the SSH."""
        rng = self.rng
        pid = rng.randrange(2000, 60000)
        port = self.eph_port()
        key = f" ssh2: ED25519 SHA256:{stable_hex(login, 43)}" if method == "publickey" else " ssh2"
        self.syslog(us, host, "sshd", pid, f"Accepted {method} for {login} from {src_ip} port {port}{key}", mark=mark)
        self.syslog(
            us + 3000,
            host,
            "sshd",
            pid,
            f"pam_unix(sshd:session): session opened for user {login}(uid={1000 + len(login)}) by (uid=0)",
            facility=10,
            mark=mark,
        )
        end = us + int(minutes * 60 * SECOND)
        self.syslog(end, host, "sshd", pid, f"pam_unix(sshd:session): session closed for user {login}", facility=10)
        self.conn(
            us - 200_000,
            src_ip,
            port,
            host.ip,
            22,
            service="ssh",
            duration=round(minutes * 60, 6),
            orig_bytes=rng.randrange(4000, 60000),
            resp_bytes=rng.randrange(8000, 200000),
            mark=mark,
        )

    def ssh_failed(self, us: int, host: Host, login: str, src_ip: str, invalid: bool, mark: str | None = None) -> None:
        """sshd refuses a password (``Invalid user`` first when the account does not exist)."""
        pid = self.rng.randrange(2000, 60000)
        port = self.eph_port()
        if invalid:
            self.syslog(us, host, "sshd", pid, f"Invalid user {login} from {src_ip} port {port}", mark=mark)
            self.syslog(
                us + 1500_000,
                host,
                "sshd",
                pid,
                f"Failed password for invalid user {login} from {src_ip} port {port} ssh2",
                mark=mark,
            )
        else:
            self.syslog(
                us + 1500_000,
                host,
                "sshd",
                pid,
                f"Failed password for {login} from {src_ip} port {port} ssh2",
                mark=mark,
            )
        self.conn(
            us - 100_000,
            src_ip,
            port,
            host.ip,
            22,
            service="ssh",
            duration=2.4,
            orig_bytes=1500,
            resp_bytes=1900,
            mark=mark,
        )

    def sudo(self, us: int, host: Host, login: str, command: str, mark: str | None = None) -> None:
        """sudo runs a command as root (authpriv notice)."""
        self.syslog(
            us,
            host,
            "sudo",
            self.rng.randrange(2000, 60000),
            f"{login} : TTY=pts/0 ; PWD=/home/{login} ; USER=root ; COMMAND={command}",
            severity=5,
            facility=10,
            mark=mark,
        )

    def cron(self, us: int, host: Host) -> None:
        """cron opens and closes a root session for a scheduled job."""
        pid = self.rng.randrange(2000, 60000)
        self.syslog(
            us, host, "CRON", pid, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", facility=10
        )
        self.syslog(
            us + self.rng.randrange(1, 40) * SECOND,
            host,
            "CRON",
            pid,
            "pam_unix(cron:session): session closed for user root",
            facility=10,
        )
