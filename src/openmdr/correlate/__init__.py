"""Triage and correlation: alerts -> deduplicated, risk-scored, explainable cases with a kill-chain timeline.

``CaseService`` is the entry point the pipeline, response, intel, API and CLI use;
``Correlator`` is its pure in-memory core (no I/O), partitioned by tenant.
"""

from openmdr.correlate.attack import AttackCatalog, attack_catalog
from openmdr.correlate.core import (
    CaseChange,
    Correlator,
    CorrelatorConfig,
    TenantContext,
    case_id_for,
)
from openmdr.correlate.timeline import Timeline, TimelineEntry, build_timeline
from openmdr.correlate.triage import Suppression, risk_score, summarize_case
from openmdr.gctuning import tune_gc_for_worker

__all__ = [
    "AttackCatalog",
    "CaseChange",
    "CaseService",
    "Correlator",
    "CorrelatorConfig",
    "Suppression",
    "TenantContext",
    "Timeline",
    "TimelineEntry",
    "attack_catalog",
    "build_timeline",
    "case_id_for",
    "risk_score",
    "summarize_case",
    "tune_gc_for_worker",
]


def __getattr__(name: str) -> object:
    """``CaseService`` is imported on first use: the store modules import this package's pure parts."""
    if name == "CaseService":
        from openmdr.correlate.service import CaseService

        return CaseService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
