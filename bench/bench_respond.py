"""Benchmark: time from a case's arrival to containment, and policy evaluation throughput.

1. **containment**: ``--cases`` C2-beaconing cases (default 300), each on its own inventoried
   workstation of one tenant, through :meth:`openmdr.respond.ResponseService.on_case` on
   SQLite: plan (playbooks + authority policy), store and audit every decision, isolate the
   host through the webhook EDR connector (a real signed HTTP request to a verifying receiver
   on 127.0.0.1), publish the C2 address and domain on the block lists, notify, and decide
   containment.  Baseline in the same run: one bare signed webhook POST per case to the same
   receiver (the network part any response must pay).
2. **approval**: ``--cases`` / 3 server cases queued for approval, then approved one by one
   (approve -> execute -> contained).
3. **policy**: ``--evaluations`` (default 200,000) pure :func:`openmdr.respond.policy.evaluate`
   calls over mixed contexts; baseline: the same number of dict lookups of a precomputed
   (action, class) -> verdict table (what a policy without conditions would cost).

Run: ``python bench/bench_respond.py`` (``--quick`` for a smoke run); prints a summary and one
JSON line ``RESULT {...}``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmdr.models import AssetInfo, Case, Observable, SlaClock, TenantInfo
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from openmdr.respond.connectors.webhook import WebhookNotifier, WebhookSender
from openmdr.respond.policy import ActionContext, default_policy, evaluate
from openmdr.respond.service import ResponseService
from openmdr.store.state import StateStore

SECRET = b"bench-secret"
NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def start_receiver() -> tuple[str, ThreadingHTTPServer]:
    """A verifying webhook receiver acting as EDR on a free loopback port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(SECRET, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER), body,
                        time.time())  # fmt: skip
            data = orjson.dumps({"prior": {"isolated": False}} if ok else {"error": "signature"})
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/edr", server


def c2_case(i: int, at: datetime) -> Case:
    host = f"BER-WS-{i:04d}"
    return Case(
        case_id=f"case-{i}", tenant="acme", title=f"C2 beaconing from {host}", severity="high",
        techniques=["T1071.001"], sources=["analytics:beaconing"],
        observables=[Observable("host", host, True), Observable("ip", f"45.153.{i // 250}.{i % 250 + 1}", False),
                     Observable("domain", f"c2-{i}.example.net", False)],
        sla=SlaClock(detected_at=at),
    )  # fmt: skip


