"""Every statistic against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openmdr.detect.analytics import stats
from openmdr.detect.analytics.network import covered_time


def test_median_and_quartiles_by_median_of_halves() -> None:
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    # even n: halves [1..4] and [5..8]
    assert stats.quartiles([8, 1, 7, 2, 6, 3, 5, 4]) == (2.5, 4.5, 6.5)
    # odd n=7: the median 4 belongs to neither half: [1,2,3] -> 2, [5,6,7] -> 6
    assert stats.quartiles([1, 2, 3, 4, 5, 6, 7]) == (2, 4, 6)
    with pytest.raises(ValueError):
        stats.quartiles([1])
    with pytest.raises(ValueError):
        stats.median([])


def test_bowley_skewness() -> None:
    assert stats.bowley_skewness([1, 2, 3, 4, 5, 6, 7, 8]) == 0.0
    # Q1 = 25, Q2 = (40+100)/2 = 70, Q3 = 250: (25 + 250 - 140) / 225 = 0.6
    values = [10, 20, 30, 40, 100, 200, 300, 400]
    assert stats.bowley_skewness(values) == pytest.approx(0.6)
    # an IQR below the minimum counts as symmetric
    assert stats.bowley_skewness(values, min_iqr=300) == 0.0
    # the median on a quartile counts as symmetric: [1,1,1,1,5,9] -> Q1 = Q2 = 1
    assert stats.bowley_skewness([1, 1, 1, 1, 5, 9]) == 0.0


def test_mad_and_dispersion_score() -> None:
    # median 3, deviations [2, 1, 0, 1, 97] -> 1
    assert stats.median_absolute_deviation([1, 2, 3, 4, 100]) == 1
    # (3 - 1) / 3
    assert stats.dispersion_score([1, 2, 3, 4, 100], default=0.0) == pytest.approx(2 / 3)
    # median below 1: the default
    assert stats.dispersion_score([0, 0, 0.5], default=0.25) == 0.25
    # median 10, deviations [9, 9, 0, 0, 0] -> MAD 0 -> 1
    assert stats.dispersion_score([1, 1, 10, 10, 10], default=1.0) == pytest.approx(1.0)
    # median 30, deviations sorted [0, 10, 20, 28, 29] -> MAD 20 -> (30 - 20) / 30
    assert stats.dispersion_score([1, 2, 30, 40, 50], default=1.0) == pytest.approx(1 / 3)
    # median 2, deviations sorted [0, 2, 2, 48, 58] -> MAD 2 -> 0
    assert stats.dispersion_score([0, 0, 2, 50, 60], default=1.0) == 0.0


def test_regularity_score() -> None:
    assert stats.regularity_score([60, 60, 60, 60], min_iqr=10, mad_default=1.0) == 1.0
    # skew 0.6 -> 0.4; median 70, |dev| sorted [30,30,40,50,60,130,230,330] -> MAD 55:
    # dispersion (70-55)/70 = 0.2142857; mean 0.30714 -> 0.307
    values = [10, 20, 30, 40, 100, 200, 300, 400]
    assert stats.regularity_score(values, min_iqr=10, mad_default=1.0) == 0.307


def test_histogram_scores() -> None:
    assert stats.coefficient_of_variation_score([10, 10, 10, 10]) == 1.0
    # mean 10, population sd 5 -> CV 0.5
    assert stats.coefficient_of_variation_score([5, 15]) == 0.5
    # mean 5, sd 5 -> CV 1 -> 0; CV above 1 -> 0
    assert stats.coefficient_of_variation_score([0, 10, 0, 10]) == 0.0
    assert stats.coefficient_of_variation_score([0, 0, 0, 40]) == 0.0
    assert stats.coefficient_of_variation_score([0, 0]) == 0.0

    # 12 bars of 10 and 12 of 20 (level width ceil(20*0.05)=1): both levels fit, 24/(24-1) capped at 1
    two_levels = [10] * 12 + [20] * 12
    assert stats.bimodal_fit_score(two_levels, 0.05, 1, 11) == 1.0
    # two odd bars, one forgiven: (10 + 12) / 23
    uneven = [10] * 10 + [20] * 12 + [15, 17]
    assert stats.bimodal_fit_score(uneven, 0.05, 1, 11) == round(22 / 23, 3)
    # too few non-empty bars for a bimodal judgement
    assert stats.bimodal_fit_score([10] * 10 + [0] * 14, 0.05, 1, 11) == 0.0

    assert stats.longest_circular_run([1, 0, 1, 1, 0, 1]) == 2
    assert stats.longest_circular_run([1, 1, 0, 0, 1, 1, 1]) == 5
    assert stats.longest_circular_run([1, 1, 1]) == 3
    assert stats.longest_circular_run([0, 0]) == 0

    assert stats.histogram([0, 5, 9.99, 10, 25, 30], 0, 30, 3) == [3, 1, 2]


def test_duration_score() -> None:
    counts = [1] * 6 + [0] * 18
    # coverage (43200-0)/86400 = 0.5, consistency 6/12 = 0.5
    assert stats.duration_score(0, 86400, 0, 43200, counts, 6, 12) == 0.5
    # a 24-bin run caps consistency at 1
    assert stats.duration_score(0, 86400, 0, 3600, [1] * 24, 6, 12) == 1.0
    # fewer bars than the minimum
    assert stats.duration_score(0, 86400, 0, 86400, [1] * 5 + [0] * 19, 6, 12) == 0.0


def test_haversine_and_entropy() -> None:
    # one degree of longitude on the equator: 2 * pi * 6371.0088 / 360
    assert stats.haversine_km(0, 0, 0, 1) == pytest.approx(2 * math.pi * 6371.0088 / 360, rel=1e-9)
    assert stats.haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088, rel=1e-9)
    assert stats.haversine_km(48.85, 2.35, 48.85, 2.35) == 0.0
    # Paris - New York is about 5,837 km
    assert stats.haversine_km(48.8566, 2.3522, 40.7128, -74.0060) == pytest.approx(5837, abs=5)
    assert stats.shannon_entropy("") == 0.0
    assert stats.shannon_entropy("aaaa") == 0.0
    assert stats.shannon_entropy("aabb") == 1.0
    assert stats.shannon_entropy("abcd") == 2.0


def test_ewma() -> None:
    e = stats.Ewma(0.5)
    e.update(10)
    assert (e.mean, e.var, e.n) == (10, 0, 1)
    # diff 10, increment 5: mean 15, var 0.5 * (0 + 10 * 5) = 25
    e.update(20)
    assert (e.mean, e.var, e.std) == (15, 25, 5)
    assert e.threshold(2) == 25
    again = stats.Ewma.from_state(0.5, e.to_state())
    assert (again.mean, again.var, again.n) == (15, 25, 2)


def test_segment_functions_match_scalar_forms() -> None:
    rng = np.random.default_rng(7)
    groups = [rng.integers(0, 500, size=n).astype(float) for n in (2, 3, 4, 5, 9, 10, 31)]
    values = np.concatenate([np.sort(g) for g in groups])
    ids = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)]).astype(np.int64)
    starts, counts = stats.segment_bounds(ids, len(groups))
    q1, q2, q3 = stats.segment_quartiles(values, starts, counts)
    mad = stats.segment_mad(values, ids, starts, counts)
    reg = stats.segment_regularity(values, ids, starts, counts, 10.0, 1.0)
    for i, g in enumerate(groups):
        assert (q1[i], q2[i], q3[i]) == pytest.approx(stats.quartiles(list(g)))
        assert mad[i] == pytest.approx(stats.median_absolute_deviation(list(g)))
        assert reg["score"][i] == pytest.approx(stats.regularity_score(list(g), 10.0, 1.0))


def test_matrix_scores_match_scalar_forms() -> None:
    rng = np.random.default_rng(3)
    hist = rng.integers(0, 6, size=(40, 24))
    hist[0] = 0
    hist[1] = [10] * 12 + [20] * 12
    hist[2] = 7
    cv = stats.matrix_cv_score(hist)
    bimodal = stats.matrix_bimodal_score(hist, 0.05, 1, 11)
    runs = stats.matrix_longest_run(hist)
    for i, row in enumerate(hist.tolist()):
        assert cv[i] == stats.coefficient_of_variation_score(row)
        assert bimodal[i] == stats.bimodal_fit_score(row, 0.05, 1, 11)
        assert runs[i] == stats.longest_circular_run(row)


def test_beacon_score_of_a_hand_built_pair() -> None:
    # pair 0: 24 connections, one per 100-s bin of [0, 2400], intervals alternating 110/90,
    # sizes 12 x 300 and 12 x 320.  pair 1 is background that defines nothing here.
    times = np.array([50 + 100 * k + (10 if k % 2 else 0) for k in range(24)], dtype=float)
    sizes = np.array([300.0] * 12 + [320.0] * 12)
    out = stats.beacon_scores(np.zeros(24, dtype=np.int64), times, sizes, 1, 0.0, 2400.0, stats.BeaconWeights())
    # intervals: 12 x 110, 11 x 90 -> Q1 90, Q2 = Q3 = 110 -> skew 0 -> 1; MAD 0 -> 1
    assert out["ts_score"][0] == 1.0
    assert out["interval"][0] == 110
    # sizes: Q1 300, Q2 310, Q3 320 -> skew 0 -> 1; MAD 10 -> (310-10)/310; mean -> 0.984
    assert out["ds_score"][0] == 0.984
    assert out["size_mad"][0] == 10
    # one connection per bin: CV 0 -> 1
    assert out["hist_score"][0] == 1.0
    # coverage ceil((2360-50)/2400 * 1000)/1000 = 0.963, run 24/12 -> 1
    assert out["dur_score"][0] == 1.0
    # 0.25 * (1 + 0.984 + 1 + 1)
    assert out["score"][0] == 0.996
    assert out["connections"][0] == 24


def test_beacon_score_of_random_traffic_is_low() -> None:
    rng = np.random.default_rng(11)
    times = np.sort(rng.uniform(0, 86400, 200))
    sizes = rng.lognormal(8, 1.5, 200)
    out = stats.beacon_scores(np.zeros(200, dtype=np.int64), times, sizes, 1, 0.0, 86400.0, stats.BeaconWeights())
    assert out["ts_score"][0] < 0.6
    assert out["ds_score"][0] < 0.7
    assert out["score"][0] < 0.8


def test_beacon_needs_enough_intervals() -> None:
    # 4 connections but two share a second: only 2 non-zero intervals -> not scorable
    times = np.array([0.0, 0.2, 60.0, 120.0])
    out = stats.beacon_scores(
        np.zeros(4, dtype=np.int64), times, np.full(4, 10.0), 1, 0.0, 200.0, stats.BeaconWeights()
    )
    assert not out["scorable"][0]
    assert out["score"][0] == 0.0


def test_covered_time_is_the_union_of_intervals() -> None:
    groups = np.array([0, 0, 0, 1, 1, 2])
    starts = np.array([0.0, 5.0, 20.0, 100.0, 100.0, 7.0])
    durations = np.array([10.0, 10.0, 5.0, 50.0, 10.0, 0.0])
    # group 0: [0,15] U [20,25] = 20; group 1: [100,150] = 50; group 2: a point = 0
    assert covered_time(groups, starts, durations, 3).tolist() == [20.0, 50.0, 0.0]


def test_source_network_and_working_time_with_margin() -> None:
    from openmdr.detect.analytics.identity import in_working_time, source_network
    from openmdr.models import TenantInfo

    assert source_network("85.214.1.77", True) == "85.214.1.0/24"
    assert source_network("2001:db8:1234:5678::1", True) == "2001:db8:1234::/48"
    assert source_network("10.0.0.9", False) == "10.0.0.9"  # internal: the host itself
    assert source_network("not-an-ip", True) == "not-an-ip"
    office = TenantInfo(name="t", working_hours=(9, 18), working_days=(0, 1, 2, 3, 4))
    assert [h for h in range(24) if in_working_time(h, 0, office)] == list(range(9, 18))
    assert [h for h in range(24) if in_working_time(h, 0, office, margin=1)] == list(range(8, 19))
    assert not in_working_time(10, 5, office, margin=3)  # Saturday is not a working day
    night = TenantInfo(name="n", working_hours=(22, 6))
    assert [h for h in range(24) if in_working_time(h, 2, night)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert all(in_working_time(h, 2, night, margin=8) for h in range(24))


def test_domain_matcher() -> None:
    from openmdr.detect.analytics.network import DomainMatcher

    allow = DomainMatcher(["Example.com.", "corp.local"])
    assert allow("example.com") and allow("a.b.example.com.") and allow("x.corp.local")
    assert not allow("badexample.com") and not allow("example.co")
    assert allow.any(["evil.net", "cdn.example.com"]) and not allow.any([])
    assert not DomainMatcher([]).any(["example.com"])


def test_host_address_fast_path_agrees_with_ipaddress() -> None:
    import ipaddress
    import random

    from openmdr.detect.analytics.frame import is_host_address

    def reference(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
            return False
        return not (addr.version == 4 and str(addr).endswith(".255"))

    rng = random.Random(3)
    firsts = (0, 1, 10, 127, 192, 224, 239, 240, 255)
    ips = [
        f"{rng.choice(firsts)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.choice((0, 1, 255, 77))}"
        for _ in range(2000)
    ]
    ips += ["0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.256", "::1", "fe80::1", "ff02::1", "x", ""]
    assert [is_host_address(ip) for ip in ips] == [reference(ip) for ip in ips]
