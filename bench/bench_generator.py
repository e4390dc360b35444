"""Benchmark: generating the multi-tenant week, against reading back what was written.

Generates the default three-tenant week (``--scale`` multiplies the background) into a
temporary directory, then, as the baseline measured in the same run, frames and parses
every written record with the ingest stage (``plan_sources`` / ``read_sources`` /
``parse_record``, no enrichment or storage).  The ratio says how generation compares with
the cheapest thing the platform does with the same data.

Run: ``python bench/bench_generator.py [--scale 1.0]``; prints a summary and a JSON line
(``RESULT {...}``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from openmdr.generator import GeneratorConfig, generate, telemetry_paths
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Rejection
from openmdr.pipeline import parse_record


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "week"
        started = time.perf_counter()
        manifest = generate(out, GeneratorConfig(seed=args.seed, scale=args.scale))
        gen_seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        parsed = rejected = 0
        now = datetime.now(UTC)
        for tenant in manifest.tenants:
            for item in read_sources(plan_sources(telemetry_paths(out, tenant))):
                if isinstance(item, Rejection) or isinstance(parse_record(item, tenant, now), Rejection):
                    rejected += 1
                else:
                    parsed += 1
        parse_seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result = {
        "records": manifest.total_records,
        "bytes": size,
        "generate_seconds": round(gen_seconds, 2),
        "generate_records_per_s": round(manifest.total_records / gen_seconds),
        "peak_rss_mb": round(peak_mb),
        "parse_seconds": round(parse_seconds, 2),
        "parse_records_per_s": round(parsed / parse_seconds),
        "rejected": rejected,
        "ratio_generate_to_parse": round(gen_seconds / parse_seconds, 2),
    }
    print(
        f"generated {result['records']:,} records ({size / 1e6:.0f} MB) in {gen_seconds:.1f}s "
        f"({result['generate_records_per_s']:,}/s, peak RSS {result['peak_rss_mb']} MB); parsing them back took "
        f"{parse_seconds:.1f}s ({result['parse_records_per_s']:,}/s, {rejected} rejected): "
        f"ratio {result['ratio_generate_to_parse']}"
    )
    print("RESULT " + orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
