"""Benchmark: alert -> case correlation, in memory and through the state store.

1. **core**: ``--alerts`` alerts (default 1,000,000) over ``--tenants`` tenants (default
   1,000) through the pure :class:`openmdr.correlate.Correlator`, in arrival (time) order
   over one simulated week.  Each tenant has ~60 hosts, ~45 users, shared infrastructure
   (DNS server, proxy, domain controller) that most alerts touch, ~20% repeats inside the
   dedup window and a few multi-stage intrusions.  Alerts are generated in chunks outside
   the timed region.  Baseline, same run, same alerts: a dict-based exact dedup (one
   fingerprint lookup per alert, what a naive "group identical alerts" costs).
2. **memory**: the correlator's in-memory state (open cases, member alerts, index keys)
   and process RSS after 10%, 25%, 50% and 100% of the history: it follows the open cases
   of the correlation horizon, not the number of alerts seen.
3. **store**: ``--store-alerts`` alerts (default 20,000) through
   :class:`openmdr.correlate.CaseService` on SQLite (and PostgreSQL with ``--postgres URL``)
   in batches of ``--batch``: dedup + store + correlate + case rows + audit.

Run: ``python bench/bench_cases.py`` (``--quick`` for a smoke run); prints a summary and
one JSON line ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmdr.correlate import CaseService, Correlator, tune_gc_for_worker
from openmdr.correlate.entities import dedup_fingerprint, normalize_host
from openmdr.models.alert import Alert
from openmdr.store.state import StateStore

T0 = datetime(2026, 1, 5, tzinfo=UTC)
WEEK = 7 * 86400.0
RULES = [(f"rule-{i:03d}", sev) for i, sev in enumerate(["low"] * 60 + ["medium"] * 30 + ["high"] * 10)]
SOURCES = ["sigma", "sigma", "sigma", "analytics:beaconing", "analytics:failed_logons", "ioc"]


def rss_mb() -> float:
    """Current resident set size in MiB (from /proc; falls back to the peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def alert_stream(n: int, tenants: int, seed: int = 7, chunk: int = 5_000) -> Iterator[list[Alert]]:
    """``n`` alerts in time order over ``tenants`` tenants, in chunks."""
    rng = random.Random(seed)
    step = WEEK / n
    last: list[Alert] = []
    out: list[Alert] = []
    for i in range(n):
        t = T0 + timedelta(seconds=i * step + rng.random() * step)
        tenant = f"t{rng.randrange(tenants):04d}"
        roll = rng.random()
        if last and roll < 0.2:  # a repeat of a recent alert: dedup folds it
            base = last[rng.randrange(len(last))]
            a = Alert(
                tenant=base.tenant,
                rule_id=base.rule_id,
                title=base.title,
                severity=base.severity,
                source=base.source,
                first_seen=t,
                last_seen=t,
                entities=base.entities,
                evidence=[f"e{i}"],
            )
        else:
            rule, sev = RULES[rng.randrange(len(RULES))]
            host = f"ws{rng.randrange(60):02d}"
            ents: dict[str, object] = {"host": host}
            if rng.random() < 0.7:
                ents["user"] = f"user{rng.randrange(45):02d}"
            kind = rng.random()
            if kind < 0.3:
                ents["dst_ip"] = "10.0.0.53"  # the DNS server everyone uses
                ents["domain"] = f"site{rng.randrange(5000)}.example"
            elif kind < 0.5:
                ents["dst_ip"] = "10.0.0.80"  # the proxy
            elif kind < 0.6:
                ents["host"] = "dc01"  # the domain controller
            elif kind < 0.7:
                ents["dst_ip"] = f"203.0.{rng.randrange(256)}.{rng.randrange(256)}"
                ents["hash"] = f"{rng.getrandbits(128):032x}"
            if rng.random() < 0.3:
                ents["process"] = rng.choice(["C:\\Windows\\System32\\cmd.exe", "powershell.exe", "rundll32.exe"])
                ents["parent_process"] = rng.choice(["explorer.exe", "winword.exe", "services.exe"])
            a = Alert(
                tenant=tenant,
                rule_id=rule,
                title=f"{rule} fired",
                severity=sev,
                source=SOURCES[rng.randrange(len(SOURCES))],
                first_seen=t,
                last_seen=t,
                entities=ents,
                evidence=[f"e{i}"],
                attack=["T1059.001"] if sev == "high" else [],
            )
        out.append(a)
        last.append(a)
        if len(last) > 2000:
            del last[:1000]
        if len(out) == chunk:
            yield out
            out = []
    if out:
        yield out


def bench_core(n: int, tenants: int) -> dict[str, object]:
    """Correlate ``n`` alerts in memory; baseline: exact-fingerprint dedup of the same alerts.

    Rates are given per wall-clock second and per CPU second of this process (the core is
    single-threaded; on a shared machine the CPU figure is the one that does not depend on
    what the neighbours run).
    """
    core = Correlator()
    seen: dict[tuple[str, str], float] = {}
    wall = {"core": 0.0, "base": 0.0}
    cpu = {"core": 0.0, "base": 0.0}
    done = 0
    kinds: dict[str, int] = {}
    marks = sorted({int(n * f) for f in (0.1, 0.25, 0.5, 1.0)})
    memory = []
    for chunk in alert_stream(n, tenants):
        w, c = time.perf_counter(), time.process_time()
        seen.clear()  # the baseline's memory must not hide the correlator's in the RSS figures
        for a in chunk:
            seen[(a.tenant, dedup_fingerprint(a))] = a.first_seen.timestamp()
        wall["base"] += time.perf_counter() - w
        cpu["base"] += time.process_time() - c
        w, c = time.perf_counter(), time.process_time()
        changes = core.correlate(chunk)
        wall["core"] += time.perf_counter() - w
        cpu["core"] += time.process_time() - c
        for ch in changes:
            kinds[ch.kind] = kinds.get(ch.kind, 0) + 1
        before = done
        done += len(chunk)
        for m in marks:
            if before < m <= done:
                memory.append({"alerts_seen": done, "rss_mib": round(rss_mb(), 1), **core.stats()})
    return {
        "alerts": n,
        "tenants": tenants,
        "core_wall_s": round(wall["core"], 2),
        "core_cpu_s": round(cpu["core"], 2),
        "core_alerts_per_wall_s": round(n / wall["core"]),
        "core_alerts_per_cpu_s": round(n / cpu["core"]),
        "baseline_wall_s": round(wall["base"], 2),
        "baseline_cpu_s": round(cpu["base"], 2),
        "baseline_alerts_per_cpu_s": round(n / cpu["base"]),
        "ratio_to_baseline_cpu": round(cpu["core"] / cpu["base"], 2),
        "changes": kinds,
        "memory": memory,
        "load_average": os.getloadavg()[0],
    }


def bench_store(url: str, n: int, tenants: int, batch: int) -> dict[str, object]:
    """Correlate ``n`` alerts through the case service on the state store at ``url``."""
    state = StateStore(url)
    state.migrate()
    service = CaseService(state)
    wall = cpu = 0.0
    count = 0
    for chunk in alert_stream(n, tenants, seed=11, chunk=batch):
        w, c = time.perf_counter(), time.process_time()
        service.add_alerts(chunk)
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        count += len(chunk)
    state.close()
    return {
        "url": url.split("@")[-1].split("?")[0],
        "alerts": count,
        "tenants": tenants,
        "batch": batch,
        "wall_s": round(wall, 2),
        "alerts_per_wall_s": round(count / wall),
        "client_cpu_s": round(cpu, 2),
        "alerts_per_client_cpu_s": round(count / cpu),
    }


def bench_postgres(base_url: str, n: int, tenants: int, batch: int) -> dict[str, object]:
    """:func:`bench_store` in a throw-away schema of the PostgreSQL database at ``base_url``."""
    import sqlalchemy as sa

    schema = f"bench_cases_{int(time.time())}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base_url else "?"
        return bench_store(f"{base_url}{sep}options=-csearch_path%3D{schema}", n, tenants, batch)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _chain_alert(alert: Alert, chain: dict[str, Any]) -> bool:
    """Ground truth: the alert is one of ``chain``'s.

    It overlaps the chain's time and names the chain's user or external indicator, or it
    comes from one of the chain's rules/analytics and names one of the chain's hosts (not the
    hosts it merely probed).
    """
    first = datetime.fromisoformat(chain["first_event"]) - timedelta(minutes=15)
    last = datetime.fromisoformat(chain["last_event"]) + timedelta(minutes=15)
    if alert.last_seen < first or alert.first_seen > last:
        return False
    values: set[str] = set()
    for key in ("host", "user", "src_ip", "dst_ip", "domain"):
        raw = alert.entities.get(key)
        for v in raw if isinstance(raw, list) else [raw] if raw else []:
            values.add(normalize_host(str(v)) if key == "host" else str(v).lower())
    users = {u.lower() for u in chain["users"]}
    external = set(chain["external"].get("ips", [])) | set(chain["external"].get("domains", []))
    if values & (users | external):
        return True
    hosts = [h for h in chain["hosts"] if h.get("role") != "probed"]
    names = {normalize_host(h[k]) for h in hosts for k in ("name", "fqdn")} | {h["ip"] for h in hosts}
    return alert.rule_id in set(chain["rules"]) | set(chain["analytics"]) and bool(values & names)


def bench_chains(folder: Path) -> dict[str, Any]:
    """Purity and completeness of the cases built from the generator's labelled chains.

    ``folder`` is an ``openmdr generate`` output whose tenants were scanned with
    ``openmdr scan <folder>/<tenant> --out <folder>/<tenant>.alerts.jsonl``.
    """
    from openmdr.models import TenantInfo

    tenants_info = orjson.loads((folder / "tenants.json").read_bytes())
    labels = orjson.loads((folder / "labels.json").read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        state = StateStore(f"sqlite:///{tmp}/chains.db")
        state.migrate()
        alerts: list[Alert] = []
        for info in tenants_info:
            name = info["name"]
            fields = {k: info[k] for k in ("name", "display_name", "timezone", "networks", "domains")}
            state.create_tenant(
                TenantInfo(
                    **fields, working_hours=tuple(info["working_hours"]), working_days=tuple(info["working_days"])
                ),
                actor="bench",
            )
            state.import_assets_csv(name, folder / name / "assets.csv", actor="bench")
            path = folder / f"{name}.alerts.jsonl"
            for line in path.read_bytes().splitlines() if path.exists() else []:
                data = orjson.loads(line)
                data.update(tenant=name, alert_id="")
                alerts.append(Alert.from_json_dict(data))
        alerts.sort(key=lambda a: (a.first_seen, a.alert_id))
        latest = [alerts[0].first_seen if alerts else T0]
        service = CaseService(state, clock=lambda: latest[0])
        folded: dict[str, str] = {}
        for a in alerts:  # one alert at a time, as the stream delivers them, detected when they happen
            latest[0] = max(latest[0], a.last_seen)
            for change in service.add_alerts([a]):
                if change.kind == "deduplicated" and change.kept_alert:
                    folded[a.alert_id] = change.kept_alert
        cases = service.list(None, limit=10_000, provider_wide=True)
        state.close()
    by_id = {a.alert_id: a for a in alerts}
    truth = {a.alert_id: c["id"] for a in alerts for c in labels if c["tenant"] == a.tenant and _chain_alert(a, c)}
    case_of = {(c.tenant, aid): c for c in cases for aid in c.alert_ids}
    for repeat, kept in folded.items():  # a folded repeat is in its kept alert's case
        tenant = next(a.tenant for a in alerts if a.alert_id == repeat)
        if (tenant, kept) in case_of:
            case_of[(tenant, repeat)] = case_of[(tenant, kept)]
    chains = []
    for chain in labels:
        ids = [aid for aid, cid in truth.items() if cid == chain["id"]]
        found = [case_of.get((chain["tenant"], aid)) for aid in ids]
        held = {c.case_id: c for c in found if c is not None}
        if not held:
            chains.append({"chain": chain["id"], "tenant": chain["tenant"], "alerts": 0})
            continue
        main_case = max(held.values(), key=lambda c: sum(1 for x in found if x is c))
        inside = sum(1 for x in found if x is main_case)
        chain_total = len([a for a in main_case.alert_ids if truth.get(a) == chain["id"]])
        strangers = [by_id[a].title for a in main_case.alert_ids if truth.get(a) != chain["id"]]
        chains.append(
            {
                "chain": chain["id"],
                "tenant": chain["tenant"],
                "alerts": len(ids),
                "cases": len(held),
                "case": main_case.case_id,
                "case_alerts": len(main_case.alert_ids),
                "severity": main_case.severity,
                "completeness": round(inside / len(ids), 3),
                "purity": round(chain_total / len(main_case.alert_ids), 3),
                "channels": main_case.channels,
                "other_alerts_in_case": strangers,
            }
        )
    background = [c for c in cases if not any(a in truth for a in c.alert_ids)]
    return {
        "alerts": len(alerts),
        "chain_alerts": len(truth),
        "cases": len(cases),
        "chains": chains,
        "background_cases": len(background),
        "background_by_severity": {
            s: sum(1 for c in background if c.severity == s)
            for s in ("informational", "low", "medium", "high", "critical")
        },
        "background_above_medium": [
            f"{c.tenant}/{c.case_id}: {c.title}" for c in background if c.severity in ("high", "critical")
        ],
    }


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--store-alerts", type=int, default=20_000)
    parser.add_argument("--store-tenants", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", default=None, help="also measure the store on this PostgreSQL URL")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--chains", type=Path, default=None, help="only evaluate cases on a scanned generator output")
    parser.add_argument("--core-only", action="store_true", help="skip the store measurements")
    parser.add_argument(
        "--worker-gc",
        action="store_true",
        help="run as a long-lived correlation worker would: gc.freeze() after start-up, larger GC thresholds",
    )
    args = parser.parse_args()
    if args.worker_gc:
        tune_gc_for_worker()
    if args.chains is not None:
        report = bench_chains(args.chains)
        for c in report["chains"]:
            print(c)
        print({k: v for k, v in report.items() if k != "chains"})
        print("RESULT " + orjson.dumps(report).decode())
        return
    if args.quick:
        args.alerts, args.tenants, args.store_alerts = 50_000, 50, 2_000
    result: dict[str, object] = {"core": bench_core(args.alerts, args.tenants), "worker_gc": args.worker_gc}
    core = result["core"]
    print(
        f"core: {core['alerts']:,} alerts / {core['tenants']} tenants: {core['core_alerts_per_cpu_s']:,} alerts per "
        f"CPU second ({core['core_cpu_s']} s CPU, {core['core_wall_s']} s wall = "
        f"{core['core_alerts_per_wall_s']:,}/s wall at load {core['load_average']:.1f}); baseline exact dedup "
        f"{core['baseline_alerts_per_cpu_s']:,}/CPU s, ratio {core['ratio_to_baseline_cpu']}x"
    )
    print(f"  changes: {core['changes']}")
    for m in core["memory"]:
        print(
            f"  after {m['alerts_seen']:>9,} alerts: {m['cases']:>6,} open cases, {m['alerts']:>7,} alerts and "
            f"{m['index_keys']:>7,} entity keys in memory, {m['evicted']:>7,} cases evicted, RSS {m['rss_mib']} MiB"
        )
    if args.core_only:
        print("RESULT " + orjson.dumps(result).decode())
        return
    with tempfile.TemporaryDirectory() as tmp:
        stores = [bench_store(f"sqlite:///{tmp}/bench.db", args.store_alerts, args.store_tenants, args.batch)]
    if args.postgres:
        stores.append(bench_postgres(args.postgres, args.store_alerts, args.store_tenants, args.batch))
    for s in stores:
        print(
            f"store {s['url']}: {s['alerts']:,} alerts / {s['tenants']} tenants in batches of {s['batch']}: "
            f"{s['alerts_per_wall_s']:,} alerts/s wall ({s['wall_s']} s), "
            f"{s['alerts_per_client_cpu_s']:,} per client CPU second"
        )
    result["store"] = stores
    print("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
