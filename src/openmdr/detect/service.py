"""The detection stage for the streaming pipeline, and the library used when none is installed."""

from __future__ import annotations

import threading
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


def _compiled(library: RuleLibrary | None, cache_dir: Path | None) -> Engine:
    """An engine compiled from ``library`` (``None``: the rule pack) through the cache in ``cache_dir``."""
    engine = Engine(cache_dir=cache_dir)
    engine.compile(library if library is not None else default_library())
    return engine


class DetectionService:
    """Sigma detection over batches of the event lake's Arrow layout, for the streaming pipeline.

    Build it once with a compiled :class:`Engine` (or :meth:`from_library`) and the
    per-tenant overrides; then call :meth:`evaluate` with each ``pyarrow.Table`` in
    :data:`openmdr.models.event.EVENT_SCHEMA` layout (as published on ``TOPIC_EVENTS``)
    and publish/store the returned alerts.  Tenant overrides (disabled rules, severity,
    Sigma-filter exceptions) are applied by each event's ``tenant`` column.  Correlation
    windows carry over between calls (bounded state); :meth:`flush` closes every open
    window at the end of a stream or on shutdown and returns the alerts that causes.
    :meth:`follow` switches to a newly activated library of the rule store.  Calls are
    serialized by a lock (an API thread may switch libraries while a worker evaluates);
    scale out by running one service per worker, partitioned by tenant.
    """

    def __init__(
        self,
        engine: Engine,
        overrides_by_tenant: Mapping[str, TenantOverrides] | None = None,
        library_version: int | None = None,
    ) -> None:
        if engine.ruleset is None:
            raise ValueError("the engine has no ruleset: call Engine.compile() first")
        self.engine = engine
        #: The rule store's version this service evaluates (``None``: the rule pack, or a library given directly).
        self.library_version = library_version
        self._lock = threading.RLock()
        #: Serializes :meth:`follow` calls, compile included, so a slow compile of an older
        #: version can never replace a newer one that a concurrent call switched to meanwhile.
        self._follow_lock = threading.Lock()
        for tenant, overrides in (overrides_by_tenant or {}).items():
            engine.set_overrides(tenant, overrides)

    @classmethod
    def from_library(
        cls,
        library: RuleLibrary | None = None,
        overrides_by_tenant: Mapping[str, TenantOverrides] | None = None,
        cache_dir: Path | None = None,
        library_version: int | None = None,
    ) -> DetectionService:
        """A service over ``library`` (default: the rule pack), compiled through the on-disk cache."""
        engine = _compiled(library, cache_dir if cache_dir is not None else default_cache_dir())
        return cls(engine, overrides_by_tenant, library_version)

    @classmethod
    def from_rule_store(cls, rules: RuleStore, cache_dir: Path | None = None) -> DetectionService:
        """A service over the store's active library (else the rule pack) and every tenant's overrides."""
        active = rules.active()
        library = rules.library(active.version) if active is not None else None
        return cls.from_library(library, rules.all_overrides(), cache_dir, active.version if active else None)

    def follow(self, rules: RuleStore) -> list[Alert]:
        """Switch to the store's active library if it is not the one evaluated; returns the alerts this causes.

        The new library is compiled (through the on-disk cache) with every tenant's
        overrides and used from the next batch on.  Correlation windows still open under
        the old ruleset are closed, and the alerts they produce are returned so that the
        caller publishes them like any others.  Nothing happens when the version is the same.
        Concurrent calls (two installs through the API) run one after the other, each
        reading the active version when its turn comes, so the last one leaves the newest.
        """
        with self._follow_lock:
            active = rules.active()
            version = active.version if active is not None else None
            if version == self.library_version:
                return []
            library = rules.library(version) if version is not None else None
            engine = _compiled(library, self.engine.cache_dir)  # outside the evaluation lock: it can take seconds
            with self._lock:
                for tenant, overrides in rules.all_overrides().items():  # read now: none changed meanwhile is lost
                    engine.set_overrides(tenant, overrides)
                old, self.engine, self.library_version = self.engine, engine, version
                return old.flush()

    def reload_overrides(self, rules: RuleStore) -> None:
        """Re-read every tenant's overrides from the store (after an override changed)."""
        with self._lock:
            current = rules.all_overrides()
            for tenant in set(self.engine.overrides) - set(current):
                self.engine.set_overrides(tenant, None)
            for tenant, overrides in current.items():
                self.engine.set_overrides(tenant, overrides)

    def set_overrides(self, tenant: str, overrides: TenantOverrides | None) -> None:
        """Replace (``None``: remove) one tenant's overrides, effective from the next batch."""
        with self._lock:
            self.engine.set_overrides(tenant, overrides)

    def evaluate(self, table: pa.Table) -> list[Alert]:
        """Alerts of one batch of events in ``EVENT_SCHEMA`` layout (events rebuilt for hits only)."""
        with self._lock:
            return self.engine.evaluate_table(table)

    def evaluate_events(self, events: Sequence[Event]) -> list[Alert]:
        """Alerts of one batch of :class:`Event` objects (same as :meth:`evaluate`)."""
        with self._lock:
            return self.engine.evaluate(events)

    def flush(self) -> list[Alert]:
        """Close every open correlation window; the alerts this produces."""
        with self._lock:
            return self.engine.flush()
