"""The learning loop: a confirmed case of one tenant protects every tenant, now and in hindsight.

When a case is resolved as a true positive, :meth:`LearningLoop.on_case_resolved` turns its
observables into proposed indicators, after :func:`sanitize_observable` has withheld
everything private to the tenant: observables marked internal, private/reserved/CGNAT
addresses, addresses in the tenant's networks, the tenant's own domains and mail addresses,
intranet names, hosts, users, processes and files.  The policy approves proposals
automatically or leaves them to an analyst (:meth:`LearningLoop.approve`).  An approved
proposal becomes an indicator: provider-wide for TLP:CLEAR/GREEN/AMBER, kept in the origin
tenant for TLP:AMBER+STRICT and TLP:RED (which never leave it).  Each newly shared
indicator triggers a retro-hunt over the last ``retro_hunt_days`` of every tenant it
applies to; its alerts (source ``ioc``) link the originating case by id only, never the
origin tenant's name or data.  The caller (the lead's pipeline) feeds them to the case
service so they open or join cases.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from openmdr.intel.retrohunt import HuntStats, hunt_lake
from openmdr.models.alert import Alert
from openmdr.models.case import Case, Observable
from openmdr.models.indicator import (
    TENANT_ONLY_TLP,
    Indicator,
    IndicatorError,
    indicator_id,
    normalize_tlp,
    normalize_value,
    url_host,
)
from openmdr.models.tenant import TenantInfo
from openmdr.store.intel import IntelStore, Proposal, RetroHuntRun, value_allowed
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore

if TYPE_CHECKING:
    from openmdr.bus import Bus

Clock = Callable[[], datetime]

#: Observable types that can become indicators, and the indicator type they become.
SHAREABLE_TYPES: dict[str, str] = {
    "ip": "ip", "domain": "domain", "url": "url", "hash_md5": "md5", "hash_sha1": "sha1", "hash_sha256": "sha256",
    "email": "email", "user_agent": "user_agent", "ja3": "ja3",
}  # fmt: skip
#: Name suffixes that only exist inside organisations (never shared as indicators).
INTRANET_SUFFIXES: tuple[str, ...] = (
    ".local", ".localdomain", ".internal", ".intranet", ".lan", ".corp", ".home", ".home.arpa", ".private",
    ".localhost", ".ad",
)  # fmt: skip
#: Address space that can be in use inside an organisation (RFC 1918, CGNAT, loopback, link-local,
#: benchmarking, multicast, reserved; IPv6 unique-local, link-local, multicast): never shared.
#: Documentation ranges (TEST-NET, 2001:db8::/32) are not here: no network uses them privately.
PRIVATE_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/127", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b:1::/48", "100::/64",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SharingPolicy:
    """How the learning loop shares: default TLP, approval, confidence, lifetime and retro-hunt depth.

    ``auto_approve`` shares proposals of ``auto_approve_types`` at once; everything else waits
    for an analyst.  ``expire_days`` bounds a learned indicator's life (None: no expiry).
    """

    default_tlp: str = "amber"
    auto_approve: bool = True
    auto_approve_types: frozenset[str] = frozenset(SHAREABLE_TYPES.values())
    confidence: int = 85
    expire_days: int | None = 90
    retro_hunt_days: int = 30
    #: An observable already seen on more hosts than this (outside the case, any tenant, within
    #: ``retro_hunt_days``) is too common to be an indicator of this attack (an OS binary's hash,
    #: a CDN or update server): it is not shared automatically but waits for an analyst.
    max_prevalence_hosts: int = 3


@dataclass(frozen=True, slots=True)
class Withheld:
    """An observable that was not proposed, and why (it stays in the origin tenant's case)."""

    type: str
    value: str
    reason: str


@dataclass(slots=True)
class SharingResult:
    """What resolving one case shared: proposals, what was withheld, indicators shared and retro-hunt alerts."""

    case_id: str
    tenant: str
    proposals: list[Proposal] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    shared: list[Indicator] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    retro_hunt: RetroHuntRun | None = None
    reason: str | None = None
    held_for_review: list[Withheld] = field(default_factory=list)

    @property
    def pending(self) -> list[Proposal]:
        """Proposals waiting for an analyst."""
        return [p for p in self.proposals if p.status == "proposed"]


def _in_networks(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[str]) -> bool:
    for text in networks:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.version == addr.version and addr in net:
            return True
    return False


def _private_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in PRIVATE_NETWORKS)


