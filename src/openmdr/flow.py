"""The second half of the flow, wired on the bus: detect -> correlate -> respond.

The ingest pipeline (:mod:`openmdr.pipeline`) publishes every stored event batch on
:data:`~openmdr.bus.TOPIC_EVENTS`.  :class:`DetectionFlow` subscribes to it and runs each
:class:`Detector` (Sigma rules, indicators, behaviour analytics) over the batch, publishes
their alerts on :data:`~openmdr.bus.TOPIC_ALERTS`, hands alerts to the case service
(which deduplicates, scores and groups them), publishes case changes on
:data:`~openmdr.bus.TOPIC_CASES`, and lets the response service act on changed cases
within each tenant's delegated authority.  Every hop goes over the bus as JSON or Arrow,
so a distributed broker can carry it; the stages never call one another directly.

A stage that fails on a batch never stops the flow: the failure is counted per stage,
kept in the dead-letter store with the batch's event ids as payload, and the other
stages still see the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import pyarrow as pa

from openmdr.bus import TOPIC_ALERTS, TOPIC_CASES, TOPIC_EVENTS, Bus, Subscription
from openmdr.models import Alert, Case, Rejection

log = logging.getLogger(__name__)


class Detector(Protocol):
    """A detection source: turns event batches into alerts (streaming, with a final flush)."""

    name: str

    def detect(self, events: pa.Table) -> list[Alert]:
        """Alerts for one batch of stored events (Arrow, lake layout; any tenants)."""
        ...

    def flush(self) -> list[Alert]:
        """Alerts still held in open windows (end of a replay, shutdown)."""
        ...


class CaseSink(Protocol):
    """What the flow needs of the case service."""

    def add_alerts(self, alerts: list[Alert]) -> list[Any]:
        """Deduplicate, store and correlate alerts; returns the case changes."""
        ...

    def get(self, tenant: str, case_id: str) -> Case | None:
        """The case, if it belongs to ``tenant``."""
        ...


class Responder(Protocol):
    """What the flow needs of the response service."""

    def on_case(self, case: Case) -> Any:
        """Plan and run what the tenant's authority allows for ``case``; queue the rest."""
        ...


