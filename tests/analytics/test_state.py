"""Bounded state (LRU, recent sets, count-min, HyperLogLog), baselines, domains, settings."""

from __future__ import annotations

import orjson
import pytest

from openmdr.detect.analytics.baseline import (
    BaselineStore,
    LateralProfile,
    UserProfile,
    VolumeProfile,
)
from openmdr.detect.analytics.domains import BUILTIN_SUFFIXES, PublicSuffixList, default_suffix_list
from openmdr.detect.analytics.settings import AnalyticsSettings
from openmdr.detect.analytics.sketches import CountMinSketch, HyperLogLog, LruMap, RecentSet, stable_hash64


def test_lru_map_evicts_least_recently_used() -> None:
    m: LruMap[str, int] = LruMap(2)
    m.put("a", 1)
    m.put("b", 2)
    assert m.get("a") == 1  # a is now the most recent
    m.put("c", 3)
    assert "b" not in m and "a" in m and "c" in m
    assert m.evictions == 1
    assert m.setdefault_factory("d", lambda: 4) == 4
    assert len(m) == 2
    with pytest.raises(ValueError):
        LruMap(0)


def test_recent_set_remembers_first_and_last_seen() -> None:
    s = RecentSet(2)
    assert s.add("DE", 10.0)
    assert not s.add("DE", 20.0)
    assert s.first_seen("DE") == 10.0
    s.add("FR", 30.0)
    s.add("US", 40.0)  # evicts DE, the least recently seen
    assert "DE" not in s and s.keys() == ["FR", "US"]
    restored = RecentSet.from_state(2, orjson.loads(orjson.dumps(s.to_state())))
    assert restored.keys() == ["FR", "US"] and restored.first_seen("US") == 40.0


def test_stable_hash_is_process_independent() -> None:
    # a fixed value: BLAKE2b-64 of "10.0.0.1", little-endian (snapshots depend on it)
    assert stable_hash64("10.0.0.1") == 16574176683607101011
    assert stable_hash64("a") != stable_hash64("b")
    assert 0 <= stable_hash64("x") < 2**64


def test_count_min_never_undercounts_and_round_trips() -> None:
    cms = CountMinSketch(width=256, depth=4)
    truth = {f"198.51.100.{i}": i % 7 + 1 for i in range(200)}
    cms.add_many(truth.keys(), truth.values())
    est = cms.estimate_many(truth.keys())
    assert all(e >= t for e, t in zip(est.tolist(), truth.values(), strict=True))
    # error bound e/width * total holds for most keys
    bound = 2.718 / 256 * cms.total
    assert sum(e - t <= bound for e, t in zip(est.tolist(), truth.values(), strict=True)) >= 190
    assert cms.estimate("never-added") <= bound
    again = CountMinSketch.from_state(orjson.loads(orjson.dumps(cms.to_state())))
    assert again.estimate_many(truth.keys()).tolist() == est.tolist()
    assert again.total == sum(truth.values())


def test_hyperloglog_estimates_within_error() -> None:
    hll = HyperLogLog(12)
    hll.add_many(f"host-{i}" for i in range(20_000))
    hll.add_many(f"host-{i}" for i in range(5_000))  # duplicates do not count
    assert hll.count() == pytest.approx(20_000, rel=0.05)
    small = HyperLogLog(12)
    small.add_many(["a", "b", "c", "a"])
    assert small.count() == pytest.approx(3, abs=0.1)
    other = HyperLogLog(12)
    other.add_many(f"host-{i}" for i in range(15_000, 30_000))
    hll.merge(other)
    assert hll.count() == pytest.approx(30_000, rel=0.05)
    again = HyperLogLog.from_state(orjson.loads(orjson.dumps(hll.to_state())))
    assert again.count() == hll.count()
    with pytest.raises(ValueError):
        hll.merge(HyperLogLog(10))
    with pytest.raises(ValueError):
        HyperLogLog(3)