def _tenant_name(host: str, tenant: TenantInfo) -> bool:
    host = host.lower().rstrip(".")
    if "." not in host or host.endswith(INTRANET_SUFFIXES):
        return True
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in tenant.domains)


def sanitize_observable(obs: Observable, tenant: TenantInfo) -> tuple[str, str] | Withheld:
    """``(indicator type, value)`` if the observable may leave the tenant, else why it is withheld."""
    if obs.internal:
        return Withheld(obs.type, obs.value, "marked internal")
    kind = SHAREABLE_TYPES.get(obs.type)
    if kind is None:
        return Withheld(obs.type, obs.value, f"{obs.type} observables are tenant-private")
    try:
        value = normalize_value(kind, obs.value)
    except IndicatorError as exc:
        return Withheld(obs.type, obs.value, f"not a valid indicator: {exc}")
    if kind == "ip":
        addr = ipaddress.ip_address(value)
        if _in_networks(addr, tenant.networks):
            return Withheld(obs.type, obs.value, "address in the tenant's networks")
        if _private_address(addr):
            return Withheld(obs.type, obs.value, "private or reserved address")
    elif kind == "domain":
        if _tenant_name(value, tenant):
            return Withheld(obs.type, obs.value, "the tenant's own or an intranet name")
    elif kind == "email":
        if _tenant_name(value.rpartition("@")[2], tenant):
            return Withheld(obs.type, obs.value, "an address of the tenant's own domains")
    elif kind == "url":
        host = url_host(value) or ""
        if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
            return Withheld(obs.type, obs.value, "URL carries credentials")
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            if _tenant_name(host, tenant):
                return Withheld(obs.type, obs.value, "URL of the tenant's own or an intranet host")
        else:
            if _private_address(addr) or _in_networks(addr, tenant.networks):
                return Withheld(obs.type, obs.value, "URL of a private or tenant address")
        if any(d and d.lower() in value.lower() for d in tenant.domains):
            return Withheld(obs.type, obs.value, "URL mentions the tenant's domain")
    return kind, value


