"""Accuracy on real public captures (../shared/datasets; skipped when absent).

Ground truth comes from each capture's README / labels: the known scanners must be
flagged and no other source may be called a scanner; the per-flow labels of
zeek/010-zeek-mixed give precision and recall (reported in docs/analytics.md).
"""

from __future__ import annotations

import pytest

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings
from openmdr.models import Alert, TenantInfo

from .captures import dataset, load_capture

SCAN_SOURCES = ("analytics:scan_vertical", "analytics:scan_horizontal")


def analyse(relative: str, tenant: TenantInfo | None = None, settings: AnalyticsSettings | None = None):
    tenant = tenant or TenantInfo(name="capture")
    loaded = load_capture(dataset(relative), tenant)
    assert loaded.events, f"no events read from {relative}"
    alerts = AnalyticsEngine(settings, tenants=[tenant]).analyze(loaded.events)
    return loaded, alerts


def scanners(alerts: list[Alert]) -> dict[str, set[str]]:
    """Flagged scanner address -> kinds of scan."""
    out: dict[str, set[str]] = {}
    for a in alerts:
        if a.source in SCAN_SOURCES:
            out.setdefault(a.entities["src_ip"], set()).add(a.source.split("_")[-1])
    return out


def test_stratosphere_port_scanning_capture() -> None:
    _, alerts = analyse("zeek/002-zeek-scenario-port-scanning/conn.log")
    found = scanners(alerts)
    assert set(found) == {"172.16.1.11"}
    assert found["172.16.1.11"] == {"vertical", "horizontal"}
    # scanning from inside is discovery, high severity
    assert all(a.severity == "high" for a in alerts if a.source in SCAN_SOURCES)
    # every alert of this capture is about the scanner
    assert {a.entities.get("src_ip") for a in alerts} == {"172.16.1.11"}


def test_slips_vertical_scan() -> None:
    _, alerts = analyse("zeek/slips-port-scans/vertical/conn.log")
    assert scanners(alerts) == {"192.168.1.9": {"vertical"}}
    vertical = next(a for a in alerts if a.source == "analytics:scan_vertical")
    assert vertical.entities["dst_ip"] == "45.33.32.156"
    assert vertical.details["targets"][0]["distinct"] >= 40


def test_slips_horizontal_scan() -> None:
    _, alerts = analyse("zeek/slips-port-scans/horizontal/conn.log")
    assert scanners(alerts) == {"10.0.2.112": {"horizontal"}}
    sweep = next(a for a in alerts if a.source == "analytics:scan_horizontal")
    assert sweep.details["targets"][0]["target"] == "80/tcp"


def test_suricata_eve_vertical_scan() -> None:
    _, alerts = analyse("suricata/slips-test6-malicious.suricata.json")
    found = scanners(alerts)
    assert set(found) == {"193.46.255.92"}
    assert found["193.46.255.92"] == {"vertical"}
    assert all(a.entities["dst_ip"] == "192.168.1.129" for a in alerts if a.source == "analytics:scan_vertical")


def test_simda_dga_capture() -> None:
    # the README of 005 names DGA traffic of the Simda bot: the dual-stack victim's IPv6 address
    # asks for over a hundred generated .com domains within the hour
    tenant = TenantInfo(name="capture")
    events = []
    for name in ("conn.log", "dns.log"):
        events += load_capture(dataset(f"zeek/005-zeek-scenario-malicious/{name}"), tenant).events
    events.sort(key=lambda e: e.time)
    alerts = AnalyticsEngine(tenants=[tenant]).analyze(events)
    assert [(a.source, a.entities["src_ip"]) for a in alerts] == [
        ("analytics:dga", "fd77:48a1:c0bb:0:b96c:506d:6c7f:e8be")
    ]
    assert alerts[0].details["nx_registered_domains"] >= 100 and alerts[0].severity == "high"


@pytest.mark.parametrize(
    "relative",
    ["zeek/005-zeek-scenario-malicious/conn.log", "zeek/006-zeek-scenario-ssh/conn.log"],
)
def test_no_scanner_in_captures_without_scans(relative: str) -> None:
    _, alerts = analyse(relative)
    assert scanners(alerts) == {}


def test_labelled_mixed_capture_precision_and_recall() -> None:
    # the capture watches one host with a public address: the tenant declares it
    tenant = TenantInfo(name="ctu", networks=("147.32.83.234/32",))
    loaded, alerts = analyse(
        "zeek/010-zeek-mixed/data/conn.log.labeled", tenant, AnalyticsSettings(max_evidence=1_000_000)
    )
    labels = loaded.labels
    assert labels, "the labelled capture lost its labels"
    flagged = {e for a in alerts for e in a.evidence}
    malicious = {e for e, label in labels.items() if label == "Malicious"}
    tp = len(flagged & malicious)
    fp = len(flagged - malicious)
    fn = len(malicious - flagged)
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    print(f"010-zeek-mixed: {len(labels)} flows, {len(malicious)} malicious, tp={tp} fp={fp} fn={fn} "
          f"precision={precision:.3f} recall={recall:.3f} ({loaded.path})")  # fmt: skip
    assert precision >= 0.99
    assert recall >= 0.9
    # the scanners called out are all labelled attackers
    bad_sources = {e.src_ip for e in loaded.events if labels.get(e.event_id) == "Malicious"}
    assert set(scanners(alerts)) <= bad_sources
    assert scanners(alerts)  # and there are some (two sources sweep many ports)
