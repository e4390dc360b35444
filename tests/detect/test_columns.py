"""The batch (columnar) fast paths give exactly what the general paths give."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa

from openmdr.detect.matcher import Column
from openmdr.models.event import events_to_table
from tests.detect.helpers import engine_for, event, matches, rule_text


def _general_keyword_column(rows: list[dict[str, Any]]) -> Column:
    """The keyword column built by the per-row path (mappings that are not dicts take it)."""
    return Column.of_rows([MappingProxyType(r) for r in rows])


def _same_column(a: Column, b: Column) -> None:
    assert a.buf == b.buf
    assert a.count == b.count
    assert np.array_equal(a.seps, b.seps)
    assert a.chunk_rows is not None and b.chunk_rows is not None
    assert np.array_equal(a.chunk_rows, b.chunk_rows)
    assert [list(a.values[r]) for r in range(len(a.values))] == [list(b.values[r]) for r in range(len(b.values))]


def test_keyword_column_fast_path_equals_row_path_ascii_and_unicode() -> None:
    rows: list[dict[str, Any]] = [
        {"Image": "C:\\Windows\\cmd.exe", "EventID": 1, "CommandLine": "cmd /c whoami"},
        {"Image": "C:\\Users\\Zoë\\ünïcode.exe", "EventID": 4688},
        {"Only": "one"},
    ]
    fast = Column.of_rows(rows)
    _same_column(fast, _general_keyword_column(rows))
    assert fast.count == 6
    assert fast.chunk_rows.tolist() == [0, 0, 0, 1, 1, 2]  # type: ignore[union-attr]


def test_keyword_column_other_types_and_empty_rows_take_the_general_path() -> None:
    rows: list[dict[str, Any]] = [
        {"A": 1.0, "B": True, "C": None, "D": ["x", 2]},
        {},
        {"A": "plain"},
    ]
    _same_column(Column.of_rows(rows), _general_keyword_column(rows))


def test_keyword_search_over_mixed_value_types() -> None:
    detection = {"keywords": ["needle", "4688"], "condition": "keywords"}
    rows: list[dict[str, Any]] = [
        {"A": "a NEEDLE here", "B": 7},
        {"EventID": 4688},
        {"A": 1.5, "B": False, "C": None},
        {"L": ["x", "has needle"]},
        {},
        {"A": "need", "B": "le"},  # a keyword never spans two values
    ]
    assert matches(detection, rows) == [True, True, False, True, False, False]


def test_lazy_tests_keep_equal_keys_of_different_types_apart() -> None:
    # 1 and True are equal dict keys; a numeric comparison is true for 1 and false for True.
    detection = {"sel": {"N|gte": 1}, "condition": "sel"}
    assert matches(detection, [{"N": 1}, {"N": True}, {"N": "1"}, {"N": True}, {"N": 1}]) == [
        True,
        False,
        True,
        False,
        True,
    ]


def test_lazy_test_results_carry_over_batches_unchanged() -> None:
    eng = engine_for(rule_text({"sel": {"Ip|cidr": "10.0.0.0/8"}, "condition": "sel"}), batch_size=2)
    rows = [{"Ip": "10.1.2.3"}, {"Ip": "192.168.0.1"}, {"Ip": "10.1.2.3"}, {"Ip": "192.168.0.1"}, {"Ip": "10.9.9.9"}]
    assert [i for i, _ in eng.match([event(r) for r in rows])] == [0, 2, 4]


def _matched_names(eng: Any, rows: list[dict[str, Any]]) -> list[list[str]]:
    return [a.details["matched"] for a in eng.evaluate([event(r) for r in rows])]


def test_matched_detections_read_from_bitmasks_equal_the_per_row_explanation() -> None:
    detection = {
        "sel_img": {"Image|endswith": "\\cmd.exe"},
        "sel_cli": {"CommandLine|contains": "whoami"},
        "filter": {"User": "SYSTEM"},
        "unused": {"Other|re": "^a.c$"},  # not referenced by the condition
        "condition": "(sel_img or sel_cli) and not filter",
    }
    rows: list[dict[str, Any]] = [
        {"Image": "C:\\Windows\\cmd.exe", "CommandLine": "whoami /all", "User": "bob", "Other": "abc"},
        {"Image": "C:\\Windows\\cmd.exe", "CommandLine": "dir", "User": "bob"},
        {"Image": "x.exe", "CommandLine": "whoami", "User": "bob", "Other": "zzz"},
        {"Image": "C:\\Windows\\cmd.exe", "CommandLine": "whoami", "User": "SYSTEM"},
    ]
    eng = engine_for(rule_text(detection))
    ruleset = eng.ruleset
    assert ruleset is not None
    variant = ruleset.variants[0]
    fired = _matched_names(eng, rows)
    per_row = [eng.explain_match(variant, event(r)) for r in rows[:3]]
    assert fired == per_row
    assert fired == [["sel_img", "sel_cli", "unused"], ["sel_img"], ["sel_cli"]]


def test_streaming_table_path_gives_the_same_alerts_and_explanations() -> None:
    detection = {
        "sel": {"CommandLine|contains": "whoami"},
        "kw": ["mimikatz"],
        "condition": "sel or kw",
    }
    rows: list[dict[str, Any]] = [
        {"CommandLine": "whoami"},
        {"Message": "MimiKatz loaded", "N": 3},
        {"CommandLine": "dir"},
    ]
    eng_a = engine_for(rule_text(detection))
    eng_b = engine_for(rule_text(detection))
    events = [event(r) for r in rows]
    table: pa.Table = events_to_table(events)
    from_events = [(a.rule_id, a.evidence, a.details["matched"]) for a in eng_a.evaluate(events)]
    from_table = [(a.rule_id, a.evidence, a.details["matched"]) for a in eng_b.evaluate_table(table)]
    assert from_events == from_table
    assert [m for _, _, m in from_table] == [["sel"], ["kw"]]


def test_keyword_column_with_nul_inside_a_value_keeps_rows_aligned() -> None:
    detection = {"keywords": ["needle"], "condition": "keywords"}
    rows: list[dict[str, Any]] = [{"A": "x\x00y", "B": 2}, {"B": "a needle"}, {"C": "hay"}]
    assert matches(detection, rows) == [False, True, False]