class LearningLoop:
    """Turns resolved true-positive cases into shared indicators and retro-hunts them.

    ``clock`` returns the current UTC time (a controllable clock in tests and the demo).
    ``bus``, when given, receives every newly shared indicator on ``TOPIC_INDICATORS`` so
    live matchers refresh.
    """

    def __init__(
        self,
        state: StateStore,
        lake: EventLake,
        clock: Clock | None = None,
        policy: SharingPolicy | None = None,
        store: IntelStore | None = None,
        bus: Bus | None = None,
        actor: str = "learning-loop",
    ) -> None:
        self.state = state
        self.lake = lake
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.policy = policy or SharingPolicy()
        self.store = store or IntelStore(state)
        self.bus = bus
        self.actor = actor

    # ---------------------------------------------------------------- resolution
    def on_case_resolved(self, case: Case, tenant_info: TenantInfo, tlp: str | None = None) -> SharingResult:
        """Propose (and by policy share and retro-hunt) the sanitized observables of a resolved case."""
        result = SharingResult(case.case_id, case.tenant)
        if case.tenant != tenant_info.name:
            raise ValueError(f"case {case.case_id} belongs to {case.tenant!r}, not {tenant_info.name!r}")
        if case.status != "resolved" or case.resolution != "true_positive":
            result.reason = "only cases resolved as true_positive are shared"
            return result
        level = normalize_tlp(tlp or self.policy.default_tlp)
        allow = [(a.type, a.value) for a in self.store.list_allow(case.tenant)]
        items: list[dict[str, Any]] = []
        # Resolving the same case again proposes only what it did not propose before.
        seen: set[tuple[str, str]] = {
            (p.type, p.value) for p in self.store.list_proposals(case.tenant) if p.case_id == case.case_id
        }
        for obs in case.observables:
            outcome = sanitize_observable(obs, tenant_info)
            if isinstance(outcome, Withheld):
                result.withheld.append(outcome)
                continue
            kind, value = outcome
            if (kind, value) in seen:
                continue
            seen.add((kind, value))
            if value_allowed(kind, value, allow):
                result.withheld.append(Withheld(obs.type, obs.value, "allow-listed"))
                continue
            items.append({"type": kind, "value": value, "tlp": level, "confidence": self.policy.confidence})
        result.proposals = self.store.add_proposals(case.tenant, case.case_id, items, self.actor)
        if self.policy.auto_approve:
            victims = _case_victims(case, tenant_info)
            auto = [p for p in result.proposals if p.type in self.policy.auto_approve_types]
            common = self._prevalence(auto, case.tenant, victims)
            for p in auto:
                if p.id in common:
                    result.held_for_review.append(Withheld(p.type, p.value, common[p.id]))
            auto = [p for p in auto if p.id not in common]
            if auto:
                shared = self._share(auto, "policy", victims)
                result.proposals = [self.store.get_proposal(case.tenant, p.id) for p in result.proposals]
                result.shared, result.alerts, result.retro_hunt = shared
        return result

    def _prevalence(self, proposals: Sequence[Proposal], tenant: str, victims: Collection[str]) -> dict[str, str]:
        """Proposals too common to share unattended: proposal id -> the reason, in words."""
        if not proposals:
            return {}
        now = self.clock()
        days = self.policy.retro_hunt_days
        probes = {indicator_id(None, p.type, p.value): p for p in proposals}
        candidates = [
            Indicator(type=p.type, value=p.value, tenant=None, source="prevalence-check", confidence=100, tlp="red")
            for p in proposals
        ]
        skip = {tenant: victims} if victims else None
        alerts, _ = hunt_lake(self.lake, candidates, now - timedelta(days=days), now, now=now, skip_hosts=skip)
        seen: dict[str, set[tuple[str, str]]] = {}
        for alert in alerts:
            hosts = alert.entities.get("host") or alert.entities.get("src_ip") or alert.alert_id
            for host in hosts if isinstance(hosts, list) else [hosts]:
                seen.setdefault(alert.rule_id, set()).add((alert.tenant, str(host).lower()))
        out: dict[str, str] = {}
        for probe_id, where in seen.items():
            proposal = probes.get(probe_id)
            if proposal is not None and len(where) > self.policy.max_prevalence_hosts:
                tenants = len({t for t, _ in where})
                out[proposal.id] = (
                    f"prevalent: seen on {len(where)} other hosts in {tenants} tenant(s) in the last {days} days, "
                    "likely benign; left for an analyst to approve"
                )
        return out

    def approve(self, tenant: str, proposal_ids: Sequence[str], analyst: str, tlp: str | None = None) -> SharingResult:
        """An analyst approves pending proposals of ``tenant`` (optionally at another TLP): share and retro-hunt."""
        proposals = [self.store.get_proposal(tenant, pid) for pid in proposal_ids]
        not_pending = [p.id for p in proposals if p.status != "proposed"]
        if not_pending:
            raise ValueError(f"proposals already decided: {', '.join(not_pending)}")
        if tlp:
            level = normalize_tlp(tlp)
            proposals = [_with_tlp(p, level) for p in proposals]
        case_id = proposals[0].case_id if proposals else ""
        result = SharingResult(case_id, tenant)
        if proposals:
            result.shared, result.alerts, result.retro_hunt = self._share(proposals, analyst)
            result.proposals = [self.store.get_proposal(tenant, p.id) for p in proposals]
        return result

    def reject(self, tenant: str, proposal_id: str, analyst: str, reason: str) -> Proposal:
        """An analyst rejects a pending proposal of ``tenant``."""
        return self.store.decide_proposal(tenant, proposal_id, "rejected", analyst, reason=reason)

    def _share(
        self, proposals: Sequence[Proposal], actor: str, case_hosts: Collection[str] = ()
    ) -> tuple[list[Indicator], list[Alert], RetroHuntRun | None]:
        now = self.clock()
        expires = now + timedelta(days=self.policy.expire_days) if self.policy.expire_days else None
        indicators: list[Indicator] = []
        for p in proposals:
            scope = p.tenant if p.tlp in TENANT_ONLY_TLP else None
            indicators.append(
                Indicator(
                    type=p.type,
                    value=p.value,
                    tenant=scope,
                    source="case",
                    confidence=p.confidence,
                    tlp=p.tlp,
                    tags=["learned", "confirmed-case"],
                    first_seen=now,
                    last_seen=now,
                    expires_at=expires,
                    description="learned from a confirmed true-positive case",
                    origin={"type": "case", "case_id": p.case_id, "proposal_id": p.id},
                )
            )
        report = self.store.upsert_indicators(indicators, actor, None, now=now)
        kept = set(report.ids)
        for p, ind in zip(proposals, indicators, strict=True):
            if ind.id in kept:
                self.store.decide_proposal(p.tenant, p.id, "shared", actor, indicator_id=ind.id, tlp=p.tlp)
            else:
                self.store.decide_proposal(p.tenant, p.id, "rejected", actor, reason="allow-listed")
        shared = [self.store.get_indicator(i.id, i.tenant) for i in indicators if i.id in kept]
        if self.bus is not None and shared:
            from openmdr.bus import TOPIC_INDICATORS

            self.bus.publish(TOPIC_INDICATORS, {"action": "shared", "ids": [i.id for i in shared]})
        if not shared:
            return [], [], None
        origin_tenant = proposals[0].tenant
        alerts, run = self._hunt(
            shared, self.policy.retro_hunt_days, f"case:{proposals[0].case_id}", origin_tenant, case_hosts
        )
        return shared, alerts, run

    # ---------------------------------------------------------------- retro-hunt
    def retro_hunt(
        self, indicators: Sequence[Indicator], days: int | None = None, trigger: str = "manual"
    ) -> list[Alert]:
        """Alerts for every tenant's events of the last ``days`` (policy default) hit by ``indicators``."""
        alerts, _ = self._hunt(indicators, days or self.policy.retro_hunt_days, trigger, None)
        return alerts

    def retro_hunt_run(
        self, indicators: Sequence[Indicator], days: int | None = None, trigger: str = "manual"
    ) -> tuple[list[Alert], RetroHuntRun | None]:
        """Like :meth:`retro_hunt`, also returning the recorded run (what was scanned, per-tenant counts)."""
        return self._hunt(indicators, days or self.policy.retro_hunt_days, trigger, None)

    def _hunt(
        self,
        indicators: Sequence[Indicator],
        days: int,
        trigger: str,
        origin_tenant: str | None,
        case_hosts: Collection[str] = (),
    ) -> tuple[list[Alert], RetroHuntRun | None]:
        if not indicators:
            return [], None
        now = self.clock()
        since = now - timedelta(days=days)
        started = time.perf_counter()
        allow = self.store.list_allow(all_scopes=True)
        skip = {origin_tenant: case_hosts} if origin_tenant and case_hosts else None
        alerts, stats = hunt_lake(self.lake, indicators, since, now, allow, now=now, skip_hosts=skip)
        run_id = str(uuid.uuid4())
        for alert in alerts:
            _mark_retro(alert, run_id, days, origin_tenant)
        run = self._record(run_id, trigger, indicators, days, now, started, stats, len(alerts))
        return alerts, run

    def _record(
        self,
        run_id: str,
        trigger: str,
        indicators: Sequence[Indicator],
        days: int,
        now: datetime,
        started: float,
        stats: HuntStats,
        alerts: int,
    ) -> RetroHuntRun:
        run = RetroHuntRun(
            id=run_id,
            trigger=trigger[:200],
            indicator_ids=[i.id for i in indicators],
            days=days,
            started_at=now,
            finished_at=now + timedelta(seconds=time.perf_counter() - started),
            tenants=stats.tenants,
            files=stats.files,
            rows_matched=stats.rows_matched,
            alerts=alerts,
            by_tenant=dict(stats.by_tenant),
        )
        self.store.record_retrohunt(run, self.actor)
        return run


