"""Network analytics on hand-built traffic with known scores and outcomes."""

from __future__ import annotations

import random
import string

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings
from openmdr.models import Alert, AssetInfo, Event, TenantInfo

from .builders import conn, dns, ssl

ACME = TenantInfo(name="acme")
HOUR = 3600.0
DAY = 86_400.0
C2 = "185.100.87.1"


def run(
    events: list[Event],
    settings: AnalyticsSettings | None = None,
    assets: list[AssetInfo] | None = None,
) -> list[Alert]:
    engine = AnalyticsEngine(settings, tenants=[ACME], assets={"acme": assets or []})
    return engine.analyze(events)


def of(alerts: list[Alert], name: str) -> list[Alert]:
    return [a for a in alerts if a.source == f"analytics:{name}"]


def hand_built_beacon(src: str = "10.1.1.10", dst: str = C2) -> list[Event]:
    """The pair of tests/analytics/test_stats.py::test_beacon_score_of_a_hand_built_pair."""
    events = [
        conn(50 + 100 * k + (10 if k % 2 else 0), src, dst, 443, bytes_out=300 if k < 12 else 320) for k in range(24)
    ]
    # another host's traffic spans the analysed period [0, 2400]
    events += [conn(0, "10.1.1.20", "93.184.216.34", 443), conn(2400, "10.1.1.20", "93.184.216.34", 443)]
    return events


# ------------------------------------------------------------------------------ beacons


def test_beacon_with_known_score() -> None:
    alerts = of(run(hand_built_beacon()), "beacon")
    assert len(alerts) == 1
    a = alerts[0]
    assert a.details["score"] == 0.996
    assert (
        a.details["ts_score"],
        a.details["ds_score"],
        a.details["hist_score"],
        a.details["dur_score"],
    ) == (
        1.0,
        0.984,
        1.0,
        1.0,
    )
    assert a.details["connections"] == 24 and a.details["interval_median_s"] == 110
    assert a.entities == {"src_ip": "10.1.1.10", "dst_ip": C2}
    assert a.severity == "high" and a.attack == ["T1071"]
    assert len(a.evidence) == 24
    assert "beacon score 0.996 >= 0.8" in (a.explanation or "")
    assert "1 of 2 internal hosts" in (a.explanation or "")


def test_irregular_traffic_is_not_a_beacon() -> None:
    rng = random.Random(5)
    events = [
        conn(rng.uniform(0, DAY), "10.1.1.10", C2, 443, bytes_out=int(rng.lognormvariate(8, 1.5))) for _ in range(300)
    ]
    assert of(run(events), "beacon") == []


def test_popular_destination_is_not_a_beacon() -> None:
    events: list[Event] = []
    for h in range(4):  # every host checks in with the update service
        events += [conn(600 * k + h, f"10.1.1.{10 + h}", "20.1.1.1", 443, bytes_out=500) for k in range(100)]
    alerts = of(run(events), "beacon")
    assert alerts == []
    # and the same check-ins from a single host are reported
    assert len(of(run(events[:100]), "beacon")) == 1


def test_beacon_allow_list() -> None:
    settings = AnalyticsSettings(beacon={"allow_cidrs": ["185.100.87.0/24"]})
    assert of(run(hand_built_beacon(), settings), "beacon") == []


def test_beacon_names_its_destination_and_domain_allow_list() -> None:
    events = [*hand_built_beacon(), ssl(55, "10.1.1.10", C2, "cdn.telemetry-sync.example")]
    alerts = of(run(events), "beacon")
    assert len(alerts) == 1
    assert alerts[0].entities["domain"] == "cdn.telemetry-sync.example"
    assert alerts[0].details["server_names"] == ["cdn.telemetry-sync.example"]
    assert f"{C2} (cdn.telemetry-sync.example)" in (alerts[0].explanation or "")
    # the name rows are not connections: the score is the one of the pair alone
    assert alerts[0].details["score"] == 0.996 and alerts[0].details["connections"] == 24
    # an allow-listed parent domain covers its subdomains; an unrelated one does not
    assert of(run(events, AnalyticsSettings(beacon={"allow_domains": ["telemetry-sync.example"]})), "beacon") == []
    assert len(of(run(events, AnalyticsSettings(beacon={"allow_domains": ["sync.example"]})), "beacon")) == 1


