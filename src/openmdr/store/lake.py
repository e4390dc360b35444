"""The event lake: normalized events as Parquet, partitioned by tenant and day, read with DuckDB.

Layout: ``<root>/tenant=<name>/date=<YYYY-MM-DD>/part-<time>-<uuid>.parquet``.  Every
append groups a batch by (tenant, day), drops events whose id the partition already holds
(so a re-import stores nothing new) and writes one part file per partition.  Writers of
different tenants never touch the same files; readers see only complete files (a part is
written under a temporary name and renamed).

A bulk writer (a file import) appends with ``hold=True``: a partition's slice too small
to be worth its own file (fewer than :data:`SMALL_PART_ROWS` rows) is kept in memory
until that partition has gathered enough rows, the held bytes pass
:attr:`EventLake.hold_bytes`, or :meth:`EventLake.flush` is called.  A batch spanning
many days then costs a file for each day that has rows enough, not one per day and batch
(every part file costs a millisecond or two whatever its size).  Deduplication and the
returned rows are the same either way, and every read flushes first, so readers always
see every stored row.  A process that dies before the flush loses its held rows (at most
the small partitions of the submissions in progress); importing the same input again
stores them, because their ids were never written either.

Tenant queries (:meth:`EventLake.query`) run in a DuckDB connection whose file access is
restricted to that tenant's directory and whose configuration is locked before the
user's SQL runs, so the SQL cannot read another tenant's partitions.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openmdr.models.event import EVENT_SCHEMA
from openmdr.store.errors import QueryError
from openmdr.store.validation import validate_tenant_name

#: Columns with few distinct values: dictionary-encoded in Parquet (the rest would only pay for trying).
DICTIONARY_COLUMNS = [
    "tenant", "source_format", "source_type", "product", "service", "category", "event_code", "action", "outcome",
    "host", "user", "user_domain", "protocol", "process_image", "parent_image", "src_country", "src_city",
    "dst_country", "asset_criticality", "asset_owner", "asset_class",
]  # fmt: skip
#: Columns whose min/max statistics prune scans (time ranges, id look-ups, tenant checks).
STATISTICS_COLUMNS = ["time", "event_id", "tenant", "ingested_at"]
#: Parts with fewer rows are written with :data:`SMALL_PART_CODEC`: zstd's fixed set-up per column
#: chunk (a fresh compression context, tens of microseconds, ~50 columns) dominates a small part.
SMALL_PART_ROWS = 4_096
SMALL_PART_CODEC = "lz4"
#: Statement types a tenant query may contain (one statement, read-only).
_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


@dataclass(slots=True)
class AppendResult:
    """What an append stored: counts, and the stored rows (what the bus publishes)."""

    stored: int
    duplicates: int
    table: pa.Table | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One day partition of a tenant."""

    tenant: str
    date: date
    files: int
    rows: int
    bytes: int
    path: Path


