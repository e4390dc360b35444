"""DetectionService: Arrow batches of the lake layout in, alerts out, tenant overrides, flush."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from openmdr.detect import DetectionService, Engine, TenantOverrides, default_library, library_from_texts
from openmdr.models.event import events_to_table, table_to_events
from openmdr.store.state import StateStore
from tests.detect.helpers import at, event, rule_text
from tests.detect.test_correlation import FAIL, correlation

RULE = rule_text(
    {"sel": {"Action": "fail"}, "condition": "sel"},
    rule_id="00000000-0000-4000-8000-00000000000a",
    name="failed_logon",
    level="low",
)


def _service(*texts: str, overrides: dict[str, TenantOverrides] | None = None) -> DetectionService:
    engine = Engine()
    engine.compile(library_from_texts((f"r{i}.yml", t) for i, t in enumerate(texts)))
    return DetectionService(engine, overrides)


def test_evaluate_arrow_table_with_tenant_overrides() -> None:
    overrides = {
        "globex": TenantOverrides(severity={"00000000-0000-4000-8000-00000000000a": "critical"}),
        "initech": TenantOverrides(disabled=frozenset({"failed_logon"})),
    }
    service = _service(RULE, overrides=overrides)
    events = [
        event({"Action": "fail", "User": "bob"}, tenant=t, event_id=f"e{i}", host="ws1")
        for i, t in enumerate(("acme", "globex", "initech"))
    ]
    alerts = service.evaluate(events_to_table(events))
    assert [(a.tenant, a.severity, a.evidence) for a in alerts] == [
        ("acme", "low", ["e0"]),
        ("globex", "critical", ["e1"]),
    ]
    assert alerts[0].entities == {"host": "ws1"}


def test_correlation_windows_close_on_flush() -> None:
    service = _service(FAIL, correlation("event_count", ["failed_logon"], {"lt": 3}, ["User"]))
    events = [event({"Action": "fail", "User": "bob"}, time=at(0), event_id="x1")]
    assert [a for a in service.evaluate(events_to_table(events)) if a.details.get("correlation_type")] == []
    closed = service.flush()
    assert [a.details["correlation_type"] for a in closed] == ["event_count"]
    assert closed[0].evidence == ["x1"]


def test_rule_pack_is_the_default_and_compiles_whole() -> None:
    library = default_library()
    assert library.sources, "the project's rule pack ships in openmdr/detect/rulepack"
    engine = Engine()
    ruleset = engine.compile(library)
    assert ruleset.problems == [], [p.reason for p in ruleset.problems]
    assert all(m.author for m in ruleset.metas)


def test_table_path_equals_event_path(full_engine: Engine, shared_root: Path) -> None:
    """``evaluate_table`` (events rebuilt for hits only) gives exactly the alerts of ``evaluate``."""
    from tests.detect.test_differential import _events

    events = _events(sorted((shared_root / "datasets" / "otrf").glob("*.zip"))[:3], 1500)
    table = events_to_table(events)
    by_events = [a.to_json_dict() for a in full_engine.evaluate(table_to_events(table))]
    by_table = [a.to_json_dict() for a in full_engine.evaluate_table(table)]
    assert by_table == by_events and len(by_table) > 10
    in_blocks = pa.concat_tables([events_to_table(events[i : i + 256]) for i in range(0, len(events), 256)])
    assert in_blocks.column("fields").num_chunks > 1  # a batch as the ingest pipeline publishes it
    assert [a.to_json_dict() for a in full_engine.evaluate_table(in_blocks)] == by_events


def test_account_management_alerts_name_the_acting_account_too() -> None:
    """A 4728 alert carries the new member (normalized user) and the SubjectUserName that added it."""
    from datetime import UTC, datetime

    from openmdr.detect.alerts import entities_of
    from openmdr.models import Event

    fields = {"EventID": 4728, "SubjectUserName": "a-dohyun.seo", "MemberName": "CN=Hiroshi Tanaka,OU=Ext"}
    event = Event(time=datetime(2026, 2, 4, tzinfo=UTC), source_format="winevent_json", fields=fields,
                  event_code="4728", user="Hiroshi Tanaka", host="DC01")  # fmt: skip
    assert entities_of([event])["user"] == ["Hiroshi Tanaka", "a-dohyun.seo"]
    machine = Event(time=event.time, source_format="winevent_json", fields={**fields, "SubjectUserName": "DC01$"},
                    event_code="4728", user="Hiroshi Tanaka")  # fmt: skip
    assert entities_of([machine])["user"] == "Hiroshi Tanaka"
    logon = Event(time=event.time, source_format="winevent_json", fields={"SubjectUserName": "svc"},
                  event_code="4624", user="alice")  # fmt: skip
    assert entities_of([logon])["user"] == "alice"


def test_follow_switches_to_the_active_library_and_closes_old_windows(state_store: StateStore, tmp_path: Path) -> None:
    """A library installed in the rule store is evaluated from the next batch; open windows are not lost."""
    from openmdr.store.rules import RuleStore

    rules = RuleStore(state_store)
    rules.install(library_from_texts([("fail.yml", FAIL), ("burst.yml", correlation(
        "event_count", ["failed_logon"], {"lt": 3}, ["User"]))]), "v1", "alice")  # fmt: skip
    service = DetectionService.from_rule_store(rules, cache_dir=tmp_path / "cache")
    assert service.library_version == 1 and service.follow(rules) == []  # nothing changed: nothing done
    fail = event({"Action": "fail", "User": "bob"}, time=at(0), event_id="x1")
    assert service.evaluate(events_to_table([fail])) == []  # a correlation's member rule: its window opens

    send = rule_text({"sel": {"Action": "send"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-00000000000c")
    rules.install(library_from_texts([("send.yml", send)]), "v2", "alice")
    closed = service.follow(rules)  # the old ruleset's open event_count window closes with its alert
    assert [(a.details["correlation_type"], a.evidence) for a in closed] == [("event_count", ["x1"])]
    assert service.library_version == 2
    sent = event({"Action": "send"}, time=at(10), event_id="x2")
    batch = events_to_table([fail, sent])
    assert [a.rule_id for a in service.evaluate(batch)] == ["00000000-0000-4000-8000-00000000000c"]

    rules.activate(1, "bob")  # rolled back: the first library again
    assert service.follow(rules) == [] and service.library_version == 1
    assert service.evaluate(batch) == []  # no send rule any more; the failure opens a window again
    assert [a.details["correlation_type"] for a in service.flush()] == ["event_count"]


def test_concurrent_follows_leave_the_newest_library(
    state_store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install whose compile is slow cannot overwrite a newer library that another install switched to."""
    import openmdr.detect.service as service_module
    from openmdr.store.rules import RuleStore

    rules = RuleStore(state_store)
    rules.install(library_from_texts([("fail.yml", FAIL)]), "v1", "alice")
    service = DetectionService.from_rule_store(rules, cache_dir=tmp_path / "cache")
    send = rule_text({"sel": {"Action": "send"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-00000000000d")
    rules.install(library_from_texts([("send.yml", send)]), "v2", "alice")

    compiling, release = threading.Event(), threading.Event()
    real = service_module._compiled

    def slow_first(library: object, cache_dir: Path | None) -> Engine:
        if not compiling.is_set():  # the first follow: it read version 2 and now compiles slowly
            compiling.set()
            assert release.wait(10)
        return real(library, cache_dir)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "_compiled", slow_first)
    first = threading.Thread(target=service.follow, args=(rules,))
    first.start()
    assert compiling.wait(10)
    rules.install(library_from_texts([("fail.yml", FAIL), ("send.yml", send)]), "v3", "bob")
    second = threading.Thread(target=service.follow, args=(rules,))
    second.start()
    second.join(0.5)  # time for a follow that did not wait its turn to finish (it would switch to v3 first)
    release.set()
    first.join(10)
    second.join(10)
    assert service.library_version == 3
