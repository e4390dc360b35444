"""Benchmark: SigmaHQ ``rules/windows`` over Windows event JSON lines, file in, alerts out.

Builds a JSON-lines file from the real Windows samples in ../shared (SigmaHQ regression
samples and the OTRF datasets, via ``bench_ingest.build_dataset``) replicated to
``--events`` events, then measures in one run:

* compiling the ruleset cold (empty cache) and warm (from the on-disk cache), each with no
  other ruleset alive, as in a fresh ``openmdr scan`` process;
* the engine end to end on one core: read the file, parse every record with the
  foundation's parsers, evaluate, write alerts as JSON lines (what ``openmdr scan`` does),
  and the detection step alone;
* the same end to end with 1 and 2 worker processes (the file split in parts);
* the reference evaluator in the same run: pySigma's SQLite backend, one SQL query per
  rule over an in-memory SQLite table (``tests/detect/sqlite_reference.py``), on the
  first ``--reference-events`` parsed events; its events/s is the baseline of the ratio.

Run: ``python bench/bench_sigma.py --events 100000``; prints a summary and ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_ingest import build_dataset  # noqa: E402

from openmdr.cli.scan import ScanReport, parse_batches  # noqa: E402
from openmdr.detect import Engine, load_rules, relaxed_gc  # noqa: E402
from openmdr.gctuning import tune_allocator  # noqa: E402
from openmdr.ingest.files import plan_sources, read_sources  # noqa: E402
from openmdr.models.record import Rejection  # noqa: E402
from openmdr.pipeline import parse_record  # noqa: E402

BATCH = 8192


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far, from ``resource.getrusage``.

    The machine is shared and loaded, so rates are given per CPU second of the measured
    process; wall-clock rates are reported beside them.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scan_file(path: Path, rules: Path, cache: Path, out: Path) -> dict[str, float]:
    """End to end as ``openmdr scan``: parse ``path``, evaluate with the cached ruleset, write alerts to ``out``."""
    t0 = time.perf_counter()
    c0 = cpu_seconds()
    engine = Engine(cache_dir=cache)
    engine.compile(load_rules([rules]))
    t_compile = time.perf_counter() - t0
    alerts = 0
    t_detect = 0.0
    c_detect = 0.0
    with out.open("wb") as fh, relaxed_gc():  # as openmdr scan does

        def run(b: list) -> None:
            nonlocal alerts, t_detect, c_detect
            d0 = time.perf_counter()
            p0 = cpu_seconds()
            found = engine.evaluate(b)
            c_detect += cpu_seconds() - p0
            t_detect += time.perf_counter() - d0
            for a in found:
                fh.write(orjson.dumps(a.to_json_dict(), default=str) + b"\n")
            alerts += len(found)

        report = ScanReport()
        for parsed in parse_batches(plan_sources([path]), report, "bench"):  # openmdr scan's own reader
            for start in range(0, len(parsed), BATCH):
                run(parsed[start : start + BATCH])
        events, failed = report.events, report.failed
        for a in engine.flush():
            fh.write(orjson.dumps(a.to_json_dict(), default=str) + b"\n")
            alerts += 1
    total = time.perf_counter() - t0
    return {
        "events": events,
        "failed": failed,
        "alerts": alerts,
        "seconds": total,
        "compile": t_compile,
        "detect_seconds": t_detect,
        "cpu_seconds": cpu_seconds() - c0,
        "detect_cpu_seconds": c_detect,
    }


def _worker(args: tuple[Path, Path, Path, Path]) -> dict[str, float]:
    return scan_file(*args)


def split_file(path: Path, parts: int, folder: Path) -> list[Path]:
    """Split a JSON-lines file into ``parts`` files of whole lines."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = (len(lines) + parts - 1) // parts
    out = []
    for i in range(parts):
        p = folder / f"part{parts}-{i}.jsonl"
        p.write_bytes(b"".join(lines[i * size : (i + 1) * size]))
        out.append(p)
    return out


