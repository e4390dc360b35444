"""Identity analytics on hand-built logon stories with known outcomes."""

from __future__ import annotations

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings
from openmdr.models import Alert, Event, TenantInfo

from .builders import file_access, group_added, logon

DAY = 86_400.0
BERLIN = TenantInfo(name="acme", timezone="Europe/Berlin", working_hours=(8, 18), working_days=(0, 1, 2, 3, 4))


def run(events: list[Event], settings: AnalyticsSettings | None = None, tenant: TenantInfo = BERLIN) -> list[Alert]:
    return AnalyticsEngine(settings, tenants=[tenant]).analyze(events)


def by_source(alerts: list[Alert], name: str) -> list[Alert]:
    return [a for a in alerts if a.source == f"analytics:{name}"]


def test_brute_force_then_success_from_one_source() -> None:
    attacker = "45.13.113.5"
    events = [logon(10 * i, "alice", src=attacker, failed=True) for i in range(25)]
    events.append(logon(260, "alice", src=attacker))
    alerts = run(events)
    brute = by_source(alerts, "brute_force_source")
    assert len(brute) == 1  # one alert per burst, not one per failure
    assert brute[0].entities["src_ip"] == attacker
    assert brute[0].details["failures"] == 20 and brute[0].details["threshold"] == 20
    assert brute[0].attack == ["T1110.001"]
    assert len(brute[0].evidence) == 20
    user = by_source(alerts, "brute_force_user")
    assert len(user) == 1 and user[0].entities["user"] == "alice" and user[0].details["failures"] == 15
    success = by_source(alerts, "logon_after_failures")
    assert len(success) == 1
    assert success[0].severity == "high"
    assert success[0].details["failures"] == 25
    assert events[-1].event_id in success[0].evidence
    assert "after 25 failures" in (success[0].explanation or "")


def test_password_spray_is_told_apart_from_brute_force() -> None:
    sprayer = "91.198.100.7"
    events = [logon(5 * i, f"user{i:02d}", src=sprayer, failed=True, product="linux") for i in range(12)]
    alerts = run(events)
    spray = by_source(alerts, "password_spray")
    assert len(spray) == 1
    assert spray[0].details["distinct_users"] == 10  # fires as soon as the threshold is met
    assert spray[0].details["attempts_per_user"] == 1.0
    assert spray[0].attack == ["T1110.003"]
    assert not by_source(alerts, "brute_force_source")


def test_few_failures_then_success_is_quiet() -> None:
    events = [logon(0, "bob", failed=True), logon(5, "bob", failed=True), logon(10, "bob")]
    assert run(events) == []


def test_impossible_travel() -> None:
    events = [
        logon(0, "alice", src="85.214.1.1", country="DE", lat=52.52, lon=13.405),
        logon(1800, "alice", src="10.0.0.9"),  # internal, unlocated: ignored for travel
        logon(3600, "alice", src="8.8.4.4", country="US", lat=40.7128, lon=-74.006),
        logon(3600 + 10 * 3600, "alice", src="8.8.4.4", country="US", lat=40.7128, lon=-74.006),
    ]
    travel = by_source(run(events), "impossible_travel")
    assert len(travel) == 1
    d = travel[0].details
    # Berlin - New York is about 6,385 km, covered in one hour
    assert 6350 < d["distance_km"] < 6420
    assert d["elapsed_s"] == 3600
    assert d["speed_kmh"] == d["distance_km"]
    assert travel[0].evidence == [events[0].event_id, events[2].event_id]
    assert "km/h > 900 km/h" in (travel[0].explanation or "")


def test_plausible_travel_is_quiet() -> None:
    events = [
        logon(0, "carol", src="85.214.1.1", country="DE", lat=52.52, lon=13.405),
        # Berlin -> Paris (~880 km) in 3 hours: 293 km/h
        logon(3 * 3600, "carol", src="51.15.1.1", country="FR", lat=48.8566, lon=2.3522),
    ]
    assert not by_source(run(events), "impossible_travel")


def _german_office(days: int = 4, users: int = 10) -> list[Event]:
    """``users`` colleagues logging on over the VPN from Germany every working day."""
    return [
        logon(DAY * d + 9 * 3600 + 60 * u, f"user{u}", src=f"85.214.1.{u + 1}", country="DE")
        for d in range(days)
        for u in range(users)
    ]