def test_beacon_over_rotating_addresses_is_found_by_server_name() -> None:
    # a C2 behind a CDN: every ~300 s, each check-in to one of 40 addresses of the same name, so
    # no single address sees enough connections to be scored on its own
    rng = random.Random(11)
    events: list[Event] = []
    for k in range(288):
        t = 10 + 300 * k + rng.uniform(-3, 3)
        ip = f"104.16.{rng.randrange(40)}.7"
        events.append(conn(t, "10.1.1.10", ip, 443, bytes_out=900))
        events.append(ssl(t, "10.1.1.10", ip, "telemetry.cdn-sync.example"))
    # a name every host uses is popular, however regular
    for h in range(4):
        for k in range(100):
            events.append(ssl(600 * k + h, f"10.1.2.{h}", "104.17.0.1", "update.vendor.example"))
    events.sort(key=lambda e: e.time)
    alerts = of(run(events), "beacon")
    assert len(alerts) == 1
    a = alerts[0]
    assert a.entities["domain"] == "telemetry.cdn-sync.example" and a.details["grouped_by"] == "server_name"
    assert len(a.details["addresses"]) == 40 and a.details["connections"] == 288
    assert a.details["interval_median_s"] in (299, 300, 301) and a.details["ts_score"] >= 0.9
    assert "over 40 address(es)" in (a.explanation or "")
    allow = AnalyticsSettings(beacon={"allow_domains": ["cdn-sync.example"]})
    assert of(run(events, allow), "beacon") == []


def test_multicast_is_never_a_beacon() -> None:
    events = [conn(120 * k, "10.1.1.10", "239.255.255.250", 1900, proto="udp", bytes_out=200) for k in range(300)]
    assert of(run(events), "beacon") == []


# ---------------------------------------------------------------------- long connections


def test_long_connection_single_and_covered() -> None:
    events = [
        conn(100, "10.1.1.10", "91.198.100.20", 22, duration=9 * HOUR),  # one 9-h session
        conn(100, "10.1.1.11", "91.198.100.21", 443, duration=6 * HOUR),  # 6 h: quiet
        # three parallel 5-h connections: 15 h summed but only 5 h connected
        *[conn(200 + i, "10.1.1.12", "91.198.100.22", 443, duration=5 * HOUR) for i in range(3)],
        # back-to-back 1-h connections for 13 h: connected 13 h
        *[conn(1000 + i * HOUR, "10.1.1.13", "91.198.100.23", 8443, duration=HOUR) for i in range(13)],
    ]
    alerts = of(run(events), "long_connection")
    found = {a.entities["src_ip"]: a for a in alerts}
    assert set(found) == {"10.1.1.10", "10.1.1.13"}
    assert found["10.1.1.10"].details["longest_s"] == 9 * HOUR
    assert found["10.1.1.13"].details["covered_s"] == 13 * HOUR
    assert found["10.1.1.13"].details["connections"] == 13
    assert all(a.severity == "medium" for a in alerts)


# ---------------------------------------------------------------------------------- scans


def test_fast_vertical_scan_reported_once() -> None:
    events = [conn(2 * p, "10.0.0.66", "10.0.0.5", p, state="REJ", duration=0.001) for p in range(1, 31)]
    events.append(conn(100, "10.0.0.66", "10.0.0.5", 445, state="SF"))  # one port answered
    alerts = run(events)
    vertical = of(alerts, "scan_vertical")
    assert len(vertical) == 1  # the daily (slow) window does not report it again
    t = vertical[0].details["targets"][0]
    # 30 refused ports x 1 + 1 answered x 0.25
    assert (t["distinct"], t["unanswered"], t["weighted_score"]) == (31, 30, 30.25)
    assert vertical[0].severity == "high" and vertical[0].attack == ["T1046"]
    assert vertical[0].details["scale"] == "fast"
    assert of(alerts, "scan_horizontal") == []


def test_service_replies_are_not_a_scan() -> None:
    # a UPnP device answering discovery from port 1900 to many ephemeral client ports
    events = [conn(i, "10.0.0.7", "10.0.0.66", 40000 + i, sport=1900, proto="udp", state="S0") for i in range(100)]
    assert [a for a in run(events) if a.source.startswith("analytics:scan")] == []


def test_horizontal_sweep_and_browsing() -> None:
    sweep = [conn(i, "10.0.0.66", f"10.0.1.{i}", 445, state="S0", duration=None) for i in range(1, 31)]
    sweep += [conn(40 + i, "10.0.0.66", f"10.0.2.{i}", 445, state="SF") for i in range(1, 11)]
    alerts = of(run(sweep), "scan_horizontal")
    assert len(alerts) == 1
    t = alerts[0].details["targets"][0]
    # 30 unanswered x 1 + 10 answered x 0.25
    assert (t["target"], t["distinct"], t["unanswered"], t["weighted_score"]) == ("445/tcp", 40, 30, 32.5)
    # a browser reaching 80 web servers, two of which did not answer
    browsing = [conn(i, "10.0.0.77", f"45.13.113.{i}", 443) for i in range(1, 79)]
    browsing += [conn(90 + i, "10.0.0.77", f"91.198.100.{i}", 443, state="S0") for i in range(2)]
    assert of(run(browsing), "scan_horizontal") == []


