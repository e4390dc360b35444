"""Composition root: builds the stores, bus and pipeline of one OpenMDR process from settings.

The CLI, the server and the demo all start from :class:`Platform`, so every surface
runs the same wiring against the same data directory (embedded default) or the same
PostgreSQL database (service shape).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from openmdr.bus import Bus, InProcessBus
from openmdr.config import Settings, load_settings
from openmdr.enrich import GeoLocator
from openmdr.pipeline import IngestPipeline
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore

if TYPE_CHECKING:
    from openmdr.correlate import CaseService
    from openmdr.detect import DetectionService
    from openmdr.detect.analytics.service import AnalyticsService
    from openmdr.flow import DetectionFlow
    from openmdr.intel import IndicatorMatcher, LearningLoop
    from openmdr.respond.service import ResponseService
    from openmdr.store.identity import IdentityStore
    from openmdr.store.intel import IntelStore
    from openmdr.store.rules import RuleStore


class Platform:
    """Lazily opened stores, bus and pipeline for one process."""

    def __init__(
        self,
        settings: Settings | None = None,
        bus: Bus | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self._bus = bus
        #: The time every stage of this process reads (a replay passes a simulated clock).
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_data_dir(cls, data_dir: Path | str | None = None, **overrides: object) -> Platform:
        """Platform over ``data_dir`` (or the configured one) with setting overrides."""
        return cls(load_settings(data_dir=Path(data_dir) if data_dir else None, **overrides))

    @cached_property
    def state(self) -> StateStore:
        """The migrated state store (tenants, assets, tokens, dead letters, audit)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = StateStore(self.settings.state_url, blob_dir=self.settings.deadletter_dir)
        store.migrate()
        return store

    @cached_property
    def lake(self) -> EventLake:
        """The tenant/day-partitioned Parquet event lake."""
        self.settings.lake_dir.mkdir(parents=True, exist_ok=True)
        return EventLake(self.settings.lake_dir)

    @cached_property
    def bus(self) -> Bus:
        """The message bus (in-process unless one was given)."""
        return self._bus or InProcessBus()

    @cached_property
    def geo(self) -> GeoLocator | None:
        """Offline geolocation (configured database, else the packaged open one)."""
        return GeoLocator.open_default(self.settings.geoip_database)

    @cached_property
    def identity(self) -> IdentityStore:
        """Users, role assignments, API tokens and console sessions (over the state store)."""
        from openmdr.store.identity import IdentityStore

        return IdentityStore(self.state)

    @cached_property
    def rules(self) -> RuleStore:
        """The versioned Sigma library and per-tenant rule overrides (over the state store)."""
        from openmdr.store.rules import RuleStore

        return RuleStore(self.state)

    @cached_property
    def detection(self) -> DetectionService:
        """Sigma detection over event batches: the active library (else the rule pack) with tenant overrides."""
        from openmdr.detect import DetectionService

        return DetectionService.from_rule_store(self.rules, self.settings.data_dir / "sigma-cache")

    @cached_property
    def analytics(self) -> AnalyticsService:
        """Behaviour analytics with per-tenant baselines in the state store (``[analytics]`` in the TOML)."""
        from openmdr.detect.analytics.service import AnalyticsService
        from openmdr.detect.analytics.settings import load_analytics_settings

        return AnalyticsService(self.state, load_analytics_settings())

    @cached_property
    def cases(self) -> CaseService:
        """Alert triage, correlation into cases, the case lifecycle and timelines (over the state store)."""
        from openmdr.correlate import CaseService

        return CaseService(self.state, clock=self.clock, lake=self.lake)

    @cached_property
    def response(self) -> ResponseService:
        """Response under delegated authority: playbooks, authority policy, approvals, connectors."""
        from openmdr.respond.wiring import build_response_service

        return build_response_service(self)

    @cached_property
    def intel(self) -> IntelStore:
        """Threat-intel state: indicators, allow-lists, feeds, sharing proposals, retro-hunts, leaks."""
        from openmdr.store.intel import IntelStore

        return IntelStore(self.state)

    @cached_property
    def indicator_matcher(self) -> IndicatorMatcher:
        """Every active indicator, for live matching (call ``refresh()`` when indicators change)."""
        from openmdr.intel import IndicatorMatcher

        return IndicatorMatcher.from_store(self.intel, clock=self.clock)

    @cached_property
    def learning(self) -> LearningLoop:
        """The learning loop: resolved true positives -> shared indicators -> retro-hunt in every tenant."""
        from openmdr.intel import LearningLoop

        return LearningLoop(self.state, self.lake, clock=self.clock, store=self.intel, bus=self.bus)

    @cached_property
    def pipeline(self) -> IngestPipeline:
        """The ingest pipeline shared by every transport of this process."""
        pipeline = IngestPipeline(
            self.state, self.lake, self.bus, self.geo, batch_size=self.settings.lake.batch_size, clock=self.clock
        )
        self.flow.attach()
        return pipeline

    @cached_property
    def flow(self) -> DetectionFlow:
        """Detection (Sigma, indicators, analytics) -> cases -> response, subscribed to the bus."""
        from openmdr.flow import DetectionFlow, platform_detectors

        return DetectionFlow(
            self.bus,
            platform_detectors(self),
            cases=self.cases,
            responder=self.response,
            on_failure=lambda rejection: self.state.add_dead_letters([rejection], actor="flow"),
            clock=self.clock,
        )

    def close(self) -> None:
        """Close what was opened (rows the lake holds are written first)."""
        if "lake" in self.__dict__:
            self.lake.flush()
        if "state" in self.__dict__:
            self.state.close()
        if "geo" in self.__dict__ and self.geo is not None:
            self.geo.close()
        if "bus" in self.__dict__:
            self.bus.close()
