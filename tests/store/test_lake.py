"""The event lake: tenant/day partitions, duplicate suppression, tenant-scoped SQL, retention, compaction."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openmdr.models import Event, events_to_table, make_event_id
from openmdr.store.errors import QueryError, ValidationError
from openmdr.store.lake import EventLake

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def _batch(tenant: str, n: int, start: int = 0, step_minutes: int = 30) -> pa.Table:
    events = []
    for i in range(start, start + n):
        e = Event(time=T0 + timedelta(minutes=step_minutes * i), source_format="json", fields={"i": i}, tenant=tenant,
                  ingested_at=T0, host=f"ws-{i % 3}", user="alice" if i % 2 else "bob", origin=f"t:{i}")  # fmt: skip
        e.event_id = make_event_id(tenant, "json", None, str(i).encode())
        events.append(e)
    return events_to_table(events)


@pytest.fixture()
def lake(tmp_path: Path) -> EventLake:
    lake = EventLake(tmp_path / "lake")
    lake.append(pa.concat_tables([_batch("acme", 100), _batch("globex", 10)]))
    return lake


def test_partitions_per_tenant_and_day(lake: EventLake, tmp_path: Path) -> None:
    days = [p.date for p in lake.partitions("acme")]
    assert days == [date(2026, 3, 1) + timedelta(days=d) for d in range(3)]  # 22:00 + 99 * 30 min
    assert sum(p.rows for p in lake.partitions("acme")) == 100 and lake.counts() == {"acme": 100, "globex": 10}
    for f in lake.files("acme"):
        rel = f.relative_to(tmp_path / "lake")
        assert rel.parts[0] == "tenant=acme" and rel.parts[1].startswith("date=2026-03-0")
        table = pq.read_table(f)
        assert set(table.column("tenant").to_pylist()) == {"acme"}
        assert {t.date().isoformat() for t in table.column("time").to_pylist()} == {rel.parts[1][5:]}
    assert lake.files("acme", since=datetime(2026, 3, 3, tzinfo=UTC)) == [
        f for f in lake.files("acme") if "date=2026-03-03" in str(f)]  # fmt: skip
    with pytest.raises(ValidationError):
        lake.tenant_dir("../globex")


def test_reimport_is_suppressed_also_across_lake_instances(lake: EventLake, tmp_path: Path) -> None:
    again = lake.append(_batch("acme", 100))
    assert (again.stored, again.duplicates) == (0, 100) and again.table.num_rows == 0
    reopened = EventLake(tmp_path / "lake")
    overlap = reopened.append(_batch("acme", 20, start=90))  # 10 known, 10 new
    assert (overlap.stored, overlap.duplicates) == (10, 10)
    assert overlap.table.column("event_id").to_pylist() == _batch("acme", 10, start=100).column("event_id").to_pylist()
    inside = reopened.append(pa.concat_tables([_batch("acme", 1, start=500), _batch("acme", 1, start=500)]))
    assert (inside.stored, inside.duplicates) == (1, 1)  # a duplicate within one batch too
    assert reopened.counts()["acme"] == 111


def test_query_sees_only_the_tenant(lake: EventLake) -> None:
    rows = lake.query("acme", "SELECT tenant, count(*) AS n FROM events GROUP BY 1").to_pylist()
    assert rows == [{"tenant": "acme", "n": 100}]
    assert lake.query("globex", "SELECT count(*) AS n FROM events").to_pylist() == [{"n": 10}]
    assert lake.query("nobody", "SELECT count(*) AS n FROM events").to_pylist() == [{"n": 0}]
    assert lake.query("acme", "SELECT count(*) AS n FROM events WHERE user = ?", ["alice"]).to_pylist() == [{"n": 50}]
    since = lake.query("acme", "SELECT count(*) AS n FROM events", since=datetime(2026, 3, 3, tzinfo=UTC))
    assert since.to_pylist() == [{"n": 48}]  # only the last day's partition is opened


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{root}/tenant=globex/*/*.parquet')",
        "SELECT * FROM read_parquet('{root}/**/*.parquet')",
        "SELECT * FROM glob('{root}/*')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('{root}/tenant=globex/**')",
        "SELECT * FROM parquet_metadata('{root}/tenant=globex/**/*.parquet')",
    ],
)
def test_query_cannot_read_other_tenants_files(lake: EventLake, sql: str) -> None:
    with pytest.raises(QueryError):
        lake.query("acme", sql.format(root=lake.root))


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE TABLE x AS SELECT 1", "read-only"),
        ("COPY (SELECT * FROM events) TO '/tmp/leak.parquet'", "read-only"),
        ("INSERT INTO events SELECT * FROM events", "read-only"),
        ("ATTACH '/tmp/other.db' AS o", "read-only"),
        ("SET enable_external_access = true", "read-only"),
        ("PRAGMA version", "read-only"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELECT 1; DROP VIEW events", "exactly one"),
        ("SELEC nonsense", "parse"),
    ],
)
def test_query_refuses_writes_ddl_and_several_statements(lake: EventLake, sql: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        lake.query("acme", sql)


def test_scan_streams_columns_and_time_windows(lake: EventLake) -> None:
    batches = list(lake.scan("acme", columns=["event_id", "time"], batch_rows=16))
    assert sum(b.num_rows for b in batches) == 100 and batches[0].schema.names == ["event_id", "time"]
    since, until = T0 + timedelta(hours=5), T0 + timedelta(hours=10)
    window = pa.Table.from_batches(list(lake.scan("acme", ["time"], since=since, until=until)))
    assert window.num_rows == 11 and all(since <= t <= until for t in window.column("time").to_pylist())
    assert list(lake.scan("nobody")) == []


def test_retention_per_tenant(lake: EventLake) -> None:
    now = datetime(2026, 3, 3, 12, tzinfo=UTC)
    removed = lake.apply_retention("acme", keep_days=2, now=now)  # keep 03-02 and 03-03
    assert removed == sum(1 for i in range(100) if (T0 + timedelta(minutes=30 * i)).date() < date(2026, 3, 2)) == 4
    assert [p.date for p in lake.partitions("acme")] == [date(2026, 3, 2), date(2026, 3, 3)]
    assert lake.counts()["globex"] == 10  # other tenants untouched
    assert lake.append(_batch("acme", 100)).stored == removed  # forgotten ids can come back
    with pytest.raises(ValueError):
        lake.apply_retention("acme", keep_days=0)


def test_compaction_merges_parts_and_keeps_rows(lake: EventLake) -> None:
    for k in range(3):
        lake.append(_batch("acme", 5, start=200 + 5 * k, step_minutes=1))
    day = (T0 + timedelta(minutes=200)).date()
    part = next(p for p in lake.partitions("acme") if p.date == day)
    assert part.files == 4
    before = lake.query("acme", "SELECT event_id FROM events ORDER BY event_id").column(0).to_pylist()
    assert lake.compact("acme", day) == part.rows
    after = next(p for p in lake.partitions("acme") if p.date == day)
    assert after.files == 1 and after.rows == part.rows
    assert lake.query("acme", "SELECT event_id FROM events ORDER BY event_id").column(0).to_pylist() == before
    assert lake.append(_batch("acme", 5, start=200, step_minutes=1)).duplicates == 5
    assert lake.compact("acme", day) == part.rows  # one file: nothing to do


def test_summary_and_delete_tenant(lake: EventLake) -> None:
    summary = lake.tenant_summary("globex")
    assert summary["events"] == 10 and summary["by_source_format"] == {"json": 10}
    assert summary["first_time"] == T0
    assert lake.delete_tenant("globex") == 10 and lake.counts() == {"acme": 100}
    assert lake.tenant_summary("globex")["events"] == 0


def test_held_small_partitions_become_one_file_and_readers_see_them(tmp_path: Path) -> None:
    """A bulk writer's small day slices wait in memory; any read writes them first, dedup still holds."""
    lake = EventLake(tmp_path / "lake")
    for k in range(6):  # six small batches over six days (a row every 6 hours)
        result = lake.append(_batch("acme", 4, start=4 * k, step_minutes=360), hold=True)
        assert result.stored == 4 and result.table.num_rows == 4
    assert not (tmp_path / "lake" / "tenant=acme").exists()  # nothing written yet
    again = lake.append(_batch("acme", 4, start=0, step_minutes=360), hold=True)
    assert (again.stored, again.duplicates) == (0, 4)  # held rows count as stored for dedup
    parts = lake.partitions("acme")  # a read: held rows are written first
    assert sum(p.rows for p in parts) == 24 and all(p.files == 1 for p in parts)
    assert lake.query("acme", "SELECT count(DISTINCT event_id) FROM events").column(0)[0].as_py() == 24
    for f in lake.files("acme"):
        times = pq.read_table(f, columns=["time"]).column("time").to_pylist()
        assert times == sorted(times)  # each part time-ordered
    assert lake.flush() == 0


def test_held_rows_are_written_when_the_partition_or_the_memory_limit_fills(tmp_path: Path) -> None:
    """A partition that reaches the small-part size, or a full hold budget, is written at once."""
    from openmdr.store.lake import SMALL_PART_ROWS

    tight = EventLake(tmp_path / "tight", hold_bytes=1)
    tight.append(_batch("acme", 3), hold=True)  # over the (tiny) budget: released right away
    assert len(list((tmp_path / "tight").rglob("*.parquet"))) >= 1

    lake = EventLake(tmp_path / "lake")
    size = SMALL_PART_ROWS // 4
    for k in range(4):  # 4 x 1,024 rows at one instant: the partition reaches the small-part size
        lake.append(_batch("acme", size, start=size * k, step_minutes=0), hold=True)
        written = list((tmp_path / "lake").rglob("*.parquet"))
        assert len(written) == (1 if k == 3 else 0)
    assert pq.read_metadata(written[0]).num_rows == SMALL_PART_ROWS
    assert lake.flush() == 0
