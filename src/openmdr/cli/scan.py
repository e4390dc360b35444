"""``openmdr scan``: offline scan of files with the Sigma ruleset and the behaviour analytics."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson
import typer

from openmdr.cli.common import UserError, byte_progress, console, user_errors
from openmdr.detect import Engine, RuleLibrary, default_cache_dir, default_library, load_rules, relaxed_gc
from openmdr.ingest.files import SourceFile, plan_sources, read_sources
from openmdr.models.alert import SEVERITIES, Alert
from openmdr.models.event import Event
from openmdr.models.record import RawRecord, Rejection
from openmdr.pipeline import PARSE_BLOCK, parse_records

#: Events evaluated together.
SCAN_BATCH = 8192
#: Tenant name stamped on scanned events (they are never stored).
SCAN_TENANT = "scan"


@dataclass
class ScanReport:
    """What a scan read, what it could not parse (by reason and origin) and what it found."""

    files: int = 0
    records: int = 0
    events: int = 0
    failed: int = 0
    failure_reasons: Counter[str] = field(default_factory=Counter)
    failure_examples: list[tuple[str, str]] = field(default_factory=list)  #: (origin, reason), first few
    alerts: int = 0
    by_severity: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    compile_seconds: float = 0.0
    rules: int = 0


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0][:80]


def parse_batches(
    sources: list[SourceFile], report: ScanReport, tenant: str, on_progress: Callable[[int], None] | None = None
) -> Iterator[list[Event]]:
    """Parse every record of ``sources`` into event batches; failures are counted in ``report``.

    Records are parsed in blocks (:func:`~openmdr.pipeline.parse_records`, as the ingest
    pipeline does), so a parser with a block path reads them without per-record calls.
    """
    now = datetime.now(UTC)
    batch: list[Event] = []
    block: list[RawRecord] = []

    def failed(rejection: Rejection) -> None:
        report.failed += 1
        report.failure_reasons[_reason_key(rejection.reason)] += 1
        if len(report.failure_examples) < 20:
            report.failure_examples.append((rejection.origin or "?", rejection.reason[:200]))

    def settle() -> None:
        for parsed in parse_records(block, tenant, now):
            if isinstance(parsed, Rejection):
                failed(parsed)
            else:
                report.events += 1
                batch.append(parsed)
        block.clear()

    for item in read_sources(sources, on_progress=on_progress):
        report.records += 1
        if isinstance(item, Rejection):
            failed(item)
            continue
        block.append(item)
        if len(block) >= PARSE_BLOCK:
            settle()
            if len(batch) >= SCAN_BATCH:
                yield batch
                batch = []
    if block:
        settle()
    if batch:
        yield batch


def run_scan(
    paths: list[str],
    library: RuleLibrary,
    out: IO[bytes],
    cache_dir: Path | None = None,
    analytics: bool = True,
    tenant: str = SCAN_TENANT,
    progress: bool = True,
) -> ScanReport:
    """Scan ``paths`` with ``library`` (and the analytics), writing alerts as JSON lines to ``out``."""
    t0 = time.perf_counter()
    sources = plan_sources(paths)
    if not sources:
        raise UserError(f"nothing to read at {' '.join(paths)}")
    report = ScanReport(files=len(sources))
    engine = Engine(cache_dir=cache_dir)
    ruleset = engine.compile(library)
    report.rules = ruleset.stats.rules + ruleset.stats.correlation_rules
    report.compile_seconds = ruleset.stats.seconds
    behaviour = None
    if analytics:
        from openmdr.detect.analytics import AnalyticsEngine

        # files are read one after another (conn.log, then dns.log, ...), not in time order:
        # the engine keeps the batches' compact views and judges them in time order at flush
        behaviour = AnalyticsEngine(ordered=False)

    def emit(alerts: list[Alert]) -> None:
        for a in alerts:
            out.write(orjson.dumps(a.to_json_dict(), default=str) + b"\n")
            report.alerts += 1
            report.by_severity[a.severity] += 1
            report.by_rule[f"{a.title} ({a.rule_id})"] += 1
            report.by_source[a.source] += 1

    total = sum(s.size for s in sources)
    bar = byte_progress() if progress else nullcontext()
    with bar as prog, relaxed_gc():
        task = prog.add_task("scan", total=total, status="") if prog is not None else None

        def advance(n: int) -> None:
            if prog is not None and task is not None:
                prog.advance(task, n)

        for batch in parse_batches(sources, report, tenant, advance):
            emit(engine.evaluate(batch))
            if behaviour is not None:
                emit(behaviour.feed(batch))
            if prog is not None and task is not None:
                prog.update(task, status=f"{report.events:,} events, {report.alerts:,} alerts")
        emit(engine.flush())
        if behaviour is not None:
            emit(behaviour.flush())
        if prog is not None and task is not None:
            prog.update(task, completed=total)
    report.seconds = time.perf_counter() - t0
    return report


def print_scan_report(report: ScanReport) -> None:
    """The summary a person reads after a scan."""
    scanning = report.seconds - report.compile_seconds
    rate = report.events / scanning if scanning > 0 else 0.0
    console.print(
        f"[bold]scan[/]: {report.files:,} files, {report.records:,} records = {report.events:,} events "
        f"+ {report.failed:,} unparsed; {report.alerts:,} alerts; {report.rules:,} rules compiled in "
        f"{report.compile_seconds:.1f}s, scanned in {scanning:.1f}s ({rate:,.0f} events/s)"
    )
    for reason, n in report.failure_reasons.most_common(10):
        console.print(f"  [red]unparsed {n:,}[/]: {reason}")
    for origin, reason in report.failure_examples[:5]:
        console.print(f"    e.g. {origin}: {reason}")
    if report.by_severity:
        parts = [f"{s} {report.by_severity[s]:,}" for s in reversed(SEVERITIES) if report.by_severity[s]]
        console.print("  severity: " + ", ".join(parts))
        console.print("  sources: " + ", ".join(f"{k} {v:,}" for k, v in report.by_source.most_common()))
    for rule, n in report.by_rule.most_common(10):
        console.print(f"  {n:>6,}  {rule}")


@user_errors
def scan_command(
    paths: list[str] = typer.Argument(..., help="files, directories, globs, .gz or .zip of any supported format"),
    rules: list[Path] = typer.Option(
        [], "--rules", "-r", help="Sigma rule directory, file or release zip (repeatable; default: the rule pack)"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="write alerts as JSON lines here (default: stdout)"),
    analytics: bool = typer.Option(True, "--analytics/--no-analytics", help="also run the behaviour analytics"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="compiled-rules cache (default: user cache)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Scan files offline with the Sigma rules and behaviour analytics; alerts go out as JSON lines."""
    library = load_rules(rules) if rules else default_library()
    if not library.sources:
        raise UserError("no Sigma rules: give --rules DIR (the built-in rule pack is not installed)")
    cache = cache_dir or default_cache_dir()
    if out is None:
        report = run_scan(paths, library, sys.stdout.buffer, cache, analytics, progress=not quiet)
    else:
        with out.open("wb") as fh:
            report = run_scan(paths, library, fh, cache, analytics, progress=not quiet)
    print_scan_report(report)
