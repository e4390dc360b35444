"""The event model: one normalized shape for every telemetry family.

Every parser turns one received record into an :class:`Event`.  The common entity
fields (time, host, user, addresses, process, hashes, ...) let analytics, correlation
and hunting work across sources; ``fields`` keeps the record's own fields with their
original names and values so that Sigma rules and analysts see exactly what the
source said.  Batches of events travel between stages as Arrow tables
(:func:`events_to_table`), the lake's storage format.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

#: Column layout of the event lake; the order is the column order in Parquet.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source_format", pa.string(), nullable=False),
        pa.field("source_type", pa.string()),
        pa.field("product", pa.string()),
        pa.field("service", pa.string()),
        pa.field("category", pa.string()),
        pa.field("event_code", pa.string()),
        pa.field("action", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("host", pa.string()),
        pa.field("user", pa.string()),
        pa.field("user_domain", pa.string()),
        pa.field("src_ip", pa.string()),
        pa.field("src_port", pa.int32()),
        pa.field("dst_ip", pa.string()),
        pa.field("dst_port", pa.int32()),
        pa.field("protocol", pa.string()),
        pa.field("process_image", pa.string()),
        pa.field("process_pid", pa.int64()),
        pa.field("process_command_line", pa.string()),
        pa.field("parent_image", pa.string()),
        pa.field("parent_pid", pa.int64()),
        pa.field("parent_command_line", pa.string()),
        pa.field("file_path", pa.string()),
        pa.field("hash_md5", pa.string()),
        pa.field("hash_sha1", pa.string()),
        pa.field("hash_sha256", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("url", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("bytes_in", pa.int64()),
        pa.field("bytes_out", pa.int64()),
        pa.field("message", pa.string()),
        # enrichment
        pa.field("src_internal", pa.bool_()),
        pa.field("dst_internal", pa.bool_()),
        pa.field("src_country", pa.string()),
        pa.field("src_city", pa.string()),
        pa.field("src_lat", pa.float64()),
        pa.field("src_lon", pa.float64()),
        pa.field("dst_country", pa.string()),
        pa.field("asset_criticality", pa.string()),
        pa.field("asset_owner", pa.string()),
        pa.field("asset_has_edr", pa.bool_()),
        pa.field("asset_class", pa.string()),
        # provenance and original content
        pa.field("origin", pa.string()),
        pa.field("fields", pa.string()),
    ]
)

#: Common entity fields a parser may fill (everything but provenance and enrichment).
ENTITY_FIELDS: tuple[str, ...] = (
    "source_type", "product", "service", "category", "event_code", "action", "outcome",
    "host", "user", "user_domain", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
    "process_image", "process_pid", "process_command_line", "parent_image", "parent_pid",
    "parent_command_line", "file_path", "hash_md5", "hash_sha1", "hash_sha256", "domain",
    "url", "user_agent", "bytes_in", "bytes_out", "message",
)  # fmt: skip

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Event:
    """One normalized security event.

    ``time`` is always timezone-aware UTC.  ``fields`` is the flat mapping of the
    source record's own fields (original names and values) that detection runs on.
    ``natural_key`` is an optional source-given identity (e.g. Windows channel,
    computer and record id) that makes the same event imported from two formats
    (EVTX and its JSON export) get the same :attr:`event_id`.
    """

    time: datetime
    source_format: str
    fields: dict[str, Any]
    tenant: str = ""
    event_id: str = ""
    ingested_at: datetime | None = None
    source_type: str | None = None
    product: str | None = None
    service: str | None = None
    category: str | None = None
    event_code: str | None = None
    action: str | None = None
    outcome: str | None = None
    host: str | None = None
    user: str | None = None
    user_domain: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: str | None = None
    process_image: str | None = None
    process_pid: int | None = None
    process_command_line: str | None = None
    parent_image: str | None = None
    parent_pid: int | None = None
    parent_command_line: str | None = None
    file_path: str | None = None
    hash_md5: str | None = None
    hash_sha1: str | None = None
    hash_sha256: str | None = None
    domain: str | None = None
    url: str | None = None
    user_agent: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    message: str | None = None
    src_internal: bool | None = None
    dst_internal: bool | None = None
    src_country: str | None = None
    src_city: str | None = None
    src_lat: float | None = None
    src_lon: float | None = None
    dst_country: str | None = None
    asset_criticality: str | None = None
    asset_owner: str | None = None
    asset_has_edr: bool | None = None
    asset_class: str | None = None
    origin: str | None = None
    natural_key: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a plain dict in lake column order (``fields`` stays a dict)."""
        return {name: getattr(self, name) for name in EVENT_COLUMNS}


EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)
_EVENT_ATTRS = {f.name for f in fields(Event)}
assert set(EVENT_COLUMNS) <= _EVENT_ATTRS, "Event dataclass and EVENT_SCHEMA disagree"


def make_event_id(tenant: str, source_format: str, natural_key: str | None, payload: bytes) -> str:
    """Derive the stable id of an event so that re-importing the same data never duplicates it.

    The id hashes the tenant with the source's natural key when the source has one
    (so EVTX and JSON exports of one record agree), else with the exact payload.
    """
    if natural_key:
        data = b"%s\x1fk\x1f%s" % (tenant.encode(), natural_key.encode("utf-8", "surrogatepass"))
    else:
        data = b"%s\x1f%s\x1f%s" % (tenant.encode(), source_format.encode(), payload)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


_DUMP_OPTION = orjson.OPT_NON_STR_KEYS


def encode_fields(original: dict[str, Any]) -> bytes:
    """Serialize an event's original fields to UTF-8 JSON for the lake (lossless for JSON types)."""
    try:
        return orjson.dumps(original)  # the common case: JSON types with text keys
    except TypeError:  # bytes, other objects or non-text keys: written as text
        return orjson.dumps(original, default=_json_default, option=_DUMP_OPTION)


def fields_column(events: list[Event]) -> pa.Array | pa.ChunkedArray:
    """The lake's ``fields`` column of ``events``: :func:`encode_fields` of each, without a text round trip.

    orjson writes UTF-8, so its bytes become the string column as they are (a binary
    array viewed as string) instead of being decoded to ``str`` and encoded again.
    """
    encoded = pa.array([encode_fields(e.fields) for e in events], type=pa.binary())
    if isinstance(encoded, pa.ChunkedArray):  # a batch beyond 2 GB of text arrives in chunks
        return pa.chunked_array([chunk.view(pa.string()) for chunk in encoded.chunks], type=pa.string())
    return encoded.view(pa.string())


#: Lake columns read from the event's attributes (``fields``, the last column, is serialized on its own).
_ATTRIBUTE_COLUMNS = [(f.name, f.type, operator.attrgetter(f.name)) for f in EVENT_SCHEMA if f.name != "fields"]
assert EVENT_SCHEMA.names[-1] == "fields", "events_to_table appends the fields column last"


def events_to_table(events: list[Event]) -> pa.Table:
    """Build an Arrow table in :data:`EVENT_SCHEMA` layout from a batch of events.

    Each column is one C-level pass over the batch (``map`` of an attribute getter)
    converted by Arrow; no per-event Python frame runs except the ``fields`` serialization.
    """
    arrays = [pa.array(list(map(get, events)), type=kind, from_pandas=False) for _, kind, get in _ATTRIBUTE_COLUMNS]
    arrays.append(fields_column(events))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def table_to_events(table: pa.Table) -> list[Event]:
    """Rebuild events from a lake table (inverse of :func:`events_to_table`)."""
    rows = table.to_pylist()
    events: list[Event] = []
    for row in rows:
        original = row.pop("fields")
        row["fields"] = orjson.loads(original) if original else {}
        events.append(Event(**{k: v for k, v in row.items() if k in _EVENT_ATTRS}))
    return events
