"""Log-source routing through the real parsers: Windows channels, Zeek, cloud, Linux, Suricata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from openmdr.models.event import Event
from openmdr.models.record import RawRecord, Rejection
from openmdr.pipeline import parse_record
from tests.detect.helpers import engine_for, rule_text


def parsed(fmt: str, payload: dict[str, Any] | bytes, context: dict[str, Any] | None = None) -> Event:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    event = parse_record(RawRecord(data, fmt, "test:0", context), "acme", datetime.now(UTC))
    assert not isinstance(event, Rejection), event.reason
    return event


def fired(logsource: dict[str, str], detection: dict[str, Any], events: list[Event]) -> list[int]:
    eng = engine_for(rule_text(detection, logsource=logsource))
    return sorted({i for i, _ in eng.match(events)})


def test_zeek_and_suricata_route_by_product_and_service() -> None:
    dns = parsed(
        "zeek_json",
        {
            "ts": 1700000000.0,
            "uid": "C1",
            "id.orig_h": "10.0.0.5",
            "id.resp_h": "8.8.8.8",
            "query": "evil.example.com",
            "_path": "dns",
        },
    )
    conn = parsed(
        "zeek_json",
        {
            "ts": 1700000000.0,
            "uid": "C2",
            "id.orig_h": "10.0.0.5",
            "id.resp_h": "8.8.8.8",
            "id.resp_p": 4444,
            "_path": "conn",
        },
    )
    eve = parsed(
        "suricata_eve",
        {
            "timestamp": "2026-03-01T10:00:00.000000+0000",
            "event_type": "dns",
            "src_ip": "10.0.0.5",
            "dest_ip": "8.8.8.8",
            "dns": {"rrname": "evil.example.com"},
        },
    )
    events = [dns, conn, eve]
    assert (dns.product, dns.service, conn.service) == ("zeek", "dns", "conn")
    assert fired(
        {"product": "zeek", "service": "dns"}, {"s": {"query|endswith": ".example.com"}, "condition": "s"}, events
    ) == [0]
    assert fired({"product": "zeek", "service": "conn"}, {"s": {"id.resp_p": 4444}, "condition": "s"}, events) == [1]
    assert fired({"product": "zeek"}, {"s": {"id.orig_h|cidr": "10.0.0.0/8"}, "condition": "s"}, events) == [0, 1]


def test_cloudtrail_routes_as_aws() -> None:
    trail = parsed(
        "cloudtrail",
        {
            "eventVersion": "1.08",
            "eventTime": "2026-03-01T10:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.9",
            "userIdentity": {"type": "IAMUser"},
        },
    )
    assert (trail.product, trail.service) == ("aws", "cloudtrail")
    det = {"s": {"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey"}, "condition": "s"}
    assert fired({"product": "aws", "service": "cloudtrail"}, det, [trail]) == [0]
    assert fired({"product": "azure"}, det, [trail]) == []


def test_linux_auth_syslog_routes_as_linux() -> None:
    line = b"<38>Mar  1 10:00:00 web1 sshd[123]: Failed password for root from 203.0.113.9 port 22 ssh2"
    event = parsed("syslog", line)
    assert event.product == "linux"
    det = {"keywords": ["Failed password for root"], "condition": "keywords"}
    assert fired({"product": "linux", "service": event.service or "sshd"}, det, [event]) == [0]
    assert fired({"product": "windows"}, det, [event]) == []


def test_windows_channels_services_and_event_ids() -> None:
    def win(channel: str, eid: int, **fields: Any) -> Event:
        return Event(
            time=datetime.now(UTC), source_format="json", fields={"Channel": channel, "EventID": eid, **fields}
        )

    ps = win("Microsoft-Windows-PowerShell/Operational", 4104, ScriptBlockText="Invoke-Mimikatz")
    sec = win("Security", 4625, TargetUserName="admin")
    sysmon_reg = win("Microsoft-Windows-Sysmon/Operational", 13, TargetObject="HKLM\\x")
    events = [ps, sec, sysmon_reg]
    assert fired(
        {"product": "windows", "category": "ps_script"},
        {"s": {"ScriptBlockText|contains": "mimikatz"}, "condition": "s"},
        events,
    ) == [0]
    assert fired({"product": "windows", "service": "security"}, {"s": {"EventID": 4625}, "condition": "s"}, events) == [
        1
    ]
    for category in ("registry_set", "registry_event"):
        assert fired(
            {"product": "windows", "category": category},
            {"s": {"TargetObject|startswith": "HKLM"}, "condition": "s"},
            events,
        ) == [2]
    assert (
        fired(
            {"product": "windows", "category": "registry_add"},
            {"s": {"TargetObject|startswith": "HKLM"}, "condition": "s"},
            events,
        )
        == []
    )