def server_case(i: int, at: datetime) -> Case:
    return Case(case_id=f"srv-{i}", tenant="acme", title="C2 from a server", severity="high",
                techniques=["T1071"], observables=[Observable("host", f"ACME-SRV{i:03d}", True)],
                sla=SlaClock(detected_at=at))  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_containment(cases: int, workdir: Path) -> dict[str, Any]:
    url, server = start_receiver()
    state = StateStore(f"sqlite:///{workdir / 'state.db'}")
    state.migrate()
    state.create_tenant(TenantInfo("acme", timezone="Europe/Berlin", networks=("10.10.0.0/16",)), "bench")
    state.upsert_assets("acme", [AssetInfo(f"BER-WS-{i:04d}", (f"10.10.{10 + i // 200}.{20 + i % 200}",),
                                           asset_class="workstation", criticality="low", has_edr=True)
                                 for i in range(cases)]
                        + [AssetInfo(f"ACME-SRV{i:03d}", asset_class="server", criticality="high", has_edr=True)
                           for i in range(cases // 3)], "bench")  # fmt: skip
    clock = ManualClock(NIGHT)
    registry = ConnectorRegistry()
    registry.add(WebhookEdrConnector(WebhookSender(url, SECRET)), "acme")
    notifier = WebhookNotifier(WebhookSender(url, SECRET))
    svc = ResponseService(state, registry, clock, notifiers={"default": notifier}, retry=RetryPolicy(attempts=2))
    raw = WebhookSender(url, SECRET)
    # warm-up (connection pools, imports)
    raw.send("warmup", {}, "w")
    svc.on_case(c2_case(cases + 1, clock()))

    latencies: list[float] = []
    baseline: list[float] = []
    contained = 0
    for i in range(cases):
        t0 = time.perf_counter()
        raw.send("edr.isolate_host", {"host": f"BER-WS-{i:04d}", "tenant": "acme"}, f"raw-{i}")
        baseline.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = svc.on_case(c2_case(i, clock()))
        latencies.append(time.perf_counter() - t0)
        contained += result.contained

    pending = [svc.on_case(server_case(i, clock())).actions[0] for i in range(cases // 3)]
    approve: list[float] = []
    for record in pending:
        t0 = time.perf_counter()
        svc.approve("acme", record.action_id, "duty-manager")
        approve.append(time.perf_counter() - t0)
    approved_contained = sum(svc.containment("acme", f"srv-{i}").contained for i in range(cases // 3))
    audit_ok = state.verify_audit().ok
    server.shutdown()
    state.close()
    p50, p50b = statistics.median(latencies), statistics.median(baseline)
    return {
        "cases": cases, "contained": contained, "on_case_p50_ms": round(p50 * 1000, 2),
        "on_case_p95_ms": round(pct(latencies, 0.95) * 1000, 2), "on_case_max_ms": round(max(latencies) * 1000, 2),
        "webhook_post_p50_ms": round(p50b * 1000, 2), "ratio_on_case_to_post": round(p50 / p50b, 1),
        "approve_p50_ms": round(statistics.median(approve) * 1000, 2) if approve else None,
        "approved_contained": approved_contained, "audit_chain_ok": audit_ok,
    }  # fmt: skip


def bench_policy(n: int) -> dict[str, Any]:
    rng = random.Random(7)
    policy = default_policy()
    kinds = [("isolate_host", "host"), ("kill_process", "process"), ("block_ip", "ip"), ("disable_account", "user")]
    classes = {"host": ["workstation", "server", "domain_controller", "unknown"], "process": ["workstation", "server"],
               "ip": ["indicator"], "user": ["account", "privileged_account"]}  # fmt: skip
    contexts = []
    for _ in range(n):
        kind, ttype = rng.choice(kinds)
        cls = rng.choice(classes[ttype])
        contexts.append(ActionContext(
            kind, f"45.153.1.{rng.randrange(1, 250)}" if ttype == "ip" else "BER-WS-0001", ttype, cls,
            rng.choice(["low", "medium", "high", "critical"]), rng.random(), rng.random() < 0.4,
            rng.choice([None, "low", "high", "critical"]),
        ))  # fmt: skip
    table = {(k, c): "approve" for k, _ in kinds for cs in classes.values() for c in cs}
    t0 = time.perf_counter()
    verdicts = [evaluate(policy, c).verdict for c in contexts]
    elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    looked = [table[(c.kind, c.asset_class)] for c in contexts]
    base = time.perf_counter() - t0
    assert len(looked) == len(verdicts)
    return {
        "evaluations": n, "per_second": round(n / elapsed), "dict_lookups_per_second": round(n / base),
        "ratio_lookup_to_evaluate": round(elapsed / base, 1),
        "verdicts": {v: verdicts.count(v) for v in ("run", "approve", "deny")},
    }  # fmt: skip


def main() -> None:
    """Run both benchmarks and print the summary and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--evaluations", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.evaluations = 30, 20_000
    with tempfile.TemporaryDirectory() as tmp:
        containment = bench_containment(args.cases, Path(tmp))
    policy = bench_policy(args.evaluations)
    print(
        f"containment: {containment['contained']}/{containment['cases']} cases contained by on_case; "
        f"p50 {containment['on_case_p50_ms']} ms, p95 {containment['on_case_p95_ms']} ms, "
        f"max {containment['on_case_max_ms']} ms (bare signed POST p50 {containment['webhook_post_p50_ms']} ms, "
        f"x{containment['ratio_on_case_to_post']}); approve->execute p50 {containment['approve_p50_ms']} ms"
    )
    print(f"policy: {policy['per_second']:,} evaluations/s (dict lookup {policy['dict_lookups_per_second']:,}/s, "
          f"x{policy['ratio_lookup_to_evaluate']}) {policy['verdicts']}")  # fmt: skip
    print("RESULT " + orjson.dumps({"containment": containment, "policy": policy,
                                    "at": (datetime.now(UTC) + timedelta(0)).isoformat()}).decode())  # fmt: skip


if __name__ == "__main__":
    main()
