"""Every transport through the real IngestPipeline into a temporary data directory."""

from __future__ import annotations

import socket
import ssl
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
    """OTRF zip + EVTX files in a zip: every record is stored, a duplicate or dead-lettered.

    The OTRF export carries no EventRecordID, so its events are identified by their
    exact bytes; the file holds byte-identical repeated lines (133 in the first zip),
    and those are the duplicates of the first import, counted from the data here.  The
    EVTX records have record ids, and none of them collide.
    """
    otrf = sorted((shared_root / "datasets" / "otrf").glob("*.zip"))[0]
    evtx = sorted((shared_root / "sigma" / "regression_data").rglob("*.evtx"))[:5]
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, p in enumerate(evtx):
            zf.write(p, f"host{i}.evtx")
    sources = plan_sources([otrf, bundle])
    records = [i for i in read_sources(sources) if isinstance(i, RawRecord)]
    payloads = [r.payload for r in records if r.format != "evtx"]
    repeats = len(payloads) - len(set(payloads))
    assert repeats == 133
    report = platform.pipeline.submit("acme", read_sources(sources))
    assert report.balanced and report.received == len(records)
    assert report.rejected == 0 and report.duplicates == repeats
    assert report.by_format["evtx"] == sum(r.format == "evtx" for r in records) > 0
    assert platform.lake.counts() == {"acme": report.stored}
    again = platform.pipeline.submit("acme", read_sources(sources))
    assert again.stored == 0 and again.duplicates == report.received


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
        {"@timestamp": f"2026-03-02T10:00:{i:02d}Z", "host": "app-1", "n": i, "tenant": "other"} for i in range(25)
    ]
    r = client.post("/api/v1/ingest", content=orjson.dumps(events), headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 25
    assert platform.lake.counts() == {"acme": 25}
    r = client.post("/api/v1/ingest", content=orjson.dumps(events), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_syslog_newline_framing_and_tls_into_the_lake(platform: Platform, tmp_path: Path) -> None:
    """TCP newline framing (LF, CRLF) and TLS with octet counting, through the real pipeline."""
    from tests.ingest.test_syslog_listener import _self_signed

    cert, key = _self_signed(tmp_path)
    auth = "<86>Mar  2 10:{m:02d}:00 bastion sudo:   alice : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/id {m}"
    lines = [auth.format(m=m).encode() for m in range(20)]
    tls_lines = [f"<38>1 2026-03-02T11:00:{s:02d}Z bastion sshd 77 - - Accepted password for bob from 10.1.1.{s} "
                 f"port 2{s:03d} ssh2".encode() for s in range(30)]  # fmt: skip
    settings = SyslogSettings(host=HOST, udp_port=None, tcp_port=0, tls_port=0, tls_cert=cert, tls_key=key,
                              routes=[SyslogRoute(tenant="acme", peers=["127.0.0.0/8"])])  # fmt: skip
    with SyslogListener(platform.pipeline, settings) as listener:
        with socket.create_connection((HOST, listener.ports["tcp"])) as s:
            s.sendall(b"\n".join(lines[:10]) + b"\n" + b"\r\n".join(lines[10:]))  # the last line has no end
        client = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection((HOST, listener.ports["tls"])) as raw,
            client.wrap_socket(raw, server_hostname=HOST) as s,
        ):
            s.sendall(b"".join(str(len(m)).encode() + b" " + m for m in tls_lines))
    assert listener.counters["stored"] == 50 and listener.counters["sink_rejected"] == 0
    rows = platform.lake.query(
        "acme", "SELECT split_part(origin, ' ', 1) AS o, action, count(*) AS n FROM events GROUP BY ALL ORDER BY o"
    ).to_pylist()
    assert rows == [
        {"o": "syslog/tcp", "action": "sudo_command", "n": 20},
        {"o": "syslog/tls", "action": "logon", "n": 30},
    ]


def test_http_ingest_token_is_the_only_tenant_source(platform: Platform) -> None:
    """Tenant from the token (never the payload); revoked and expired tokens are refused."""
    from datetime import UTC, datetime, timedelta

    from openmdr.api.app import create_app

    platform.state.create_tenant(TenantInfo(name="globex"), actor="test")
    acme = platform.state.create_ingest_token("acme", "edge-1", actor="test")
    globex = platform.state.create_ingest_token(
        "globex", "edge-1", actor="test", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    client = TestClient(create_app(platform))
    body = [{"@timestamp": "2026-03-02T10:00:00Z", "tenant": "globex", "user": "mallory"}]
    r = client.post("/api/v1/ingest", content=orjson.dumps(body), headers={"Authorization": f"Bearer {acme}"})
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert platform.lake.counts() == {"acme": 1}  # the payload's "tenant" is data, not a route
    text = b"<38>Mar  2 10:00:01 bastion sshd[1]: Invalid user x from 203.0.113.9 port 2222\nCEF:0|V|P|1|9|n|3|rt=1"
    r = client.post("/api/v1/ingest", content=text,
                    headers={"Authorization": f"Bearer {globex}", "Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 200 and r.json()["stored"] == 2
    assert platform.lake.query("globex", "SELECT source_format FROM events ORDER BY 1").column(0).to_pylist() == [
        "cef", "syslog"]  # fmt: skip
    platform.state.revoke_ingest_token("acme", "edge-1", actor="test")
    r = client.post("/api/v1/ingest", content=orjson.dumps(body), headers={"Authorization": f"Bearer {acme}"})
    assert r.status_code == 401
    with platform.state.transaction() as conn:  # the token expires
        from openmdr.store.schema import ingest_tokens

        conn.execute(ingest_tokens.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = client.post("/api/v1/ingest", content=text, headers={"Authorization": f"Bearer {globex}"})
    assert r.status_code == 401
    assert platform.lake.counts() == {"acme": 1, "globex": 2}