def _case_victims(case: Case, tenant: TenantInfo) -> set[str]:
    """Hosts and internal addresses the case already covers: the case's own retro-hunt does not re-alert them."""
    victims = {h for h in case.entities.get("host", []) if h}
    victims |= {o.value for o in case.observables if o.type == "host" and o.value}
    addresses = [v for key in ("src_ip", "dst_ip") for v in case.entities.get(key, [])]
    addresses += [o.value for o in case.observables if o.type == "ip"]
    for value in addresses:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            continue
        if _in_networks(addr, tenant.networks) or _private_address(addr):
            victims.add(addr.compressed)
    return victims


def _with_tlp(p: Proposal, tlp: str) -> Proposal:
    values = {name: getattr(p, name) for name in Proposal.__slots__}  # type: ignore[attr-defined]
    values["tlp"] = tlp
    return Proposal(**values)


def _mark_retro(alert: Alert, run_id: str, days: int, origin_tenant: str | None) -> None:
    """Tag a retro-hunt alert and link the originating case without naming the origin tenant."""
    alert.tags.append("retro_hunt")
    alert.details["retro_hunt"] = {"run_id": run_id, "days": days}
    origin = alert.details.get("origin")
    if isinstance(origin, dict) and origin.get("type") == "case":
        link: dict[str, Any] = {"type": "retro_hunt", "case_id": origin.get("case_id")}
        if origin_tenant is not None and alert.tenant == origin_tenant:
            link["same_tenant"] = True
        alert.details["case_link"] = link
    alert.title = "Retro-hunt: " + alert.title