def with_workers(path: Path, rules: Path, cache: Path, workers: int, folder: Path) -> dict[str, float]:
    """Wall-clock end to end with ``workers`` processes, each scanning a part of the file."""
    parts = split_file(path, workers, folder)
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        results = pool.map(_worker, [(p, rules, cache, p.with_suffix(".alerts")) for p in parts])
    wall = time.perf_counter() - t0
    events = sum(r["events"] for r in results)
    return {
        "workers": workers,
        "events": events,
        "seconds": wall,
        "events_per_s": events / wall,
        "alerts": sum(r["alerts"] for r in results),
    }


def table_rates(path: Path, rules: Path, cache: Path, limit: int = 50_000) -> dict[str, float]:
    """CPU rates of the streaming stage on lake-layout Arrow batches: columnar path vs rebuilding every event."""
    from openmdr.detect import DetectionService
    from openmdr.models.event import events_to_table, table_to_events

    now = datetime.now(UTC)
    events = []
    for rec in read_sources(plan_sources([path])):
        ev = rec if isinstance(rec, Rejection) else parse_record(rec, "bench", now)
        if not isinstance(ev, Rejection):
            events.append(ev)
            if len(events) >= limit:
                break
    tables = [events_to_table(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]
    engine = Engine(cache_dir=cache)
    engine.compile(load_rules([rules]))
    service = DetectionService(engine)
    with relaxed_gc():
        c0 = cpu_seconds()
        fast = sum(len(service.evaluate(t)) for t in tables)
        c_fast = cpu_seconds() - c0
        c0 = cpu_seconds()
        slow = sum(len(engine.evaluate(table_to_events(t))) for t in tables)
        c_slow = cpu_seconds() - c0
    assert fast == slow
    return {
        "events": len(events),
        "table_path_events_per_cpu_s": len(events) / c_fast,
        "rebuild_events_per_cpu_s": len(events) / c_slow,
        "alerts": fast,
    }


def reference_rate(path: Path, rules: Path, limit: int) -> dict[str, float]:
    """The SQL-per-rule reference over the first ``limit`` events of ``path``."""
    from tests.detect import sqlite_reference as ref

    now = datetime.now(UTC)
    rows = []
    for rec in read_sources(plan_sources([path])):
        ev = rec if isinstance(rec, Rejection) else parse_record(rec, "bench", now)
        if not isinstance(ev, Rejection):
            rows.append(ev.fields)
            if len(rows) >= limit:
                break
    library = load_rules([rules])
    t0 = time.perf_counter()
    converted = ref.convert_rules(s.text for s in library.sources)
    t_convert = time.perf_counter() - t0
    t0 = time.perf_counter()
    c0 = cpu_seconds()
    hits = ref.evaluate(converted, rows)
    c_eval = cpu_seconds() - c0
    t_eval = time.perf_counter() - t0
    return {
        "events": len(rows),
        "convert_seconds": t_convert,
        "eval_seconds": t_eval,
        "eval_cpu_seconds": c_eval,
        "events_per_s": len(rows) / t_eval,
        "events_per_cpu_s": len(rows) / c_eval,
        "rules": len(converted.rules),
        "hits": len(hits),
    }


def main() -> None:
    """Build the data, run every measurement, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reference-events", type=int, default=10_000)
    parser.add_argument("--rules", type=Path, default=SHARED / "sigma" / "rules" / "windows")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"../shared not found next to the repository ({SHARED})")
    cores = sorted(os.sched_getaffinity(0))
    load = os.getloadavg()
    tune_allocator()  # as the openmdr command does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "windows.jsonl"
        mix = build_dataset(data, args.events)
        cache = folder / "cache"
        os.sched_setaffinity(0, {cores[0]})  # one core for the single-process figures
        t0, c0 = time.perf_counter(), cpu_seconds()
        cold = Engine(cache_dir=cache).compile(load_rules([args.rules]))
        t_cold, c_cold = time.perf_counter() - t0, cpu_seconds() - c0
        n_rules, n_unsupported = cold.stats.rules, len(cold.problems)
        del cold  # each measurement below starts as a fresh `openmdr scan` would: no other ruleset alive
        gc.collect()
        t0, c0 = time.perf_counter(), cpu_seconds()
        warm = Engine(cache_dir=cache).compile(load_rules([args.rules]))
        t_warm, c_warm = time.perf_counter() - t0, cpu_seconds() - c0
        assert warm.stats.from_cache
        del warm
        gc.collect()
        one = scan_file(data, args.rules, cache, folder / "alerts.jsonl")
        rss_engine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reference = reference_rate(data, args.rules, args.reference_events)
        streaming = table_rates(data, args.rules, cache)
        os.sched_setaffinity(0, set(cores))
        workers = [with_workers(data, args.rules, cache, n, folder) for n in (1, 2)]
    e2e = one["events"] / one["seconds"]
    detect = one["events"] / one["detect_seconds"]
    e2e_cpu = one["events"] / one["cpu_seconds"]
    detect_cpu = one["events"] / one["detect_cpu_seconds"]
    ref_cpu = reference["events_per_cpu_s"]
    result = {
        "benchmark": "sigma_windows_jsonl",
        "rules_dir": str(args.rules),
        "rules": n_rules,
        "unsupported": n_unsupported,
        "events": one["events"],
        "mix": mix,
        "alerts": one["alerts"],
        "compile_cold_s": round(t_cold, 2),
        "compile_cached_s": round(t_warm, 3),
        "compile_cold_cpu_s": round(c_cold, 2),
        "compile_cached_cpu_s": round(c_warm, 3),
        "e2e_events_per_cpu_s": round(e2e_cpu),
        "detect_events_per_cpu_s": round(detect_cpu),
        "reference_events_per_cpu_s": round(ref_cpu),
        "ratio_e2e_vs_reference_cpu": round(e2e_cpu / ref_cpu, 1),
        "ratio_detect_vs_reference_cpu": round(detect_cpu / ref_cpu, 1),
        "e2e_events_per_s": round(e2e),
        "detect_events_per_s": round(detect),
        "reference_events_per_s": round(reference["events_per_s"]),
        "reference": reference,
        "ratio_e2e_vs_reference": round(e2e / reference["events_per_s"], 1),
        "ratio_detect_vs_reference": round(detect / reference["events_per_s"], 1),
        "workers": workers,
        "streaming_service": streaming,
        "ratio_workers_vs_reference": {
            str(w["workers"]): round(w["events_per_s"] / reference["events_per_s"], 1) for w in workers
        },
        "peak_rss_mb_single_process": round(rss_engine),
        "loadavg_at_start": load,
        "cpus": os.cpu_count(),
    }
    print(
        f"rules {result['rules']} ({result['unsupported']} unsupported), events {result['events']:,}, "
        f"alerts {result['alerts']:,}"
    )
    print(f"compile cold {t_cold:.2f}s wall / {c_cold:.2f}s CPU, cached {t_warm:.3f}s wall / {c_warm:.3f}s CPU")
    print(
        f"CPU-time rates (one core): end to end {e2e_cpu:,.0f} events/s, detection {detect_cpu:,.0f}/s, "
        f"reference {ref_cpu:,.0f}/s -> {e2e_cpu / ref_cpu:.1f}x end to end, {detect_cpu / ref_cpu:.1f}x detection"
    )
    print(f"wall-clock rates: end to end 1 core {e2e:,.0f} events/s (detection alone {detect:,.0f}/s)")
    print(
        f"reference (SQLite, SQL per rule): {reference['events_per_s']:,.0f} events/s "
        f"over {reference['events']:,} events"
    )
    print(
        f"ratio end to end / reference: {result['ratio_e2e_vs_reference']}x; detection: "
        f"{result['ratio_detect_vs_reference']}x"
    )
    print(
        f"DetectionService.evaluate(Arrow batch): {streaming['table_path_events_per_cpu_s']:,.0f} events/CPU-s "
        f"(rebuilding every Event first: {streaming['rebuild_events_per_cpu_s']:,.0f})"
    )
    for w in workers:
        print(f"{w['workers']} worker(s): {w['events_per_s']:,.0f} events/s wall")
    print(f"peak RSS {rss_engine:.0f} MB; load average at start {load}")
    print("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
