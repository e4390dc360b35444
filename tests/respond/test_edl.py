"""External Dynamic Lists served over real HTTP: a firewall-style client sees a block appear and expire."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorRegistry
from openmdr.respond.edl import create_edl_router
from openmdr.respond.service import ResponseService
from openmdr.store.response import ResponseStore
from openmdr.store.state import StateStore
from tests.respond.cases import c2_case


@pytest.fixture()
def edl_server(sqlite_tenants: StateStore, clock: ManualClock) -> Iterator[str]:
    """The EDL router mounted on an app served by uvicorn on a free loopback port."""
    app = FastAPI()
    app.include_router(create_edl_router(ResponseStore(sqlite_tenants), clock))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/edl"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_block_appears_then_expires_for_a_polling_firewall(
    sqlite_tenants: StateStore, clock: ManualClock, edl_server: str
) -> None:
    store = ResponseStore(sqlite_tenants)
    token = store.create_edl_token("acme", "admin")
    globex_token = store.create_edl_token("globex", "admin")
    svc = ResponseService(sqlite_tenants, ConnectorRegistry(), clock, sleep=lambda s: None)
    with httpx.Client(auth=("paloalto", token), timeout=10) as fw:
        assert fw.get(f"{edl_server}/acme/ip.txt").text == ""
        svc.on_case(c2_case(clock()))
        listed = fw.get(f"{edl_server}/acme/ip.txt")
        assert listed.status_code == 200 and listed.headers["content-type"].startswith("text/plain")
        assert listed.text == "45.153.160.140\n"  # 8.8.8.8 is allow-listed, 10.10.10.27 internal
        assert fw.get(f"{edl_server}/acme/domain.txt").text == "cdn-telemetry-update.xyz\n"
        doc = fw.get(f"{edl_server}/acme/ip.json").json()
        assert doc["count"] == 1 and doc["entries"][0]["case_id"] == "case-c2"
        expiry = doc["entries"][0]["expires_at"]
        assert expiry == (clock() + timedelta(hours=72)).isoformat()
        etag = listed.headers["etag"]
        assert fw.get(f"{edl_server}/acme/ip.txt", headers={"If-None-Match": etag}).status_code == 304

        clock.advance(hours=71, minutes=59)
        assert fw.get(f"{edl_server}/acme/ip.txt").text == "45.153.160.140\n"
        clock.advance(minutes=2)
        assert fw.get(f"{edl_server}/acme/ip.txt").text == ""  # gone on the next poll, nobody acted
        svc.tick()
        assert any(r.action == "response.block.expired" for r in sqlite_tenants.list_audit("acme", limit=1000))

    # another tenant's list is separate, and tokens do not cross tenants
    with httpx.Client(timeout=10) as other:
        assert other.get(f"{edl_server}/globex/ip.txt", params={"token": globex_token}).text == ""
        assert other.get(f"{edl_server}/acme/ip.txt", params={"token": globex_token}).status_code == 401
        assert other.get(f"{edl_server}/acme/ip.txt").status_code == 401
        assert other.get(f"{edl_server}/nosuch/ip.txt", params={"token": token}).status_code == 401
        bearer = other.get(f"{edl_server}/acme/url.txt", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200
        assert other.get(f"{edl_server}/acme/mac.txt", params={"token": token}).status_code == 404


def test_urls_are_listed_without_scheme_and_entries_are_unique(
    sqlite_tenants: StateStore, clock: ManualClock, edl_server: str
) -> None:
    store = ResponseStore(sqlite_tenants)
    token = store.create_edl_token("acme", "admin")
    later = clock() + timedelta(hours=1)
    store.upsert_block("acme", "url", "http://evil.example/payload.bin", "t", clock(), later)
    store.upsert_block("acme", "hash", "ABCDEF" * 8 + "0" * 16, "t", clock(), later)
    store.upsert_block("acme", "hash", "abcdef" * 8 + "0" * 16, "t", clock(), later)  # same hash, other case
    with httpx.Client(timeout=10) as fw:
        assert fw.get(f"{edl_server}/acme/url.txt", params={"token": token}).text == "evil.example/payload.bin\n"
        assert fw.get(f"{edl_server}/acme/hash.txt", params={"token": token}).text.count("\n") == 1
