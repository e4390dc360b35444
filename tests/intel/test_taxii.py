"""Our TAXII 2.1 server on loopback (uvicorn) and the taxii2-client based puller against it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from openmdr.intel.taxii import SHARED_COLLECTION_ID, TAXII_MEDIA_TYPE, pull_taxii, taxii_router
from openmdr.models.indicator import Indicator
from openmdr.store.intel import IntelStore
from openmdr.store.state import StateStore
from tests.intel.helpers import ACME, NOW


@pytest.fixture()
def intel(tmp_path: Path) -> Iterator[IntelStore]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.migrate()
    state.create_tenant(ACME, "test")
    store = IntelStore(state)
    store.upsert_indicators(
        [
            Indicator("ip", "198.51.100.23", tlp="green", confidence=85, tags=["c2"], first_seen=NOW),
            Indicator("domain", "update-check.example", tlp="clear", first_seen=NOW),
            Indicator("url", "http://update-check.example/gate.php", tlp="green", first_seen=NOW),
            Indicator("md5", "44d88612fea8a8f36de82e1278abb02f", tlp="amber"),
            Indicator("sha256", "a" * 64, tlp="red"),
            Indicator("ip", "203.0.113.99", tenant="acme", tlp="clear"),
        ],
        "test",
    )
    yield store
    state.close()


def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a loopback socket bound before the thread starts (no waiting)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture()
def server_url(intel: IntelStore) -> Iterator[str]:
    app = FastAPI()
    app.include_router(taxii_router(intel, credentials={"partner": "s3cret"}))
    yield from serve(app)


def test_client_pulls_only_what_may_leave_the_provider(server_url: str) -> None:
    report = pull_taxii(f"{server_url}/taxii2/", user="partner", password="s3cret", per_request=2, source="ours")
    assert report.rejected == []
    got = {(i.type, i.value, i.tlp) for i in report.indicators}
    assert got == {
        ("ip", "198.51.100.23", "green"),
        ("domain", "update-check.example", "clear"),
        ("url", "http://update-check.example/gate.php", "green"),
    }
    c2 = next(i for i in report.indicators if i.type == "ip")
    assert c2.confidence == 85 and c2.tags == ["c2"] and c2.source == "ours"


def test_client_with_api_root_url_collection_id_and_added_after(server_url: str, intel: IntelStore) -> None:
    newest = max(i.updated_at for i in intel.list_indicators(None))
    assert (
        pull_taxii(f"{server_url}/intel/", SHARED_COLLECTION_ID, "partner", "s3cret", added_after=newest).indicators
        == []
    )
    later = newest + timedelta(seconds=5)
    intel.upsert_indicators([Indicator("domain", "new-c2.example", tlp="green")], "test", now=later)
    report = pull_taxii(f"{server_url}/intel/", SHARED_COLLECTION_ID, "partner", "s3cret", added_after=newest)
    assert [i.value for i in report.indicators] == ["new-c2.example"]


def test_server_speaks_taxii_and_requires_credentials(server_url: str) -> None:
    auth = ("partner", "s3cret")
    assert httpx.get(f"{server_url}/taxii2/").status_code == 401
    assert httpx.get(f"{server_url}/taxii2/", auth=("partner", "wrong")).status_code == 401
    discovery = httpx.get(f"{server_url}/taxii2/", auth=auth)
    assert discovery.headers["content-type"] == TAXII_MEDIA_TYPE
    assert discovery.json()["api_roots"] == [f"{server_url}/intel/"]
    cols = httpx.get(f"{server_url}/intel/collections/", auth=auth).json()["collections"]
    assert [c["id"] for c in cols] == [SHARED_COLLECTION_ID] and cols[0]["can_write"] is False
    manifest = httpx.get(f"{server_url}/intel/collections/{SHARED_COLLECTION_ID}/manifest/", auth=auth).json()
    assert len(manifest["objects"]) == 3
    one = manifest["objects"][0]["id"]
    obj = httpx.get(f"{server_url}/intel/collections/{SHARED_COLLECTION_ID}/objects/{one}/", auth=auth).json()
    assert [o["id"] for o in obj["objects"] if o["type"] == "indicator"] == [one]
    assert httpx.get(f"{server_url}/intel/collections/nope/objects/", auth=auth).status_code == 404
    bad = httpx.get(f"{server_url}/intel/collections/{SHARED_COLLECTION_ID}/objects/?added_after=yesterday", auth=auth)
    assert bad.status_code == 400


def test_amber_is_served_only_when_configured(intel: IntelStore) -> None:
    app = FastAPI()
    app.include_router(taxii_router(intel, max_tlp="red"))
    for url in serve(app):
        report = pull_taxii(f"{url}/taxii2/")
        tlps = {i.tlp for i in report.indicators}
        assert tlps == {"clear", "green", "amber"}  # RED and the tenant's own never, even when asked
        assert "203.0.113.99" not in {i.value for i in report.indicators}
