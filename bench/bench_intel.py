"""Benchmark: threat-intel matching on one core and retro-hunt over a 100-tenant lake.

Three measurements, each with a baseline taken in the same run:

1. **load**: ``--indicators`` (1,000,000) synthetic indicators of every type (addresses,
   CIDRs, domains, URLs, hashes, e-mail, user-agents, JA3) upserted into a SQLite state
   store in a temp dir, then :meth:`IndicatorMatcher.from_store` builds the matcher.
2. **match**: ``IndicatorMatcher.match`` over ``--events`` events in the lake's Arrow layout,
   in batches of ``--batch`` (the pipeline's batch size), pinned to one core with Arrow's
   thread pool at one thread.  About 0.5 % of events hit an indicator (addresses, CIDRs,
   subdomains, URL hosts, hashes, JA3 in ``fields``).  Baseline: the obvious per-row Python
   matcher over the same rows (set lookups per column, parent-domain walk, CIDR prefix
   walk over a dict of networks), on the first ``--baseline-events`` rows.
3. **retro-hunt**: one IPv4 indicator hunted with :func:`openmdr.intel.hunt_lake` over
   ``--tenants`` x ``--per-tenant`` (100 x 100,000 = 10,000,000) stored events over 7 days,
   written directly as the lake's Parquet partitions with pyarrow in a temp dir (deleted
   afterwards); 5 tenants contacted the address two days before.  Baseline: the same hunt
   as one :meth:`EventLake.query` per tenant (the lake's tenant-scoped SQL API).

Run: ``python bench/bench_intel.py`` (``--quick`` for a smoke run); prints a summary and one
JSON line ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmdr.intel import IndicatorMatcher, hunt_lake
from openmdr.models import EVENT_SCHEMA
from openmdr.models.indicator import Indicator
from openmdr.store.intel import IntelStore
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIX = {"ip": 0.40, "cidr": 0.05, "domain": 0.25, "url": 0.10, "sha256": 0.10, "md5": 0.05, "sha1": 0.03,
       "email": 0.01, "user_agent": 0.005, "ja3": 0.005}  # fmt: skip


def ip_strings(numbers: np.ndarray) -> pa.Array:
    """Dotted quads of uint32 numbers, built with Arrow kernels."""
    parts = [pc.cast(pa.array((numbers >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def hex_strings(rng: np.random.Generator, n: int, width: int) -> list[str]:
    """``n`` random lower-case hex strings of ``width`` digits."""
    raw = rng.integers(0, 256, size=(n, width // 2), dtype=np.uint8)
    return [bytes(row).hex() for row in raw]


def public_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random addresses outside 0/8, 10/8, 127/8 and multicast."""
    first = rng.integers(11, 223, size=n, dtype=np.uint64)
    first[first == 127] = 128
    return (first << np.uint64(24)) | rng.integers(0, 1 << 24, size=n, dtype=np.uint64)


def _distinct(values: list[str], n: int) -> list[str]:
    out = list(dict.fromkeys(values))[:n]
    assert len(out) == n, "not enough distinct values drawn"
    return out