def test_slow_vertical_scan() -> None:
    events = [conn(700 * p, "45.13.113.9", "10.0.0.5", 1000 + p, state="REJ") for p in range(120)]
    alerts = of(run(events), "scan_vertical")
    assert len(alerts) == 1
    a = alerts[0]
    assert a.details["scale"] == "slow" and a.details["targets"][0]["distinct"] == 120
    # an external scanner: reconnaissance, low severity below 3x the threshold
    assert a.attack == ["T1595"] and a.severity == "low"


def test_inbound_probing_names_the_victim_not_scanners() -> None:
    events = [conn(60 * i, f"91.51.{i}.7", "10.0.0.5", 23 + i, state="S0") for i in range(25)]
    alerts = run(events)
    probing = of(alerts, "inbound_probing")
    assert len(probing) == 1
    assert probing[0].entities == {"dst_ip": "10.0.0.5"}
    assert probing[0].details["sources"] == 25
    assert [a for a in alerts if a.source in ("analytics:scan_vertical", "analytics:scan_horizontal")] == []


# ---------------------------------------------------------------------- lateral movement


def test_lateral_fan_out_cold_and_against_baseline() -> None:
    fan = [conn(10 * i, "10.0.0.66", f"10.0.5.{i}", 445) for i in range(1, 13)]
    alerts = of(run(fan), "lateral_movement")
    assert len(alerts) == 1
    assert alerts[0].details["fanout"] == 12 and alerts[0].details["threshold"] == 10
    assert alerts[0].attack == ["T1021.002"]
    # refused connections move nowhere
    refused = [conn(10 * i, "10.0.0.66", f"10.0.5.{i}", 445, state="REJ") for i in range(1, 13)]
    assert of(run(refused), "lateral_movement") == []

    # an admin host reaching the same 2 servers every hour for 6 hours, then 6 new hosts over WinRM
    history = [conn(h * HOUR + i, "10.0.0.10", f"10.0.6.{i}", 3389) for h in range(6) for i in (1, 2)]
    burst = [conn(7 * HOUR + 10 * i, "10.0.0.10", f"10.0.7.{i}", 5985) for i in range(1, 7)]
    alerts = of(run(history + burst), "lateral_movement")
    assert len(alerts) == 1
    d = alerts[0].details
    assert d["fanout"] == 6 and d["baseline_windows"] == 6 and d["baseline_mean"] == 2.0
    assert d["threshold"] == 5  # max(min_hosts 5, mean 2 + 4 * sd 0)
    assert len(d["new_destinations"]) == 6
    assert alerts[0].attack == ["T1021.006"]


# -------------------------------------------------------------------------- exfiltration


def test_exfiltration_against_host_baseline() -> None:
    mb = 1024 * 1024
    history = [conn(h * HOUR + 60, "10.0.0.20", "45.13.113.50", 443, bytes_out=10 * mb) for h in range(8)]
    spike = [conn(9 * HOUR + i, "10.0.0.20", "91.198.100.99", 443, bytes_out=100 * mb) for i in range(6)]
    alerts = of(run(history + spike), "exfiltration_volume")
    assert len(alerts) == 1
    d = alerts[0].details
    assert d["bytes_out"] == 600 * mb and d["baseline_windows"] == 8
    assert d["threshold"] == 100 * mb  # max(100 MiB, 10 MiB + 4 * 0, 5 x 10 MiB)
    assert d["top_destinations"][0] == {"dst_ip": "91.198.100.99", "bytes": 600 * mb}
    assert alerts[0].attack == ["T1048"]
    # without a baseline the cold threshold (1 GiB) applies
    assert of(run(spike), "exfiltration_volume") == []
    big = [conn(i, "10.0.0.21", "91.198.100.99", 443, bytes_out=300 * mb) for i in range(5)]
    cold = of(run(big), "exfiltration_volume")
    assert len(cold) == 1 and cold[0].details["threshold"] == 1024 * mb


# ------------------------------------------------------------------------ DNS tunnelling


