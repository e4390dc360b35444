"""The engine: streaming equals batch, baselines persist, state stays bounded, bad input is safe."""

from __future__ import annotations

import random

import orjson
import pyarrow as pa
import pytest

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings, BaselineRecord
from openmdr.detect.analytics.frame import Extractor
from openmdr.models import Event, TenantInfo
from openmdr.models.event import EVENT_SCHEMA, events_to_table

from .builders import T0, at, conn, dns, logon
from .test_network import C2

HOUR = 3600.0
DAY = 86_400.0
TENANTS = [TenantInfo(name="acme"), TenantInfo(name="globex", timezone="Asia/Seoul")]


def mixed_story() -> list[Event]:
    """Two tenants, two days: a beacon, scans, fan-out, a volume spike and a brute force."""
    mb = 1024 * 1024
    rng = random.Random(4)
    # a whole day of check-ins every ~5 minutes with small jitter and near-constant sizes
    events = [
        conn(300 * k + rng.uniform(-3, 3), "10.1.1.10", C2, 443, bytes_out=512 + rng.choice((0, 0, 0, 16)))
        for k in range(1, 288)
    ]
    events += [conn(5000 + 2 * p, "10.0.0.66", "10.0.0.5", p, state="REJ") for p in range(1, 40)]
    events += [conn(9000 + 10 * i, "10.0.0.66", f"10.0.5.{i}", 445) for i in range(1, 13)]
    events += [conn(h * HOUR + 60, "10.0.0.20", "45.13.113.50", 443, bytes_out=10 * mb) for h in range(10)]
    events += [conn(DAY + 3 * HOUR + i, "10.0.0.20", "91.198.100.99", 443, bytes_out=300 * mb) for i in range(4)]
    events += [conn(700 * p, "45.13.113.9", "10.0.0.5", 1000 + p, state="REJ") for p in range(130)]
    events += [dns(20_000 + i, "10.0.0.9", f"q{i:04d}x{i * 7919 % 10007:05d}zz.evil-c2.com") for i in range(10)]
    brute = [logon(DAY + 100 + 5 * i, "root", src="45.13.113.77", failed=True, tenant="globex") for i in range(30)]
    brute.append(logon(DAY + 400, "root", src="45.13.113.77", tenant="globex"))
    travel = [
        logon(DAY + 1000, "kim", src="85.214.1.1", country="DE", lat=52.52, lon=13.4, tenant="globex"),
        logon(DAY + 2000, "kim", src="1.209.1.1", country="KR", lat=37.56, lon=126.97, tenant="globex"),
    ]
    events += brute + travel
    events.sort(key=lambda e: e.time)
    return events


def alert_dicts(alerts: list) -> list[dict]:
    return sorted((a.to_json_dict() for a in alerts), key=lambda d: d["alert_id"])


def test_streaming_gives_the_same_alerts_as_batch() -> None:
    events = mixed_story()
    batch = AnalyticsEngine(tenants=TENANTS).analyze(events)
    kinds = {a.source for a in batch}
    assert {
        "analytics:beacon",
        "analytics:scan_vertical",
        "analytics:lateral_movement",
        "analytics:exfiltration_volume",
        "analytics:brute_force_source",
        "analytics:logon_after_failures",
        "analytics:impossible_travel",
    } <= kinds

    rng = random.Random(9)
    stream = AnalyticsEngine(tenants=TENANTS)
    streamed = []
    i = 0
    while i < len(events):
        n = rng.randint(1, 60)
        chunk = events[i : i + n]
        i += n
        streamed += stream.feed(events_to_table(chunk) if n % 2 else chunk)
    assert stream.open_windows() > 0  # the day windows are still open
    streamed += stream.flush()
    assert stream.late_records == 0
    assert alert_dicts(streamed) == alert_dicts(batch)


def test_files_read_one_after_another_need_the_unordered_mode() -> None:
    # a folder scan reads conn.log for the whole period, then dns.log, then the logon files
    events = mixed_story()
    files = [
        [e for e in events if e.service == "conn"],
        [e for e in events if e.service == "dns"],
        [e for e in events if e.service not in ("conn", "dns")],
    ]
    expected = alert_dicts(AnalyticsEngine(tenants=TENANTS).analyze(events))
    unordered = AnalyticsEngine(tenants=TENANTS, ordered=False)
    streamed = [a for batch in files for a in unordered.feed(batch)]
    assert streamed == []  # judged at flush, in time order
    assert alert_dicts(unordered.flush()) == expected
    assert unordered.late_records == 0
    # the streaming mode would have taken the DNS and logon files for late records
    ordered = AnalyticsEngine(tenants=TENANTS)
    for batch in files:
        ordered.feed(batch)
    ordered.flush()
    assert ordered.late_records > 0


def test_alerts_arrive_as_windows_close() -> None:
    engine = AnalyticsEngine(tenants=TENANTS)
    scan = [conn(10 + 2 * p, "10.0.0.66", "10.0.0.5", p, state="REJ") for p in range(1, 40)]
    assert engine.feed(scan) == []  # the 5-minute window is still open
    later = [conn(300 + 600 + 1, "10.0.0.1", "10.0.0.2", 80)]  # watermark passes 300 s + lateness
    alerts = engine.feed(later)
    assert [a.source for a in alerts] == ["analytics:scan_vertical"]