def test_new_country_after_warm_up() -> None:
    # alice and nine colleagues log on from Germany on 4 working days, then alice from Brazil
    events = _german_office()
    events.append(logon(DAY * 4 + 10 * 3600, "user0", src="177.1.1.1", country="BR"))
    alerts = by_source(run(events), "new_country_logon")
    assert len(alerts) == 1
    d = alerts[0].details
    assert d["country"] == "BR" and d["new_for_tenant"] and d["tenant_located_logons"] == 40
    assert alerts[0].severity == "high"
    assert "DE" in (alerts[0].explanation or "")


def test_coming_home_to_the_tenants_country_is_not_new() -> None:
    # bob's first located logons are from a business trip to Japan; back home in Germany, where the
    # tenant's logons come from, is not unusual, while a third country for him is
    events = _german_office(days=3)
    events += [logon(DAY * d + 2 * 3600, "bob", src="133.1.1.1", country="JP") for d in range(3)]
    events.append(logon(DAY * 3 + 9 * 3600, "bob", src="85.214.9.9", country="DE"))
    events.append(logon(DAY * 4 + 9 * 3600, "bob", src="5.9.1.1", country="FR"))
    alerts = by_source(run(events), "new_country_logon")
    assert [(a.details["country"], a.details["new_for_tenant"], a.severity) for a in alerts] == [("FR", True, "high")]


def test_new_country_waits_for_the_tenants_own_history() -> None:
    # three days, but only six located logons in the tenant: Germany is not "new" for anyone yet
    events = [logon(DAY * d + 9 * 3600, f"u{d}", src="85.214.1.1", country="DE") for d in range(3)]
    events += [logon(DAY * 3 + 9 * 3600, f"v{d}", src="85.214.1.2", country="DE") for d in range(3)]
    events.append(logon(DAY * 3 + 10 * 3600, "newcomer", src="5.9.1.1", country="FR"))
    assert by_source(run(events), "new_country_logon") == []


def test_new_country_not_before_tenant_warm_up() -> None:
    events = [
        logon(9 * 3600, "alice", src="85.214.1.1", country="DE"),
        logon(10 * 3600, "alice", src="177.1.1.1", country="BR"),
    ]
    assert not by_source(run(events), "new_country_logon")


def test_offhours_logon_judged_against_tenant_time_and_user_profile() -> None:
    events: list[Event] = []
    # 30 days: alice at 09:00 Berlin (08:00 UTC in January), bob late at 22:00 Berlin (21:00 UTC)
    for d in range(30):
        events.append(logon(DAY * d + 8 * 3600, "alice"))
        events.append(logon(DAY * d + 21 * 3600, "bob"))
    # day 33 = Saturday 2024-02-03: alice at 03:00 Berlin, bob at his usual 22:00
    events.append(logon(DAY * 33 + 2 * 3600, "alice"))
    events.append(logon(DAY * 33 + 21 * 3600, "bob"))
    # a network logon (type 3) at night is machine noise, not judged
    events.append(logon(DAY * 33 + 3 * 3600, "alice", logon_type="3"))
    alerts = by_source(run(events), "offhours_logon")
    late = {a.entities["user"]: a for a in alerts}
    assert "alice" in late
    a = late["alice"]
    assert a.details["local_hour"] == 3 and a.details["weekday"] == 5
    assert a.details["user_hour_share"] == 0.0
    assert a.severity == "medium"
    # bob works late every day: 22:00 is usual for him even though it is outside working hours
    assert [x for x in alerts if x.entities["user"] == "bob" and x.details["weekday"] == 5] == []
    # when the tenant warm-up ended bob already had two evenings on record: never unusual
    assert [x for x in alerts if x.entities["user"] == "bob"] == []
    assert len(alerts) == 1


def test_first_logon_of_unknown_user_at_night_is_low() -> None:
    events = [logon(DAY * d + 8 * 3600, "alice") for d in range(3)]
    events.append(logon(DAY * 5 + 2 * 3600, "contractor", src="45.13.113.77", country="RO"))  # Saturday 03:00
    alerts = by_source(run(events), "offhours_logon")
    assert len(alerts) == 1
    assert alerts[0].entities["user"] == "contractor" and alerts[0].severity == "low"
    assert "not established" in (alerts[0].explanation or "")


