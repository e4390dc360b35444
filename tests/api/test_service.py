"""The service surface: health, readiness, OpenAPI, Prometheus metrics per tenant, graceful shutdown."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openmdr.bus import TOPIC_ALERTS
from openmdr.models import Alert

from .conftest import World, sqlite_only


@sqlite_only
def test_health_readiness_and_openapi(client: TestClient) -> None:
    """Liveness and readiness answer without credentials; the OpenAPI document lists the API."""
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"ready": True, "problems": []}
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/tenants/{tenant}/cases", "/api/v1/tenants/{tenant}/alerts", "/api/v1/audit/verify",
                 "/api/v1/tenants/{tenant}/events/query", "/api/v1/ingest", "/metrics"):  # fmt: skip
        assert path in doc["paths"]
    assert {"HTTPBearer", "APIKeyCookie"} <= set(doc["components"]["securitySchemes"])


@sqlite_only
def test_metrics_per_tenant(client: TestClient, world: World) -> None:
    """Events, ingest lag, alerts, dead letters and open cases per tenant; provider-wide readers only."""
    seen = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    published = [Alert("alpha", f"r{i}", "t", "low", "sigma", seen, seen, evidence=[f"x{i}"]) for i in range(2)]
    world.platform.bus.publish(TOPIC_ALERTS, [a.to_json_dict() for a in published])
    assert client.get("/metrics", headers=world.headers("tenant-admin.alpha")).status_code == 403
    assert client.post("/api/v1/ingest", json={"a": 1}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    text = client.get("/metrics", headers=world.headers("root")).text
    lines = set(text.splitlines())
    assert 'openmdr_events_ingested_total{tenant="alpha"} 1.0' in lines
    assert 'openmdr_alerts_total{tenant="alpha"} 2.0' in lines
    assert 'openmdr_dead_letters_pending{tenant="bravo"} 1.0' in lines
    assert 'openmdr_open_cases{tenant="bravo"} 1.0' in lines
    assert any(line.startswith('openmdr_events_per_second{tenant="alpha"}') for line in lines)
    assert any(line.startswith('openmdr_ingest_lag_seconds{tenant="alpha"}') for line in lines)
    assert 'openmdr_ingest_records_total{outcome="rejected"} 2.0' in lines
    assert 'openmdr_http_ingest_requests_total{outcome="unauthorized"} 1.0' in lines


@sqlite_only
def test_graceful_shutdown_finishes_running_requests(app: FastAPI, world: World) -> None:
    """On shutdown the server stops accepting but lets a running request finish."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    started = threading.Event()
    original = world.platform.state.list_tenants

    def slow_list() -> list:
        started.set()
        while not server.should_exit:  # the shutdown has been asked for while this request runs
            time.sleep(0.01)
        return original()

    world.platform.state.list_tenants = slow_list  # type: ignore[method-assign]
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.setdefault("r", httpx.get(
        f"http://127.0.0.1:{port}/api/v1/tenants", headers=world.headers("root"), timeout=30)))  # fmt: skip
    request.start()
    assert started.wait(30)
    server.should_exit = True
    request.join(30)
    thread.join(30)
    assert result["r"].status_code == 200 and {t["name"] for t in result["r"].json()} == {"alpha", "bravo"}
    assert not thread.is_alive()
