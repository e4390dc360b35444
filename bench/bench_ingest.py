"""Benchmark: file import of Windows event JSON lines into the event lake, on one core.

Builds a JSON-lines file from the real Windows samples in ../shared (SigmaHQ regression
samples in evtx_dump style and the OTRF Winlogbeat-style datasets), replicated with
distinct record ids until it holds ``--events`` events, then imports it through the
real ingest pipeline (framing, parsing, normalization, enrichment, dedup, Parquet append,
publish on a bus without subscribers: detection is benchmarked on its own) into a fresh
data directory.  The baseline measured in the same run is the bare cost of
reading the same file and decoding every line with orjson, so the ratio says what the
whole pipeline costs relative to merely touching each event in Python.

Run: ``python bench/bench_ingest.py --events 200000``; prints a human summary and a
JSON line (``RESULT {...}``).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from openmdr.pipeline import IngestPipeline
    from openmdr.runtime import Platform

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _regression_objects() -> list[dict]:
    """Every evtx_dump-style object of the SigmaHQ regression samples."""
    objects: list[dict] = []
    decoder = __import__("json").JSONDecoder()
    for path in sorted((SHARED / "sigma" / "regression_data").rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            obj, pos = decoder.raw_decode(text, pos)
            objects.append(obj)
    return objects


def _otrf_lines(limit: int) -> list[dict]:
    """Winlogbeat-style records from the OTRF datasets."""
    rows: list[dict] = []
    for path in sorted((SHARED / "datasets" / "otrf").glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                for line in io.TextIOWrapper(zf.open(name), encoding="utf-8"):
                    if line.strip():
                        rows.append(orjson.loads(line))
                        if len(rows) >= limit:
                            return rows
    return rows


def build_dataset(path: Path, events: int) -> dict[str, int]:
    """Write ``events`` distinct Windows JSON lines (half evtx_dump style, half Winlogbeat)."""
    evtx_style = _regression_objects()
    flat = _otrf_lines(50_000)
    written = {"winevent_json": 0, "winlogbeat_json": 0}
    with path.open("wb") as out:
        replica = 0
        while sum(written.values()) < events:
            for obj in evtx_style:
                system = obj["Event"]["System"]
                original = system.get("EventRecordID") or 0
                system["EventRecordID"] = int(original) + replica * 10_000_000
                out.write(orjson.dumps(obj) + b"\n")
                system["EventRecordID"] = original
                written["winevent_json"] += 1
            for j, row in enumerate(flat[: max(1, len(flat) // 4)]):
                row["RecordNumber"] = replica * 1_000_000 + j  # distinct: the natural key includes it
                out.write(orjson.dumps(row) + b"\n")
                written["winlogbeat_json"] += 1
                if sum(written.values()) >= events:
                    break
            replica += 1
    return written


def baseline_decode(path: Path) -> tuple[int, float, float]:
    """Read the file and decode every line with orjson: the floor of any Python importer."""
    started, cpu = time.perf_counter(), time.process_time()
    n = 0
    with path.open("rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return n, time.perf_counter() - started, time.process_time() - cpu


def ingest_pipeline(platform: Platform) -> IngestPipeline:
    """The ingest half of the flow over the platform's stores, with a bus nobody listens on.

    ``Platform.pipeline`` also attaches detection, correlation and response to the bus;
    those have their own benchmarks, this one measures collect -> normalize -> enrich ->
    store -> publish.
    """
    from openmdr.bus import InProcessBus
    from openmdr.pipeline import IngestPipeline

    p = platform
    return IngestPipeline(p.state, p.lake, InProcessBus(), p.geo, batch_size=p.settings.lake.batch_size)


def run_import(path: Path, data_dir: Path) -> tuple[object, float, float, float]:
    """Import the file through the real pipeline into ``data_dir``: (report, wall, CPU and kernel seconds).

    The kernel share of the CPU time is reported on its own: it is mostly page faults on
    fresh memory, which the allocator tuning of :func:`openmdr.gctuning.tune_allocator`
    (applied here as by the ``openmdr`` command) keeps low.
    """
    from openmdr.ingest.files import plan_sources, read_sources
    from openmdr.models import TenantInfo
    from openmdr.runtime import Platform

    platform = Platform.from_data_dir(data_dir)
    platform.state.create_tenant(TenantInfo(name="bench", networks=("10.0.0.0/8", "192.168.0.0/16")), actor="bench")
    pipeline = ingest_pipeline(platform)
    kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    started, cpu = time.perf_counter(), time.process_time()
    report = pipeline.submit("bench", read_sources(plan_sources([str(path)])))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel
    platform.close()
    return report, elapsed, cpu, kernel


def main() -> None:
    """Build the data, measure baseline and import, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="keep the generated file here")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"../shared not found next to the repository ({SHARED})")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from openmdr.gctuning import tune_allocator

    tune_allocator()  # as the openmdr command does for every import
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp) / "windows.jsonl"
        mix = build_dataset(data, args.events)
        size = data.stat().st_size
        n_base, t_base, c_base = baseline_decode(data)
        report, t_import, c_import, k_import = run_import(data, Path(tmp) / "data")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "ingest_windows_jsonl",
        "events": n_base,
        "mix": mix,
        "file_mb": round(size / 1e6, 1),
        "stored": report.stored,
        "rejected": report.rejected,
        "duplicates": report.duplicates,
        "import_seconds": round(t_import, 3),
        "import_events_per_s": round(report.received / t_import),
        "import_events_per_cpu_s": round(report.received / c_import),
        "import_cpu_seconds": round(c_import, 3),
        "import_kernel_seconds": round(k_import, 3),
        "baseline_decode_events_per_s": round(n_base / t_base),
        "baseline_decode_events_per_cpu_s": round(n_base / c_base),
        "ratio_import_to_baseline": round((report.received / t_import) / (n_base / t_base), 3),
        "ratio_import_to_baseline_cpu": round((report.received / c_import) / (n_base / c_base), 3),
        "peak_rss_mb": round(peak_mb),
        "cpu": os.cpu_count(),
    }
    print(
        f"imported {report.received:,} events ({size / 1e6:.0f} MB) in {t_import:.2f}s on one core: "
        f"{result['import_events_per_s']:,} events/s ({result['import_events_per_cpu_s']:,} per CPU second); "
        f"stored {report.stored:,}, rejected {report.rejected:,}"
    )
    print(
        f"baseline (read + orjson decode only): {result['baseline_decode_events_per_s']:,} events/s; "
        f"pipeline runs at {result['ratio_import_to_baseline']:.2f}x of it; peak RSS {result['peak_rss_mb']} MB"
    )
    met = result["import_events_per_cpu_s"] >= 50_000 and report.rejected == 0
    result["budget_met"] = met
    print(f"budget >= 50,000 events/s per core (per CPU second of this process): {'met' if met else 'NOT met'}")
    print("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
