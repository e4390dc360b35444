"""Thresholds of the behaviour analytics, with defaults and per-tenant overrides.

Every number an analytic compares against lives here, so an analyst can read in the
configuration why something fired and a tenant with unusual traffic (a scanner farm, a
backup network) can be tuned without touching the code.  :class:`AnalyticsSettings` is a
pydantic model: it can be embedded in the main settings file, and ``tenants`` holds
partial overrides per tenant that :meth:`AnalyticsSettings.for_tenant` merges over the
defaults (nested keys merge, lists replace).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

#: Ports whose fan-out from one source to many internal hosts looks like lateral movement:
#: SSH, RPC endpoint mapper, SMB, RDP, WinRM over HTTP and HTTPS.
DEFAULT_ADMIN_PORTS: tuple[int, ...] = (22, 135, 445, 3389, 5985, 5986)

#: Registered domains whose legitimate clients encode data in DNS labels on purpose
#: (anti-virus and reputation look-ups, reverse DNS); never reported as tunnels.
DEFAULT_DNS_ALLOW: tuple[str, ...] = (
    "in-addr.arpa",
    "ip6.arpa",
    "local",
    "sophosxl.net",
    "mcafee.com",
    "trendmicro.com",
    "e5.sk",
    "spamhaus.org",
    "spamcop.net",
    "barracudacentral.org",
    "surbl.org",
    "uribl.com",
    "dnswl.org",
    "senderbase.org",
    "akamaiedge.net",
)


class WarmupSettings(BaseModel):
    """How much history a baseline needs before it may alert."""

    tenant_days: float = Field(2.0, ge=0, description="days of a tenant's telemetry before identity baselines alert")
    user_events: int = Field(20, ge=0, description="successful logons before a user's own profile is trusted")
    volume_windows: int = Field(6, ge=1, description="closed windows before a volume baseline is trusted")


class IdentitySettings(BaseModel):
    """Logon, credential and privilege analytics."""

    enabled: bool = True
    offhours_enabled: bool = True
    offhours_max_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="largest share of a user's past logons within +-1 h that still counts as unusual",
    )
    offhours_logon_types: list[str] = Field(
        default_factory=lambda: ["2", "7", "10", "11"],
        description="Windows LogonType values judged for off-hours (others, e.g. type 3, are machine noise)",
    )
    offhours_margin_hours: int = Field(
        1,
        ge=0,
        le=12,
        description="for users without an established profile: hours around the working day that still count as "
        "working time (an early start is not an incident)",
    )
    new_country_enabled: bool = True
    new_country_min_user_logons: int = Field(3, ge=1, description="geolocated logons before a user's countries count")
    new_country_min_tenant_logons: int = Field(
        10, ge=1, description="geolocated logons of the whole tenant before 'new for the tenant' counts"
    )
    new_country_common_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="a country with at least this share of the tenant's located logons is never new for a user "
        "(the user is coming home, not going abroad)",
    )
    travel_enabled: bool = True
    travel_max_speed_kmh: float = Field(900.0, gt=0, description="faster than an airliner between logons is impossible")
    travel_min_distance_km: float = Field(500.0, ge=0, description="ignore hops shorter than this (geolocation error)")
    brute_window_seconds: int = Field(600, ge=1)
    brute_source_failures: int = Field(20, ge=1, description="failures from one source within the window")
    brute_user_failures: int = Field(15, ge=1, description="failures against one user within the window")
    spray_users: int = Field(10, ge=2, description="distinct users failed from one source within the window")
    spray_max_attempts_per_user: float = Field(3.0, gt=0, description="a spray tries few passwords per user")
    success_after_failures: int = Field(5, ge=1, description="failures before a success that makes it suspicious")
    first_seen_enabled: bool = True
    privileged_groups: list[str] = Field(
        default_factory=lambda: [
            "domain admins",
            "enterprise admins",
            "schema admins",
            "administrators",
            "account operators",
            "backup operators",
            "server operators",
            "print operators",
            "dnsadmins",
            "group policy creator owners",
            "remote desktop users",
            "sudo",
            "wheel",
            "root",
            "admin",
            "adm",
        ],
        description="group names (case-insensitive) whose new members are privileged",
    )
    bulk_window_seconds: int = Field(3600, ge=60)
    bulk_min_events: int = Field(500, ge=1, description="file/share accesses per user window never below this")
    bulk_sigma: float = Field(4.0, gt=0, description="standard deviations above the user's baseline")
    bulk_cold_events: int = Field(2000, ge=1, description="threshold while the user's baseline is warming up")
    ignore_users: list[str] = Field(
        default_factory=lambda: [
            "system",
            "anonymous logon",
            "local service",
            "network service",
            "-",
        ],
        description="service principals never judged (machine accounts ending in $ are always ignored)",
    )
    max_users: int = Field(200_000, ge=1, description="user profiles kept per tenant (least recently seen evicted)")
    max_sources: int = Field(100_000, ge=1, description="brute-force trackers kept per tenant")
    max_items_per_user: int = Field(32, ge=1, description="countries/hosts/sources remembered per user")


class BeaconSettings(BaseModel):
    """C2 beaconing from the regularity of connections (RITA-style scoring)."""

    enabled: bool = True
    window_seconds: int = Field(86_400, ge=60, description="analysis window (the scored 'dataset')")
    min_connections: int = Field(20, ge=4, description="connections a pair needs in the window to be scored")
    score_threshold: float = Field(0.8, ge=0, le=1)
    high_score: float = Field(0.9, ge=0, le=1, description="score from which the alert is high severity")
    ts_weight: float = 0.25
    ds_weight: float = 0.25
    dur_weight: float = 0.25
    hist_weight: float = 0.25
    min_iqr_seconds: float = Field(10.0, ge=0, description="Bowley skew of intervals is 0 below this IQR")
    min_iqr_bytes: float = Field(10.0, ge=0, description="Bowley skew of sizes is 0 below this IQR")
    hist_bins: int = Field(24, ge=2)
    hist_mode_sensitivity: float = Field(0.05, gt=0, le=1)
    hist_bimodal_outlier_removal: int = Field(1, ge=0)
    hist_bimodal_min_bins: int = Field(11, ge=1)
    dur_min_bins: int = Field(6, ge=1)
    dur_ideal_consistent_bins: int = Field(12, ge=1)
    max_prevalence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of the tenant's internal hosts above which a destination is popular",
    )
    min_prevalence_hosts: int = Field(3, ge=1, description="a destination is popular only if at least this many hosts")
    popular_host_days: int = Field(
        30, ge=1, description="host-days of contact (over history) that make a destination popular"
    )
    allow_cidrs: list[str] = Field(default_factory=list, description="destinations never reported as beacons")
    allow_domains: list[str] = Field(
        default_factory=list,
        description="server names (TLS SNI, HTTP Host seen for the destination) never reported, with subdomains",
    )


class LongConnectionSettings(BaseModel):
    """Long-lived connections, single and summed per pair."""

    enabled: bool = True
    window_seconds: int = Field(86_400, ge=60)
    single_seconds: float = Field(8 * 3600.0, gt=0, description="one connection at least this long")
    covered_seconds: float = Field(
        12 * 3600.0,
        gt=0,
        description="time a pair was connected at all (union of its connections) in the window",
    )
    high_seconds: float = Field(20 * 3600.0, gt=0, description="duration from which the alert is high severity")
    external_only: bool = Field(True, description="only internal -> external pairs")
    allow_cidrs: list[str] = Field(default_factory=list)
    allow_domains: list[str] = Field(
        default_factory=list, description="server names (TLS SNI, HTTP Host) never reported, with subdomains"
    )
    allow_ports: list[int] = Field(default_factory=list)


class DnsTunnelSettings(BaseModel):
    """Data hidden in DNS queries to one registered domain."""

    enabled: bool = True
    window_seconds: int = Field(3600, ge=60)
    min_unique_subdomains: int = Field(150, ge=1)
    min_mean_entropy: float = Field(3.3, ge=0, description="bits per character of the subdomain labels")
    min_mean_length: float = Field(30.0, ge=0, description="mean length of the subdomain part")
    txt_null_queries: int = Field(200, ge=1, description="TXT/NULL/PRIVATE queries to one domain within the window")
    allow_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_DNS_ALLOW))


class DgaSettings(BaseModel):
    """Domain-generation malware: one host asking for many registered domains that do not exist."""

    enabled: bool = True
    window_seconds: int = Field(3600, ge=60)
    min_nx_domains: int = Field(
        25, ge=1, description="distinct registered domains answered NXDOMAIN for one source within the window"
    )
    high_nx_domains: int = Field(75, ge=1, description="distinct NXDOMAIN registered domains for high severity")
    allow_domains: list[str] = Field(
        default_factory=lambda: ["local", "localdomain", "lan", "home.arpa", "in-addr.arpa", "ip6.arpa", "internal"],
        description="registered domains (and their subdomains) whose NXDOMAIN answers are never counted",
    )


class ExfilSettings(BaseModel):
    """Outbound volume of an internal host against its own baseline."""

    enabled: bool = True
    window_seconds: int = Field(3600, ge=60)
    min_bytes: int = Field(100 * 1024 * 1024, ge=1, description="never alert below this outbound volume")
    cold_bytes: int = Field(1024 * 1024 * 1024, ge=1, description="threshold while the host's baseline warms up")
    sigma: float = Field(4.0, gt=0, description="standard deviations above the host's baseline")
    min_ratio: float = Field(5.0, ge=1, description="and at least this many times the baseline mean")
    allow_cidrs: list[str] = Field(default_factory=list)


class ScanSettings(BaseModel):
    """Vertical and horizontal port scans, at two time scales (fast bursts and slow scans)."""

    enabled: bool = True
    fast_window_seconds: int = Field(300, ge=10)
    slow_window_seconds: int = Field(86_400, ge=60)
    failed_weight: float = Field(1.0, gt=0, description="weight of a target that never answered or refused")
    success_weight: float = Field(0.25, ge=0, description="weight of a target that answered")
    vertical_fast: float = Field(20.0, gt=0, description="weighted distinct ports on one host, fast window")
    vertical_slow: float = Field(100.0, gt=0, description="weighted distinct ports on one host, slow window")
    horizontal_fast: float = Field(12.0, gt=0, description="weighted distinct hosts on one port, fast window")
    horizontal_slow: float = Field(100.0, gt=0, description="weighted distinct hosts on one port, slow window")
    horizontal_min_failed_fast: int = Field(8, ge=0, description="unanswered hosts a fast sweep needs")
    horizontal_min_failed_slow: int = Field(40, ge=0, description="unanswered hosts a slow sweep needs")
    horizontal_min_failed_ratio: float = Field(
        0.2, ge=0, le=1, description="share of a sweep's hosts that must be unanswered (clients reach theirs)"
    )
    inbound_min_sources: int = Field(
        20,
        ge=1,
        description="external sources probing one internal host (slow window) to report its exposure",
    )
    reply_source_ports: list[int] = Field(
        default_factory=lambda: [53, 67, 68, 123, 137, 138, 161, 500, 1900, 3702, 4500, 5353, 5355],
        description="service ports whose flows to high ports are replies, not probes",
    )


class LateralSettings(BaseModel):
    """Fan-out of one source to many internal hosts over admin protocols."""

    enabled: bool = True
    window_seconds: int = Field(3600, ge=60)
    ports: list[int] = Field(default_factory=lambda: list(DEFAULT_ADMIN_PORTS))
    min_hosts: int = Field(5, ge=1, description="distinct internal hosts within the window, never below this")
    cold_hosts: int = Field(10, ge=1, description="threshold while the source's baseline warms up")
    sigma: float = Field(4.0, gt=0)
    new_pairs: int = Field(3, ge=1, description="admin-port destinations never contacted before by a warmed-up source")
    max_sources: int = Field(100_000, ge=1)
    max_pairs_per_source: int = Field(256, ge=1)


class ShadowItSettings(BaseModel):
    """Hosts on the network that the inventory does not list or that run no EDR agent."""

    enabled: bool = True
    window_seconds: int = Field(86_400, ge=60)
    report_missing_edr: bool = True
    ignore_cidrs: list[str] = Field(
        default_factory=list,
        description="address pools that are not hosts of their own: VPN client pools, NAT egress, guest Wi-Fi",
    )
    max_hosts: int = Field(100_000, ge=1)


class AnalyticsSettings(BaseModel):
    """All behaviour-analytics thresholds; ``tenants`` maps a tenant to partial overrides."""

    warmup: WarmupSettings = Field(default_factory=WarmupSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    beacon: BeaconSettings = Field(default_factory=BeaconSettings)
    long_connection: LongConnectionSettings = Field(default_factory=LongConnectionSettings)
    dns_tunnel: DnsTunnelSettings = Field(default_factory=DnsTunnelSettings)
    dga: DgaSettings = Field(default_factory=DgaSettings)
    exfil: ExfilSettings = Field(default_factory=ExfilSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    lateral: LateralSettings = Field(default_factory=LateralSettings)
    shadow_it: ShadowItSettings = Field(default_factory=ShadowItSettings)
    allowed_lateness_seconds: int = Field(
        600, ge=0, description="streaming: how long a window stays open after its end for late records"
    )
    max_evidence: int = Field(200, ge=1, description="event ids kept as evidence per alert")
    volume_alpha: float = Field(0.1, gt=0, le=1, description="weight of the newest window in volume baselines")
    max_volume_entities: int = Field(100_000, ge=1, description="volume baselines kept per tenant and analytic")
    tenants: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_tenant(self, tenant: str) -> AnalyticsSettings:
        """The effective settings of ``tenant``: its overrides merged over these defaults."""
        override = self.tenants.get(tenant)
        if not override:
            return self
        base = self.model_dump(exclude={"tenants"})
        merged = _deep_merge(base, override)
        return AnalyticsSettings.model_validate(merged)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_analytics_settings(path: Path | str | None = None) -> AnalyticsSettings:
    """The ``[analytics]`` table of the OpenMDR TOML file (defaults when absent).

    The file is the one the main settings read: ``path``, else ``$OPENMDR_CONFIG``, else
    ``./openmdr.toml``.  Per-tenant thresholds go under ``[analytics.tenants.<tenant>]``
    with the same keys, e.g. ``[analytics.tenants.globex.scan] vertical_fast = 50``.
    Invalid values raise ``pydantic.ValidationError`` naming the key, at start-up rather
    than when the tenant's first event arrives (every tenant override is validated here).
    """
    toml_path = Path(path) if path is not None else Path(os.environ.get("OPENMDR_CONFIG", "openmdr.toml"))
    if not toml_path.is_file():
        return AnalyticsSettings()
    with toml_path.open("rb") as handle:
        document = tomllib.load(handle)
    settings = AnalyticsSettings.model_validate(document.get("analytics", {}))
    for tenant in settings.tenants:
        settings.for_tenant(tenant)
    return settings