def test_first_seen_host_for_established_user() -> None:
    events = [logon(DAY * (d // 8) + 3600 * (8 + d % 8), "alice", host="ws01") for d in range(32)]
    events.append(logon(DAY * 4 + 10 * 3600, "alice", host="srv-finance"))
    alerts = by_source(run(events), "first_seen_host")
    assert [a.details["host"] for a in alerts] == ["srv-finance"]
    assert alerts[0].severity == "low"


def test_privileged_group_change() -> None:
    events = [
        group_added(0, "Domain Admins", "CN=eve,OU=Users,DC=acme,DC=local"),
        group_added(10, "Print Spoolers", "CN=bob,OU=Users,DC=acme,DC=local"),
    ]
    alerts = by_source(run(events), "privileged_group_change")
    assert len(alerts) == 1
    assert alerts[0].details["group"] == "Domain Admins"
    assert alerts[0].attack == ["T1098"] and alerts[0].severity == "high"


def test_bulk_file_access_against_user_baseline() -> None:
    events: list[Event] = []
    for hour in range(10):  # ten normal hours of 40-60 accesses
        n = 40 + (hour % 3) * 10
        events.extend(file_access(hour * 3600 + i * 30, "dave") for i in range(n))
    events.extend(file_access(12 * 3600 + i * 2, "dave") for i in range(900))  # staging
    alerts = by_source(run(events), "bulk_file_access")
    assert len(alerts) == 1
    d = alerts[0].details
    assert d["count"] == d["threshold"] == 500  # max(500 minimum, mean + 4 sd) when the baseline is small
    assert d["baseline_windows"] == 10
    assert alerts[0].attack == ["T1039"]


def test_bulk_file_access_cold_threshold() -> None:
    events = [file_access(i, "erin") for i in range(1500)]
    assert not by_source(run(events), "bulk_file_access")
    events = [file_access(i, "erin") for i in range(2100)]
    alerts = by_source(run(events), "bulk_file_access")
    assert len(alerts) == 1 and alerts[0].details["threshold"] == 2000


def test_machine_and_service_accounts_are_not_profiled() -> None:
    events = [logon(DAY * 3 + i, "ws01$", src="10.0.0.9") for i in range(5)]
    events += [logon(DAY * 3 + 10 + i, "SYSTEM", src="10.0.0.9") for i in range(5)]
    engine = AnalyticsEngine(tenants=[BERLIN])
    assert engine.analyze(events) == []
    assert engine.state_size().get("identity.user", 0) == 0


def test_thresholds_come_from_tenant_overrides() -> None:
    events = [logon(10 * i, "alice", src="45.13.113.5", failed=True) for i in range(8)]
    assert not by_source(run(events), "brute_force_source")
    settings = AnalyticsSettings(tenants={"acme": {"identity": {"brute_source_failures": 5}}})
    alerts = by_source(run(events, settings), "brute_force_source")
    assert len(alerts) == 1 and alerts[0].details["threshold"] == 5


def _auth(t: float, **kw: object) -> Event:
    """An authentication-related event shaped like the Windows, syslog or CloudTrail parser output."""
    from .builders import _eid, at

    values: dict[str, object] = {"time": at(t), "source_format": "winevent_json", "fields": {}, "tenant": "acme"}
    values.update(kw)
    values["event_id"] = _eid("auth")
    return Event(**values)  # type: ignore[arg-type]


def test_kerberos_and_ntlm_failures_feed_brute_force() -> None:
    # 4771 pre-authentication failures from one workstation, as the parser gives them
    kerberos = [
        _auth(5 * i, product="windows", event_code="4771", action="kerberos_preauth_failed", outcome="failure",
              user=f"svc{i % 2}", src_ip="10.0.0.99", src_internal=True, fields={"Status": "0x18"})
        for i in range(20)
    ]  # fmt: skip
    alerts = run(kerberos)
    brute = by_source(alerts, "brute_force_source")
    assert len(brute) == 1 and brute[0].details["failures"] == 20
    # NTLM 4776 without an outcome: the Status field alone says it failed (0xc000006a = bad password)
    ntlm = [
        _auth(5 * i, product="windows", event_code="4776", action="ntlm_authentication", user="carol",
              fields={"Status": "0xc000006a", "Workstation": "WS7"})
        for i in range(15)
    ]  # fmt: skip
    ntlm.append(_auth(100, product="windows", event_code="4776", action="ntlm_authentication", user="carol",
                      fields={"Status": "0x0"}))  # fmt: skip
    alerts = run(ntlm)
    assert by_source(alerts, "brute_force_user")[0].details["failures"] == 15
    assert by_source(alerts, "logon_after_failures")[0].details["failures"] == 15


def test_sudo_password_guessing_then_success() -> None:
    fails = [
        _auth(10 * i, source_format="syslog", product="linux", service="sudo", action="sudo_failed",
              outcome="failure", user="bob", host="web01")
        for i in range(15)
    ]  # fmt: skip
    ok = _auth(200, source_format="syslog", product="linux", service="sudo", action="sudo_command",
               outcome="success", user="bob", host="web01")  # fmt: skip
    alerts = run([*fails, ok])
    assert by_source(alerts, "brute_force_user")[0].entities["user"] == "bob"
    success = by_source(alerts, "logon_after_failures")
    assert len(success) == 1 and ok.event_id in success[0].evidence


def test_linux_group_change_from_usermod_and_gpasswd() -> None:
    events = [
        _auth(0, source_format="syslog", product="linux", service="usermod", host="web01",
              message="add 'mallory' to group 'sudo'"),
        _auth(1, source_format="syslog", product="linux", service="usermod", host="web01",
              message="add 'mallory' to shadow group 'sudo'"),
        _auth(2, source_format="syslog", product="linux", service="gpasswd", host="db01",
              message="user trent added by root to group wheel"),
        _auth(3, source_format="syslog", product="linux", service="usermod", host="web01",
              message="add 'bob' to group 'docker-users'"),
    ]  # fmt: skip
    alerts = by_source(run(events), "privileged_group_change")
    assert [(a.details["group"], a.details["member"]) for a in alerts] == [
        ("sudo", "mallory"),
        ("sudo", "mallory"),
        ("wheel", "trent"),
    ]


def test_windows_group_member_in_distinguished_name_form() -> None:
    alerts = by_source(
        run([group_added(0, "Domain Admins", "CN=eve,OU=Users,DC=acme,DC=local")]), "privileged_group_change"
    )
    assert alerts[0].details["member"] == "eve"
    # the member and the account that added it are both entities (the actor ties it to an intrusion)
    assert alerts[0].entities["user"] == ["eve", "admin"]


def test_first_seen_source_compares_external_networks_not_addresses() -> None:
    # alice works from home (85.214.1.x, her provider re-assigns the last octet) for a week
    events = [
        logon(DAY * (k // 6) + 3600 * (8 + k % 6), "alice", src=f"85.214.1.{k % 5 + 1}", host="vpn-gw")
        for k in range(30)
    ]
    events.append(logon(DAY * 5 + 9 * 3600, "alice", src="85.214.1.77", host="vpn-gw"))  # same /24
    events.append(logon(DAY * 5 + 10 * 3600, "alice", src="91.198.100.5", host="vpn-gw"))  # new network
    alerts = by_source(run(events), "first_seen_source")
    assert [(a.details["source"], a.details["source_key"]) for a in alerts] == [("91.198.100.5", "91.198.100.0/24")]


def test_cloud_console_login_is_a_logon_but_other_api_calls_are_not() -> None:
    def cloud(t: float, name: str, outcome: str = "success") -> Event:
        return _auth(t, source_format="cloudtrail", product="aws", service="cloudtrail", event_code=name,
                     action=name, outcome=outcome, user="ops", src_ip="45.13.113.5", src_internal=False)  # fmt: skip

    probes = [cloud(10 * i, "GetLoginProfile", "failure") for i in range(20)]
    assert run(probes) == []  # API errors are not failed logons
    logins = [cloud(10 * i, "ConsoleLogin", "failure") for i in range(20)]
    assert by_source(run(logins), "brute_force_source")[0].details["failures"] == 20


def test_linux_useradd_is_an_account_creation() -> None:
    event = _auth(
        0,
        source_format="syslog",
        product="linux",
        service="useradd",
        host="web01",
        message="new user: name=backdoor, UID=1001, GID=1001, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
    )
    alerts = by_source(run([event]), "account_created")
    assert len(alerts) == 1
    assert alerts[0].details["account"] == "backdoor" and alerts[0].attack == ["T1136.001"]
