"""Load benchmark of the REST API: case-list and alert-list latency with many tenants and alerts.

Populates the state store through the alert and case stores in bulk (default 1,000 tenants,
1,000,000 alerts grouped ten to a case: 100,000 cases), then sends sequential requests to
the ASGI application in-process (httpx ASGI transport: the full FastAPI stack, the
authentication, the permission checks and the database, without a network hop) and reports
p50/p95/p99 per route next to ``/healthz`` measured in the same run.

    python bench/bench_api.py                       # embedded SQLite in a temporary directory
    python bench/bench_api.py --data-dir /tmp/b     # keep the data: a second run skips populating
    python bench/bench_api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from openmdr.api.app import create_app
from openmdr.config import load_settings
from openmdr.models import Alert, Case, SlaClock, TenantInfo
from openmdr.runtime import Platform
from openmdr.store.alerts import AlertStore, alert_row, alerts
from openmdr.store.cases import CaseStore, case_values
from openmdr.store.identity import Grant

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("new", "acknowledged", "contained", "resolved")
BATCH = 20_000


def populate(platform: Platform, tenants: int, total_alerts: int, per_case: int, seed: int = 7) -> float:
    """Create tenants, alerts and cases through their stores in bulk; returns seconds taken."""
    started = time.perf_counter()
    state = platform.state
    rng = random.Random(seed)
    names = [f"t{i:04d}" for i in range(tenants)]
    for name in names:
        state.create_tenant(TenantInfo(name, networks=("10.0.0.0/8",)), "bench")
    alert_store, case_store = AlertStore(), CaseStore()
    per_tenant = total_alerts // tenants
    base = datetime(2026, 11, 1, tzinfo=UTC)
    alert_rows: list[dict] = []
    case_rows: list[dict] = []
    members: list[tuple[str, str, list[str], datetime]] = []

    def flush() -> None:
        with state.transaction() as conn:
            alert_store.insert(conn, alert_rows)
            case_store.insert_many(conn, case_rows)
            for tenant, case_id, ids, at in members:
                case_store.add_members(conn, tenant, case_id, ids, "bench", at)
        alert_rows.clear()
        case_rows.clear()
        members.clear()

    for t_index, tenant in enumerate(names):
        for c_index in range(per_tenant // per_case):
            case_id = f"c{t_index:04d}{c_index:05d}"
            severity = rng.choice(SEVERITIES)
            first = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
            ids: list[str] = []
            for a_index in range(per_case):
                seen = first + timedelta(seconds=30 * a_index)
                alert = Alert(
                    tenant, f"rule-{rng.randrange(500)}", f"Suspicious activity {a_index}", severity, "sigma", seen,
                    seen, entities={"host": f"ws{rng.randrange(200)}", "user": f"u{rng.randrange(300)}"},
                    attack=["T1059.001"], tactics=["execution"], evidence=[f"e{t_index}-{c_index}-{a_index}"],
                )  # fmt: skip
                ids.append(alert.alert_id)
                alert_rows.append(alert_row(alert, rng.random() * 100, "endpoint", "active", case_id, None, seen))
            status = rng.choice(STATUSES)
            case = Case(
                case_id=case_id, tenant=tenant, title=f"Case {c_index} of {tenant}", severity=severity, status=status,
                resolution="true_positive" if status == "resolved" else None, priority=rng.randint(1, 4),
                risk_score=rng.random() * 100, alert_ids=ids, sources=["sigma"], tactics=["execution"],
                sla=SlaClock(first, first + timedelta(minutes=2)), created_at=first,
                updated_at=first + timedelta(minutes=rng.randrange(1, 600)),
            )  # fmt: skip
            case_rows.append(case_values(case, {"last_event_at": first + timedelta(seconds=30 * per_case)}))
            members.append((tenant, case_id, ids, first))
            if len(alert_rows) >= BATCH:
                flush()
    flush()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def measure(app: object, routes: dict[str, Callable[[random.Random], str]], headers: dict[str, str],
                  requests: int) -> dict[str, list[float]]:  # fmt: skip
    """Sequential GETs per route (after a warm-up); latencies in milliseconds."""
    rng = random.Random(11)
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for name, url_for in routes.items():
            for _ in range(10):
                (await client.get(url_for(rng), headers=headers)).raise_for_status()
            samples: list[float] = []
            for _ in range(requests):
                url = url_for(rng)
                t0 = time.perf_counter()
                response = await client.get(url, headers=headers)
                samples.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
            out[name] = samples
    return out


def main() -> None:
    """Populate (unless already there), measure, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--alerts-per-case", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per route")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-api-"))
    platform = Platform(load_settings(data_dir=data_dir, database_url=args.database_url))
    state = platform.state
    with state.engine.connect() as conn:
        existing = int(conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar() or 0)
    if existing == 0:
        seconds = populate(platform, args.tenants, args.alerts, args.alerts_per_case)
        print(f"populated {args.tenants} tenants, {args.alerts:,} alerts in {seconds:.0f} s")
    else:
        print(f"reusing {existing:,} alerts in {data_dir}")
    identity = platform.identity
    if identity.get_user("bench-soc") is None:
        identity.create_user("bench-soc", "bench", grants=[Grant("soc_analyst")])
        identity.create_user("bench-tenant", "bench", grants=[Grant("tenant_analyst", "t0001")])
    expires = identity.now() + timedelta(days=1)
    _, soc = identity.create_api_token("bench-soc", f"b{time.time_ns()}", "bench", expires_at=expires)
    _, own = identity.create_api_token("bench-tenant", f"b{time.time_ns()}", "bench", expires_at=expires)
    tenants = [t.name for t in state.list_tenants()]
    app = create_app(platform)

    def tenant_of(rng: random.Random) -> str:
        return rng.choice(tenants)

    soc_routes: dict[str, Callable[[random.Random], str]] = {
        "GET /healthz (baseline)": lambda r: "/healthz",
        "GET /api/v1/tenants/{t}/alerts?limit=100": lambda r: f"/api/v1/tenants/{tenant_of(r)}/alerts?limit=100",
        "GET /api/v1/tenants/{t}/alerts?min_severity=high": lambda r: (
            f"/api/v1/tenants/{tenant_of(r)}/alerts?min_severity=high&limit=50"
        ),
        "GET /api/v1/tenants/{t}/cases?limit=100": lambda r: f"/api/v1/tenants/{tenant_of(r)}/cases?limit=100",
        "GET /api/v1/tenants/{t}/cases?open_only=true": lambda r: (
            f"/api/v1/tenants/{tenant_of(r)}/cases?open_only=true&limit=50"
        ),
        "GET /api/v1/cases?open_only=true (all tenants)": lambda r: "/api/v1/cases?open_only=true&limit=50",
    }
    tenant_routes: dict[str, Callable[[random.Random], str]] = {
        "GET /api/v1/tenants/t0001/alerts (tenant user)": lambda r: "/api/v1/tenants/t0001/alerts?limit=100",
        "GET /api/v1/tenants/t0001/cases (tenant user)": lambda r: "/api/v1/tenants/t0001/cases?limit=100",
    }
    results = asyncio.run(measure(app, soc_routes, {"Authorization": f"Bearer {soc}"}, args.requests))
    results.update(asyncio.run(measure(app, tenant_routes, {"Authorization": f"Bearer {own}"}, args.requests)))
    base_p99 = percentile(results["GET /healthz (baseline)"], 0.99)
    backend = "PostgreSQL" if state.dialect == "postgresql" else "SQLite"
    print(
        f"\n{backend}, {len(tenants)} tenants, {existing or args.alerts:,} alerts, {args.requests} requests per route"
    )
    print("| route | p50 ms | p95 ms | p99 ms | max ms | p99 / healthz p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, samples in results.items():
        p99 = percentile(samples, 0.99)
        print(f"| {name} | {statistics.median(samples):.1f} | {percentile(samples, 0.95):.1f} | {p99:.1f} | "
              f"{max(samples):.1f} | {p99 / base_p99:.1f} |")  # fmt: skip
    platform.close()


if __name__ == "__main__":
    main()
