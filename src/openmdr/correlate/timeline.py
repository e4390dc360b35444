"""The kill-chain timeline of a case: its alerts and key events in time order, tagged with ATT&CK.

Each entry names its tactics and techniques from the packaged ATT&CK data; the
``progression`` lists the tactics the case reached in kill-chain order (initial access ->
execution -> persistence -> ... -> exfiltration/impact) with when each was first seen.
Events come from the lake by the alerts' evidence ids (a few per alert, so a timeline
stays readable however many events an alert matched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from openmdr.correlate.attack import attack_catalog
from openmdr.correlate.entities import alert_channel
from openmdr.models.alert import Alert
from openmdr.models.case import Case

#: Evidence events fetched per alert, and per timeline.
EVENTS_PER_ALERT = 3
MAX_EVENTS = 60
#: Event columns a timeline shows.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "time",
    "host",
    "user",
    "src_ip",
    "dst_ip",
    "process_image",
    "process_command_line",
    "domain",
    "url",
    "action",
    "outcome",
    "message",
)


@dataclass(slots=True)
class TimelineEntry:
    """One line of the timeline: an alert or an evidence event."""

    time: datetime
    kind: str  # "alert" or "event"
    title: str
    tactics: list[tuple[str, str]] = field(default_factory=list)  # (TA id, name), kill-chain order
    techniques: list[tuple[str, str]] = field(default_factory=list)  # (T id, name)
    severity: str | None = None
    source: str | None = None
    channel: str | None = None
    alert_id: str | None = None
    event_id: str | None = None
    entities: dict[str, Any] = field(default_factory=dict)
    count: int = 1


@dataclass(slots=True)
class Stage:
    """A tactic the case reached, when first and last, and how many alerts showed it."""

    tactic_id: str
    name: str
    first_seen: datetime
    last_seen: datetime
    alerts: int


@dataclass(slots=True)
class Timeline:
    """A case's story in time order, and its progression through the kill chain."""

    tenant: str
    case_id: str
    entries: list[TimelineEntry]
    progression: list[Stage]
    attack_version: str
    events_missing: int = 0

    def progression_text(self) -> str:
        """``Initial Access -> Execution -> Command and Control``."""
        return " -> ".join(s.name for s in self.progression)


def _alert_tactics(alert: Alert) -> list[str]:
    catalog = attack_catalog()
    keys = {t.key for name in alert.tactics if (t := catalog.tactic(name))}
    if not keys:
        keys = set(catalog.tactics_of(alert.attack))
    return sorted(keys, key=catalog.tactic_order)


def build_timeline(case: Case, alerts: Sequence[Alert], events: pa.Table | None = None) -> Timeline:
    """Order a case's alerts (and evidence events, when given) in time and tag them with ATT&CK."""
    catalog = attack_catalog()
    entries: list[TimelineEntry] = []
    stages: dict[str, Stage] = {}
    evidence_of: dict[str, Alert] = {}
    for alert in alerts:
        tactic_keys = _alert_tactics(alert)
        tactics = [(t.external_id, t.name) for k in tactic_keys if (t := catalog.tactic(k))]
        techniques = []
        for tid in alert.attack:
            tech = catalog.technique(tid)
            techniques.append((tid.upper(), tech.name if tech else "unknown technique"))
        entries.append(
            TimelineEntry(
                time=alert.first_seen,
                kind="alert",
                title=alert.title,
                tactics=tactics,
                techniques=techniques,
                severity=alert.severity,
                source=alert.source,
                channel=alert_channel(alert),
                alert_id=alert.alert_id,
                entities=dict(alert.entities),
                count=alert.event_count,
            )
        )
        for tactic_id, name in tactics:
            stage = stages.get(tactic_id)
            if stage is None:
                stages[tactic_id] = Stage(tactic_id, name, alert.first_seen, alert.last_seen, 1)
            else:
                stage.first_seen = min(stage.first_seen, alert.first_seen)
                stage.last_seen = max(stage.last_seen, alert.last_seen)
                stage.alerts += 1
        for ev in alert.evidence[:EVENTS_PER_ALERT]:
            evidence_of.setdefault(ev, alert)
    missing = 0
    if events is not None:
        rows = events.to_pylist()
        found = {r["event_id"] for r in rows}
        missing = len([e for e in evidence_of if e not in found])
        for r in rows:
            alert = evidence_of.get(r["event_id"])
            parts = [str(r[c]) for c in ("action", "process_command_line", "domain", "url", "message") if r.get(c)]
            title = (parts[0] if parts else "event")[:200]
            ents = {k: r[k] for k in ("host", "user", "src_ip", "dst_ip", "process_image") if r.get(k)}
            entries.append(
                TimelineEntry(
                    time=r["time"],
                    kind="event",
                    title=title,
                    event_id=r["event_id"],
                    entities=ents,
                    tactics=[],
                    alert_id=alert.alert_id if alert else None,
                )
            )
    entries.sort(key=lambda e: (e.time, 0 if e.kind == "event" else 1, e.alert_id or "", e.event_id or ""))
    order = {t.external_id: t.order for t in catalog.tactics}
    progression = sorted(stages.values(), key=lambda s: (order.get(s.tactic_id, 99), s.first_seen))
    return Timeline(case.tenant, case.case_id, entries, progression, catalog.version, missing)


def evidence_sql(event_ids: Sequence[str]) -> tuple[str, list[Any]]:
    """The lake query (and its parameters) that fetches a timeline's evidence events."""
    ids = list(dict.fromkeys(event_ids))[:MAX_EVENTS]
    placeholders = ", ".join("?" for _ in ids) or "NULL"
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE event_id IN ({placeholders}) ORDER BY time"
    return sql, ids
