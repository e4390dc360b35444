"""Benchmark: behaviour analytics on one core.

Three measurements, each with a baseline taken in the same run so the ratios mean
something on a noisy shared machine:

1. **network**: beacon + scan + exfiltration analysis (batch, ``AnalyticsEngine.analyze``)
   over ``--conns`` synthetic connection records in the lake's Arrow layout (one day of a
   network of ~2,000 hosts browsing ~50,000 destinations with heavy-tailed sizes and
   durations, plus planted beacons, a scanner and an exfiltration).  The time includes
   reading the original fields out of the JSON column.  Baseline: one pyarrow group-by of
   the same table by (src_ip, dst_ip) with count/sum/min/max aggregates.  Also reported:
   the same records with every network analytic enabled.
2. **identity**: streaming identity analytics (``AnalyticsEngine.feed`` in batches of
   ``--batch``) over ``--logons`` logon events (successes, failures, a spray, travel).
   Baseline: a bare Python loop over the same rows' columns.
3. **memory**: state held after 10k, 100k, 1M and 2M distinct (user, source) and (source,
   destination) pairs, each in a fresh process: entities per store, snapshot bytes, and the
   RSS the state adds over a baseline taken in the same process after a warm-up run (freed
   heap handed back with ``malloc_trim`` first).  State is capped, so it stops growing once
   the caps are reached.

Run: ``python bench/bench_analytics.py`` (``--quick`` for a smoke run); prints a human
summary and one JSON line ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings
from openmdr.models import TenantInfo
from openmdr.models.event import EVENT_SCHEMA

DAY0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC
TENANT = TenantInfo(name="bench", networks=("10.0.0.0/8",))


def _table(columns: dict[str, pa.Array | list], n: int) -> pa.Table:
    arrays = []
    for field in EVENT_SCHEMA:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(n, type=field.type))
        else:
            arrays.append(pa.array(value, type=field.type) if not isinstance(value, pa.Array) else value)
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _ips(prefix: str, codes: np.ndarray) -> list[str]:
    uniq, inv = np.unique(codes, return_inverse=True)
    names = [f"{prefix}{(int(c) >> 16) & 255}.{(int(c) >> 8) & 255}.{int(c) & 255}" for c in uniq]
    arr = np.array(names, dtype=object)
    return arr[inv].tolist()


def connection_table(n: int, seed: int = 1) -> tuple[pa.Table, dict[str, object]]:
    """``n`` Zeek conn records of one day, with planted beacons, a scan and an exfiltration."""
    rng = np.random.default_rng(seed)
    hosts = rng.integers(0, 2000, n)
    # destinations follow a Zipf-like popularity: a few services get most connections
    dst = np.minimum(rng.zipf(1.3, n), 50_000) + rng.integers(0, 3, n) * 50_000
    ts = DAY0 + np.sort(rng.uniform(0, 86_400, n))
    dport = np.where(rng.random(n) < 0.85, 443, rng.choice([80, 53, 123, 8080, 993, 22, 3389, 445], n))
    bytes_out = rng.lognormal(7.5, 1.6, n).astype(np.int64)
    bytes_in = rng.lognormal(9.5, 2.0, n).astype(np.int64)
    duration = rng.lognormal(0.0, 1.8, n)
    failed = rng.random(n) < 0.02
    src_ips = _ips("10.", hosts)
    dst_ips = _ips("93.", dst)
    state = np.where(failed, "S0", "SF")

    planted_src, planted_ts, planted_dst, planted_port, planted_out, planted_state, planted_dur = (
        [], [], [], [], [], [], []
    )  # fmt: skip
    beacons = [("10.250.0.1", "185.100.87.1", 60.0), ("10.250.0.2", "185.100.87.2", 300.0)]
    for src, c2, period in beacons:  # check-ins with 5 % jitter all day
        k = np.arange(int(86_400 / period) - 1)
        planted_ts += (DAY0 + period * (k + 1) + rng.normal(0, period * 0.05, len(k))).tolist()
        planted_src += [src] * len(k)
        planted_dst += [c2] * len(k)
        planted_port += [443] * len(k)
        planted_out += (600 + rng.integers(0, 3, len(k)) * 8).tolist()
        planted_state += ["SF"] * len(k)
        planted_dur += [0.4] * len(k)
    for p in range(1, 1001):  # a vertical scan of 1,000 ports in ~3 minutes
        planted_ts.append(DAY0 + 40_000 + p * 0.18)
        planted_src.append("10.250.0.3")
        planted_dst.append("10.0.200.1")
        planted_port.append(p)
        planted_out.append(0)
        planted_state.append("REJ")
        planted_dur.append(0.001)
    for i in range(40):  # 40 x 100 MiB out in one hour
        planted_ts.append(DAY0 + 50_000 + i * 60)
        planted_src.append("10.250.0.4")
        planted_dst.append("45.13.113.200")
        planted_port.append(443)
        planted_out.append(100 * 1024 * 1024)
        planted_state.append("SF")
        planted_dur.append(30.0)

    m = len(planted_ts)
    all_ts = np.concatenate([ts, np.asarray(planted_ts)])
    order = np.argsort(all_ts, kind="stable")
    src_all = np.array(src_ips + planted_src, dtype=object)[order]
    dst_all = np.array(dst_ips + planted_dst, dtype=object)[order]
    port_all = np.concatenate([dport, np.asarray(planted_port)])[order]
    out_all = np.concatenate([bytes_out, np.asarray(planted_out)])[order]
    in_all = np.concatenate([bytes_in, np.zeros(m, dtype=np.int64)])[order]
    dur_all = np.concatenate([duration, np.asarray(planted_dur)])[order]
    state_all = np.concatenate([state, np.asarray(planted_state)])[order]
    total = n + m
    fields = [
        orjson.dumps({"uid": f"C{i:x}", "duration": float(d), "conn_state": s}).decode()
        for i, (d, s) in enumerate(zip(dur_all.tolist(), state_all.tolist(), strict=True))
    ]
    times = pa.array((all_ts[order] * 1e6).astype(np.int64), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = _table(
        {
            "event_id": [f"e{i}" for i in range(total)],
            "tenant": pa.array(["bench"] * total),
            "time": times,
            "ingested_at": times,
            "source_format": pa.array(["zeek_tsv"] * total),
            "product": pa.array(["zeek"] * total),
            "service": pa.array(["conn"] * total),
            "src_ip": pa.array(src_all.tolist()),
            "dst_ip": pa.array(dst_all.tolist()),
            "src_port": pa.array(rng.integers(1024, 65535, total).astype(np.int32)),
            "dst_port": pa.array(port_all.astype(np.int32)),
            "protocol": pa.array(["tcp"] * total),
            "bytes_out": pa.array(out_all.astype(np.int64)),
            "bytes_in": pa.array(in_all.astype(np.int64)),
            "src_internal": pa.array([s.startswith("10.") for s in src_all.tolist()]),
            "dst_internal": pa.array([d.startswith("10.") for d in dst_all.tolist()]),
            "fields": pa.array(fields),
        },
        total,
    )
    return table, {"planted": m, "beacons": beacons}


def bench_network(n: int) -> dict[str, object]:
    table, planted = connection_table(n)
    # baseline: one group-by pass over the same records
    t0, c0 = time.perf_counter(), time.process_time()
    table.group_by(["src_ip", "dst_ip"]).aggregate(
        [("bytes_out", "sum"), ("time", "min"), ("time", "max"), ("dst_port", "count")]
    )
    baseline, baseline_cpu = time.perf_counter() - t0, time.process_time() - c0

    focused = AnalyticsSettings(
        dns_tunnel={"enabled": False},
        long_connection={"enabled": False},
        lateral={"enabled": False},
        shadow_it={"enabled": False},
    )
    t0, c0 = time.perf_counter(), time.process_time()
    alerts = AnalyticsEngine(focused, tenants=[TENANT]).analyze(table)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    all_alerts = AnalyticsEngine(tenants=[TENANT]).analyze(table)
    elapsed_all = time.perf_counter() - t0
    found = {(a.source, str(a.entities.get("src_ip"))) for a in alerts}
    expect = {
        ("analytics:beacon", "10.250.0.1"),
        ("analytics:beacon", "10.250.0.2"),
        ("analytics:scan_vertical", "10.250.0.3"),
        ("analytics:exfiltration_volume", "10.250.0.4"),
    }
    return {
        "records": table.num_rows,
        "seconds": round(elapsed, 3),
        "records_per_s": round(table.num_rows / elapsed),
        "cpu_seconds": round(cpu, 3),
        "baseline_groupby_seconds": round(baseline, 3),
        "baseline_groupby_cpu_seconds": round(baseline_cpu, 3),
        "ratio_to_groupby": round(elapsed / baseline, 1),
        "cpu_ratio_to_groupby": round(cpu / max(baseline_cpu, 1e-9), 1),
        "seconds_all_network_analytics": round(elapsed_all, 3),
        "alerts": len(alerts),
        "alerts_all_analytics": len(all_alerts),
        "planted_found": sorted(f"{s}:{e}" for s, e in expect & found),
        "planted_missed": sorted(f"{s}:{e}" for s, e in expect - found),
        "planted_records": planted["planted"],
    }


def logon_table(n: int, seed: int = 2) -> pa.Table:
    """``n`` logon events over a working week: 5,000 users working 07-19 local time on weekdays
    (2 % of logons at other times), 3 % failures, 20 % geolocated VPN logons."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 5000, n)
    day = rng.integers(0, 5, n).astype(np.float64)
    hour = np.where(rng.random(n) < 0.98, rng.uniform(6, 18, n), rng.uniform(0, 24, n))  # UTC (Berlin - 1)
    ts = np.sort(DAY0 + day * 86_400 + hour * 3600)
    failed = rng.random(n) < 0.03
    vpn = rng.random(n) < 0.2
    # a VPN user connects from one of two addresses of their own (home, phone), 2 % of the time
    # from anywhere in the provider's address space; on site from their own workstation, 5 % of
    # the time from another of the 4,000 (meeting rooms, hot desks)
    home = users * 2 + rng.integers(0, 2, n)
    roaming = rng.random(n) < 0.02
    vpn_codes = np.where(roaming, rng.integers(0, 1 << 20, n), (home * 7919) % (1 << 20))
    desk = np.where(rng.random(n) < 0.05, rng.integers(0, 4000, n), users % 4000)
    src = np.where(vpn, _ips_list("85.", vpn_codes), _ips_list("10.", desk))
    lat = np.where(vpn, 52.5 + rng.normal(0, 0.5, n), np.nan)
    lon = np.where(vpn, 13.4 + rng.normal(0, 0.5, n), np.nan)
    times = pa.array((ts * 1e6).astype(np.int64)).cast(pa.timestamp("us", tz="UTC"))
    fields = np.where(rng.random(n) < 0.5, '{"LogonType": "10"}', '{"LogonType": "2"}')
    return _table(
        {
            "event_id": [f"l{i}" for i in range(n)],
            "tenant": pa.array(["bench"] * n),
            "time": times,
            "ingested_at": times,
            "source_format": pa.array(["winevent_json"] * n),
            "product": pa.array(["windows"] * n),
            "service": pa.array(["security"] * n),
            "event_code": pa.array(np.where(failed, "4625", "4624").tolist()),
            "action": pa.array(np.where(failed, "logon_failed", "logon").tolist()),
            "outcome": pa.array(np.where(failed, "failure", "success").tolist()),
            "user": pa.array([f"user{u}" for u in users.tolist()]),
            "host": pa.array([f"ws{u % 3000}" for u in users.tolist()]),
            "src_ip": pa.array(src.tolist()),
            "src_internal": pa.array((~vpn).tolist()),
            "src_country": pa.array(np.where(vpn, "DE", None).tolist()),
            "src_lat": pa.array(np.where(vpn, lat, None).tolist(), type=pa.float64()),
            "src_lon": pa.array(np.where(vpn, lon, None).tolist(), type=pa.float64()),
            "fields": pa.array(fields.tolist()),
        },
        n,
    )


