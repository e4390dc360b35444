"""Alert triage as pure functions: risk score, suppression matching and case summaries.

Risk = 100 x severity x confidence x asset criticality x indicator reputation, each a
factor in (0, 1]; an alert on a critical server from a high-confidence rule with a
known-bad indicator scores near 100, an informational hit on a low-value laptop near 0.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from openmdr.correlate.attack import attack_catalog
from openmdr.correlate.entities import alert_channel, alert_entities, normalize_host, normalize_user
from openmdr.models.alert import SEVERITIES, Alert, severity_rank
from openmdr.models.case import Observable

#: Severity factor of the risk score.
SEVERITY_FACTOR: dict[str, float] = {
    "informational": 0.1,
    "low": 0.25,
    "medium": 0.5,
    "high": 0.75,
    "critical": 1.0,
}
#: Asset-criticality factor (unknown assets count as medium).
CRITICALITY_FACTOR: dict[str, float] = {"low": 0.4, "medium": 0.6, "high": 0.8, "critical": 1.0}


def reputation_factor(alert: Alert) -> float:
    """Indicator reputation in (0, 1]: ``details["reputation"]`` (0..1 or 0..100) when an intel match set it."""
    raw = (alert.details or {}).get("reputation")
    if raw is None:
        return 1.0 if alert.source != "ioc" else 0.8
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return 1.0
    if value > 1.0:
        value /= 100.0
    return min(1.0, max(0.1, value))


def risk_score(alert: Alert, criticality: str | None) -> float:
    """Risk of one alert, 0-100: severity x confidence x asset criticality x reputation."""
    sev = SEVERITY_FACTOR.get(alert.severity, 0.5)
    conf = min(1.0, max(0.05, float(alert.confidence or 0.0)))
    crit = CRITICALITY_FACTOR.get(criticality or "medium", 0.6)
    return round(100.0 * sev * conf * crit * reputation_factor(alert), 1)


@dataclass(frozen=True, slots=True)
class Suppression:
    """A tenant's rule to silence matching alerts until ``expires_at``, with the reason."""

    id: int
    tenant: str
    reason: str
    created_by: str
    created_at: datetime
    rule_id: str | None = None
    source: str | None = None
    entities: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    hits: int = 0

    def active(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def matches(self, alert: Alert) -> bool:
        """True when the alert is of this tenant and fits every stated criterion."""
        if alert.tenant != self.tenant:
            return False
        if self.rule_id is not None and alert.rule_id != self.rule_id:
            return False
        if self.source is not None and alert.source != self.source:
            return False
        for key, wanted in self.entities.items():
            values = alert.entities.get(key)
            values = values if isinstance(values, list) else [values] if values is not None else []
            norm = normalize_user if key == "user" else normalize_host if key == "host" else str.lower
            if norm(str(wanted)) not in {norm(str(v)) for v in values}:
                return False
        return True


def first_match(suppressions: Sequence[Suppression], alert: Alert, now: datetime) -> Suppression | None:
    """The first active suppression matching ``alert`` (lowest id first)."""
    for rule in suppressions:
        if rule.active(now) and rule.matches(alert):
            return rule
    return None


def bump_severity(severity: str) -> str:
    """One level higher (critical stays critical)."""
    return SEVERITIES[min(len(SEVERITIES) - 1, severity_rank(severity) + 1)]


def priority_for(severity: str, criticality: str | None) -> int:
    """Priority 1 (urgent) .. 4 (low) from severity, raised one step on high/critical assets."""
    base = {"critical": 1, "high": 2, "medium": 3}.get(severity, 4)
    if criticality in ("high", "critical") and base > 1:
        base -= 1
    return base


@dataclass(slots=True)
class CaseSummary:
    """What a case shows that follows from its alerts alone (recomputed after every change)."""

    title: str
    severity: str
    priority: int
    risk_score: float
    entities: dict[str, list[str]]
    observables: list[Observable]
    tactics: list[str]
    techniques: list[str]
    sources: list[str]
    channels: list[str]
    first_event_at: datetime | None
    last_event_at: datetime | None


#: The part an entity key gives its observable (a process seen only as a parent or by its command line).
_ENTITY_ROLES = {
    "src_ip": "source", "dst_ip": "destination", "parent_process": "parent", "command_line": "command_line",
}  # fmt: skip


def _observable_type(kind: str, value: str) -> str:
    if kind == "hash":
        return {32: "hash_md5", 40: "hash_sha1"}.get(len(value), "hash_sha256")
    return {"src_ip": "ip", "dst_ip": "ip", "parent_process": "process", "command_line": "process"}.get(kind, kind)


def summarize_case(
    alerts: Sequence[Alert],
    risks: Mapping[str, float],
    criticality: Mapping[str, str] | None = None,
    internal: Callable[[str, str], bool] | None = None,
) -> CaseSummary:
    """Title, severity, priority, risk, entities, observables and ATT&CK coverage of a case's alerts.

    ``risks`` maps alert ids to their risk; ``criticality`` host -> asset criticality;
    ``internal(type, value)`` tells whether an observable is tenant-private (default: hosts,
    users, private addresses and processes are internal).
    """
    if not alerts:
        raise ValueError("a case needs at least one alert")
    catalog = attack_catalog()
    criticality = criticality or {}
    ordered = sorted(alerts, key=lambda a: (a.first_seen, a.alert_id))
    top = max(ordered, key=lambda a: (risks.get(a.alert_id, 0.0), severity_rank(a.severity), -a.first_seen.timestamp()))
    severity = max((a.severity for a in ordered), key=severity_rank)
    tactics_set: set[str] = set()
    techniques: list[str] = []
    for a in ordered:
        for t in a.tactics:
            tactic = catalog.tactic(t)
            if tactic is not None:  # names ATT&CK does not know are not tactics
                tactics_set.add(tactic.key)
        for tid in a.attack:
            if tid.upper() not in techniques:
                techniques.append(tid.upper())
        if not a.tactics:
            tactics_set.update(catalog.tactics_of(a.attack))
    tactics = sorted(tactics_set, key=catalog.tactic_order)
    channels = sorted({alert_channel(a) for a in ordered})
    # a multi-stage, multi-source story escalates a high case to critical; it never lifts
    # low/medium noise (which analytics tag with tactics generously) above medium
    if len(tactics) >= 3 and len([c for c in channels if c != "other"]) >= 2 and severity_rank(severity) >= 3:
        severity = bump_severity(severity)
    entities: dict[str, list[str]] = {}
    observables: dict[tuple[str, str], Observable] = {}
    for a in ordered:
        for key, raw in (a.entities or {}).items():
            values = raw if isinstance(raw, list) else [raw]
            bucket = entities.setdefault(key, [])
            for v in values:
                if v is None or v == "":
                    continue
                text = str(v)
                if text not in bucket and len(bucket) < 50:
                    bucket.append(text)
                otype = _observable_type(key, text)
                if otype == "ip" and not _is_address(text):
                    continue
                role = _ENTITY_ROLES.get(key)
                if (otype, text) not in observables and len(observables) < 500:
                    is_internal = internal(otype, text) if internal else _default_internal(otype, text)
                    observables[(otype, text)] = Observable(otype, text, is_internal, role)
    hosts = [normalize_host(h) for h in entities.get("host", [])]
    crit = max((criticality.get(h, "medium") for h in hosts), key=_crit_rank, default=None)
    risk = max(risks.get(a.alert_id, 0.0) for a in ordered)
    risk = min(100.0, round(risk + 5.0 * max(0, len(tactics) - 1) + 5.0 * max(0, len(channels) - 1), 1))
    where = _where(top)
    title = f"{top.title}{where}"
    if len(ordered) > 1:
        title += f" (+{len(ordered) - 1} alert{'s' if len(ordered) > 2 else ''})"
    return CaseSummary(
        title=title[:500],
        severity=severity,
        priority=priority_for(severity, crit),
        risk_score=risk,
        entities=entities,
        observables=list(observables.values()),
        tactics=tactics,
        techniques=techniques,
        sources=sorted({a.source for a in ordered}),
        channels=channels,
        first_event_at=ordered[0].first_seen,
        last_event_at=max(a.last_seen for a in ordered),
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _crit_rank(level: str) -> int:
    return ("low", "medium", "high", "critical").index(level) if level in CRITICALITY_FACTOR else 1


def _where(alert: Alert) -> str:
    for ent in alert_entities(alert):
        if ent.kind in ("host", "user"):
            return f" on {ent.kind} {ent.display}"
    return ""


#: Address ranges that are internal whatever the tenant declares (RFC 1918, CGNAT, ULA, loopback, link-local).
PRIVATE_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


def internal_checker(networks: Sequence[str] = ()) -> Callable[[str, str], bool]:
    """``internal(type, value)``: hosts, users, processes and files, and addresses in the tenant's or private ranges."""
    nets = [*PRIVATE_NETWORKS, *(ipaddress.ip_network(n, strict=False) for n in networks)]

    def internal(otype: str, value: str) -> bool:
        if otype in ("host", "user", "process", "file"):
            return True
        if otype != "ip":
            return False
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in nets)

    return internal


_default_internal = internal_checker()