def test_baseline_store_is_capped_and_persists() -> None:
    store: BaselineStore[VolumeProfile] = BaselineStore("network.exfil", 3, VolumeProfile, VolumeProfile.from_state)
    for i in range(10):
        store.profile(f"10.0.0.{i}").stat.update(float(i))
    assert len(store) == 3  # bounded whatever the history
    rows = list(store.rows())
    assert [e for e, _ in rows] == ["10.0.0.7", "10.0.0.8", "10.0.0.9"]
    fresh: BaselineStore[VolumeProfile] = BaselineStore("network.exfil", 3, VolumeProfile, VolumeProfile.from_state)
    assert fresh.restore_rows(rows) == 3
    assert fresh.get("10.0.0.9").stat.mean == 9.0  # type: ignore[union-attr]
    blob = store.snapshot()
    other: BaselineStore[VolumeProfile] = BaselineStore("network.exfil", 3, VolumeProfile, VolumeProfile.from_state)
    other.restore(blob)
    assert other.get("10.0.0.8").stat.to_state() == store.get("10.0.0.8").stat.to_state()  # type: ignore[union-attr]
    wrong: BaselineStore[VolumeProfile] = BaselineStore("identity.user", 3, VolumeProfile, VolumeProfile.from_state)
    with pytest.raises(ValueError):
        wrong.restore(blob)


def test_user_and_lateral_profiles_round_trip() -> None:
    p = UserProfile(capacity=4)
    for hour in (9, 9, 10, 14):
        p.add_hour(hour)
    p.logons = 4
    p.countries.add("DE", 1.0)
    p.last_geo = [1.0, 52.5, 13.4, "DE", "203.0.113.9", "e1"]
    # within one hour of 9: hours 8, 9, 10 -> 3 of 4
    assert p.hour_share(9) == 0.75
    assert p.hour_share(3) == 0.0
    q = UserProfile.from_state(orjson.loads(orjson.dumps(p.to_state())), capacity=4)
    assert q.hours == p.hours and q.countries.keys() == ["DE"] and q.last_geo == p.last_geo
    lat = LateralProfile()
    lat.fanout.update(3)
    lat.pairs.add("10.0.0.5:445", 1.0)
    again = LateralProfile.from_state(orjson.loads(orjson.dumps(lat.to_state())))
    assert "10.0.0.5:445" in again.pairs and again.fanout.mean == 3


def test_hour_profile_stays_bounded() -> None:
    p = UserProfile()
    for _ in range(30_000):
        p.add_hour(12)
    assert sum(p.hours) <= UserProfile.HOUR_CAP
    assert p.hour_share(12) == 1.0


def test_public_suffix_rules() -> None:
    psl = PublicSuffixList.parse(
        "// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n", "test"
    )
    assert psl.registered_domain("a.b.example.co.uk") == "example.co.uk"
    assert psl.registered_domain("example.com.") == "example.com"
    assert psl.registered_domain("co.uk") is None
    assert psl.registered_domain("x.y.ck") == "x.y.ck"  # *.ck makes y.ck a suffix
    assert psl.registered_domain("www.ck") == "www.ck"  # exception rule
    assert psl.registered_domain("a.city.kawasaki.jp") == "city.kawasaki.jp"
    assert psl.registered_domain("unknown-tld") is None
    assert psl.registered_domain("a.example.unknowntld") == "example.unknowntld"  # implicit * rule
    assert psl.registered_domain("") is None


def test_builtin_suffixes_and_system_list() -> None:
    builtin = PublicSuffixList.builtin()
    assert "co.uk" in BUILTIN_SUFFIXES
    assert builtin.registered_domain("tunnel.x1y2.ngrok.io") == "x1y2.ngrok.io"
    assert builtin.registered_domain("mail.example.com.au") == "example.com.au"
    psl = default_suffix_list()
    assert psl.registered_domain("a.b.example.co.uk") == "example.co.uk"
    if psl.source == "builtin":
        pytest.skip("no Public Suffix List file on this machine: built-in fallback in use")
    assert len(psl.rules) > 5000
    assert psl.registered_domain("foo.bar.blogspot.com") == "bar.blogspot.com"


def test_settings_per_tenant_overrides_merge() -> None:
    s = AnalyticsSettings(tenants={"globex": {"scan": {"vertical_fast": 50}, "max_evidence": 10}})
    g = s.for_tenant("globex")
    assert g.scan.vertical_fast == 50
    assert g.scan.vertical_slow == s.scan.vertical_slow  # untouched keys keep defaults
    assert g.max_evidence == 10
    assert s.for_tenant("acme") is s
    with pytest.raises(ValueError):
        AnalyticsSettings(tenants={"x": {"beacon": {"score_threshold": 2}}}).for_tenant("x")