def make_indicators(n: int, rng: np.random.Generator) -> tuple[list[Indicator], dict[str, list[str]]]:
    """``n`` indicators in the :data:`MIX`; also the values of each type (for planting hits)."""
    counts = {k: int(v * n) for k, v in MIX.items()}
    counts["ip"] += n - sum(counts.values())
    values: dict[str, list[str]] = {}
    # Random draws may repeat: draw 1 % more and keep the first distinct ones (exactly n in all).
    values["ip"] = _distinct(ip_strings(public_ips(rng, counts["ip"] * 101 // 100)).to_pylist(), counts["ip"])
    nets = public_ips(rng, counts["cidr"] * 101 // 100) & np.uint64(0xFFFFFF00)
    values["cidr"] = _distinct([f"{v}/24" for v in ip_strings(nets).to_pylist()], counts["cidr"])
    labels = hex_strings(rng, counts["domain"], 12)
    values["domain"] = [f"{label[:8]}.{label[8:]}-bad.example" for label in labels]
    values["url"] = [f"http://{h[:10]}.example/gate/{h[10:]}.php" for h in hex_strings(rng, counts["url"], 24)]
    for kind, width in (("sha256", 64), ("md5", 32), ("sha1", 40), ("ja3", 32)):
        values[kind] = hex_strings(rng, counts[kind], width)
    values["email"] = [f"{h}@phish-{i % 97}.example" for i, h in enumerate(hex_strings(rng, counts["email"], 10))]
    values["user_agent"] = [f"Mozilla/5.0 (Evil {h})" for h in hex_strings(rng, counts["user_agent"], 8)]
    inds = [
        Indicator(kind, v, source="bench", confidence=70, tlp="green", first_seen=NOW, last_seen=NOW)
        for kind, vals in values.items()
        for v in vals
    ]
    return inds, values


def make_events(n: int, rng: np.random.Generator, values: dict[str, list[str]], tenants: int = 20) -> pa.Table:
    """``n`` events in EVENT_SCHEMA layout (network, DNS, HTTP, process mix) with ~0.5 % indicator hits."""
    hit = rng.random(n) < 0.005
    kinds = np.array(["ip", "cidr", "domain", "url", "sha256", "md5", "ja3", "email"])
    hit_kind = kinds[rng.integers(0, len(kinds), n)]
    src = ip_strings(np.uint64(10 << 24) + rng.integers(0, 1 << 16, n, dtype=np.uint64)).to_pylist()
    dst = ip_strings(public_ips(rng, n)).to_pylist()
    pool = [f"{h[:6]}.{h[6:]}.com" for h in hex_strings(rng, 50_000, 14)]
    domain = [pool[i] if r < 0.4 else None for i, r in zip(rng.integers(0, len(pool), n), rng.random(n), strict=True)]
    url = [
        f"https://{d}/index.html" if d is not None and r < 0.3 else None
        for d, r in zip(domain, rng.random(n), strict=True)
    ]
    sha = [h if r < 0.1 else None for h, r in zip(hex_strings(rng, n, 64), rng.random(n), strict=True)]
    md5 = [None] * n
    agents = [f"Mozilla/5.0 (Windows NT 10.0) Chrome/{v}" for v in range(200)]
    ua = [agents[i] if d is not None else None for i, d in zip(rng.integers(0, 200, n), url, strict=True)]
    user = [f"user{i}" for i in rng.integers(0, 5000, n)]
    fields = ['{"proto":"tcp","conn_state":"SF"}'] * n
    for i in np.nonzero(hit)[0]:
        kind = hit_kind[i]
        pick = values[kind][int(rng.integers(0, len(values[kind])))]
        if kind == "ip":
            dst[i] = pick
        elif kind == "cidr":
            dst[i] = pick.rsplit(".", 1)[0] + ".77"
        elif kind == "domain":
            domain[i] = "www." + pick
        elif kind == "url":
            url[i] = pick
        elif kind == "sha256":
            sha[i] = pick
        elif kind == "md5":
            md5[i] = pick
        elif kind == "ja3":
            fields[i] = '{"proto":"tcp","ja3":"' + pick + '"}'
        else:
            user[i] = pick
    times = NOW.timestamp() * 1e6 - rng.integers(0, 86_400_000_000, n)
    columns = {
        "event_id": pa.array([f"e{i}" for i in range(n)]),
        "tenant": pa.array([f"t{i % tenants:03d}" for i in range(n)]),
        "time": pa.array(times.astype("int64"), pa.timestamp("us", tz="UTC")),
        "ingested_at": pa.array(times.astype("int64"), pa.timestamp("us", tz="UTC")),
        "source_format": pa.array(["zeek_json"] * n),
        "host": pa.array([f"ws{i % 3000}" for i in range(n)]),
        "user": pa.array(user),
        "src_ip": pa.array(src),
        "dst_ip": pa.array(dst),
        "domain": pa.array(domain, pa.string()),
        "url": pa.array(url, pa.string()),
        "hash_md5": pa.array(md5, pa.string()),
        "hash_sha256": pa.array(sha, pa.string()),
        "user_agent": pa.array(ua, pa.string()),
        "fields": pa.array(fields),
    }
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


class NaiveMatcher:
    """The per-row Python matcher a first implementation would write (the baseline)."""

    def __init__(self, indicators: list[Indicator]) -> None:
        self.sets: dict[str, set[str]] = {}
        self.nets: dict[tuple[int, int], str] = {}
        for ind in indicators:
            if ind.type == "cidr":
                addr, length = ind.value.split("/")
                self.nets[(_ip_int(addr) >> (32 - int(length)), int(length))] = ind.value
            else:
                self.sets.setdefault(ind.type, set()).add(ind.value)
        self.lengths = sorted({k[1] for k in self.nets})

    def match(self, table: pa.Table) -> int:
        """Number of (row, indicator) hits."""
        cols = {c: table.column(c).to_pylist() for c in ("src_ip", "dst_ip", "domain", "url", "hash_md5",
                                                          "hash_sha256", "user", "fields")}  # fmt: skip
        ips, doms, urls, md5s, shas = (self.sets.get(k, set()) for k in ("ip", "domain", "url", "md5", "sha256"))
        ja3s, emails = self.sets.get("ja3", set()), self.sets.get("email", set())
        hits = 0
        for i in range(table.num_rows):
            for col in ("src_ip", "dst_ip"):
                v = cols[col][i]
                if v:
                    hits += v in ips
                    n = _ip_int(v)
                    hits += sum((n >> (32 - ln), ln) in self.nets for ln in self.lengths)
            d = cols["domain"][i]
            if d:
                labels = d.lower().split(".")
                hits += sum(".".join(labels[k:]) in doms for k in range(len(labels) - 1))
            u = cols["url"][i]
            if u:
                hits += u in urls
            if cols["hash_md5"][i]:
                hits += cols["hash_md5"][i].lower() in md5s
            if cols["hash_sha256"][i]:
                hits += cols["hash_sha256"][i].lower() in shas
            hits += (cols["user"][i] or "").lower() in emails
            f = cols["fields"][i]
            if f and "ja3" in f:
                hits += orjson.loads(f).get("ja3", "") in ja3s
        return hits


def _ip_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def bench_load_and_match(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    indicators, values = make_indicators(args.indicators, rng)
    t_make = time.perf_counter() - t0
    state = StateStore(f"sqlite:///{tmp / 'state.db'}")
    state.migrate()
    store = IntelStore(state)
    t0 = time.perf_counter()
    report = store.upsert_indicators(indicators, "bench", now=NOW)
    t_store = time.perf_counter() - t0
    t0 = time.perf_counter()
    matcher = IndicatorMatcher.from_store(store, clock=lambda: NOW)
    t_build = time.perf_counter() - t0
    print(f"load: {report.added:,} indicators made in {t_make:.1f}s, stored in {t_store:.1f}s "
          f"({report.added / t_store:,.0f}/s), matcher built from the store in {t_build:.1f}s")  # fmt: skip
    t0 = time.perf_counter()
    unchanged = matcher.refresh()
    t_noop = time.perf_counter() - t0
    store.upsert_indicators([Indicator("domain", "fresh-c2.example", confidence=90, first_seen=NOW)], "bench", now=NOW)
    t0 = time.perf_counter()
    loaded = matcher.refresh()
    t_delta = time.perf_counter() - t0
    print(f"refresh: nothing changed {t_noop * 1000:.1f} ms ({unchanged}); one new indicator live in "
          f"{t_delta * 1000:.0f} ms ({loaded}, {len(matcher._state.layers)} layers)")  # fmt: skip
    events = make_events(args.events, rng, values)
    batches = [events.slice(i, args.batch) for i in range(0, events.num_rows, args.batch)]
    matcher.match(batches[0])  # warm caches
    t0 = time.perf_counter()
    alerts = 0
    hits = 0
    for batch in batches:
        hits += len(matcher.match_set(batch))
    t_set = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in batches:
        alerts += len(matcher.match(batch))
    t_match, c_match = time.perf_counter() - t0, time.process_time() - c0
    rate = events.num_rows / t_match
    cpu_rate = events.num_rows / c_match
    print(f"match: {events.num_rows:,} events in {t_match:.2f}s wall = {rate:,.0f} events/s on one core "
          f"({cpu_rate:,.0f} events/s of CPU time; {hits:,} hits, {alerts:,} alerts; "
          f"hits only: {events.num_rows / t_set:,.0f} events/s)")  # fmt: skip
    naive = NaiveMatcher(indicators)
    sample = events.slice(0, args.baseline_events)
    t0, c0 = time.perf_counter(), time.process_time()
    naive_hits = naive.match(sample)
    t_naive, c_naive = time.perf_counter() - t0, time.process_time() - c0
    naive_rate = sample.num_rows / t_naive
    naive_cpu_rate = sample.num_rows / c_naive
    vector_hits = len(matcher.match_set(sample))
    print(f"baseline (per-row Python): {naive_rate:,.0f} events/s ({naive_cpu_rate:,.0f}/s CPU); "
          f"ratio {rate / naive_rate:.1f}x wall, {cpu_rate / naive_cpu_rate:.1f}x CPU "
          f"(hits on the sample: vectorised {vector_hits}, per-row {naive_hits})")  # fmt: skip
    state.close()
    return {
        "indicators": report.added, "store_seconds": round(t_store, 2), "build_seconds": round(t_build, 2),
        "refresh_noop_ms": round(t_noop * 1000, 1), "refresh_one_new_ms": round(t_delta * 1000, 1),
        "events": events.num_rows, "batch": args.batch, "hits": hits, "alerts": alerts,
        "match_events_per_s": round(rate), "match_events_per_cpu_s": round(cpu_rate),
        "baseline_events_per_s": round(naive_rate), "baseline_events_per_cpu_s": round(naive_cpu_rate),
        "match_ratio": round(rate / naive_rate, 1), "match_ratio_cpu": round(cpu_rate / naive_cpu_rate, 1),
        "sample_hits_vectorised": vector_hits, "sample_hits_baseline": naive_hits,
    }  # fmt: skip


def write_lake(root: Path, tenants: int, per_tenant: int, c2: str, hit_tenants: int, rng: np.random.Generator) -> int:
    """Write ``tenants`` x ``per_tenant`` events as lake partitions (7 days) directly with pyarrow."""
    days = 7
    pool = [f"{h[:6]}.{h[6:]}.com" for h in hex_strings(rng, 20_000, 14)]
    pool_arr = pa.array(pool)
    total = 0
    for t in range(tenants):
        name = f"tenant{t:03d}"
        n = per_tenant
        day_index = rng.integers(0, days, n)
        offsets = rng.integers(0, 86_400_000_000, n)
        base = int((NOW - timedelta(days=days - 1)).replace(hour=0, minute=0).timestamp() * 1e6)
        times = base + day_index * 86_400_000_000 + offsets
        dst = ip_strings(public_ips(rng, n))
        if t < hit_tenants:  # this tenant's host contacted the C2 two days ago
            two_days_ago = int((NOW - timedelta(days=2)).timestamp() * 1e6)
            k = int(rng.integers(0, n))
            times[k] = two_days_ago
            dst = pc.if_else(pa.array(np.arange(n) == k), pa.scalar(c2), dst)
        src = ip_strings(np.uint64(10 << 24) + rng.integers(0, 1 << 16, n, dtype=np.uint64))
        rows = np.arange(n)
        cols = {
            "event_id": pc.binary_join_element_wise(pa.array([name] * n), pc.cast(pa.array(rows), pa.string()), "-"),
            "tenant": pa.array([name] * n),
            "time": pa.array(times.astype("int64"), pa.timestamp("us", tz="UTC")),
            "ingested_at": pa.array(times.astype("int64"), pa.timestamp("us", tz="UTC")),
            "source_format": pa.array(["zeek_json"] * n),
            "host": pc.binary_join_element_wise(pa.array(["ws"] * n), pc.cast(pa.array(rows % 500), pa.string()), ""),
            "src_ip": src,
            "dst_ip": dst,
            "domain": pool_arr.take(pa.array(rng.integers(0, len(pool), n))),
            "fields": pa.array(['{"proto":"tcp"}'] * n),
        }  # fmt: skip
        table = pa.Table.from_arrays([cols.get(f.name, pa.nulls(n, f.type)) for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)
        for d in range(days):
            part = table.filter(pa.array(day_index == d)).sort_by("time")
            day = (NOW - timedelta(days=days - 1 - d)).date()
            folder = root / f"tenant={name}" / f"date={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, folder / "part-00000000000000000001-bench0000.parquet", compression="zstd")
        total += n
    return total


def bench_retro_hunt(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    rng = np.random.default_rng(11)
    c2 = "185.199.77.23"
    t0 = time.perf_counter()
    lake_root = tmp / "lake"
    total = write_lake(lake_root, args.tenants, args.per_tenant, c2, 5, rng)
    t_write = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in lake_root.rglob("*.parquet"))
    print(f"lake: {total:,} events of {args.tenants} tenants written in {t_write:.1f}s ({size / 1e6:,.0f} MB Parquet)")
    lake = EventLake(lake_root)
    indicator = Indicator("ip", c2, tlp="amber", confidence=85, first_seen=NOW)
    since = NOW - timedelta(days=30)
    runs = []
    alerts: list = []
    cpu = []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        alerts, stats = hunt_lake(lake, [indicator], since, NOW, now=NOW)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t_hunt = min(runs)
    found = sorted(a.tenant for a in alerts)
    listing = ", ".join(f"{r:.2f}" for r in runs)
    print(f"retro-hunt: one indicator over {total:,} events / {args.tenants} tenants / {stats.files} files in "
          f"{t_hunt:.2f}s (best of 3; runs {listing}; CPU {min(cpu):.2f}s); found {found}")  # fmt: skip
    t0 = time.perf_counter()
    baseline_hits = 0
    for tenant in lake.tenants():
        result = lake.query(tenant, "SELECT event_id FROM events WHERE time >= ? AND (src_ip = ? OR dst_ip = ?)",
                            [since, c2, c2], since=since)  # fmt: skip
        baseline_hits += result.num_rows
    t_base = time.perf_counter() - t0
    print(
        f"baseline (one EventLake.query per tenant): {t_base:.2f}s, {baseline_hits} rows; ratio {t_base / t_hunt:.1f}x"
    )
    return {"lake_events": total, "tenants": args.tenants, "files": stats.files, "hunt_seconds": round(t_hunt, 3),
            "hunt_runs": [round(r, 3) for r in runs], "hunt_cpu_seconds": round(min(cpu), 3),
            "tenants_found": len(found),
            "baseline_seconds": round(t_base, 3), "hunt_ratio": round(t_base / t_hunt, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--baseline-events", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--per-tenant", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-match", action="store_true")
    parser.add_argument("--skip-hunt", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.indicators, args.events, args.baseline_events, args.tenants, args.per_tenant = (
            50_000,
            100_000,
            20_000,
            10,
            20_000,
        )
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    result: dict[str, object] = {"machine": f"{os.cpu_count()} cpu", "load_avg": os.getloadavg()[0],
                                 "python": sys.version.split()[0],
                                 "pyarrow": pa.__version__}  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench-intel-"))
    try:
        if not args.skip_match:
            if cpus:  # matching is measured on one core, Arrow's pool at one thread
                os.sched_setaffinity(0, {min(cpus)})
            pa.set_cpu_count(1)
            result["match"] = bench_load_and_match(args, tmp)
        if not args.skip_hunt:
            if cpus:  # the retro-hunt uses DuckDB's two threads (the whole machine here)
                os.sched_setaffinity(0, cpus)
            pa.set_cpu_count(max(1, len(cpus)))
            result["retro_hunt"] = bench_retro_hunt(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
