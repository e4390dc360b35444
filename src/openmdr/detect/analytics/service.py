"""The analytics stage as a service: the engine wired to the state store.

:class:`AnalyticsService` is what the ingest pipeline (``feed``/``flush``) and ``openmdr
scan`` (``analyze``) call.  On the first batch of a tenant it loads, from the state
store, the tenant's time zone and working hours, its asset inventory and its saved
baselines, so a restarted process continues where the last one stopped instead of
warming up again.  :meth:`AnalyticsService.checkpoint` writes every baseline back (one
audited transaction per tenant); call it periodically and before a planned stop, after
:meth:`flush` when the open windows should count too.

A tenant unknown to the state store (a capture scanned offline) is analysed with the
default :class:`~openmdr.models.TenantInfo` and no inventory.  ``ordered=False`` is for
input that is not time-ordered across batches (files read one after another): see
:class:`~openmdr.detect.analytics.engine.AnalyticsEngine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from openmdr.detect.analytics.engine import AnalyticsEngine
from openmdr.detect.analytics.frame import as_table
from openmdr.detect.analytics.settings import AnalyticsSettings
from openmdr.models.alert import Alert
from openmdr.models.event import Event
from openmdr.store.baselines import BaselineRepository, SaveReport
from openmdr.store.state import StateStore


class AnalyticsService:
    """Behaviour analytics over the state store's tenants, inventories and saved baselines."""

    def __init__(
        self,
        state: StateStore,
        settings: AnalyticsSettings | None = None,
        actor: str = "analytics",
        threads: int | None = 1,
        ordered: bool = True,
    ) -> None:
        self.state = state
        self.repository = BaselineRepository(state)
        self.engine = AnalyticsEngine(settings, threads=threads, ordered=ordered)
        self.actor = actor
        self._loaded: set[str] = set()

    def load_tenant(self, tenant: str) -> int:
        """(Re)load ``tenant``'s context and, the first time, its saved baselines; returns rows restored.

        Call again after the tenant's settings or inventory changed: the context is
        refreshed, the baselines in memory are kept.
        """
        info = self.state.get_tenant(tenant)
        if info is not None:
            self.engine.set_tenant(info, self.state.list_assets(tenant))
        restored = 0
        if tenant not in self._loaded:
            restored = self.engine.restore(self.repository.load(tenant))
            self._loaded.add(tenant)
        return restored

    def _prepare(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        for tenant in pc.unique(table.column("tenant")).to_pylist():
            if tenant and tenant not in self._loaded:
                self.load_tenant(tenant)

    def configure_tenant(self, tenant: str, overrides: Mapping[str, Any]) -> None:
        """Set a tenant's threshold overrides (e.g. onboarding's shadow-IT ignore list of VPN pools).

        Validated at once (a bad key raises ``pydantic.ValidationError``); takes effect for a
        tenant whose analytics have not started yet in this process.
        """
        previous = self.engine.settings.tenants.get(tenant)
        self.engine.settings.tenants[tenant] = dict(overrides)
        try:
            self.engine.settings.for_tenant(tenant)
        except Exception:
            if previous is None:
                self.engine.settings.tenants.pop(tenant, None)
            else:
                self.engine.settings.tenants[tenant] = previous
            raise

    def feed(self, batch: pa.Table | Sequence[Event]) -> list[Alert]:
        """Streaming: one time-ordered batch (Arrow, lake layout, any number of tenants)."""
        table = as_table(batch)
        self._prepare(table)
        return self.engine.feed(table)

    def flush(self) -> list[Alert]:
        """Close every open window (end of input or before a planned stop)."""
        return self.engine.flush()

    def analyze(self, batch: pa.Table | Sequence[Event]) -> list[Alert]:
        """Batch: every alert of ``batch``, closing all windows at the end."""
        table = as_table(batch)
        self._prepare(table)
        return self.engine.analyze(table)

    def checkpoint(self) -> SaveReport:
        """Save every tenant's baselines to the state store (replacing what was saved before)."""
        return self.repository.persist(self.engine, self.actor)
