"""The batch (columnar) fast paths give exactly what the general paths give."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from openmdr.detect import matcher
from openmdr.detect.alerts import entities_of, event_entities
from openmdr.detect.engine import decode_fields, events_of_rows
from openmdr.detect.logsource import SourceResolver
from openmdr.detect.matcher import Column
from openmdr.detect.text import value_texts
from openmdr.models.event import events_to_table, table_to_events
from tests.detect.helpers import T0, engine_for, event, matches, rule_text


def _general_keyword_column(rows: list[dict[str, Any]]) -> Column:
    """The keyword column built by the per-row path (mappings that are not dicts take it)."""
    return Column.of_rows([MappingProxyType(r) for r in rows])


def _row_texts(col: Column) -> list[list[bytes]]:
    """The distinct texts each row offers to the scanner, read off the framed buffer and the chunk -> row map."""
    assert len(col.seps) == col.count + 1
    chunks = col.buf[1:-1].split(b"\x00") if col.count else []
    assert len(chunks) == col.count
    n = len(col.values)
    bits = col.row_bits(np.eye(col.count, col.count + 1, dtype=bool), n)
    return [sorted(chunks[c] for c in np.flatnonzero(bits[:, r]).tolist()) for r in range(n)]


def _same_column(a: Column, b: Column) -> None:
    assert _row_texts(a) == _row_texts(b)
    # what regular-expression confirmation reads of each row (a null value offers no text)
    assert [value_texts(list(a.values[r])) for r in range(len(a.values))] == [
        value_texts(list(b.values[r])) for r in range(len(b.values))
    ]


def test_keyword_column_fast_path_equals_row_path_ascii_and_unicode() -> None:
    rows: list[dict[str, Any]] = [
        {"Image": "C:\\Windows\\cmd.exe", "EventID": 1, "CommandLine": "cmd /c whoami"},
        {"Image": "C:\\Users\\Zoë\\ünïcode.exe", "EventID": 4688},
        {"Only": "one"},
    ]
    fast = Column.of_rows(rows)
    _same_column(fast, _general_keyword_column(rows))
    assert fast.count == 6
    assert _row_texts(fast) == [
        sorted([b"C:\\Windows\\cmd.exe", b"1", b"cmd /c whoami"]),
        sorted(["C:\\Users\\Zoë\\ünïcode.exe".encode(), b"4688"]),
        [b"one"],
    ]


def test_repeated_values_are_framed_once_and_mapped_to_every_row() -> None:
    rows: list[dict[str, Any]] = [
        {"Image": "C:\\a.exe", "EventID": 1},
        {"Image": "C:\\a.exe", "EventID": "1"},
        {"Image": "C:\\b.exe", "Other": "C:\\a.exe"},
    ]
    fast = Column.of_rows(rows)
    assert fast.count == 4  # a.exe, 1, "1" (a string, kept apart from the integer), b.exe
    _same_column(fast, _general_keyword_column(rows))
    field = Column.of_values([r.get("Image") for r in rows] + [None])
    assert field.count == 2
    assert _row_texts(field) == [[b"C:\\a.exe"], [b"C:\\a.exe"], [b"C:\\b.exe"], []]


def test_keyword_column_with_null_values_equals_row_path() -> None:
    rows: list[dict[str, Any]] = [{"A": None, "B": "x", "C": 3}, {"A": None}, {}, {"B": "x", "D": None}]
    fast = Column.of_rows(rows)
    _same_column(fast, _general_keyword_column(rows))
    assert _row_texts(fast) == [[b"3", b"x"], [], [], [b"x"]]
    detection = {"keywords": ["x", "3"], "condition": "keywords"}
    assert matches(detection, [*rows, {"A": None, "E": "no"}]) == [True, False, False, True, False]


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


def test_distinct_value_columns_keep_equal_values_of_different_types_apart() -> None:
    # 1, True and 1.0 are equal dict keys; as text they are "1", "true" and "1".
    rows: list[dict[str, Any]] = [{"A": 1}, {"A": True}, {"A": 1.0}, {"A": "1"}, {"A": "true"}, {}, {"A": None}]
    assert matches({"sel": {"A": "true"}, "condition": "sel"}, rows) == [False, True, False, False, True, False, False]
    assert matches({"sel": {"A": 1}, "condition": "sel"}, rows) == [True, False, True, True, False, False, False]
    keyword_rows: list[dict[str, Any]] = [{"A": 1, "B": True}, {"A": 1, "B": "x"}, {"A": "true"}]
    assert matches({"keywords": ["true"], "condition": "keywords"}, keyword_rows) == [True, False, True]


def test_repeated_values_hit_every_row_that_holds_them() -> None:
    rows: list[dict[str, Any]] = [
        {"Image": f"C:\\Windows\\{name}.exe", "N": i} for i, name in enumerate(["cmd", "calc"] * 50)
    ]
    detection = {"sel": {"Image|endswith": "\\cmd.exe"}, "kw": ["calc.exe"], "condition": "sel or kw"}
    assert matches(detection, rows) == [True] * 100


def test_fieldref_over_distinct_pairs_equals_the_row_meaning() -> None:
    detection = {"sel": {"A|fieldref|startswith": "B"}, "condition": "sel"}
    rows: list[dict[str, Any]] = [
        {"A": "admin", "B": "ad"},
        {"A": "admin", "B": "AD"},
        {"A": "user", "B": "ad"},
        {"A": 15, "B": "1"},
        {"A": 15, "B": 1},
        {"A": "x"},
        {"B": "x"},
        {"A": "admin", "B": "ad"},
    ]
    assert matches(detection, rows) == [True, True, False, True, True, False, False, True]
    mixed = [*rows, {"A": ["zz", "admin"], "B": "ad"}, {"A": True, "B": "tr"}]
    assert matches(detection, mixed) == [True, True, False, True, True, False, False, True, True, True]


def test_decode_fields_reads_the_arrow_buffers_like_the_row_path() -> None:
    events = [event({"A": i, "B": "é" * (i % 3), "C": None}) for i in range(40)]
    table = events_to_table(events)
    expected = [e.fields for e in table_to_events(table)]
    column = table.column("fields")
    assert decode_fields(column) == expected
    assert decode_fields(table.slice(5, 20).column("fields")) == expected[5:25]
    chunk = column.chunk(0)
    two_chunks = pa.chunked_array([chunk.slice(0, 7), chunk.slice(7, 33)])
    wanted = [i % 4 != 1 for i in range(40)]
    assert decode_fields(two_chunks, wanted) == [f if w else {} for f, w in zip(expected, wanted, strict=True)]
    texts = ['{"a": 1}', None, "", '{"b": "é"}']
    for kind in (pa.string(), pa.large_string()):
        assert decode_fields(pa.array(texts, type=kind)) == [{"a": 1}, {}, {}, {"b": "é"}]
    assert decode_fields(pa.array(texts[2:], type=pa.large_string())) == [{}, {"b": "é"}]


def test_events_of_rows_equal_the_events_rebuilt_from_the_table() -> None:
    events = [
        event({"A": i}, event_id=f"e{i}", host=f"h{i % 3}", time=T0 + timedelta(seconds=i), src_port=i or None)
        for i in range(30)
    ]
    table = events_to_table(events)
    rows = [0, 3, 4, 17, 29]
    assert events_of_rows(table, rows, decode_fields(table.column("fields"))) == table_to_events(table.take(rows))
    assert events_of_rows(table, [], []) == []


def test_resolve_many_equals_resolving_each_row() -> None:
    rows: list[Any] = [
        {"Channel": "Security", "EventID": 4688},
        {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1},
        {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": "13"},
        {"EventID": {"#text": 1}},
        {},
        {"Channel": "Security", "EventID": 4688},
    ]
    products = ["windows", None, None, None, "linux", "windows"]
    services = [None, None, "sysmon", None, "auth", None]
    categories = [None, None, None, "process_creation", None, None]
    one_by_one = SourceResolver()
    expected = [one_by_one.resolve(p, s, c, f) for p, s, c, f in zip(products, services, categories, rows, strict=True)]
    assert SourceResolver().resolve_many(products, services, categories, rows) == expected
    proxies = [MappingProxyType(r) for r in rows]
    assert SourceResolver().resolve_many(products, services, categories, proxies) == expected
    resolver = SourceResolver()
    assert resolver.resolve_many(products, services, categories, rows) == expected  # from the cache the second time
    assert resolver.resolve_many(products, services, categories, rows) == expected
    assert (
        resolver.resolve_many(products, services, categories, rows)[0]
        is resolver.resolve_many(products, services, categories, rows)[5]
    )


def test_interleaved_log_sources_give_the_hits_of_each_event_alone() -> None:
    detection = {"sel": {"CommandLine|contains": "whoami"}, "condition": "sel"}
    eng = engine_for(
        rule_text(detection),
        rule_text(detection, rule_id="00000000-0000-4000-8000-000000000002", logsource={"product": "other"}),
    )
    events = [
        event({"CommandLine": "whoami" if i % 2 else "dir"}, product=("test", "other", "none")[i % 3])
        for i in range(30)
    ]
    together = eng.match(events)
    alone = sorted((i, v) for i, e in enumerate(events) for _, v in eng.match([e]))
    assert together == alone
    assert {v for _, v in together} == {0, 1}


def test_table_rows_no_rule_applies_to_are_not_parsed() -> None:
    detection = {"sel": {"CommandLine|contains": "whoami"}, "kw": ["mimikatz"], "condition": "sel or kw"}
    eng_a = engine_for(rule_text(detection))
    eng_b = engine_for(rule_text(detection))
    events = [event({"CommandLine": "whoami", "N": i}, product=("test", "linux", "TEST")[i % 3]) for i in range(9)]
    events += [event({"Message": "mimikatz"}, product=None)]
    table = events_to_table(events)
    ruleset = eng_b.ruleset
    assert ruleset is not None
    assert [ruleset.may_apply(p) for p in ("test", "TEST", "linux", None, "")] == [True, True, False, True, True]
    from_events = [(a.rule_id, a.evidence) for a in eng_a.evaluate(events)]
    from_table = [(a.rule_id, a.evidence) for a in eng_b.evaluate_table(table)]
    assert from_events == from_table
    assert len(from_table) == 6  # rows 0, 2, 3, 5, 6, 8: products test/TEST (a product-less row is parsed, not matched)


def test_pattern_bitmasks_made_block_by_block_equal_one_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    detection = {
        "sel": {"Image|endswith": [f"\\p{i}.exe" for i in range(40)]},
        "kw": [f"k{i}x" for i in range(30)],
        "condition": "sel or kw",
    }
    rows: list[dict[str, Any]] = [
        {"Image": f"C:\\p{i % 45}.exe", "Other": f"a k{i % 33}x b", "N": i} for i in range(300)
    ]
    expected = matches(detection, rows)
    assert sum(expected) > 250
    monkeypatch.setattr(matcher, "_MATRIX_CELLS", 700)  # a few patterns per block
    assert matches(detection, rows) == expected


def test_event_entities_equal_the_entities_of_one_event() -> None:
    cases = [
        event({}, host="ws1", user="bob", src_ip="10.0.0.1", hash_md5="m", hash_sha1="s1"),
        event({"SubjectUserName": "admin"}, event_code="4720", user="newuser", host=""),
        event({"SubjectUserName": "admin"}, event_code="4720", user=None),
        event({"SubjectUserName": "admin"}, event_code="4720", user="admin"),
        event({"SubjectUserName": "HOST$"}, event_code="4726", user="gone"),
        event({"SubjectUserName": "admin"}, event_code="4624", user="bob", dst_port=0, src_port=443),
        event({}),
    ]
    for ev in cases:
        got = event_entities(ev)
        assert got == entities_of((ev,))
        assert list(got) == list(entities_of((ev,)))