class EventLake:
    """Tenant/day-partitioned Parquet store with duplicate suppression and tenant-scoped SQL."""

    def __init__(self, root: Path | str, compression: str = "zstd", hold_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.compression = compression
        self.hold_bytes = hold_bytes
        self._lock = threading.RLock()
        self._ids: dict[tuple[str, date], set[str]] = {}
        self._held: dict[tuple[str, date], list[pa.Table]] = {}
        self._held_rows: dict[tuple[str, date], int] = {}
        self._held_sizes: dict[tuple[str, date], int] = {}  # buffer bytes of each partition's held parts
        self._held_bytes = 0

    # ---------------------------------------------------------------- paths
    def tenant_dir(self, tenant: str) -> Path:
        """Directory holding all of ``tenant``'s partitions."""
        return self.root / f"tenant={validate_tenant_name(tenant)}"

    def partition_dir(self, tenant: str, day: date) -> Path:
        """Directory of one day partition."""
        return self.tenant_dir(tenant) / f"date={day.isoformat()}"

    def tenants(self) -> list[str]:
        """Tenants that have at least one partition directory (held rows written first)."""
        self.flush()
        return sorted(p.name.removeprefix("tenant=") for p in self.root.glob("tenant=*") if p.is_dir())

    def files(self, tenant: str, since: datetime | None = None, until: datetime | None = None) -> list[Path]:
        """The tenant's part files, only the days overlapping ``[since, until]`` if given (held rows written first)."""
        self.flush(tenant)
        base = self.tenant_dir(tenant)
        if not base.is_dir():
            return []
        out: list[Path] = []
        for part in sorted(base.glob("date=*")):
            day = _partition_day(part)
            if day is None:
                continue
            if since is not None and day < since.astimezone(UTC).date():
                continue
            if until is not None and day > until.astimezone(UTC).date():
                continue
            out.extend(sorted(part.glob("*.parquet")))
        return out

    # ---------------------------------------------------------------- writing
    def append(self, table: pa.Table, hold: bool = False) -> AppendResult:
        """Store a batch in :data:`EVENT_SCHEMA` layout; events already present are skipped.

        The batch is cut into (tenant, day) partitions with zero-copy slices (and one sort
        first, unless it is one tenant's rows already in time order); duplicate ids
        (already stored, held, or repeated inside the batch) are dropped by one filter per
        partition that has any.  With ``hold``, small partitions wait in memory for more
        rows (see the module documentation); the caller flushes when it is done.
        """
        if table.num_rows == 0:
            return AppendResult(0, 0, table)
        table = table.cast(EVENT_SCHEMA) if table.schema != EVENT_SCHEMA else table
        stored_parts: list[pa.Table] = []
        duplicates = 0
        with self._lock:
            for tenant, day, part in _partitions(table):
                known = self._known_ids(tenant, day)
                ids = part.column("event_id").to_pylist()
                fresh = set(ids)
                if len(fresh) < len(ids) or not known.isdisjoint(fresh):  # duplicates: keep each id's first row
                    fresh = set()
                    keep: list[bool] = []
                    for event_id in ids:
                        new = event_id not in known and event_id not in fresh
                        keep.append(new)
                        if new:
                            fresh.add(event_id)
                    part = part.filter(pa.array(keep, type=pa.bool_()))
                duplicates += len(ids) - len(fresh)
                if part.num_rows:
                    known.update(fresh)
                    stored_parts.append(part)
                    self._store(tenant, day, part, hold)
            if self._held_bytes > self.hold_bytes:
                self._release(self.hold_bytes // 2)
        stored = sum(p.num_rows for p in stored_parts)
        result_table = pa.concat_tables(stored_parts) if stored_parts else table.slice(0, 0)
        return AppendResult(stored, duplicates, result_table)

    def flush(self, tenant: str | None = None) -> int:
        """Write the held partitions (of ``tenant``, or all); returns the rows written."""
        with self._lock:
            return sum(self._write_held(key) for key in [k for k in self._held if tenant is None or k[0] == tenant])

    def _store(self, tenant: str, day: date, part: pa.Table, hold: bool) -> None:
        """Write ``part`` (with what the partition holds), or hold it while the partition stays small."""
        key = (tenant, day)
        rows = self._held_rows.get(key, 0) + part.num_rows
        if hold and rows < SMALL_PART_ROWS:
            part = part.take(np.arange(part.num_rows))  # a compact copy: a held slice must not pin its batch
            size = part.get_total_buffer_size()  # exact for a compact copy, and far cheaper than ``nbytes``
            self._held.setdefault(key, []).append(part)
            self._held_rows[key] = rows
            self._held_sizes[key] = self._held_sizes.get(key, 0) + size
            self._held_bytes += size
            return
        held = self._take_held(key)
        self._write_part(tenant, day, pa.concat_tables([*held, part]) if held else part)

    def _take_held(self, key: tuple[str, date]) -> list[pa.Table]:
        parts = self._held.pop(key, [])
        self._held_rows.pop(key, None)
        self._held_bytes -= self._held_sizes.pop(key, 0)
        return parts

    def _write_held(self, key: tuple[str, date]) -> int:
        parts = self._take_held(key)
        if not parts:
            return 0
        merged = pa.concat_tables(parts)
        self._write_part(key[0], key[1], merged)
        return merged.num_rows

    def _release(self, target_bytes: int) -> None:
        """Write the largest held partitions until no more than ``target_bytes`` stay held."""
        for key in sorted(self._held, key=self._held_rows.__getitem__, reverse=True):
            if self._held_bytes <= target_bytes:
                break
            self._write_held(key)

    def _known_ids(self, tenant: str, day: date) -> set[str]:
        key = (tenant, day)
        ids = self._ids.get(key)
        if ids is None:
            ids = set()
            for path in sorted(self.partition_dir(tenant, day).glob("*.parquet")):
                ids.update(pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist())
            self._ids[key] = ids
        return ids

    def _write_part(self, tenant: str, day: date, part: pa.Table) -> Path:
        folder = self.partition_dir(tenant, day)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{name}.tmp"
        times = _micros(part.column("time"))
        if len(times) > 1 and not bool(np.all(times[1:] >= times[:-1])):
            part = part.take(np.argsort(times, kind="stable"))  # files are time-ordered for range scans
        codec = self.compression if part.num_rows >= SMALL_PART_ROWS else SMALL_PART_CODEC
        pq.write_table(part, tmp, compression=codec, use_dictionary=DICTIONARY_COLUMNS,
                       write_statistics=STATISTICS_COLUMNS)  # fmt: skip
        final = folder / name
        tmp.replace(final)
        return final

    # ---------------------------------------------------------------- reading
    def partitions(self, tenant: str) -> list[PartitionInfo]:
        """The tenant's day partitions with file, row and byte counts (from Parquet footers)."""
        self.flush(tenant)
        base = self.tenant_dir(tenant)
        out: list[PartitionInfo] = []
        for folder in sorted(base.glob("date=*")) if base.is_dir() else []:
            day = _partition_day(folder)
            files = sorted(folder.glob("*.parquet"))
            if day is None or not files:
                continue
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            out.append(PartitionInfo(tenant, day, len(files), rows, sum(f.stat().st_size for f in files), folder))
        return out

    def counts(self) -> dict[str, int]:
        """Stored events per tenant (tenants without events are left out)."""
        out: dict[str, int] = {}
        for tenant in self.tenants():
            n = sum(p.rows for p in self.partitions(tenant))
            if n:
                out[tenant] = n
        return out

    def connect(
        self, tenant: str, since: datetime | None = None, until: datetime | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A locked-down DuckDB connection whose view ``events`` holds only ``tenant``'s events."""
        conn = duckdb.connect(":memory:")
        files = self.files(tenant, since, until)
        tenant_dir = str(self.tenant_dir(tenant)) + "/"
        conn.execute("SET threads TO 2")
        if files:
            listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            conn.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
        else:
            conn.register("_empty_events", EVENT_SCHEMA.empty_table())
            conn.execute("CREATE VIEW events AS SELECT * FROM _empty_events")
        conn.execute("SET allowed_directories = [" + "'" + tenant_dir.replace("'", "''") + "']")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        return conn

    def query(
        self,
        tenant: str,
        sql: str,
        params: list[Any] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        """Run one read-only SQL statement over the view ``events`` of ``tenant`` only.

        ``since``/``until`` prune day partitions before DuckDB opens any file.
        """
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(f"cannot parse the query: {exc}") from None
        if len(statements) != 1:
            raise QueryError(f"give exactly one SQL statement, got {len(statements)}")
        if statements[0].type not in _READ_ONLY:
            raise QueryError(f"only read-only queries are allowed, got {statements[0].type.name}")
        conn = self.connect(tenant, since, until)
        try:
            return conn.sql(sql, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(str(exc).splitlines()[0]) from None
        finally:
            conn.close()

    def scan(
        self,
        tenant: str,
        columns: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the tenant's events as Arrow batches (optionally some columns, some days)."""
        files = self.files(tenant, since, until)
        if not files:
            return
        dataset = pq.ParquetDataset([str(f) for f in files], schema=EVENT_SCHEMA)
        table = dataset.read(columns=columns)
        if since is not None or until is not None:
            mask = None
            t = table.column("time") if "time" in table.column_names else None
            if t is not None and since is not None:
                mask = pc.greater_equal(t, pa.scalar(since.astimezone(UTC), pa.timestamp("us", tz="UTC")))
            if t is not None and until is not None:
                upper = pc.less_equal(t, pa.scalar(until.astimezone(UTC), pa.timestamp("us", tz="UTC")))
                mask = upper if mask is None else pc.and_(mask, upper)
            if mask is not None:
                table = table.filter(mask)
        yield from table.to_batches(max_chunksize=batch_rows)

    def tenant_summary(self, tenant: str) -> dict[str, Any]:
        """Events, first/last event time and counts by source format for ``tenant``."""
        if not self.files(tenant):
            return {"events": 0, "first_time": None, "last_time": None, "by_source_format": {}}
        head = self.query(
            tenant, "SELECT count(*) AS n, min(time) AS first, max(time) AS last FROM events"
        ).to_pylist()[0]
        rows = self.query(
            tenant, "SELECT source_format, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC"
        ).to_pylist()
        return {
            "events": int(head["n"]),
            "first_time": head["first"],
            "last_time": head["last"],
            "by_source_format": {r["source_format"]: int(r["n"]) for r in rows},
        }

    # ---------------------------------------------------------------- housekeeping
    def apply_retention(self, tenant: str, keep_days: int, now: datetime | None = None) -> int:
        """Delete the tenant's day partitions older than ``keep_days``; returns the events removed."""
        if keep_days < 1:
            raise ValueError("keep_days must be at least 1")
        cutoff = (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=keep_days - 1)
        removed = 0
        with self._lock:
            for part in self.partitions(tenant):  # held rows are written first
                if part.date < cutoff:
                    removed += part.rows
                    shutil.rmtree(part.path)
                    self._ids.pop((tenant, part.date), None)
        return removed

    def compact(self, tenant: str, day: date) -> int:
        """Merge a partition's part files into one; returns the rows in the merged file."""
        with self._lock:
            self._write_held((tenant, day))
            folder = self.partition_dir(tenant, day)
            files = sorted(folder.glob("*.parquet"))
            if len(files) < 2:
                return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            merged = pa.concat_tables([pq.read_table(f).cast(EVENT_SCHEMA) for f in files])
            self._write_part(tenant, day, merged)
            for f in files:
                f.unlink()
            return merged.num_rows

    def delete_tenant(self, tenant: str) -> int:
        """Remove every partition of ``tenant``; returns the events removed."""
        with self._lock:
            rows = sum(p.rows for p in self.partitions(tenant))
            shutil.rmtree(self.tenant_dir(tenant), ignore_errors=True)
            for key in [k for k in self._ids if k[0] == tenant]:
                del self._ids[key]
        return rows


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 microseconds (zero-copy where the column has one chunk)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False)


_MICROS_PER_DAY = 86_400_000_000


def _partitions(table: pa.Table) -> Iterator[tuple[str, date, pa.Table]]:
    """(tenant, day, rows) of every partition a batch touches, each in time order.

    A batch of one tenant already in time order is cut into zero-copy slices; any other
    batch (the ingest pipeline's, made of time-ordered blocks) is reordered once, by
    tenant, day and time, so that partitions are contiguous and each is time-ordered for
    its file.  Either way the partitions share the buffers of one table.
    """
    tenants = table.column("tenant").combine_chunks()
    times = _micros(table.column("time"))
    first_tenant = tenants[0].as_py()
    if (len(times) < 2 or bool(np.all(times[1:] >= times[:-1]))) and pc.all(pc.equal(tenants, first_tenant)).as_py():
        t_sorted: list[str] | None = None
        ordered, d_sorted = table, times // _MICROS_PER_DAY
    else:
        days = pc.cast(table.column("time"), pa.date32()).combine_chunks()
        keys = pa.table({"tenant": tenants, "day": days, "time": table.column("time")})
        order = pc.sort_indices(keys, sort_keys=[("tenant", "ascending"), ("day", "ascending"), ("time", "ascending")])
        ordered = table.take(order)
        t_sorted = tenants.take(order).to_pylist()
        d_sorted = days.take(order).cast(pa.int32()).to_numpy(zero_copy_only=False)
    boundaries = np.flatnonzero(np.diff(d_sorted) != 0) + 1
    starts = [0, *boundaries.tolist(), len(d_sorted)]
    cuts: list[int] = [0]
    for a, b in itertools.pairwise(starts):  # a day run may still span tenants
        if t_sorted is not None:
            cuts.extend(i for i in range(a + 1, b) if t_sorted[i] != t_sorted[i - 1])
        cuts.append(b)
    cuts = sorted(set(cuts))
    epoch = date(1970, 1, 1).toordinal()
    for a, b in itertools.pairwise(cuts):
        tenant = first_tenant if t_sorted is None else t_sorted[a]
        yield tenant, date.fromordinal(epoch + int(d_sorted[a])), ordered.slice(a, b - a)


def _partition_day(folder: Path) -> date | None:
    try:
        return date.fromisoformat(folder.name.removeprefix("date="))
    except ValueError:
        return None


def iter_tables(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Arrow record batches as one-batch tables (what the bus and the detectors take)."""
    for batch in batches:
        yield pa.Table.from_batches([batch])
