"""Prometheus metrics of one OpenMDR process, per tenant.

Event and alert rates come from the bus (every stored event batch and every alert
batch is counted as it is published); dead letters and open cases are read from the
stores when Prometheus scrapes, so they are right even after a restart.

* ``openmdr_events_ingested_total{tenant}`` events stored (rate() gives events/s);
* ``openmdr_events_per_second{tenant}`` the same, averaged over the last minute;
* ``openmdr_ingest_lag_seconds{tenant}`` newest stored event's age when it was stored;
* ``openmdr_alerts_total{tenant}`` alerts published;
* ``openmdr_dead_letters_pending{tenant}`` rejected input waiting for replay or discard;
* ``openmdr_open_cases{tenant}`` cases neither resolved nor merged (when the case store is present);
* ``openmdr_ingest_records_total{outcome}`` the pipeline's received/stored/duplicates/rejected;
* ``openmdr_http_ingest_requests_total{outcome}`` HTTP ingest requests accepted or refused (and why).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openmdr.bus import TOPIC_ALERTS, TOPIC_EVENTS, Bus, Subscription
from openmdr.store.schema import dead_letters
from openmdr.store.state import StateStore

RATE_WINDOW_SECONDS = 60.0


class PlatformMetrics(Collector):
    """Counts what the bus carries and reads the stores at scrape time."""

    def __init__(
        self,
        state: StateStore,
        *,
        pipeline_totals: Callable[[], Any] | None = None,
        open_cases: Callable[[], dict[str, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.pipeline_totals = pipeline_totals
        self.open_cases = open_cases
        self.clock = clock
        self._lock = threading.Lock()
        self.events: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.lag: dict[str, float] = {}
        self._recent: deque[tuple[float, str, int]] = deque()
        self._subscriptions: list[Subscription] = []
        self.ingest_stats: Any = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def attach(self, bus: Bus) -> PlatformMetrics:
        """Start counting the events and alerts published on ``bus``."""
        self._subscriptions.append(bus.subscribe(TOPIC_EVENTS, self.on_events))
        self._subscriptions.append(bus.subscribe(TOPIC_ALERTS, self.on_alerts))
        return self

    def close(self) -> None:
        """Stop counting."""
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()

    def on_events(self, table: pa.Table) -> None:
        """Count a stored event batch per tenant and note how old its newest event was."""
        if not isinstance(table, pa.Table) or table.num_rows == 0:
            return
        now = self.clock()
        stored_at = datetime.now(UTC)
        grouped = table.group_by("tenant").aggregate([("time", "max"), ("tenant", "count")])
        with self._lock:
            for tenant, newest, n in zip(
                grouped.column("tenant").to_pylist(),
                grouped.column("time_max").to_pylist(),
                grouped.column("tenant_count").to_pylist(),
                strict=True,
            ):
                self.events[tenant] += int(n)
                self._recent.append((now, tenant, int(n)))
                if newest is not None:
                    self.lag[tenant] = max(0.0, (stored_at - newest).total_seconds())
            self._trim(now)

    def on_alerts(self, message: Any) -> None:
        """Count published alerts per tenant (the bus carries them as JSON objects)."""
        items = message if isinstance(message, list) else [message]
        with self._lock:
            for item in items:
                tenant = item.get("tenant") if isinstance(item, dict) else None
                if isinstance(tenant, str):
                    self.alerts[tenant] += 1

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_SECONDS:
            self._recent.popleft()

    def rates(self) -> dict[str, float]:
        """Events per second per tenant over the last minute."""
        with self._lock:
            self._trim(self.clock())
            sums: Counter[str] = Counter()
            for _, tenant, n in self._recent:
                sums[tenant] += n
        return {t: n / RATE_WINDOW_SECONDS for t, n in sums.items()}

    def pending_dead_letters(self) -> dict[str, int]:
        """Pending dead letters per tenant (``""`` for input no tenant could be decided for)."""
        query = (
            sa.select(dead_letters.c.tenant, sa.func.count().label("n"))
            .where(dead_letters.c.status == "pending")
            .group_by(dead_letters.c.tenant)
        )
        with self.state.transaction() as conn:
            return {r.tenant or "": int(r.n) for r in conn.execute(query)}

    def collect(self) -> Iterator[Metric]:
        """The metric families (called by the registry at each scrape)."""
        with self._lock:
            events, alerts, lag = dict(self.events), dict(self.alerts), dict(self.lag)
        ingested = CounterMetricFamily("openmdr_events_ingested", "Events stored in the lake", labels=["tenant"])
        for tenant, n in sorted(events.items()):
            ingested.add_metric([tenant], n)
        yield ingested
        rate = GaugeMetricFamily(
            "openmdr_events_per_second", "Events stored per second (last minute)", labels=["tenant"]
        )
        for tenant, value in sorted(self.rates().items()):
            rate.add_metric([tenant], value)
        yield rate
        lag_family = GaugeMetricFamily(
            "openmdr_ingest_lag_seconds", "Age of the newest event of the last stored batch", labels=["tenant"]
        )
        for tenant, value in sorted(lag.items()):
            lag_family.add_metric([tenant], value)
        yield lag_family
        alert_family = CounterMetricFamily("openmdr_alerts", "Alerts published", labels=["tenant"])
        for tenant, n in sorted(alerts.items()):
            alert_family.add_metric([tenant], n)
        yield alert_family
        pending = GaugeMetricFamily("openmdr_dead_letters_pending", "Dead letters awaiting replay", labels=["tenant"])
        for tenant, n in sorted(self.pending_dead_letters().items()):
            pending.add_metric([tenant], n)
        yield pending
        if self.open_cases is not None:
            cases = GaugeMetricFamily("openmdr_open_cases", "Cases neither resolved nor merged", labels=["tenant"])
            for tenant, n in sorted(self.open_cases().items()):
                cases.add_metric([tenant], n)
            yield cases
        if self.pipeline_totals is not None:
            totals = self.pipeline_totals()
            records = CounterMetricFamily("openmdr_ingest_records", "Records through the pipeline", labels=["outcome"])
            for outcome in ("received", "stored", "duplicates", "rejected"):
                records.add_metric([outcome], int(getattr(totals, outcome, 0)))
            yield records

        if self.ingest_stats is not None:
            http = CounterMetricFamily("openmdr_http_ingest_requests", "HTTP ingest requests", labels=["outcome"])
            for outcome in ("accepted", "unauthorized", "too_large", "bad_request"):
                http.add_metric([outcome], int(getattr(self.ingest_stats, outcome)))
            yield http

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
