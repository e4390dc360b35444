"""The case model: one attack as the analyst works it, with the SLA clock on it.

Correlation (``openmdr.correlate``) groups a tenant's alerts into cases; response
(``openmdr.respond``) acts on cases; the learning loop (``openmdr.intel``) turns resolved
true-positive cases into shared indicators; metrics read the SLA timestamps.  These are
plain values: the case store keeps them, the stages pass them along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Lifecycle of a case, in order.  ``resolved`` carries a :data:`RESOLUTIONS` value.
CASE_STATUSES: tuple[str, ...] = ("new", "acknowledged", "contained", "resolved")
#: How a resolved case ended.
RESOLUTIONS: tuple[str, ...] = ("true_positive", "false_positive", "benign")
#: Observable types a case lists (what response acts on and the learning loop shares).
OBSERVABLE_TYPES: tuple[str, ...] = (
    "host", "user", "ip", "domain", "url", "hash_md5", "hash_sha1", "hash_sha256", "email", "process",
    "file", "user_agent", "ja3",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Observable:
    """One thing seen in a case: its type (:data:`OBSERVABLE_TYPES`) and value.

    ``internal`` marks tenant-private values (internal addresses, hostnames, users) that
    must never leave the tenant when the case's lessons are shared.
    """

    type: str
    value: str
    internal: bool = False
    role: str | None = None  # e.g. "victim", "attacker", "c2", "source", "destination"


@dataclass(slots=True)
class CaseNote:
    """An analyst's note on a case."""

    author: str
    time: datetime
    text: str


@dataclass(slots=True)
class SlaClock:
    """The SLA timestamps of a case (UTC): the MTTD/MTTR inputs.

    ``first_event_at`` is the first malicious event's time, ``detected_at`` the first
    alert's detection time, then the analyst/automation milestones.
    """

    first_event_at: datetime | None = None
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    resolved_at: datetime | None = None

    def time_to_detect(self) -> float | None:
        """Seconds from the first malicious event to detection (None until both are known)."""
        if self.first_event_at is None or self.detected_at is None:
            return None
        return max(0.0, (self.detected_at - self.first_event_at).total_seconds())

    def time_to_contain(self) -> float | None:
        """Seconds from detection to containment."""
        if self.detected_at is None or self.contained_at is None:
            return None
        return max(0.0, (self.contained_at - self.detected_at).total_seconds())

    def time_to_resolve(self) -> float | None:
        """Seconds from detection to resolution."""
        if self.detected_at is None or self.resolved_at is None:
            return None
        return max(0.0, (self.resolved_at - self.detected_at).total_seconds())


@dataclass(slots=True)
class Case:
    """A group of one tenant's alerts that tell one attack, with why they were grouped.

    ``reasons`` are the grouping explanations in words ("same user X and host Y within
    25 min"), one per alert that joined after the first.  ``links`` point at related
    cases (``{"type": "retro_hunt", "case_id": ..., "tenant": ...}``) without leaking
    the other tenant's data.
    """

    case_id: str
    tenant: str
    title: str
    severity: str
    status: str = "new"
    resolution: str | None = None
    priority: int = 3  # 1 (urgent) .. 4 (low)
    risk_score: float = 0.0
    assignee: str | None = None
    alert_ids: list[str] = field(default_factory=list)
    observables: list[Observable] = field(default_factory=list)
    entities: dict[str, list[str]] = field(default_factory=dict)
    tactics: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[CaseNote] = field(default_factory=list)
    sla: SlaClock = field(default_factory=SlaClock)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    merged_into: str | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # telemetry the alerts came from: endpoint, network, ...
    evidence: list[str] = field(default_factory=list)  # lake event ids behind the alerts (the first few hundred)

    @property
    def is_open(self) -> bool:
        """Not resolved and not merged into another case."""
        return self.status != "resolved" and self.merged_into is None
