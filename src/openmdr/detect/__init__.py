"""Sigma detection: rule loading, compilation to column scanners, evaluation, correlation.

The public surface the CLI and pipeline use:

* :func:`load_rules` reads a library (directories, files, release zips);
* :class:`Engine` compiles it (:meth:`Engine.compile`, cached on disk) and turns batches of
  events into alerts (:meth:`Engine.evaluate`, streaming with :meth:`Engine.flush`);
* :func:`scan_events` runs an engine over an iterator of events;
* :func:`check_rules` reports what a library holds and which rules cannot be evaluated;
* :class:`DetectionService` is the streaming stage: Arrow batches in, alerts out;
* :class:`TenantOverrides` disables rules, overrides severities and adds Sigma-filter
  exceptions per tenant, applied at evaluation time.
"""

from openmdr.detect.engine import (
    CompiledRuleset,
    CompileStats,
    Engine,
    RuleCheckReport,
    check_rules,
    compile_library,
    default_cache_dir,
    relaxed_gc,
    scan_events,
)
from openmdr.detect.overrides import OverrideError, RuleException, TenantOverrides
from openmdr.detect.rules import RuleLibrary, RuleProblem, RuleSource, library_from_texts, load_rules
from openmdr.detect.service import RULEPACK_DIR, DetectionService, default_library

__all__ = [
    "RULEPACK_DIR",
    "CompileStats",
    "CompiledRuleset",
    "DetectionService",
    "Engine",
    "OverrideError",
    "RuleCheckReport",
    "RuleException",
    "RuleLibrary",
    "RuleProblem",
    "RuleSource",
    "TenantOverrides",
    "check_rules",
    "compile_library",
    "default_cache_dir",
    "default_library",
    "library_from_texts",
    "load_rules",
    "relaxed_gc",
    "scan_events",
]
