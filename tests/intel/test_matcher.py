"""Indicator matching: every type, scope, expiry, ageing, allow-lists and the alert it produces."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from openmdr.intel import IndicatorMatcher
from openmdr.intel.index import StringIndex, hash_strings, parse_ipv4
from openmdr.models import EVENT_SCHEMA
from openmdr.models.indicator import Indicator
from openmdr.store.intel import AllowEntry
from tests.intel.helpers import NOW, Clock, event, table

MD5 = "44d88612fea8a8f36de82e1278abb02f"
SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
JA3 = "e7d705a3286e19ea42f587b344ee6865"


def hits(matcher: IndicatorMatcher, *events: object) -> dict[str, list[str]]:
    """Indicator value -> sorted evidence event ids of the alerts for ``events``."""
    return {a.details["indicator"]["value"]: sorted(a.evidence) for a in matcher.match(table(*events))}


@pytest.mark.parametrize(
    ("indicator", "matching", "not_matching"),
    [
        (Indicator("ip", "203.0.113.7"), {"dst_ip": "203.0.113.7"}, {"dst_ip": "203.0.113.70"}),
        (Indicator("ip", "203.0.113.7"), {"src_ip": "203.0.113.7"}, {"src_ip": "203.0.113.8"}),
        (Indicator("ip", "2001:db8::7"), {"dst_ip": "2001:0DB8:0000::7"}, {"dst_ip": "2001:db8::8"}),
        (Indicator("cidr", "198.51.100.0/24"), {"src_ip": "198.51.100.250"}, {"src_ip": "198.51.101.1"}),
        (Indicator("cidr", "198.51.96.0/20"), {"dst_ip": "198.51.111.1"}, {"dst_ip": "198.51.112.1"}),
        (Indicator("cidr", "2001:db8:bad::/48"), {"dst_ip": "2001:db8:bad:1::2"}, {"dst_ip": "2001:db8:bae::1"}),
        (Indicator("domain", "evil.example"), {"domain": "evil.example"}, {"domain": "notevil.example"}),
        (Indicator("domain", "evil.example"), {"domain": "Deep.Sub.EVIL.example."}, {"domain": "evil.example.org"}),
        (Indicator("domain", "evil.example"), {"url": "https://cdn.evil.example:8443/a?b"}, {"url": "https://x.test/evil.example"}),
        (Indicator("url", "http://bad.test/gate.php?id=1"), {"url": "http://bad.test/gate.php?id=1"}, {"url": "http://bad.test/gate.php"}),
        (Indicator("md5", MD5), {"hash_md5": MD5.upper()}, {"hash_md5": MD5[:-1] + "0"}),
        (Indicator("sha1", SHA1), {"hash_sha1": SHA1}, {"hash_sha1": SHA1[:-1] + "1"}),
        (Indicator("sha256", SHA256), {"hash_sha256": SHA256}, {"hash_sha256": SHA256[:-1] + "1"}),
        (Indicator("email", "ceo@phish.example"), {"user": "CEO@phish.example"}, {"user": "ceo"}),
        (Indicator("user_agent", "Mozilla/4.0 (EvilBot)"), {"user_agent": "Mozilla/4.0 (EvilBot)"},
         {"user_agent": "Mozilla/4.0 (evilbot)"}),
        (Indicator("ja3", JA3), {"fields": {"ja3": JA3}}, {"fields": {"ja3": "0" * 32}}),
        (Indicator("ja3", JA3), {"fields": {"tls": {"ja3": {"hash": JA3, "s": "771"}}}}, {"fields": {"ja3s": "x"}}),
    ],
)  # fmt: skip
def test_each_indicator_type_matches_its_field_and_nothing_else(
    indicator: Indicator, matching: dict, not_matching: dict
) -> None:
    matcher = IndicatorMatcher([indicator], clock=Clock())
    found = hits(matcher, event("hit", **matching), event("miss", **not_matching), event("empty"))
    assert found == {indicator.value: ["hit"]}


def test_alert_is_in_the_common_schema_with_indicator_details() -> None:
    ind = Indicator("ip", "203.0.113.7", confidence=90, tlp="green", tags=["c2"], source="feed-x", first_seen=NOW)
    matcher = IndicatorMatcher([ind], clock=Clock())
    batch = table(
        event("e1", host="ws1", user="alice", src_ip="10.1.0.5", dst_ip="203.0.113.7", time=NOW - timedelta(minutes=5)),
        event("e2", host="ws2", src_ip="10.1.0.6", dst_ip="203.0.113.7"),
        event("e3", tenant="globex", host="db1", dst_ip="203.0.113.7"),
    )
    alerts = sorted(matcher.match(batch), key=lambda a: a.tenant)
    assert [a.tenant for a in alerts] == ["acme", "globex"]
    acme = alerts[0]
    assert acme.source == "ioc" and acme.rule_id == ind.id
    assert acme.evidence == ["e1", "e2"] and acme.event_count == 2
    assert acme.first_seen == NOW - timedelta(minutes=5) and acme.last_seen == NOW
    assert acme.entities["dst_ip"] == ["203.0.113.7"]
    assert acme.entities["host"] == ["ws1", "ws2"]
    assert acme.entities["user"] == ["alice"]
    assert acme.details["indicator"]["tlp"] == "green"
    assert acme.details["indicator"]["confidence"] == 90
    assert acme.details["indicator"]["source"] == "feed-x"
    assert acme.details["matched_fields"] == ["dst_ip"]
    assert acme.severity == "high" and acme.confidence == pytest.approx(0.9)
    assert "tlp:green" in acme.tags and "c2" in acme.tags
    assert alerts[1].evidence == ["e3"]


def test_nested_cidrs_and_an_address_all_match() -> None:
    inds = [Indicator("cidr", "198.51.0.0/16"), Indicator("cidr", "198.51.100.0/24"), Indicator("ip", "198.51.100.7")]
    found = hits(IndicatorMatcher(inds, clock=Clock()), event("x", dst_ip="198.51.100.7"))
    assert found == {"198.51.0.0/16": ["x"], "198.51.100.0/24": ["x"], "198.51.100.7": ["x"]}


def test_tenant_scoped_indicator_only_matches_its_tenant() -> None:
    matcher = IndicatorMatcher([Indicator("domain", "only-acme.example", tenant="acme")], clock=Clock())
    alerts = matcher.match(
        table(event("a", domain="only-acme.example"), event("g", tenant="globex", domain="only-acme.example"))
    )
    assert [(a.tenant, a.evidence) for a in alerts] == [("acme", ["a"])]
    assert alerts[0].details["indicator"]["scope"] == "tenant"


def test_expired_indicator_stops_matching_when_it_expires() -> None:
    clock = Clock()
    ind = Indicator("ip", "203.0.113.9", expires_at=NOW + timedelta(hours=1))
    matcher = IndicatorMatcher([ind], clock=clock)
    assert hits(matcher, event("x", dst_ip="203.0.113.9")) == {"203.0.113.9": ["x"]}
    clock.now = NOW + timedelta(hours=1)
    assert hits(matcher, event("x", dst_ip="203.0.113.9")) == {}


def test_confidence_ages_and_min_confidence_drops_stale_indicators() -> None:
    clock = Clock()
    ip = Indicator("ip", "203.0.113.10", confidence=80, last_seen=NOW)
    digest = Indicator("md5", MD5, confidence=80, last_seen=NOW)
    matcher = IndicatorMatcher([ip, digest], clock=clock, min_confidence=50)
    clock.now = NOW + timedelta(days=30)  # one half-life of an address
    alerts = {
        a.details["indicator"]["type"]: a for a in matcher.match(table(event("x", dst_ip="203.0.113.10", hash_md5=MD5)))
    }
    assert "ip" not in alerts  # aged to 40 < 50
    assert alerts["md5"].details["indicator"]["effective_confidence"] == 80  # hashes do not age
    assert ip.effective_confidence(NOW + timedelta(days=30)) == 40
    everything = IndicatorMatcher([ip], clock=clock).match(table(event("x", dst_ip="203.0.113.10")))
    assert everything[0].details["indicator"]["effective_confidence"] == 40
    assert everything[0].severity == "low"


def test_allow_list_suppresses_matches_provider_wide_and_per_tenant() -> None:
    inds = [
        Indicator("cidr", "198.51.100.0/24"),
        Indicator("domain", "cdn.example"),
        Indicator("url", "https://x.cdn.example/a"),
    ]
    allow = [
        AllowEntry("1", None, "ip", "198.51.100.53", "resolver", "t", NOW),
        AllowEntry("2", "globex", "domain", "good.cdn.example", "their CDN", "t", NOW),
    ]
    matcher = IndicatorMatcher(inds, allow, clock=Clock())
    batch = table(
        event("dns", dst_ip="198.51.100.53"),
        event("other", dst_ip="198.51.100.54"),
        event("acme-cdn", domain="good.cdn.example"),
        event("globex-cdn", tenant="globex", domain="good.cdn.example"),
        event("globex-url", tenant="globex", url="https://good.cdn.example/x"),
    )
    got = {(a.tenant, a.details["indicator"]["value"]): sorted(a.evidence) for a in matcher.match(batch)}
    assert got == {("acme", "198.51.100.0/24"): ["other"], ("acme", "cdn.example"): ["acme-cdn"]}


def test_batches_without_some_columns_and_empty_batches_work() -> None:
    matcher = IndicatorMatcher([Indicator("ip", "203.0.113.7"), Indicator("domain", "evil.example")], clock=Clock())
    assert matcher.match(EVENT_SCHEMA.empty_table()) == []
    partial = pa.table(
        {
            "event_id": ["a"],
            "tenant": ["acme"],
            "time": pa.array([NOW], pa.timestamp("us", tz="UTC")),
            "dst_ip": ["203.0.113.7"],
        }
    )
    assert [a.evidence for a in matcher.match(partial)] == [["a"]]


def test_garbage_values_never_crash_and_never_match() -> None:
    matcher = IndicatorMatcher([Indicator("ip", "203.0.113.7"), Indicator("cidr", "2001:db8::/32")], clock=Clock())
    batch = table(event("a", dst_ip="999.1.1.1", src_ip="::::zz"), event("b", dst_ip="", src_ip="1.2.3"))
    assert matcher.match(batch) == []


def test_string_index_confirms_every_hash_hit() -> None:
    values = [f"value-{i}" for i in range(5000)]
    index = StringIndex.build(values, np.arange(5000))
    probe = pa.array(["value-17", "value-17x", None, "value-4999", ""])
    rows, members = index.lookup(probe)
    assert rows.tolist() == [0, 3] and members.tolist() == [17, 4999]
    # equal strings hash equally wherever they sit in a (sliced) array
    sliced = pa.array(["zz", "value-17", "value-17"]).slice(1)
    h, valid = hash_strings(sliced)
    assert h[0] == h[1] and valid.all()


def test_parse_ipv4_is_strict() -> None:
    numbers, ok = parse_ipv4(pa.array(["1.2.3.4", "256.0.0.1", "1.2.3", "01.2.3.4", None]))
    assert ok.tolist() == [True, False, False, True, False]
    assert int(numbers[0]) == (1 << 24) + (2 << 16) + (3 << 8) + 4