def test_late_records_are_counted_and_still_analysed() -> None:
    engine = AnalyticsEngine(tenants=TENANTS)
    engine.feed([conn(3 * HOUR, "10.0.0.1", "10.0.0.2", 80)])  # closes the early 5-minute windows
    late = [conn(10 + 2 * p, "10.0.0.66", "10.0.0.5", p, state="REJ") for p in range(1, 40)]
    alerts = engine.feed(late) + engine.flush()
    assert engine.late_records == len(late)
    assert any(a.source == "analytics:scan_vertical" for a in alerts)


def test_baselines_snapshot_and_restore() -> None:
    mb = 1024 * 1024
    history = [conn(h * HOUR + 60, "10.0.0.20", "45.13.113.50", 443, bytes_out=10 * mb) for h in range(8)]
    history += [logon(h * HOUR, "alice", src="85.214.1.1", country="DE", lat=52.5, lon=13.4) for h in range(3)]
    spike = [conn(9 * HOUR + i, "10.0.0.20", "91.198.100.99", 443, bytes_out=100 * mb) for i in range(6)]
    first = AnalyticsEngine(tenants=TENANTS)
    first.analyze(history)
    rows = first.snapshot()
    keys = {(r.tenant, r.analytic, r.entity) for r in rows}
    assert ("acme", "network.exfil", "10.0.0.20") in keys
    assert ("acme", "identity.user", "alice") in keys
    assert ("acme", "network.tenant", "*") in keys
    assert all(isinstance(orjson.loads(r.state), dict | list) for r in rows)

    second = AnalyticsEngine(tenants=TENANTS)
    assert second.restore(rows) == len(rows)
    alerts = [a for a in second.analyze(spike) if a.source == "analytics:exfiltration_volume"]
    assert len(alerts) == 1 and alerts[0].details["baseline_windows"] == 8
    # without the restored baseline the same spike is below the cold threshold
    assert [a for a in AnalyticsEngine(tenants=TENANTS).analyze(spike) if "exfil" in a.source] == []
    with pytest.raises(ValueError):
        second.restore([BaselineRecord("acme", "no.such.analytic", "x", b"{}")])


def test_state_is_bounded_as_entities_grow() -> None:
    settings = AnalyticsSettings(identity={"max_users": 50}, max_volume_entities=40)
    engine = AnalyticsEngine(settings, tenants=TENANTS)
    events = [logon(i, f"user{i}", src=f"10.9.{i // 250}.{i % 250}") for i in range(500)]
    events += [conn(i, f"10.8.{i // 250}.{i % 250}", "91.198.100.1", 443, bytes_out=10) for i in range(500)]
    engine.analyze(events)
    size = engine.state_size()
    assert size["identity.user"] == 50
    assert size["network.exfil"] == 40


def test_bad_input_never_crashes() -> None:
    engine = AnalyticsEngine(tenants=TENANTS)
    assert engine.analyze([]) == []
    assert engine.analyze(EVENT_SCHEMA.empty_table()) == []
    deep = "[" * 50_000 + "]" * 50_000
    hostile = [
        Event(time=at(1), source_format="zeek_tsv", fields={}, tenant="acme", event_id="e1", product="zeek",
              service="conn", src_ip=None, dst_ip=None),
        Event(time=at(2), source_format="zeek_tsv", fields={"duration": "not-a-number", "conn_state": 7},
              tenant="acme", event_id="e2", product="zeek", service="conn", src_ip="not-an-ip",
              dst_ip="also bad", dst_port=-5, bytes_out=-100),
        Event(time=at(3), source_format="zeek_tsv", fields={"query": "x" * 100_000}, tenant="acme",
              event_id="e3", product="zeek", service="dns", src_ip="10.0.0.1", domain="a." * 30_000 + "com"),
        Event(time=at(4), source_format="winevent_json", fields={"LogonType": {"nested": [1, 2]}},
              tenant="", event_id="e4", action="logon", user="x" * 10_000, src_ip="::1",
              src_lat=float("nan"), src_lon=float("inf"), src_country="", src_internal=False),
        Event(time=at(5), source_format="cef", fields={}, tenant="acme", event_id="e5", action="blocked",
              src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=70_000 % 65536),
    ]  # fmt: skip
    table = events_to_table(hostile)
    # fields that are not JSON at all, and a hostile nesting depth
    fields = pa.array(["not json {", deep, None, '{"LogonType": "10"}', "[]"], type=pa.string())
    table = table.set_column(table.schema.get_field_index("fields"), "fields", fields)
    assert isinstance(engine.analyze(table), list)
    assert isinstance(engine.analyze(hostile), list)
    net = Extractor().network(table)
    assert net.num_rows >= 1  # the unusable rows are kept as what they are, nothing raises


def test_unknown_tenant_gets_defaults() -> None:
    events = [logon(10 * i, "alice", src="45.13.113.5", failed=True, tenant="initech") for i in range(25)]
    alerts = AnalyticsEngine().analyze(events)
    assert {a.tenant for a in alerts} == {"initech"}
    assert any(a.source == "analytics:brute_force_source" for a in alerts)


def test_alerts_carry_the_analyst_facing_contract() -> None:
    for alert in AnalyticsEngine(tenants=TENANTS).analyze(mixed_story()):
        assert alert.source.startswith("analytics:") and alert.rule_id.startswith("analytics.")
        assert alert.explanation and alert.details and alert.evidence
        assert alert.first_seen <= alert.last_seen
        assert alert.first_seen.timestamp() >= T0 - 1
        assert alert.severity in ("informational", "low", "medium", "high", "critical")
        assert 0 < alert.confidence <= 1
        orjson.dumps(alert.to_json_dict())  # JSON-ready