@dataclass(slots=True)
class FlowStats:
    """What went through the second half of the flow."""

    batches: int = 0
    events: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    case_changes: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for reports and metrics."""
        return {
            "batches": self.batches,
            "events": self.events,
            "alerts": dict(self.alerts),
            "case_changes": dict(self.case_changes),
            "actions": dict(self.actions),
            "errors": dict(self.errors),
        }


def change_to_message(change: Any) -> dict[str, Any]:
    """A case change as bus JSON (the case service's change object or a mapping)."""
    if isinstance(change, dict):
        return dict(change)
    out: dict[str, Any] = {}
    for key in ("tenant", "case_id", "kind", "alert_ids", "reason"):
        value = getattr(change, key, None)
        if value is not None:
            out[key] = list(value) if isinstance(value, list | tuple | set) else value
    return out


class DetectionFlow:
    """Subscribes the detection, correlation and response stages to the bus."""

    def __init__(
        self,
        bus: Bus,
        detectors: Sequence[Detector],
        cases: CaseSink | None = None,
        responder: Responder | None = None,
        on_failure: Callable[[Rejection], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bus = bus
        self.detectors = list(detectors)
        self.cases = cases
        self.responder = responder
        self.on_failure = on_failure
        self.clock = clock
        self.stats = FlowStats()
        self._subscriptions: list[Subscription] = []
        self._lock = threading.RLock()
        self._holding = False
        self._held: list[pa.Table] = []

    # ------------------------------------------------------------------ wiring
    def attach(self) -> DetectionFlow:
        """Subscribe the stages to their topics (idempotent)."""
        if not self._subscriptions:
            self._subscriptions.append(self.bus.subscribe(TOPIC_EVENTS, self.on_events))
            if self.cases is not None:
                self._subscriptions.append(self.bus.subscribe(TOPIC_ALERTS, self.on_alerts))
                if self.responder is not None:
                    self._subscriptions.append(self.bus.subscribe(TOPIC_CASES, self.on_cases))
        return self

    def detach(self) -> None:
        """Stop receiving messages."""
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()

    # ------------------------------------------------------------------ stages
    def hold(self) -> None:
        """Micro-batching: keep stored batches until :meth:`drain` (a replay drains once per window)."""
        self._holding = True

    def drain(self) -> None:
        """Detect over every held batch at once (one call per detector), then stop holding."""
        with self._lock:
            held, self._held = self._held, []
            self._holding = False
            if held:
                self.on_events(pa.concat_tables(held) if len(held) > 1 else held[0])

    def on_events(self, table: pa.Table) -> None:
        """Detect: run every detector over a stored batch, publish the alerts."""
        with self._lock:
            if self._holding:
                self._held.append(table)
                return
            self.stats.batches += 1
            self.stats.events += table.num_rows
            alerts: list[Alert] = []
            for detector in self.detectors:
                alerts.extend(self._guard(detector.name, lambda d=detector: d.detect(table), table) or [])
            self._publish_alerts(alerts)

    def flush(self) -> int:
        """Close every detector's open windows and publish what they held; returns the alerts."""
        with self._lock:
            alerts: list[Alert] = []
            for detector in self.detectors:
                alerts.extend(self._guard(detector.name, detector.flush, None) or [])
            self._publish_alerts(alerts)
            return len(alerts)

    def publish_alerts(self, alerts: Iterable[Alert]) -> None:
        """Publish alerts found outside a batch (a rule library switch closing open windows), counted as any."""
        with self._lock:
            self._publish_alerts(alerts)

    def _publish_alerts(self, alerts: Iterable[Alert]) -> None:
        batch = list(alerts)
        if not batch:
            return
        for alert in batch:
            self.stats.alerts[
                alert.source.split(":", 1)[0] if alert.source.startswith("analytics") else alert.source
            ] += 1
        self.bus.publish(TOPIC_ALERTS, [a.to_json_dict() for a in batch])

    def on_alerts(self, messages: list[dict[str, Any]]) -> None:
        """Correlate: hand alerts to the case service, publish the case changes."""
        if self.cases is None:
            return
        alerts: list[Alert] = []
        for message in messages:
            try:
                alerts.append(Alert.from_json_dict(message))
            except (AttributeError, KeyError, TypeError, ValueError) as exc:  # costs this message, not the batch
                self.stats.errors["alert-message"] += 1
                self._reject(message, f"alert message: {type(exc).__name__}: {exc}")
        changes = self._guard("correlate", lambda: self.cases.add_alerts(alerts), None) or []  # type: ignore[union-attr]
        out = [change_to_message(c) for c in changes]
        for change in out:
            self.stats.case_changes[str(change.get("kind", "changed"))] += 1
        if out:
            self.bus.publish(TOPIC_CASES, out)

    def on_cases(self, changes: list[dict[str, Any]]) -> None:
        """Respond: let the response service act on every changed open case once per message.

        The response service publishes its own actions on ``TOPIC_ACTIONS`` and reports
        containment to the case service; the flow only counts what it decided.
        """
        if self.cases is None or self.responder is None:
            return
        seen: set[tuple[str, str]] = set()
        for change in changes:
            key = (str(change.get("tenant") or ""), str(change.get("case_id") or ""))
            if key in seen or not all(key):
                continue
            seen.add(key)
            case = self.cases.get(*key)
            if case is None or not case.is_open:
                continue
            result = self._guard("respond", lambda c=case: self.responder.on_case(c), None)  # type: ignore[union-attr]
            for action in list(getattr(result, "actions", None) or []):
                self.stats.actions[str(getattr(action, "state", getattr(action, "status", "recorded")))] += 1

    # ------------------------------------------------------------------ failures
    def _reject(self, message: Any, reason: str) -> None:
        if self.on_failure is None:
            return
        tenant = message.get("tenant") if isinstance(message, dict) else None
        self.on_failure(Rejection(
            payload=orjson.dumps(message, default=str), reason=reason, origin="flow/alerts", format="alert",
            tenant=tenant if isinstance(tenant, str) else "", stage="correlate",
        ))  # fmt: skip

    def _guard(self, stage: str, work: Callable[[], Any], table: pa.Table | None) -> Any:
        try:
            return work()
        except Exception as exc:  # one stage's bug must not stop the flow
            self.stats.errors[stage] += 1
            log.exception("stage %s failed", stage)
            if self.on_failure is not None:
                ids: list[str] = table.column("event_id").to_pylist() if table is not None else []
                tenants = sorted(set(table.column("tenant").to_pylist())) if table is not None else []
                self.on_failure(Rejection(
                    payload=orjson.dumps({"event_ids": ids}), reason=f"{stage}: {type(exc).__name__}: {exc}",
                    origin=f"flow/{stage}", format=None, tenant=tenants[0] if len(tenants) == 1 else "",
                    stage=stage,
                ))  # fmt: skip
            return None


@dataclass(slots=True)
class StageDetector:
    """A :class:`Detector` made of a name and two callables (how each detection service plugs in)."""

    name: str
    detect_fn: Callable[[pa.Table], list[Alert]]
    flush_fn: Callable[[], list[Alert]] = field(default=lambda: [])

    def detect(self, events: pa.Table) -> list[Alert]:
        """Alerts for one stored batch."""
        return self.detect_fn(events)

    def flush(self) -> list[Alert]:
        """Alerts still held in open windows."""
        return self.flush_fn()


#: How often (wall-clock seconds) the Sigma stage asks the rule store whether another library was activated.
LIBRARY_CHECK_SECONDS = 30.0


def platform_detectors(platform: Any, monotonic: Callable[[], float] = time.monotonic) -> list[Detector]:
    """The detection sources of a platform: Sigma rules, indicators, then behaviour analytics.

    The Sigma stage follows the rule store: at most every :data:`LIBRARY_CHECK_SECONDS`
    it checks the active library version and re-reads the tenants' overrides, so what any
    process changed (the API, ``openmdr rules install``, ``openmdr rules disable``) is
    evaluated from then on.
    """
    detection = platform.detection
    matcher = platform.indicator_matcher
    analytics = platform.analytics
    next_check = monotonic() + LIBRARY_CHECK_SECONDS

    def sigma(table: pa.Table) -> list[Alert]:
        nonlocal next_check
        closed: list[Alert] = []
        if monotonic() >= next_check:
            next_check = monotonic() + LIBRARY_CHECK_SECONDS
            closed = detection.follow(platform.rules)
            detection.reload_overrides(platform.rules)  # overrides changed by another process, too
        return closed + detection.evaluate(table)

    def match_indicators(table: pa.Table) -> list[Alert]:
        matcher.refresh()
        return matcher.match(table, now=platform.clock())

    return [
        StageDetector("sigma", sigma, detection.flush),
        StageDetector("ioc", match_indicators),
        StageDetector("analytics", analytics.feed, analytics.flush),
    ]
