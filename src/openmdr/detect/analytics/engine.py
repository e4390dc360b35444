"""The analytics engine: batch and streaming over many tenants, with persistent baselines.

``AnalyticsEngine.feed(batch)`` is the streaming API: batches (Arrow tables in lake layout
or lists of events) arrive in time order; identity analytics judge each event at once;
network rows are buffered in windows aligned on the epoch (one set of windows per window
length) and analysed when the watermark, the newest event time seen for the tenant
minus ``allowed_lateness_seconds``, passes a window's end.  ``flush()`` closes every
open window.  ``analyze(batch)`` is the batch API: ``feed`` then ``flush``.  Windows are
closed in order of their end (shorter first on ties) in both modes, so a capture analysed
in one call and the same capture streamed in time-ordered batches give the same alerts.
Input that is not time-ordered across batches (a folder of files read one after another:
``conn.log`` of the whole day, then ``dns.log``) needs ``AnalyticsEngine(ordered=False)``:
``feed`` then only extracts and keeps the batches' (small) views, and ``flush`` judges
them all in time order.

A record older than an already closed window (more disordered than the allowed
lateness) is not dropped: it joins the oldest window still open for that length and is
counted in :attr:`AnalyticsEngine.late_records`.

Baselines of every tenant are exported with :meth:`AnalyticsEngine.snapshot` as
``(tenant, analytic, entity, state)`` rows and read back with
:meth:`AnalyticsEngine.restore`.  Open windows are not part of a snapshot: call
``flush()`` before a planned stop.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.detect.analytics.baseline import BaselineStore
from openmdr.detect.analytics.frame import Extractor, as_table
from openmdr.detect.analytics.identity import IdentityAnalytics
from openmdr.detect.analytics.network import (
    NetworkContext,
    NetworkState,
    WindowAnalytic,
    WindowFrame,
    network_analytics,
)
from openmdr.detect.analytics.settings import AnalyticsSettings
from openmdr.models.alert import Alert
from openmdr.models.event import Event
from openmdr.models.tenant import AssetInfo, TenantInfo


@dataclass(frozen=True, slots=True)
class BaselineRecord:
    """One row of the state store's ``baselines`` table."""

    tenant: str
    analytic: str
    entity: str
    state: bytes


@dataclass
class _TenantRuntime:
    """Everything the engine keeps for one tenant."""

    info: TenantInfo
    settings: AnalyticsSettings
    identity: IdentityAnalytics
    network: NetworkState
    context: NetworkContext
    analytics: list[WindowAnalytic]
    buffers: dict[tuple[int, int], list[pa.Table]] = field(default_factory=dict)
    next_open: dict[int, int] = field(default_factory=dict)
    watermark: float = -math.inf

    def stores(self) -> list[BaselineStore[Any]]:
        """Every persisted baseline store of the tenant (identity, then network)."""
        return [*self.identity.stores(), *self.network.stores()]


