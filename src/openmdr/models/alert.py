"""The alert model shared by every detection source (Sigma rules, analytics, indicators).

One schema for all sources lets triage, correlation and response treat a Sigma hit, a
beaconing finding and an indicator match alike.  The JSON form (:meth:`Alert.to_json_dict`)
is what ``openmdr scan --out`` writes, one alert per line; it is documented in
``docs/alerts.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Severity levels in increasing order (Sigma's ``level`` values).
SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")

#: Entity keys an alert may carry; correlation groups alerts that share these.
ENTITY_KEYS: tuple[str, ...] = (
    "host", "user", "src_ip", "dst_ip", "process", "parent_process", "command_line",
    "hash", "domain", "url", "file",
)  # fmt: skip


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (unknown values rank as medium)."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return SEVERITIES.index("medium")


@dataclass(slots=True)
class Alert:
    """A detection: which rule or analytic fired, on what, when, and the events behind it.

    ``source`` is ``"sigma"``, ``"analytics:<name>"`` or ``"ioc"``.  ``author`` is the rule
    author, kept as the Detection Rule License requires for Sigma rules.  ``attack`` holds
    ATT&CK technique ids (``T1059.001``); ``entities`` maps :data:`ENTITY_KEYS` to the
    values involved (lists when there are several).  ``evidence`` lists the ids of the
    matching events in the lake; ``explanation`` says in words why it fired (statistic,
    baseline, threshold for analytics; matched selections for rules).
    """

    tenant: str
    rule_id: str
    title: str
    severity: str
    source: str
    first_seen: datetime
    last_seen: datetime
    author: str | None = None
    description: str | None = None
    attack: list[str] = field(default_factory=list)
    tactics: list[str] = field(default_factory=list)
    entities: dict[str, Any] = field(default_factory=dict)
    event_count: int = 1
    evidence: list[str] = field(default_factory=list)
    confidence: float = 0.7
    explanation: str | None = None
    references: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    alert_id: str = ""

    def __post_init__(self) -> None:
        if not self.alert_id:
            self.alert_id = alert_fingerprint(self.tenant, self.source, self.rule_id, self.evidence, self.first_seen)

    def to_json_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data (times as ISO 8601 UTC strings)."""
        return {
            "alert_id": self.alert_id,
            "tenant": self.tenant,
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "confidence": self.confidence,
            "author": self.author,
            "description": self.description,
            "source": self.source,
            "attack": list(self.attack),
            "tactics": list(self.tactics),
            "entities": dict(self.entities),
            "event_count": self.event_count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "evidence": list(self.evidence),
            "explanation": self.explanation,
            "references": list(self.references),
            "tags": list(self.tags),
            "details": dict(self.details),
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_json_dict`."""
        values = dict(data)
        values["first_seen"] = datetime.fromisoformat(values["first_seen"])
        values["last_seen"] = datetime.fromisoformat(values["last_seen"])
        return cls(**values)


def alert_fingerprint(tenant: str, source: str, rule_id: str, evidence: list[str], first_seen: datetime) -> str:
    """Stable alert id: the same detection over the same events always gets the same id."""
    h = hashlib.blake2b(digest_size=16)
    for part in (tenant, source, rule_id, first_seen.isoformat(), *sorted(evidence)):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()
