"""Time-ordered replay of recorded telemetry through the real pipeline, at an accelerated clock.

A week of telemetry read from files would otherwise arrive "now", days after it happened,
and every SLA figure would be meaningless.  :func:`replay` instead parses every record
first (the same :func:`~openmdr.pipeline.parse_record` the live transports use), orders
the events of all tenants by time, and feeds them window by window through
:meth:`IngestPipeline.submit_events` while a :class:`SimClock` stands at the end of the
window: detection, correlation and response downstream read that clock, so detection
latency, time to contain and time to resolve are measured as if the week were live.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Event, RawRecord, Rejection
from openmdr.models.event import EPOCH
from openmdr.pipeline import IngestPipeline, IngestReport, parse_record


class SimClock:
    """A clock that only moves when the replay moves it; callable like ``datetime.now(UTC)``."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def start_at(self, moment: datetime) -> datetime:
        """Set the time a replay starts at (its first event), earlier or later than now."""
        self.now = moment.astimezone(UTC)
        return self.now

    def advance_to(self, moment: datetime) -> datetime:
        """Move forward to ``moment`` (never backwards); returns the new time."""
        self.now = max(self.now, moment.astimezone(UTC))
        return self.now


@dataclass(slots=True)
class ParsedTelemetry:
    """One tenant's recorded telemetry, parsed: events in time order and what could not be read."""

    tenant: str
    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Records read (events + rejections)."""
        return len(self.events) + len(self.rejections)


def parse_paths(tenant: str, paths: Sequence[str | Path], fmt: str | None = None) -> ParsedTelemetry:
    """Frame and parse files/directories for ``tenant`` without storing anything yet."""
    parsed = ParsedTelemetry(tenant)
    for item in read_sources(plan_sources([str(p) for p in paths]), fmt):
        if isinstance(item, Rejection):
            item.tenant = item.tenant or tenant
            parsed.rejections.append(item)
            continue
        assert isinstance(item, RawRecord)
        result = parse_record(item, tenant, EPOCH)
        if isinstance(result, Rejection):
            parsed.rejections.append(result)
        else:
            parsed.events.append(result)
    parsed.events.sort(key=lambda e: e.time)
    return parsed


@dataclass(slots=True)
class ReplayReport:
    """What a replay pushed through the pipeline."""

    windows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    ingest: IngestReport = field(default_factory=IngestReport)
    by_tenant: dict[str, IngestReport] = field(default_factory=dict)


def replay(
    pipeline: IngestPipeline,
    telemetry: Iterable[ParsedTelemetry],
    clock: SimClock,
    window: timedelta = timedelta(minutes=30),
    on_window: Callable[[datetime], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Feed every tenant's events in time order, one ``window`` at a time, with ``clock`` at the window's end.

    ``on_window(now)`` runs after each window (response timers, simulated people);
    ``on_progress(n)`` gets the number of events each window submitted.
    """
    report = ReplayReport()
    parts = [t for t in telemetry if t.events or t.rejections]
    for part in parts:
        if part.rejections:
            rejected = pipeline.submit(part.tenant, part.rejections)
            report.ingest.add(rejected)
            report.by_tenant.setdefault(part.tenant, IngestReport()).add(rejected)
    ordered = list(heapq.merge(*(p.events for p in parts), key=lambda e: e.time))
    if not ordered:
        return report
    start = ordered[0].time
    report.first = start
    edge = _floor(start, window) + window
    pending: dict[str, list[Event]] = {}

    def close_window(end: datetime) -> None:
        clock.advance_to(end)
        submitted = 0
        for tenant, events in pending.items():
            result = pipeline.submit_events(tenant, events)
            report.ingest.add(result)
            report.by_tenant.setdefault(tenant, IngestReport()).add(result)
            submitted += len(events)
        pending.clear()
        report.windows += 1
        if on_window is not None:
            on_window(end)
        if on_progress is not None:
            on_progress(submitted)

    for event in ordered:
        while event.time >= edge:
            close_window(edge)
            edge += window
        pending.setdefault(event.tenant, []).append(event)
        report.last = event.time
    close_window(edge)
    return report


def _floor(moment: datetime, window: timedelta) -> datetime:
    seconds = window.total_seconds()
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)