def _ips_list(prefix: str, codes: np.ndarray) -> np.ndarray:
    return np.array(_ips(prefix, codes), dtype=object)


def bench_identity(n: int, batch: int) -> dict[str, object]:
    table = logon_table(n)
    # baseline: the least a streaming pass can do - read the rows, count logons per user and
    # keep the last failures per source in a bounded deque
    t0, c0 = time.perf_counter(), time.process_time()
    cols = [table.column(c).to_pylist() for c in ("time", "user", "src_ip", "action")]
    per_user: dict[str, int] = {}
    per_source: dict[str, deque[object]] = {}
    for t, user, src, action in zip(*cols, strict=True):
        per_user[user] = per_user.get(user, 0) + 1
        if action == "logon_failed":
            per_source.setdefault(src, deque(maxlen=64)).append(t)
    baseline, baseline_cpu = time.perf_counter() - t0, time.process_time() - c0
    engine = AnalyticsEngine(tenants=[TenantInfo(name="bench", timezone="Europe/Berlin")])
    t0, c0 = time.perf_counter(), time.process_time()
    alerts = 0
    for start in range(0, n, batch):
        alerts += len(engine.feed(table.slice(start, batch)))
    alerts += len(engine.flush())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "events": n,
        "batch": batch,
        "seconds": round(elapsed, 3),
        "events_per_s": round(n / elapsed),
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_s": round(n / max(cpu, 1e-9)),
        "baseline_minimal_loop_cpu_seconds": round(baseline_cpu, 3),
        "baseline_minimal_loop_seconds": round(baseline, 3),
        "ratio_to_loop": round(elapsed / max(baseline, 1e-9), 1),
        "alerts": alerts,
    }


