"""The stream framers: JSON value splitting and RFC 6587 syslog framing, chunked any way."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmdr.ingest.framing import JsonValueSplitter, Span, SyslogFrameDecoder, split_json_values


def _split(data: bytes, step: int, max_bytes: int = 1 << 20) -> list[Span]:
    splitter = JsonValueSplitter(max_bytes)
    spans: list[Span] = []
    for i in range(0, len(data), step):
        spans.extend(splitter.feed(data[i : i + step]))
    spans.extend(splitter.close())
    return spans


TRICKY = (
    b'{"a": "x}{\\"y\\\\"}\n'  # braces, escaped quote and escaped backslash inside a string
    b'  {"b": [1, 2, {"c": "]"}], "d": "\\u005d"}\r\n'
    b'{\n  "pretty": {\n    "nested": true\n  }\n}\n'
)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64, 4096])
def test_concatenated_and_pretty_objects_are_split_exactly_whatever_the_chunking(step: int) -> None:
    spans = _split(TRICKY, step)
    assert [s.error for s in spans] == [None, None, None]
    assert [json.loads(s.payload) for s in spans] == [
        {"a": 'x}{"y\\'},
        {"b": [1, 2, {"c": "]"}], "d": "]"},
        {"pretty": {"nested": True}},
    ]
    for s in spans:  # offsets point at the exact bytes
        assert TRICKY[s.offset : s.offset + s.size] == s.payload


def test_top_level_array_elements_become_values() -> None:
    data = b'[\n {"n": 1},\n {"n": 2} ,{"n": [3]}\n]\n'
    spans = _split(data, 4)
    assert [orjson.loads(s.payload) for s in spans] == [{"n": 1}, {"n": 2}, {"n": [3]}]
    assert all(s.error is None for s in spans)


def test_text_between_objects_is_one_error_span_with_its_offset() -> None:
    data = b'{"a": 1}\nthis is not json\n{"b": 2}'
    for step in (1, 3, 100):
        spans = _split(data, step)
        assert [s.error is None for s in spans] == [True, False, True]
        bad = spans[1]
        assert bad.offset == data.index(b"this")
        assert bad.payload == b"this is not json\n"
        assert "not JSON" in (bad.error or "")


def test_truncated_value_at_end_is_reported_not_lost() -> None:
    data = b'{"ok": 1}\n{"cut": "in the mid'
    spans = _split(data, 5)
    assert spans[0].error is None
    assert spans[1].offset == 10 and spans[1].payload == data[10:]
    assert "truncated" in (spans[1].error or "")


@pytest.mark.parametrize("step", [3, 50, 10_000])
def test_oversized_value_keeps_its_head_and_true_size_and_splitting_continues(step: int) -> None:
    big = b'{"x": "' + b"A" * 5000 + b'\\"' + b"B" * 3000 + b'"}'
    data = big + b'\n{"after": true}'
    spans = _split(data, step, max_bytes=1000)
    assert len(spans) == 2
    assert spans[0].error == f"oversized record: {len(big)} bytes > limit 1000"
    assert spans[0].payload == big[:1000] and spans[0].size == len(big)
    assert spans[1].error is None and orjson.loads(spans[1].payload) == {"after": True}


def test_unterminated_huge_string_costs_linear_time_and_bounded_memory() -> None:
    splitter = JsonValueSplitter(max_bytes=4096)
    splitter.feed(b'{"s": "')
    for _ in range(2000):  # 2000 x 64 KiB inside one string, never closed
        splitter.feed(b"z" * 65536)
        assert len(splitter._buf) < 70_000  # only the unscanned tail is held
    spans = splitter.close()
    assert len(spans) == 1 and "truncated" in (spans[0].error or "")
    assert len(spans[0].payload) == 4096


def test_deep_nesting_is_framed_not_recursed() -> None:
    data = b"[" * 100_000 + b"]" * 100_000
    spans, _ = split_json_values(b'{"a": ' + data + b"}", final=True)
    assert len(spans) == 1 and spans[0].error is None


_JSON_VALUES = st.recursive(
    st.text() | st.integers() | st.booleans(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    objs=st.lists(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=5), min_size=1, max_size=6),
    indent=st.booleans(),
    step=st.integers(1, 40),
)
def test_any_json_objects_round_trip(objs: list[dict], indent: bool, step: int) -> None:
    data = b"\n".join(json.dumps(o, indent=2 if indent else None).encode() for o in objs)
    spans = _split(data, step)
    assert [json.loads(s.payload) for s in spans] == objs


# ---------------------------------------------------------------------------- syslog TCP framing


def _decode(stream: bytes, step: int, limit: int = 100) -> tuple[list[bytes], list[tuple[bytes, str]]]:
    decoder = SyslogFrameDecoder(limit)
    messages: list[bytes] = []
    errors: list[tuple[bytes, str]] = []
    for i in range(0, len(stream), step):
        m, e = decoder.feed(stream[i : i + step])
        messages += m
        errors += e
    m, e = decoder.close()
    return messages + m, errors + e


def _octet(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_octet_counting_and_newline_framing_mixed_per_frame(step: int) -> None:
    stream = (
        _octet(b"<13>1 2026-03-02T10:00:00Z h app - - - with\nnewline inside")
        + b"<14>Mar  2 10:00:00 host app: lf framed\n"
        + b"<15>crlf framed\r\n"
        + b"<16>nul framed\x00"
        + _octet(b"<17>counted again")
        + b"\n\n"  # blank frames between messages are only framing
        + b"<18>last without newline"
    )
    messages, errors = _decode(stream, step)
    assert errors == []
    assert messages == [
        b"<13>1 2026-03-02T10:00:00Z h app - - - with\nnewline inside",
        b"<14>Mar  2 10:00:00 host app: lf framed",
        b"<15>crlf framed",
        b"<16>nul framed",
        b"<17>counted again",
        b"<18>last without newline",
    ]


@pytest.mark.parametrize("step", [1, 9, 1000])
def test_oversized_octet_frame_is_skipped_by_its_length(step: int) -> None:
    big = b"<13>" + b"X" * 500
    stream = _octet(big) + _octet(b"<13>next") + b"<14>lf next\n"
    messages, errors = _decode(stream, step, limit=100)
    assert messages == [b"<13>next", b"<14>lf next"]
    assert errors == [(big[:100], "oversized syslog message: 504 bytes > limit 100")]


@pytest.mark.parametrize("step", [1, 9, 1000])
def test_oversized_newline_message_resyncs_at_next_newline(step: int) -> None:
    big = b"<13>" + b"Y" * 300
    stream = big + b"\n<14>after\n"
    messages, errors = _decode(stream, step, limit=100)
    assert messages == [b"<14>after"]
    assert len(errors) == 1 and errors[0][0] == big[:100]
    assert errors[0][1].startswith("oversized syslog message: 304 bytes")


def test_cut_octet_frame_at_close_is_an_error() -> None:
    messages, errors = _decode(b"50 <13>only part", 4)
    assert messages == []
    assert errors == [(b"50 <13>only part", "truncated octet-counted frame: 13 of 50 bytes received")]


def test_message_starting_with_digits_but_no_count_is_newline_framed() -> None:
    messages, errors = _decode(b"2026-03-02T10:00:00Z host app: no pri\n", 3)
    assert messages == [b"2026-03-02T10:00:00Z host app: no pri"] and errors == []


@pytest.mark.parametrize("step", [1, 16, 10_000])
def test_pretty_objects_that_do_not_decode_are_still_framed_by_brackets(step: int) -> None:
    data = b'{\n  "a": tru,\n  "n": {"x": "}"}\n}\n{\n  "b": 1\n}\n  {\n    "indented": [1]\n  }\n'
    spans = _split(data, step)
    assert [s.payload for s in spans] == [
        b'{\n  "a": tru,\n  "n": {"x": "}"}\n}',
        b'{\n  "b": 1\n}',
        b'{\n    "indented": [1]\n  }',
    ]
    assert all(s.error is None for s in spans)
