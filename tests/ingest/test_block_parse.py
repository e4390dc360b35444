"""The block path of the pipeline gives exactly what the per-record path gives.

``IngestPipeline.submit`` parses records in blocks (:func:`openmdr.pipeline.parse_records`,
``parse_batch`` of the Windows parsers); :func:`openmdr.pipeline.parse_record` is the
per-record reference.  Both run here over every record of the SigmaHQ regression samples
(EVTX and evtx_dump JSON) and the OTRF Winlogbeat captures, mixed with malformed lines,
and the normalized tables, the event ids and the dead letters must be identical.  The
hot-path helpers rewritten for speed are checked against their plain definitions on
every value of those files.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from openmdr.bus import TOPIC_EVENTS, InProcessBus
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Event, ParseError, RawRecord, Rejection, TenantInfo, events_to_table
from openmdr.normalize import BatchParser, get_parser, parse_each
from openmdr.normalize.parsers.jsonlines import first_line, to_time
from openmdr.pipeline import IngestPipeline, parse_record, parse_records
from openmdr.runtime import Platform

CLOCK = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _malformed(last_good: bytes) -> list[RawRecord]:
    """Bad lines of every kind the file framer can hand over, for both Windows JSON formats."""
    payloads = [
        b"",
        b"   ",
        b'{"Event": {"System": {"EventID": 4688',
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe{\x00\x22\x00",
        b'{"x": "\xc3\x28"}',
        b'{"EventID": "not-a-number", "Channel": "Security"}',
        b'{"EventID": 4624, "Channel": "Security"}',  # no usable time
        b'{"Event": 3}',
        b'{"Event": {"EventData": {}}}',
        b"[" * 200 + b"]" * 200,
        b'{"EventID": 1, "@timestamp": "2026-01-01T00:00:00Z", "deep": ' + b"[" * 100 + b"]" * 100 + b"}",
        b"\xef\xbb\xbf" + last_good,  # a BOM is tolerated
        b"x" * ((1 << 20) + 1),  # oversized
    ]
    records = [
        RawRecord(payload, fmt, f"bad.jsonl:{i}")
        for i, payload in enumerate(payloads)
        for fmt in ("winevent_json", "winlogbeat_json")
    ]
    records.append(RawRecord(b'{"a": 1}', "no_such_format", "bad.jsonl:99"))
    return records


@pytest.fixture(scope="module")
def records(shared_root: Path) -> list[RawRecord]:
    """Every framed record of the real Windows files, with malformed lines among them."""
    sources = plan_sources([shared_root / "sigma" / "regression_data", shared_root / "datasets" / "otrf"])
    real = [item for item in read_sources(sources) if isinstance(item, RawRecord)]
    formats = {r.format for r in real}
    assert {"evtx", "winevent_json", "winlogbeat_json"} <= formats, formats
    bad = _malformed(next(r.payload for r in real if r.format == "winlogbeat_json"))
    mixed: list[RawRecord] = []
    step = max(1, len(real) // len(bad))
    for i, record in enumerate(real):
        mixed.append(record)
        if i % step == 0 and bad:
            mixed.append(bad.pop())
    return mixed + bad


def _rejection_facts(rejections: list[Rejection]) -> list[tuple[object, ...]]:
    return [(r.reason, r.origin, r.payload, r.format, r.tenant, r.stage, r.context) for r in rejections]


def _split(results: list[Event | Rejection]) -> tuple[list[Event], list[Rejection]]:
    events = [r for r in results if isinstance(r, Event)]
    return events, [r for r in results if isinstance(r, Rejection)]


def test_block_parse_gives_the_per_record_results(records: list[RawRecord]) -> None:
    """Same events (every column, ``fields`` JSON, ids) and same rejections, in the same order."""
    one_by_one = [parse_record(r, "acme", CLOCK) for r in records]
    in_blocks = parse_records(records, "acme", CLOCK)
    assert len(in_blocks) == len(one_by_one) == len(records)
    assert [type(r) for r in in_blocks] == [type(r) for r in one_by_one]
    events_a, rejected_a = _split(one_by_one)
    events_b, rejected_b = _split(in_blocks)
    assert len(events_a) > 10_000
    table_a, table_b = events_to_table(events_a), events_to_table(events_b)
    assert table_a.schema == table_b.schema
    for name in table_a.schema.names:
        assert table_a.column(name).equals(table_b.column(name)), name
    assert [e.natural_key for e in events_a] == [e.natural_key for e in events_b]
    reasons = {r.reason.split(":")[0] for r in rejected_a}
    assert len(rejected_a) >= 29 and {"winevent_json", "winlogbeat_json", "oversized record"} <= reasons
    assert _rejection_facts(rejected_b) == _rejection_facts(rejected_a)


def test_windows_parsers_read_blocks_and_others_fall_back(records: list[RawRecord]) -> None:
    """parse_batch of the Windows parsers equals parse per record; a parser without it is called per record."""
    for fmt in ("evtx", "winevent_json", "winlogbeat_json"):
        parser = get_parser(fmt)
        assert isinstance(parser, BatchParser)
        block = [r for r in records if r.format == fmt][:3000]
        for record, result in zip(block, parser.parse_batch(block), strict=True):
            try:
                expected: Event | Exception = parser.parse(record)
            except Exception as exc:
                assert type(result) is type(exc) and str(result) == str(exc)
            else:
                assert isinstance(result, Event) and result == expected

    class Boom:
        name = "boom"

        def parse(self, record: RawRecord) -> Event:
            if record.payload == b"bug":
                raise RuntimeError("parser bug")
            raise ParseError("refused")

    block = [RawRecord(b"bug", "boom", "t:0"), RawRecord(b"x", "boom", "t:1")]
    assert [type(r) for r in parse_each(Boom(), block)] == [RuntimeError, ParseError]

    class BrokenBlocks(Boom):
        def parse_batch(self, records: list[RawRecord]) -> list[Event | Exception]:
            raise RuntimeError("block path bug")

    class ShortBlocks(Boom):
        def parse_batch(self, records: list[RawRecord]) -> list[Event | Exception]:
            return []

    for parser in (BrokenBlocks(), ShortBlocks()):
        assert isinstance(parser, BatchParser)
        assert [type(r) for r in parse_each(parser, block)] == [RuntimeError, ParseError]


def test_submit_stores_and_dead_letters_what_the_per_record_path_gives(
    records: list[RawRecord], tmp_path: Path
) -> None:
    """Through the pipeline (batches cut inside parse blocks): lake rows, bus tables and dead letters."""
    platform = Platform.from_data_dir(tmp_path / "data")
    try:
        platform.state.create_tenant(TenantInfo(name="acme", networks=("10.0.0.0/8",)), actor="test")
        bus = InProcessBus()
        published: list[pa.Table] = []
        bus.subscribe(TOPIC_EVENTS, published.append)
        pipeline = IngestPipeline(platform.state, platform.lake, bus, platform.geo, batch_size=777, clock=lambda: CLOCK)
        batches: list[int] = []
        report = pipeline.submit("acme", iter(records), on_batch=lambda r: batches.append(r.stored))

        expected_events, expected_rejections = _split([parse_record(r, "acme", CLOCK) for r in records])
        pipeline.enricher("acme").enrich(expected_events)
        first: dict[str, Event] = {}
        for event in expected_events:
            first.setdefault(event.event_id, event)
        expected = events_to_table(list(first.values()))
        expected = expected.take(pc.sort_indices(expected, [("event_id", "ascending")]))

        assert report.balanced and report.received == len(records)
        assert report.stored == len(first) and report.duplicates == len(expected_events) - len(first)
        assert report.rejected == len(expected_rejections) and len(batches) > 10
        stored = platform.lake.query("acme", "SELECT * FROM events ORDER BY event_id")
        assert stored.num_rows == expected.num_rows
        for name in expected.schema.names:
            assert stored.column(name).cast(expected.schema.field(name).type).equals(expected.column(name)), name
        assert sum(t.num_rows for t in published) == report.stored
        letters = platform.state.list_dead_letters(tenant="acme", limit=10_000)
        assert [(d.reason, d.origin, d.format) for d in letters] == [
            (r.reason, r.origin, r.format) for r in expected_rejections
        ]
        again = pipeline.submit("acme", iter(records))
        assert again.stored == 0 and again.duplicates == report.stored + report.duplicates
    finally:
        platform.close()


def _values(records: list[RawRecord], keys: tuple[str, ...]) -> list[object]:
    """Values of ``keys`` anywhere in the decodable JSON records (the real inputs of the helpers)."""
    found: list[object] = []
    stack: list[object] = []
    for record in records:
        try:
            stack.append(orjson.loads(record.payload))
        except orjson.JSONDecodeError:
            continue
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in keys and not isinstance(value, dict | list):
                        found.append(value)
                    elif isinstance(value, dict | list):
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(v for v in node if isinstance(v, dict | list))
    return found


def test_fast_helpers_equal_their_definitions(records: list[RawRecord]) -> None:
    """to_time and first_line against their plain forms on every real value."""
    stamps = [v for v in _values(records, ("TimeCreated", "SystemTime", "@timestamp", "UtcTime")) if isinstance(v, str)]
    stamps += ["2026-01-02", "2026-01-02T03", "20260102T030405", "2026-W01-1", "2026-01-02 03:04:05.123456"]
    assert len(stamps) > 10_000
    for text in stamps:
        try:
            plain = datetime.fromisoformat(text)
        except ValueError:
            continue
        plain = plain.replace(tzinfo=UTC) if plain.tzinfo is None else plain.astimezone(UTC)
        fast = to_time(text)
        assert fast == plain and fast.utcoffset() == plain.utcoffset(), text

    def plain_first_line(text: object, limit: int = 512) -> str | None:
        if type(text) is not str or not text:
            return None
        for line in text.split("\n", 8):
            if line.strip():
                return line.strip()[:limit]
        return None

    messages = [v for v in _values(records, ("Message", "message", "ScriptBlockText")) if isinstance(v, str)]
    messages += ["", " ", "\n\n", "\n \n x \n", " a\r\nb", "\n" * 12 + "late", "y" * 900, "\t\n" + "z" * 700]
    assert len(messages) > 1_000
    for text in messages:
        assert first_line(text) == plain_first_line(text), text[:80]


def test_whitespace_table_is_what_isspace_accepts() -> None:
    """The trimming set equals str.isspace over all of Unicode (it is built from a shorter range)."""
    from openmdr.normalize.parsers.windows import _WHITESPACE

    assert frozenset(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == _WHITESPACE


_SYSTEM_NUMBER_CASES = [
    ("42", 42), ("0042", 42), ("9223372036854775807", 9223372036854775807), ("9223372036854775808", None),
    ("²", None), ("١٢", 12), ("0x1f", 31), ("", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    _SYSTEM_NUMBER_CASES,
)
def test_system_numbers_are_read_as_as_int_reads_them(text: str, expected: int | None) -> None:
    """The fast digit path of the System numbers agrees with as_int, which never raises."""
    from openmdr.normalize.parsers.jsonlines import as_int
    from openmdr.normalize.parsers.windows import _normalize_system_ints

    fields: dict[str, object] = {"Task": text}
    _normalize_system_ints(fields)
    assert as_int(text) == expected
    assert fields["Task"] == (text if expected is None else expected)
