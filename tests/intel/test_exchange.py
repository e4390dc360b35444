"""STIX 2.1, MISP and CSV: reading real-shaped files, refusing bad records, and round trips."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from openmdr.intel.exchange import (
    exportable,
    parse_stix_pattern,
    read_any,
    read_csv,
    read_misp,
    read_stix,
    write_csv,
    write_misp,
    write_misp_feed,
    write_stix,
)
from openmdr.models.indicator import Indicator, IndicatorError
from tests.intel.helpers import NOW

DATA = Path(__file__).with_name("data")
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def sample() -> list[Indicator]:
    """One indicator of every type with the attributes that must survive a round trip."""
    return [
        Indicator("ip", "198.51.100.23", confidence=85, tlp="green", tags=["c2"], first_seen=NOW,
                  expires_at=NOW + timedelta(days=90), description="C2 server"),
        Indicator("ip", "2001:db8::23", tlp="clear"),
        Indicator("cidr", "198.51.100.0/28", tlp="amber"),
        Indicator("domain", "update-check.example", confidence=70, tags=["c2", "loader"]),
        Indicator("url", "http://update-check.example/gate.php?id='1'&x=\\y"),
        Indicator("md5", "44d88612fea8a8f36de82e1278abb02f"),
        Indicator("sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
        Indicator("sha256", SHA256, tlp="amber+strict"),
        Indicator("email", "billing@invoice-portal.example"),
        Indicator("user_agent", "Mozilla/4.0 (compatible; MSIE 6.0; EvilBot)"),
        Indicator("ja3", "e7d705a3286e19ea42f587b344ee6865", tlp="red"),
    ]  # fmt: skip


def key(i: Indicator) -> tuple:
    return (i.type, i.value, i.tlp, sorted(i.tags))


def test_stix_bundle_of_a_vendor_is_read_with_reasons_for_what_is_refused() -> None:
    report = read_any(DATA / "stix_bundle.json", source="example-cert")
    got = {(i.type, i.value): i for i in report.indicators}
    assert set(got) == {
        ("ip", "198.51.100.23"), ("domain", "update-check.example"), ("sha256", SHA256),
        ("md5", "44d88612fea8a8f36de82e1278abb02f"), ("url", "http://update-check.example/gate.php?v=2&id='x'"),
    }  # fmt: skip
    c2 = got[("ip", "198.51.100.23")]
    assert (c2.tlp, c2.confidence, c2.source) == ("green", 85, "example-cert")  # TLP 1.0 marking id
    assert c2.tags == ["c2", "malicious-activity"]
    assert c2.expires_at is not None and c2.expires_at.year == 2027
    assert got[("sha256", SHA256)].tlp == "amber+strict"  # TLP 2.0 marking object
    reasons = {r.origin.rsplit("#", 1)[1]: r.reason for r in report.rejected}
    assert "unsupported object path" in reasons["objects[7]"]
    assert "yara" in reasons["objects[9]"]
    assert "not an IP address" in reasons["objects[10]"]
    assert report.skipped["revoked indicator"] == 1


@pytest.mark.parametrize(
    "pattern",
    [
        "[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '1.2.3.5']",
        "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'x.example']",
        "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
        "[domain-name:value MATCHES '^x']",
        "",
    ],
)
def test_stix_patterns_one_indicator_cannot_express_are_refused(pattern: str) -> None:
    with pytest.raises(IndicatorError):
        parse_stix_pattern(pattern)


def test_stix_round_trip_keeps_every_type_and_attribute() -> None:
    original = sample()
    bundle = orjson.loads(write_stix(original))
    assert bundle["type"] == "bundle"
    assert {o["type"] for o in bundle["objects"]} == {"identity", "marking-definition", "indicator"}
    back = read_stix(orjson.dumps(bundle))
    assert back.rejected == []
    assert sorted(map(key, back.indicators)) == sorted(map(key, original))
    c2 = next(i for i in back.indicators if i.value == "198.51.100.23")
    assert (c2.confidence, c2.first_seen, c2.expires_at, c2.description) == (
        85,
        NOW,
        NOW + timedelta(days=90),
        "C2 server",
    )


def test_misp_event_export_is_read_with_objects_tags_and_to_ids() -> None:
    report = read_any(DATA / "misp_event.json", source="example-cert")
    got = {(i.type, i.value): i for i in report.indicators}
    assert set(got) == {
        ("email", "billing@invoice-portal.example"),
        ("url", "https://invoice-portal.example/download/inv_7731.zip"),
        ("ip", "198.51.100.23"),  # ip-dst|port
        ("sha256", SHA256),  # filename|sha256
        ("domain", "update-check.example"),  # inside a domain-ip object
        ("cidr", "198.51.100.0/28"),
    }
    assert got[("url", "https://invoice-portal.example/download/inv_7731.zip")].tlp == "green"  # attribute tag
    assert got[("ip", "198.51.100.23")].tlp == "amber"  # event tag
    assert got[("ip", "198.51.100.23")].confidence == 85  # threat level 1
    assert report.skipped == {"misp to_ids false": 1, "misp type text": 1}
    assert len(report.rejected) == 1 and "198.51.100.300" in report.rejected[0].reason


def test_misp_round_trip_and_feed_directory(tmp_path: Path) -> None:
    original = sample()
    back = read_misp(write_misp(original))
    assert back.rejected == []
    assert sorted(map(key, back.indicators)) == sorted(map(key, original))
    write_misp_feed(original, tmp_path / "feed")
    from_feed = read_any(tmp_path / "feed")
    assert sorted(map(key, from_feed.indicators)) == sorted(map(key, original))


def test_misp_feed_with_a_missing_event_file_reports_it() -> None:
    report = read_any(DATA / "misp_feed")
    assert {(i.type, i.tlp) for i in report.indicators} == {("ip", "clear"), ("user_agent", "clear"), ("ja3", "clear")}
    assert len(report.indicators) == 4
    assert len(report.rejected) == 1 and "event file missing" in report.rejected[0].reason


def test_csv_round_trip_and_bad_rows() -> None:
    original = sample()
    back = read_csv(write_csv(original))
    assert back.rejected == []
    assert sorted(map(key, back.indicators)) == sorted(map(key, original))
    text = "value,type,tlp\n198.51.100.9,,\nevil.example,,TLP:GREEN\nnot a value at all,,\n1.2.3.4,ip,purple\n"
    report = read_csv(text, origin="feed.csv")
    assert [(i.type, i.value, i.tlp) for i in report.indicators] == [
        ("ip", "198.51.100.9", "amber"), ("domain", "evil.example", "green"),
    ]  # fmt: skip
    assert [r.origin for r in report.rejected] == ["feed.csv:4", "feed.csv:5"]
    assert read_csv("a,b\n1,2\n").rejected[0].reason == "CSV header must name a value column"


def test_not_json_is_rejected_not_raised() -> None:
    assert read_stix(b"{nope").rejected[0].reason.startswith("not JSON")
    assert read_misp(b"[{]").rejected[0].reason.startswith("not JSON")


def test_tenant_scoped_and_strict_tlp_indicators_are_never_exportable() -> None:
    items = [*sample(), Indicator("domain", "private.example", tenant="acme", tlp="clear")]
    assert {i.tlp for i in exportable(items, "red")} == {"clear", "green", "amber"}
    assert {i.tlp for i in exportable(items, "green")} == {"clear", "green"}
    assert all(i.tenant is None for i in exportable(items, "amber"))
