"""The ingest pipeline end to end: files in, events in the lake, refusals in the dead-letter store."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openmdr.bus import TOPIC_EVENTS
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Event, ParseError, RawRecord, TenantInfo
from openmdr.normalize.base import _REGISTRY, MAX_RECORD_BYTES, parser_function
from openmdr.pipeline import PARSE_BLOCK, IngestPipeline, IngestReport, UnknownTenantError
from openmdr.runtime import Platform


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    p = Platform.from_data_dir(tmp_path / "data")
    p.state.create_tenant(TenantInfo(name="acme", networks=("10.10.0.0/16",)), actor="test")
    p.state.create_tenant(TenantInfo(name="globex", networks=("10.10.0.0/16",)), actor="test")
    yield p
    p.close()


def _json_line(i: int, **extra: object) -> bytes:
    row = {"@timestamp": f"2026-03-02T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "host": f"ws-{i % 7}",
           "src_ip": "10.10.1.5", "dst_ip": "8.8.8.8", "n": i, **extra}  # fmt: skip
    return orjson.dumps(row)


def _ingest(platform: Platform, tenant: str, *paths: Path) -> IngestReport:
    return platform.pipeline.submit(tenant, read_sources(plan_sources([str(p) for p in paths])))


def test_count_in_equals_stored_plus_rejected_and_reimport_stores_nothing(platform: Platform, tmp_path: Path) -> None:
    good = tmp_path / "app.jsonl"
    good.write_bytes(b"\n".join(_json_line(i) for i in range(500)) + b"\n")
    published: list[pa.Table] = []
    platform.bus.subscribe(TOPIC_EVENTS, published.append)

    first = _ingest(platform, "acme", good)
    assert (first.received, first.stored, first.rejected, first.duplicates) == (500, 500, 0, 0)
    assert sum(t.num_rows for t in published) == 500

    again = _ingest(platform, "acme", good)
    assert (again.received, again.stored, again.duplicates) == (500, 0, 500)
    assert sum(t.num_rows for t in published) == 500  # nothing new published
    assert platform.lake.counts() == {"acme": 500}

    rows = platform.lake.query("acme", "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events").to_pylist()
    assert rows == [{"n": 500, "ids": 500}]
    enriched = platform.lake.query("acme", "SELECT src_internal, dst_internal, dst_country FROM events LIMIT 1")
    assert enriched.to_pylist() == [{"src_internal": True, "dst_internal": False, "dst_country": "US"}]


def test_tenants_are_separate_even_for_identical_data(platform: Platform, tmp_path: Path) -> None:
    f = tmp_path / "same.jsonl"
    f.write_bytes(b"\n".join(_json_line(i) for i in range(50)))
    assert _ingest(platform, "acme", f).stored == 50
    assert _ingest(platform, "globex", f).stored == 50  # same bytes, other tenant: not a duplicate
    assert platform.lake.query("globex", "SELECT DISTINCT tenant FROM events").to_pylist() == [{"tenant": "globex"}]


def test_unknown_tenant_is_refused_before_anything_is_stored(platform: Platform, tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(_json_line(1))
    with pytest.raises(UnknownTenantError):
        _ingest(platform, "nobody", f)
    assert platform.lake.counts() == {}


def test_hostile_and_broken_input_is_counted_kept_and_reported(platform: Platform, tmp_path: Path) -> None:
    lines = [_json_line(i) for i in range(20)]
    lines.insert(3, b'{"@timestamp": "2026-03-02T10:00:00Z", "msg": "\xff\xfe not utf-8"}')
    lines.insert(7, b'{"@timestamp": "2026-03-02T10:00:00Z", "truncated": ')
    lines.insert(9, b"[" * 5000 + b"]" * 5000)
    lines.insert(11, b'{"@timestamp": "2026-03-02T10:00:00Z", "big": "' + b"A" * (MAX_RECORD_BYTES + 10) + b'"}')
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines) + b"\n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(os.urandom(4096) + b"\x00" * 100)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b"\n".join(_json_line(100 + i) for i in range(200)))[:-40])
    utf16 = tmp_path / "export-utf16.jsonl"
    utf16.write_bytes(b"\n".join(_json_line(500 + i) for i in range(10)).decode().encode("utf-16"))

    report = _ingest(platform, "acme", mixed, binary, truncated, utf16)
    assert report.balanced, report
    assert report.stored >= 20 + 10  # the good lines of mixed.jsonl and the UTF-16 file
    assert report.rejected >= 5  # 4 bad lines + the binary file (+ the truncated gzip tail)

    letters = platform.state.list_dead_letters(tenant="acme", limit=1000)
    assert len(letters) == report.rejected
    origins = " ".join(d.origin for d in letters)
    assert "mixed.jsonl:" in origins and "blob.bin" in origins and "cut.jsonl.gz" in origins
    assert all(d.reason for d in letters)
    oversized = [d for d in letters if "oversized" in d.reason or "bytes" in d.reason]
    assert oversized, [d.reason for d in letters]


def test_dead_letters_replay_after_a_parser_fix(platform: Platform) -> None:
    fmt = "test_vendor_kv"
    records = [RawRecord(f"ts=2026-03-0{i + 1}T00:00:00Z user=u{i}".encode(), fmt, f"unit:{i}") for i in range(3)]
    before = platform.pipeline.submit("acme", records)
    assert (before.rejected, before.stored) == (3, 0)
    assert all("unknown format" in d.reason for d in platform.state.list_dead_letters(tenant="acme"))

    @parser_function(fmt)
    def parse_kv(record: RawRecord) -> Event:
        pairs = dict(part.split("=", 1) for part in record.payload.decode().split())
        if "ts" not in pairs:
            raise ParseError("no ts")
        return Event(time=datetime.fromisoformat(pairs["ts"]).astimezone(UTC), source_format=fmt,
                     fields=pairs, user=pairs.get("user"))  # fmt: skip

    try:
        result = platform.pipeline.replay(tenant="acme")
        assert (result.attempted, result.recovered, result.still_failing) == (3, 3, 0)
        assert platform.lake.counts() == {"acme": 3}
        assert platform.state.list_dead_letters(tenant="acme", status="pending") == []
        assert len(platform.state.list_dead_letters(tenant="acme", status="replayed")) == 3
    finally:
        _REGISTRY.pop(fmt, None)


def test_large_out_of_order_submission_lands_in_time_ordered_day_partitions(platform: Platform, tmp_path: Path) -> None:
    """Blocks are parsed and tabled one by one; the batch they form is still stored in time order per day."""
    n = PARSE_BLOCK * 9 + 17  # several blocks, the last one short, batches ending inside none of them
    lines = [
        orjson.dumps({"@timestamp": f"2026-03-0{1 + (i * 7) % 3}T{(n - i) // 3600 % 24:02d}:{(n - i) // 60 % 60:02d}:"
                      f"{(n - i) % 60:02d}Z", "host": "ws-1", "n": i})
        for i in range(n)
    ]  # fmt: skip
    lines.insert(PARSE_BLOCK + 3, b'{"@timestamp": "2026-03-02T10:00:00Z", "cut": ')  # a refusal inside a block
    path = tmp_path / "shuffled.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    three_blocks = 2 * PARSE_BLOCK + 100
    pipeline = IngestPipeline(platform.state, platform.lake, platform.bus, platform.geo, batch_size=three_blocks)
    published: list[pa.Table] = []
    platform.bus.subscribe(TOPIC_EVENTS, published.append)
    progress: list[int] = []

    items = read_sources(plan_sources([str(path)]))
    report = pipeline.submit("acme", items, on_batch=lambda r: progress.append(r.stored))

    assert (report.received, report.stored, report.rejected) == (n + 1, n, 1) and report.balanced
    assert sum(t.num_rows for t in published) == n and len(published) >= 3  # one table per batch of three blocks
    assert progress == sorted(progress) and progress[-1] == n
    stored = sorted(v for t in published for v in t.column("event_id").to_pylist())
    assert len(set(stored)) == n
    for f in platform.lake.files("acme"):
        times = pq.read_table(f, columns=["time"]).column("time").to_pylist()
        assert times == sorted(times) and len({t.date() for t in times}) == 1, f
    assert [p.rows for p in platform.lake.partitions("acme")] == [
        sum(1 for i in range(n) if (i * 7) % 3 == d) for d in range(3)
    ]
