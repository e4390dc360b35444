"""Every transport through the real IngestPipeline into a temporary data directory."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from openmdr.config import SyslogRoute, SyslogSettings
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.ingest.syslog_listener import SyslogListener
from openmdr.models import RawRecord, TenantInfo
from openmdr.runtime import Platform

HOST = "127.0.0.1"


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    p = Platform.from_data_dir(tmp_path / "data")
    p.state.create_tenant(TenantInfo(name="acme", networks=("10.0.0.0/8",)), actor="test")
    yield p
    p.close()


def test_file_import_of_archives_and_evtx_lands_in_the_lake(
    platform: Platform, shared_root: Path, tmp_path: Path
) -> None:
    otrf = sorted((shared_root / "datasets" / "otrf").glob("*.zip"))[0]
    evtx = sorted((shared_root / "sigma" / "regression_data").rglob("*.evtx"))[:5]
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, p in enumerate(evtx):
            zf.write(p, f"host{i}.evtx")
    sources = plan_sources([otrf, bundle])
    framed = sum(isinstance(i, RawRecord) for i in read_sources(sources))
    report = platform.pipeline.submit("acme", read_sources(sources))
    assert report.balanced and report.received == framed
    assert report.stored > 0 and report.stored + report.rejected == framed
    assert platform.lake.counts() == {"acme": report.stored}
    again = platform.pipeline.submit("acme", read_sources(sources))
    assert again.stored == 0 and again.duplicates == report.stored


def test_syslog_listener_into_the_lake(platform: Platform) -> None:
    line = "<38>1 2026-03-02T10:00:{i:02d}Z bastion sshd {pid} - - Failed password for root from 10.9.0.{i}"
    messages = [line.format(i=i, pid=4000 + i).encode() for i in range(40)]
    settings = SyslogSettings(
        host=HOST, udp_port=0, tcp_port=0, routes=[SyslogRoute(tenant="acme", peers=[HOST + "/32"])]
    )
    with SyslogListener(platform.pipeline, settings) as listener:
        with socket.create_connection((HOST, listener.ports["tcp"])) as s:
            s.sendall(b"".join(str(len(m)).encode() + b" " + m for m in messages[:30]))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for m in messages[30:]:
                s.sendto(m, (HOST, listener.ports["udp"]))
    counters = listener.counters
    assert counters["received"] == counters["submitted"] == 40
    assert counters["stored"] == 40, counters
    assert platform.lake.counts() == {"acme": 40}
    rows = platform.lake.query("acme", "SELECT origin FROM events ORDER BY origin").to_pylist()
    assert {r["origin"].split()[0] for r in rows} == {"syslog/tcp", "syslog/udp"}


def test_http_ingest_into_the_lake(platform: Platform) -> None:
    from openmdr.api.app import create_app

    secret = platform.state.create_ingest_token("acme", "edge-1", actor="test")
    client = TestClient(create_app(platform))
    events = [
        {"@timestamp": f"2026-03-02T10:00:{i:02d}Z", "host": "app-1", "n": i, "tenant": "other"}
        for i in range(25)
    ]
    r = client.post(
        "/api/v1/ingest", content=orjson.dumps(events), headers={"Authorization": f"Bearer {secret}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 25
    assert platform.lake.counts() == {"acme": 25}
    r = client.post("/api/v1/ingest", content=orjson.dumps(events), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
