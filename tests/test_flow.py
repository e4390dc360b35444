"""The detect -> correlate -> respond wiring: failures are contained and kept, micro-batches change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from openmdr.bus import TOPIC_ALERTS, TOPIC_EVENTS, InProcessBus
from openmdr.flow import DetectionFlow, StageDetector
from openmdr.models import Alert, Case, Event, Rejection, TenantInfo, events_to_table

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _events(n: int, tenant: str = "acme") -> pa.Table:
    return events_to_table([
        Event(time=T0 + timedelta(seconds=i), source_format="json", fields={"n": i}, tenant=tenant,
              event_id=f"{tenant}-{i}", ingested_at=T0, host=f"ws-{i % 3}")
        for i in range(n)
    ])  # fmt: skip


def _alert_per_row(table: pa.Table) -> list[Alert]:
    return [
        Alert(tenant=t, rule_id="r1", title="hit", severity="high", source="sigma", first_seen=T0, last_seen=T0,
              evidence=[e])
        for t, e in zip(table.column("tenant").to_pylist(), table.column("event_id").to_pylist(), strict=True)
    ]  # fmt: skip


class Cases:
    """The case-service side the flow talks to, recording what it was given."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def add_alerts(self, alerts: list[Alert]) -> list[dict[str, Any]]:
        self.alerts.extend(alerts)
        return [{"tenant": a.tenant, "case_id": "C-1", "kind": "opened"} for a in alerts[:1]]

    def get(self, tenant: str, case_id: str) -> Case | None:
        return Case(case_id=case_id, tenant=tenant, title="t", severity="high")


def test_a_failing_detector_is_counted_and_kept_and_the_others_still_run() -> None:
    bus, kept = InProcessBus(), []

    def broken(_table: pa.Table) -> list[Alert]:
        raise RuntimeError("rule compiler bug")

    cases = Cases()
    flow = DetectionFlow(bus, [StageDetector("broken", broken), StageDetector("sigma", _alert_per_row)], cases,
                         on_failure=kept.append).attach()  # fmt: skip
    bus.publish(TOPIC_EVENTS, _events(4))
    assert flow.stats.errors["broken"] == 1 and flow.stats.alerts["sigma"] == 4
    assert len(cases.alerts) == 4
    (letter,) = kept
    assert isinstance(letter, Rejection) and letter.stage == "broken" and b"acme-3" in letter.payload
    assert letter.tenant == "acme" and "rule compiler bug" in letter.reason


def test_a_malformed_alert_message_is_dead_lettered_without_losing_the_rest() -> None:
    bus, kept, cases = InProcessBus(), [], Cases()
    DetectionFlow(bus, [], cases, on_failure=kept.append).attach()
    good = _alert_per_row(_events(1))[0].to_json_dict()
    bus.publish(TOPIC_ALERTS, [good, {"tenant": "acme", "title": "no times"}, "not even a mapping"])
    assert [a.alert_id for a in cases.alerts] == [good["alert_id"]]
    assert len(kept) == 2 and all(r.stage == "correlate" for r in kept)


def test_micro_batching_detects_the_same_alerts_once_per_window() -> None:
    calls: list[int] = []

    def counting(table: pa.Table) -> list[Alert]:
        calls.append(table.num_rows)
        return _alert_per_row(table)

    bus, cases = InProcessBus(), Cases()
    flow = DetectionFlow(bus, [StageDetector("sigma", counting)], cases).attach()
    flow.hold()
    for tenant in ("acme", "globex", "initech"):
        bus.publish(TOPIC_EVENTS, _events(5, tenant))
    assert calls == [] and cases.alerts == []
    flow.drain()
    assert calls == [15]
    assert sorted({a.tenant for a in cases.alerts}) == ["acme", "globex", "initech"] and len(cases.alerts) == 15
    bus.publish(TOPIC_EVENTS, _events(2))  # no longer holding: straight through
    assert calls == [15, 2]


def test_sigma_stage_follows_a_library_activated_elsewhere(tmp_path: Any) -> None:
    """A library installed by another process is evaluated once the stage's next check comes round."""
    from openmdr.detect import library_from_texts
    from openmdr.flow import LIBRARY_CHECK_SECONDS, platform_detectors
    from openmdr.models.event import EVENT_SCHEMA
    from openmdr.runtime import Platform

    platform = Platform.from_data_dir(tmp_path / "data")
    try:
        now = [1000.0]
        sigma = platform_detectors(platform, monotonic=lambda: now[0])[0]
        assert sigma.name == "sigma" and platform.detection.library_version is None  # the rule pack
        rule = "title: t\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: windows}\n"
        rule += "detection: {sel: {EventID: 1}, condition: sel}\n"
        platform.rules.install(library_from_texts([("r.yml", rule)]), "cli", "alice")  # e.g. `openmdr rules install`
        empty = EVENT_SCHEMA.empty_table()
        sigma.detect(empty)
        assert platform.detection.library_version is None  # not checked yet
        platform.state.create_tenant(TenantInfo(name="acme"), actor="test")
        platform.rules.set_enabled("acme", "11111111-1111-4111-8111-111111111111", False, "bob")  # e.g. the CLI
        now[0] += LIBRARY_CHECK_SECONDS
        sigma.detect(empty)
        assert platform.detection.library_version == 1
        assert "11111111-1111-4111-8111-111111111111" in platform.detection.engine.overrides["acme"].disabled
        platform.rules.set_severity("acme", "11111111-1111-4111-8111-111111111111", "low", "bob")  # same library
        now[0] += LIBRARY_CHECK_SECONDS
        sigma.detect(empty)
        assert platform.detection.engine.overrides["acme"].severity == {"11111111-1111-4111-8111-111111111111": "low"}
    finally:
        platform.close()