def _rss_mb() -> float:
    """Resident set size of this process now (Linux /proc), else the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _memory_chunk(start: int, m: int, n: int) -> tuple[pa.Table, pa.Table]:
    """Rows ``start .. start + m`` of the memory workload: each a distinct (user, source) logon and
    a distinct (source, destination) connection, spread evenly over a week."""
    idx = np.arange(start, start + m)
    times = pa.array(((DAY0 + idx * (86_400.0 * 7 / n)) * 1e6).astype(np.int64)).cast(pa.timestamp("us", tz="UTC"))
    srcs = _ips("10.", idx)
    logons = _table(
        {
            "event_id": [f"m{i}" for i in idx.tolist()],
            "tenant": pa.array(["bench"] * m),
            "time": times,
            "ingested_at": times,
            "source_format": pa.array(["winevent_json"] * m),
            "product": pa.array(["windows"] * m),
            "event_code": pa.array(["4624"] * m),
            "action": pa.array(["logon"] * m),
            "user": pa.array([f"u{i}" for i in idx.tolist()]),
            "src_ip": pa.array(srcs),
            "src_internal": pa.array([True] * m),
            "fields": pa.array(['{"LogonType": "10"}'] * m),
        },
        m,
    )
    conns = _table(
        {
            "event_id": [f"c{i}" for i in idx.tolist()],
            "tenant": pa.array(["bench"] * m),
            "time": times,
            "ingested_at": times,
            "source_format": pa.array(["zeek_tsv"] * m),
            "product": pa.array(["zeek"] * m),
            "service": pa.array(["conn"] * m),
            "src_ip": pa.array(srcs),
            "dst_ip": pa.array(_ips("93.", idx)),
            "dst_port": pa.array(np.full(m, 443, dtype=np.int32)),
            "protocol": pa.array(["tcp"] * m),
            "bytes_out": pa.array(np.full(m, 1000, dtype=np.int64)),
            "src_internal": pa.array([True] * m),
            "dst_internal": pa.array([False] * m),
            "fields": pa.array(['{"duration": 1.0, "conn_state": "SF"}'] * m),
        },
        m,
    )
    return logons, conns


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``) so RSS shows live memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def memory_point(n: int) -> dict[str, object]:
    """State after ``n`` distinct (user, source) logons and (source, destination) connections.

    Runs in a fresh process (see :func:`bench_memory`).  Baseline: the RSS after the same
    code ran once on a small throw-away engine (libraries loaded, DuckDB and Arrow pools
    warm), so what is left is what the state costs (an upper bound: batch memory the
    allocator keeps after freeing counts too).
    """
    settings = AnalyticsSettings()  # default caps
    warm = AnalyticsEngine(settings, tenants=[TENANT])
    for table in _memory_chunk(0, 1000, 1000):
        warm.feed(table)
    warm.flush()
    del warm
    gc.collect()
    _release_free_memory()
    rss_before = _rss_mb()
    engine = AnalyticsEngine(settings, tenants=[TENANT])
    step = 200_000
    for start in range(0, n, step):
        logons, conns = _memory_chunk(start, min(step, n - start), n)
        engine.feed(logons)
        engine.feed(conns)
    engine.flush()
    gc.collect()
    _release_free_memory()
    rss_after = _rss_mb()
    snapshot_bytes = sum(len(r.state) + len(r.entity) for r in engine.snapshot())
    return {
        "distinct_pairs": n,
        "entities": engine.state_size(),
        "snapshot_bytes": snapshot_bytes,
        "rss_baseline_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "state_rss_mb": round(rss_after - rss_before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def bench_memory(sizes: list[int]) -> list[dict[str, object]]:
    """The memory curve: one fresh process per size, so one size's state never inflates the next."""
    curve = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-point", str(n)], capture_output=True, text=True, check=True
        )
        curve.append(orjson.loads(out.stdout.strip().splitlines()[-1]))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=1_000_000)
    parser.add_argument("--logons", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--sizes", default="10000,100000,1000000,2000000")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--memory-point", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_point:
        print(orjson.dumps(memory_point(args.memory_point)).decode())
        return
    if args.quick:
        args.conns, args.logons, args.sizes = 50_000, 20_000, "1000,10000"
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pinned = True
    except (AttributeError, OSError):
        pinned = False

    load_start = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    network = bench_network(args.conns)
    print(
        f"network: {network['records']:,} records in {network['seconds']} s wall, {network['cpu_seconds']} s CPU "
        f"({network['records_per_s']:,}/s; group-by baseline {network['baseline_groupby_seconds']} s, "
        f"x{network['ratio_to_groupby']} wall, x{network['cpu_ratio_to_groupby']} CPU); all network analytics "
        f"{network['seconds_all_network_analytics']} s; "
        f"planted found {network['planted_found']} missed {network['planted_missed']}"
    )
    identity = bench_identity(args.logons, args.batch)
    print(
        f"identity: {identity['events']:,} logons in {identity['seconds']} s wall "
        f"({identity['events_per_s']:,}/s, {identity['events_per_cpu_s']:,} per CPU second; minimal stateful loop "
        f"{identity['baseline_minimal_loop_seconds']} s, x{identity['ratio_to_loop']})"
    )
    curve = bench_memory([int(x) for x in args.sizes.split(",")])
    for point in curve:
        print(
            f"memory: {point['distinct_pairs']:>9,} distinct pairs -> entities {point['entities']}, "
            f"snapshot {point['snapshot_bytes'] / 1e6:.1f} MB, state RSS {point['state_rss_mb']} MB "
            f"(process {point['rss_after_mb']} MB over a {point['rss_baseline_mb']} MB baseline)"
        )
    result = {
        "bench": "analytics",
        "pinned_one_core": pinned,
        "load_average_1m_start_end": [load_start, round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "network": network,
        "identity": identity,
        "memory": curve,
        "budget": {"network_seconds_max": 10, "identity_events_per_s_min": 50_000},
        "within_budget_wall": network["seconds"] < 10 and identity["events_per_s"] >= 50_000,
        "within_budget_cpu": network["cpu_seconds"] < 10 and identity["events_per_cpu_s"] >= 50_000,
    }
    print("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
