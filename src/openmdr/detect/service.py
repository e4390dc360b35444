"""The detection stage for the streaming pipeline, and the library used when none is installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from openmdr.detect.engine import Engine, default_cache_dir
from openmdr.detect.overrides import TenantOverrides
from openmdr.detect.rules import RuleLibrary, load_rules
from openmdr.models.alert import Alert
from openmdr.models.event import Event

if TYPE_CHECKING:
    from openmdr.store.rules import RuleStore

#: The project's own rule pack (attack chains of the generator), shipped in the package.
RULEPACK_DIR = Path(__file__).with_name("rulepack")


def default_library() -> RuleLibrary:
    """The project's rule pack (``openmdr/detect/rulepack``), used when no library is installed."""
    if RULEPACK_DIR.is_dir():
        return load_rules([RULEPACK_DIR])
    return RuleLibrary()


class DetectionService:
    """Sigma detection over batches of the event lake's Arrow layout, for the streaming pipeline.

    Build it once with a compiled :class:`Engine` (or :meth:`from_library`) and the
    per-tenant overrides; then call :meth:`evaluate` with each ``pyarrow.Table`` in
    :data:`openmdr.models.event.EVENT_SCHEMA` layout (as published on ``TOPIC_EVENTS``)
    and publish/store the returned alerts.  Tenant overrides (disabled rules, severity,
    Sigma-filter exceptions) are applied by each event's ``tenant`` column.  Correlation
    windows carry over between calls (bounded state); :meth:`flush` closes every open
    window at the end of a stream or on shutdown and returns the alerts that causes.
    The service is not thread-safe: run one per worker and partition by tenant.
    """

    def __init__(self, engine: Engine, overrides_by_tenant: Mapping[str, TenantOverrides] | None = None) -> None:
        if engine.ruleset is None:
            raise ValueError("the engine has no ruleset: call Engine.compile() first")
        self.engine = engine
        for tenant, overrides in (overrides_by_tenant or {}).items():
            engine.set_overrides(tenant, overrides)

    @classmethod
    def from_library(
        cls,
        library: RuleLibrary | None = None,
        overrides_by_tenant: Mapping[str, TenantOverrides] | None = None,
        cache_dir: Path | None = None,
    ) -> DetectionService:
        """A service over ``library`` (default: the rule pack), compiled through the on-disk cache."""
        engine = Engine(cache_dir=cache_dir if cache_dir is not None else default_cache_dir())
        engine.compile(library if library is not None else default_library())
        return cls(engine, overrides_by_tenant)

    @classmethod
    def from_rule_store(cls, rules: RuleStore, cache_dir: Path | None = None) -> DetectionService:
        """A service over the store's active library (else the rule pack) and every tenant's overrides."""
        library = rules.library()
        return cls.from_library(library, rules.all_overrides(), cache_dir)

    def reload_overrides(self, rules: RuleStore) -> None:
        """Re-read every tenant's overrides from the store (after an override changed)."""
        current = rules.all_overrides()
        for tenant in set(self.engine.overrides) - set(current):
            self.engine.set_overrides(tenant, None)
        for tenant, overrides in current.items():
            self.engine.set_overrides(tenant, overrides)

    def set_overrides(self, tenant: str, overrides: TenantOverrides | None) -> None:
        """Replace (``None``: remove) one tenant's overrides, effective from the next batch."""
        self.engine.set_overrides(tenant, overrides)

    def evaluate(self, table: pa.Table) -> list[Alert]:
        """Alerts of one batch of events in ``EVENT_SCHEMA`` layout (events rebuilt for hits only)."""
        return self.engine.evaluate_table(table)

    def evaluate_events(self, events: Sequence[Event]) -> list[Alert]:
        """Alerts of one batch of :class:`Event` objects (same as :meth:`evaluate`)."""
        return self.engine.evaluate(events)

    def flush(self) -> list[Alert]:
        """Close every open correlation window; the alerts this produces."""
        return self.engine.flush()