class AnalyticsEngine:
    """Behaviour analytics for many tenants: batch (:meth:`analyze`) and streaming (:meth:`feed`)."""

    def __init__(
        self,
        settings: AnalyticsSettings | None = None,
        tenants: Iterable[TenantInfo] = (),
        assets: Mapping[str, Iterable[AssetInfo]] | None = None,
        threads: int | None = 1,
        ordered: bool = True,
    ) -> None:
        self.settings = settings or AnalyticsSettings()
        self.extractor = Extractor(threads)
        self.ordered = ordered
        self._pending: dict[str, list[tuple[pa.Table, pa.Table]]] = defaultdict(list)
        self._infos: dict[str, TenantInfo] = {}
        self._assets: dict[str, list[AssetInfo]] = {}
        self._runtimes: dict[str, _TenantRuntime] = {}
        self.late_records = 0
        self.windows_closed = 0
        for info in tenants:
            self.set_tenant(info, (assets or {}).get(info.name, ()))

    # ------------------------------------------------------------------ tenant context

    def set_tenant(self, info: TenantInfo, assets: Iterable[AssetInfo] = ()) -> None:
        """Register (or update) a tenant's context: time zone, working hours, inventory."""
        self._infos[info.name] = info
        self._assets[info.name] = list(assets)
        runtime = self._runtimes.get(info.name)
        if runtime is not None:
            runtime.info = info
            runtime.identity.info = info
            runtime.context.assets_by_ip = _assets_by_ip(self._assets[info.name])
            runtime.context.inventory_known = bool(self._assets[info.name])

    def _runtime(self, tenant: str) -> _TenantRuntime:
        runtime = self._runtimes.get(tenant)
        if runtime is None:
            info = self._infos.get(tenant) or TenantInfo(name=tenant)
            settings = self.settings.for_tenant(tenant)
            network = NetworkState.create(settings)
            assets = self._assets.get(tenant, [])
            runtime = _TenantRuntime(
                info=info,
                settings=settings,
                identity=IdentityAnalytics(info, settings),
                network=network,
                context=NetworkContext(tenant, settings, network, _assets_by_ip(assets), bool(assets)),
                analytics=network_analytics(settings),
            )
            self._runtimes[tenant] = runtime
        return runtime

    # ---------------------------------------------------------------------- batch API

    def analyze(self, batch: pa.Table | Sequence[Event]) -> list[Alert]:
        """Every alert of ``batch`` (any order), closing all windows at the end."""
        return self.feed(batch) + self.flush()

    # ------------------------------------------------------------------ streaming API

    def feed(self, batch: pa.Table | Sequence[Event]) -> list[Alert]:
        """Process one time-ordered batch; returns identity alerts and alerts of closed windows.

        An engine built with ``ordered=False`` (files read one after another, as ``openmdr
        scan`` does) only extracts the batch's views here and judges everything, in time
        order, at :meth:`flush`.
        """
        table = as_table(batch)
        if table.num_rows == 0:
            return []
        alerts: list[Alert] = []
        for tenant, identity, net in self.extractor.views_by_tenant(table):
            if not self.ordered:
                self._runtime(tenant)
                self._pending[tenant].append((identity, net))
                continue
            alerts.extend(self._process(self._runtime(tenant), identity, net))
        return alerts

    def _process(self, runtime: _TenantRuntime, identity: pa.Table, net: pa.Table) -> list[Alert]:
        alerts = runtime.identity.process(identity)
        if net.num_rows:
            self._buffer(runtime, net)
            newest = float(pc.max(net.column("ts")).as_py())
            runtime.watermark = max(runtime.watermark, newest - runtime.settings.allowed_lateness_seconds)
            alerts.extend(self._close(runtime, runtime.watermark))
        return alerts

    def flush(self) -> list[Alert]:
        """Close every open window of every tenant (end of input, or before a planned stop)."""
        alerts: list[Alert] = []
        for tenant, parts in list(self._pending.items()):
            identity = pa.concat_tables([i for i, _ in parts])
            net = pa.concat_tables([n for _, n in parts])
            identity = identity.take(pc.sort_indices(identity, [("ts", "ascending")]))
            alerts.extend(self._process(self._runtime(tenant), identity, net))
        self._pending.clear()
        for runtime in self._runtimes.values():
            alerts.extend(self._close(runtime, math.inf))
        return alerts

    def _buffer(self, runtime: _TenantRuntime, net: pa.Table) -> None:
        ts = net.column("ts").to_numpy()
        late_any = np.zeros(len(ts), dtype=bool)
        for length in sorted({a.window_seconds for a in runtime.analytics}):
            index = np.floor(ts / length).astype(np.int64)
            first_open = runtime.next_open.get(length)
            if first_open is not None:
                late = index < first_open
                if late.any():
                    late_any |= late
                    index = np.where(late, first_open, index)
            # one reorder per window length (none for time-ordered input), then zero-copy slices
            if len(index) > 1 and bool(np.any(index[1:] < index[:-1])):
                order = np.argsort(index, kind="stable")
                index, part = index[order], net.take(pa.array(order))
            else:
                part = net
            cuts = [0, *(np.flatnonzero(np.diff(index)) + 1).tolist(), len(index)]
            for lo, hi in itertools.pairwise(cuts):
                key = (length, int(index[lo]))
                runtime.buffers.setdefault(key, []).append(part.slice(lo, hi - lo))
        self.late_records += int(late_any.sum())

    def _close(self, runtime: _TenantRuntime, watermark: float) -> list[Alert]:
        if not math.isinf(watermark):
            # every window ending at or before the watermark is closed, buffered or not
            for length in {a.window_seconds for a in runtime.analytics}:
                closed_below = int(watermark // length)
                runtime.next_open[length] = max(runtime.next_open.get(length, closed_below), closed_below)
        ready = sorted(
            (key for key in runtime.buffers if (key[1] + 1) * key[0] <= watermark),
            key=lambda k: ((k[1] + 1) * k[0], k[0]),
        )
        if not ready:
            return []
        by_length: dict[int, list[WindowAnalytic]] = defaultdict(list)
        for analytic in runtime.analytics:
            by_length[analytic.window_seconds].append(analytic)
        alerts: list[Alert] = []
        for length, index in ready:
            parts = runtime.buffers.pop((length, index))
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            frame = WindowFrame(table, float(index * length), float((index + 1) * length))
            for analytic in by_length[length]:
                alerts.extend(analytic.run(frame, runtime.context))
            runtime.next_open[length] = max(runtime.next_open.get(length, index + 1), index + 1)
            self.windows_closed += 1
        return alerts

    # -------------------------------------------------------------------- persistence

    def snapshot(self) -> list[BaselineRecord]:
        """Every baseline of every tenant as ``(tenant, analytic, entity, state)`` rows."""
        rows: list[BaselineRecord] = []
        for tenant, runtime in self._runtimes.items():
            for store in runtime.stores():
                rows.extend(BaselineRecord(tenant, store.analytic, e, data) for e, data in store.rows())
        return rows

    def restore(self, records: Iterable[BaselineRecord]) -> int:
        """Load baseline rows written by :meth:`snapshot`; returns how many were loaded.

        Rows of an analytic this engine does not know raise ``ValueError`` (a snapshot of
        another version must not be half-applied silently).
        """
        grouped: dict[tuple[str, str], list[tuple[str, bytes]]] = defaultdict(list)
        for rec in records:
            grouped[(rec.tenant, rec.analytic)].append((rec.entity, rec.state))
        loaded = 0
        for (tenant, analytic), rows in grouped.items():
            stores = {s.analytic: s for s in self._runtime(tenant).stores()}
            store = stores.get(analytic)
            if store is None:
                raise ValueError(f"unknown baseline analytic {analytic!r} for tenant {tenant!r}")
            loaded += store.restore_rows(rows)
        return loaded

    def state_size(self) -> dict[str, int]:
        """Entities held per analytic, summed over tenants (for monitoring the caps)."""
        out: dict[str, int] = defaultdict(int)
        for runtime in self._runtimes.values():
            for store in runtime.stores():
                out[store.analytic] += len(store)
        return dict(out)

    def open_windows(self) -> int:
        """Windows currently buffered (streaming)."""
        return sum(len(r.buffers) for r in self._runtimes.values())


def _assets_by_ip(assets: Iterable[AssetInfo]) -> dict[str, AssetInfo]:
    out: dict[str, AssetInfo] = {}
    for asset in assets:
        for ip in asset.ips:
            out[ip] = asset
    return out
