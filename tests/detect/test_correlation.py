"""Correlation rules (Sigma v2.1) with hand-computed windows, in batch and in streaming mode."""

from __future__ import annotations

from typing import Any

import yaml

from openmdr.detect.correlation import longest_ordered_run, percentile
from openmdr.models.alert import Alert
from tests.detect.helpers import at, engine_for, event, rule_text

FAIL = rule_text(
    {"sel": {"Action": "fail"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-00000000000a", name="failed_logon"
)
OK = rule_text(
    {"sel": {"Action": "ok"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-00000000000b", name="good_logon"
)
SEND = rule_text(
    {"sel": {"Action": "send"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-00000000000c", name="send"
)


def correlation(
    ctype: str, rules: list[str], condition: Any, group_by: list[str] | None = None, timespan: str = "60s", **extra: Any
) -> str:
    """YAML of a correlation rule."""
    body: dict[str, Any] = {"type": ctype, "rules": rules, "timespan": timespan}
    if group_by:
        body["group-by"] = group_by
    if condition is not None:
        body["condition"] = condition
    body.update(extra)
    doc = {
        "title": f"{ctype} correlation",
        "id": "00000000-0000-4000-8000-0000000000cc",
        "author": "OpenMDR tests",
        "level": "high",
        "correlation": body,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def run(texts: list[str], events: list[Any], batch: int | None = None) -> list[Alert]:
    """Correlation alerts over ``events`` (all at once, or ``batch`` events per call)."""
    eng = engine_for(*texts)
    alerts: list[Alert] = []
    size = batch or len(events)
    for i in range(0, len(events), size):
        alerts.extend(eng.evaluate(events[i : i + size]))
    alerts.extend(eng.flush())
    return [a for a in alerts if a.rule_id == "00000000-0000-4000-8000-0000000000cc"]


def fail(t: float, user: str = "bob", **fields: Any) -> Any:
    return event({"Action": "fail", "User": user, **fields}, time=at(t))


def test_event_count_window_and_group_by() -> None:
    # bob fails at 0, 10, 50, 70, 75: window [t-60, t] holds 3 first at t=50 (0, 10, 50) -> alert,
    # window reset; then 70, 75 are only 2.  alice fails 3 times but spread over 200 s: no alert.
    evs = [fail(0), fail(10), fail(50), fail(70), fail(75)] + [fail(t, "alice") for t in (0, 100, 200)]
    evs.sort(key=lambda e: e.time)
    for batch in (None, 1, 2):
        alerts = run([FAIL, correlation("event_count", ["failed_logon"], {"gte": 3}, ["User"])], evs, batch)
        assert len(alerts) == 1, batch
        a = alerts[0]
        assert a.event_count == 3
        assert (a.first_seen, a.last_seen) == (at(0), at(50))
        assert a.details["group"] == {"User": "bob"}
        assert a.author == "OpenMDR tests"


def test_event_count_burst_resets_window() -> None:
    evs = [fail(t) for t in range(10)]  # 10 failures within 10 s, gte 3 -> 3 alerts (events 0-2, 3-5, 6-8)
    alerts = run([FAIL, correlation("event_count", ["failed_logon"], {"gte": 3})], evs)
    assert [a.event_count for a in alerts] == [3, 3, 3]
    assert [a.first_seen for a in alerts] == [at(0), at(3), at(6)]


def test_event_count_lt_closed_window() -> None:
    # lt 3 in a 60 s window opened by the first match: bob has 2 (alert at window close), carol 4 (none)
    evs = [fail(0, "bob"), fail(30, "bob"), *[fail(t, "carol") for t in (1, 2, 3, 4)], fail(200, "dave")]
    evs.sort(key=lambda e: e.time)
    alerts = run([FAIL, correlation("event_count", ["failed_logon"], {"lt": 3}, ["User"])], evs)
    groups = sorted(a.details["group"]["User"] for a in alerts)
    assert groups == ["bob", "dave"]


def test_value_count() -> None:
    # distinct users per source ip within 60 s reaching 3: at t=20 (u1, u2, u1, u3)
    evs = [fail(t, u, IpAddress="10.0.0.9") for t, u in ((0, "u1"), (5, "u2"), (10, "U1"), (20, "u3"))]
    alerts = run([FAIL, correlation("value_count", ["failed_logon"], {"gte": 3, "field": "User"}, ["IpAddress"])], evs)
    assert len(alerts) == 1
    assert alerts[0].details["metric"] == 3
    assert alerts[0].last_seen == at(20)


def test_temporal_and_ordered() -> None:
    ok = event({"Action": "ok", "User": "bob"}, time=at(30))
    send = event({"Action": "send", "User": "bob"}, time=at(40))
    early_send = event({"Action": "send", "User": "bob"}, time=at(5))
    rules = [FAIL, OK, SEND]
    names = ["failed_logon", "good_logon", "send"]
    # all three within 60 s -> temporal fires at t=40
    alerts = run([*rules, correlation("temporal", names, None, ["User"])], [fail(10), ok, send])
    assert len(alerts) == 1 and alerts[0].last_seen == at(40)
    # ordered: send at 5 comes before fail at 10 and ok at 30: still no ordered run of 3 until send at 40
    alerts = run([*rules, correlation("temporal_ordered", names, None, ["User"])], [early_send, fail(10), ok])
    assert alerts == []
    alerts = run([*rules, correlation("temporal_ordered", names, None, ["User"])], [early_send, fail(10), ok, send])
    assert len(alerts) == 1
    assert alerts[0].event_count == 3 and alerts[0].first_seen == at(10)
    # outside the timespan: fail at 0, ok at 30, send at 70 -> nothing
    late = event({"Action": "send", "User": "bob"}, time=at(70))
    assert run([*rules, correlation("temporal", names, None, ["User"])], [fail(0), ok, late]) == []


def test_value_sum_avg_percentile() -> None:
    evs = [event({"Action": "send", "Host": "h1", "Bytes": b}, time=at(t)) for t, b in ((0, 100), (10, 300), (20, 800))]
    sums = run([SEND, correlation("value_sum", ["send"], {"gte": 1000, "field": "Bytes"}, ["Host"])], evs)
    assert len(sums) == 1 and sums[0].details["metric"] == 1200
    avgs = run([SEND, correlation("value_avg", ["send"], {"gt": 350, "field": "Bytes"}, ["Host"])], evs)
    # running averages 100, 200, 400 -> fires at the third
    assert len(avgs) == 1 and avgs[0].details["metric"] == 400
    p = run(
        [SEND, correlation("value_percentile", ["send"], {"gte": 500, "field": "Bytes", "percentile": 50}, ["Host"])],
        evs,
    )
    # medians 100, 200, 300 -> never 500
    assert p == []
    p = run(
        [SEND, correlation("value_percentile", ["send"], {"gte": 500, "field": "Bytes", "percentile": 90}, ["Host"])],
        evs,
    )
    # 90th percentile of (100, 300, 800) = 300 + 0.8 * 500 = 700 -> fires at the third
    assert len(p) == 1 and p[0].details["metric"] == 700


def test_streaming_equals_batch_and_state_is_bounded() -> None:
    evs = [fail(t * 7 % 300, f"user{t % 13}") for t in range(400)]
    evs.sort(key=lambda e: e.time)
    texts = [FAIL, correlation("event_count", ["failed_logon"], {"gte": 4}, ["User"])]
    whole = sorted((a.first_seen, a.last_seen, a.entities.get("user")) for a in run(texts, evs))
    streamed = sorted((a.first_seen, a.last_seen, a.entities.get("user")) for a in run(texts, evs, batch=7))
    assert whole == streamed and whole
    eng = engine_for(*texts, max_correlation_groups=5)
    eng.evaluate(evs)
    assert eng.correlation_stats["groups"] <= 5
    assert eng.correlation_stats["evicted_groups"] > 0


def test_helpers() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    assert longest_ordered_run([2, 0, 1, 2]) == [1, 2, 3]