def _random_label(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def test_dns_tunnel() -> None:
    rng = random.Random(1)
    tunnel = [
        dns(i * 5, "10.0.0.9", f"{_random_label(rng, 40)}.{_random_label(rng, 20)}.t.evil-c2.com") for i in range(300)
    ]
    normal = [dns(i * 5, "10.0.0.9", f"img{i % 400:03d}.cdn.example.com") for i in range(300)]
    av = [dns(i * 5, "10.0.0.9", f"{_random_label(rng, 40)}.sophosxl.net") for i in range(300)]
    rdns = [dns(i * 5, "10.0.0.9", f"{i}.1.168.192.in-addr.arpa", "PTR") for i in range(250)]
    alerts = of(run(tunnel + normal + av + rdns), "dns_tunnel")
    assert len(alerts) == 1
    d = alerts[0].details
    assert d["registered_domain"] == "evil-c2.com" and d["unique_names"] == 300
    assert d["mean_entropy"] > 4.0 and d["mean_subdomain_length"] == 63
    assert alerts[0].entities == {"src_ip": "10.0.0.9", "domain": "evil-c2.com"}


def test_dns_txt_flood() -> None:
    events = [dns(i * 10, "10.0.0.9", "cmd.example-c2.net", "TXT") for i in range(250)]
    alerts = of(run(events), "dns_tunnel")
    assert len(alerts) == 1 and alerts[0].details["txt_null_queries"] == 250


def _generated(i: int) -> str:
    """A pseudo-random 10-letter name, as a domain-generation algorithm makes them."""
    rng = random.Random(i)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def test_dga_counts_distinct_nonexistent_registered_domains() -> None:
    infected = [dns(60 * i, "10.0.0.7", f"{_generated(i)}.com", rcode="NXDOMAIN") for i in range(30)]
    infected.append(dns(1900, "10.0.0.7", "www.example.com"))  # its normal lookups do not matter
    # a host retrying one broken name, and one whose search suffix makes every name fail under one domain
    noisy = [dns(10 * i, "10.0.0.8", "printer.old-vendor.com", rcode="NXDOMAIN") for i in range(100)]
    noisy += [dns(10 * i + 5, "10.0.0.8", f"host{i}.corp.example.net", rcode="NXDOMAIN") for i in range(100)]
    noisy += [dns(10 * i + 7, "10.0.0.8", f"{_generated(1000 + i)}.local", rcode="NXDOMAIN") for i in range(50)]
    alerts = of(run(infected + noisy), "dga")
    assert len(alerts) == 1
    a = alerts[0]
    assert a.entities["src_ip"] == "10.0.0.7" and a.attack == ["T1568.002"]
    assert a.details["nx_registered_domains"] == 30 and a.details["nx_answers"] == 30
    assert a.details["mean_label_length"] == 10.0
    assert a.severity == "medium" and len(a.evidence) == 30
    assert "30 distinct registered domains" in (a.explanation or "")
    assert of(run(infected[:24]), "dga") == []  # 24 < 25


def test_dga_from_suricata_nxdomain_answers() -> None:
    from .builders import _eid, at

    def answer(t: float, name: str) -> Event:
        return Event(
            time=at(t),
            source_format="suricata_eve",
            fields={"dns.type": "answer", "dns.rrname": name, "dns.rcode": "NXDOMAIN"},
            tenant="acme",
            event_id=_eid("eve"),
            product="suricata",
            service="dns",
            src_ip="192.168.1.50",
            dst_ip="192.168.1.1",
            dst_port=53,
            protocol="udp",
            domain=name,
            src_internal=True,
            dst_internal=True,
        )

    alerts = of(run([answer(10 * i, f"{_generated(i)}.net") for i in range(40)]), "dga")
    assert [a.details["nx_registered_domains"] for a in alerts] == [40]


# ------------------------------------------------------------------------------ shadow IT


def test_shadow_it_findings_once_with_first_and_last_seen() -> None:
    assets = [
        AssetInfo(hostname="ws01", ips=("10.0.0.10",), has_edr=True),
        AssetInfo(hostname="ws02", ips=("10.0.0.11",), has_edr=False),
    ]
    events = [
        conn(100, "10.0.0.10", "8.8.8.8", 53, proto="udp"),
        conn(200, "10.0.0.11", "8.8.8.8", 53, proto="udp"),
        conn(300, "10.0.0.99", "8.8.8.8", 53, proto="udp"),
        conn(5000, "10.0.0.99", "1.1.1.1", 443),
        conn(DAY + 300, "10.0.0.99", "8.8.8.8", 53, proto="udp"),  # next day: no new finding
        conn(400, "10.0.0.10", "10.0.0.255", 137, proto="udp"),  # broadcast is not a host
    ]
    alerts = of(run(events, assets=assets), "shadow_it")
    found = {a.entities["src_ip"]: a for a in alerts}
    assert set(found) == {"10.0.0.99", "10.0.0.11"}
    assert found["10.0.0.99"].details["finding"] == "unmanaged"
    assert found["10.0.0.99"].severity == "medium"
    assert found["10.0.0.99"].last_seen.timestamp() - found["10.0.0.99"].first_seen.timestamp() == 4700
    assert found["10.0.0.11"].details["finding"] == "no_edr" and found["10.0.0.11"].entities["host"] == "ws02"
    # without an inventory nothing can be judged
    assert of(run(events), "shadow_it") == []
