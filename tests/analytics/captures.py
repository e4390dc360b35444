"""Load the public captures in ../shared/datasets as enriched events for the analytics tests.

The preferred path is the project's own: the file framer (``openmdr.ingest.files``) and
the registered parsers (``openmdr.normalize.get_parser``).  While those are still being
written (a parser module that registers nothing, or a framer that cannot build a Zeek
header yet), the small reader below turns the same files into events following the
parsers' documented conventions (Zeek: product ``zeek``, service = log path, original
field names; Suricata EVE: product ``suricata``, service = event_type, dotted field
names).  ``LoadResult.path`` says which one was used.  Events are then enriched by the
real :class:`~openmdr.enrich.enricher.Enricher`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from openmdr.enrich.enricher import Enricher
from openmdr.models import Event, TenantInfo, make_event_id
from openmdr.normalize.base import parse_time

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"


def dataset(relative: str) -> Path:
    """Path of a file under ../shared/datasets, skipping the test when it is absent."""
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(f"public capture {relative} not found under {DATASETS}")
    return path


@dataclass
class LoadResult:
    """Events of one capture, which loader produced them, and per-event labels if any."""

    events: list[Event]
    path: str
    labels: dict[str, str]
    rejected: int = 0


def load_capture(path: Path, tenant: TenantInfo) -> LoadResult:
    """Events of ``path`` for ``tenant``, enriched; labels by event id for labelled Zeek logs."""
    result = _load_with_project(path, tenant.name)
    if result is None:
        result = _load_locally(path, tenant.name)
    Enricher(tenant, (), None).enrich(result.events)
    return result


def _load_with_project(path: Path, tenant: str) -> LoadResult | None:
    try:
        from openmdr.ingest.files import plan_sources, read_sources
        from openmdr.models import ParseError, RawRecord
        from openmdr.normalize import get_parser

        events: list[Event] = []
        labels: dict[str, str] = {}
        rejected = 0
        for item in read_sources(plan_sources([path])):
            if not isinstance(item, RawRecord):
                rejected += 1
                continue
            try:
                event = get_parser(item.format).parse(item)
            except ParseError:
                rejected += 1
                continue
            event.tenant = tenant
            event.event_id = make_event_id(tenant, item.format, event.natural_key, item.payload)
            if "label" in event.fields:
                labels[event.event_id] = str(event.fields["label"])
            events.append(event)
    except (ImportError, KeyError, AttributeError):
        return None
    return LoadResult(events, "project framer + parsers", labels, rejected)


# ---------------------------------------------------------------------- local reader


def _load_locally(path: Path, tenant: str) -> LoadResult:
    events: list[Event] = []
    labels: dict[str, str] = {}
    header: dict[str, Any] = {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        if line.startswith(b"#"):
            _header_line(header, line.decode("utf-8", "replace"))
            continue
        if line.startswith(b"{"):
            record = orjson.loads(line)
            event = _suricata(record) if "event_type" in record else _zeek(_zeek_json_fields(record), "conn")
        else:
            event = _zeek(_zeek_tsv_fields(header, line.decode("utf-8", "replace")), header.get("path", "conn"))
        event.tenant = tenant
        event.event_id = make_event_id(tenant, event.source_format, None, line)
        if "label" in event.fields:
            labels[event.event_id] = str(event.fields["label"])
        events.append(event)
    return LoadResult(events, "test-local reader", labels)


def _header_line(header: dict[str, Any], text: str) -> None:
    key, _, rest = text[1:].partition(" " if text.startswith("#separator") else "\t")
    if key == "separator":
        header["separator"] = rest.strip().encode().decode("unicode_escape")
    elif key in ("fields", "types"):
        header[key] = rest.split(header.get("separator", "\t"))
    elif key in ("path", "set_separator", "empty_field", "unset_field"):
        header[key] = rest


def _zeek_tsv_fields(header: dict[str, Any], line: str) -> dict[str, Any]:
    values = line.split(header.get("separator", "\t"))
    out: dict[str, Any] = {}
    for name, kind, value in zip(header["fields"], header["types"], values, strict=False):
        if value in (header.get("unset_field", "-"), header.get("empty_field", "(empty)")):
            continue
        if kind in ("time", "interval", "double"):
            out[name] = float(value)
        elif kind in ("count", "int", "port"):
            out[name] = int(value)
        elif kind == "bool":
            out[name] = value == "T"
        elif kind.startswith(("set[", "vector[")):
            out[name] = value.split(header.get("set_separator", ","))
        else:
            out[name] = value
    return out


def _zeek_json_fields(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record)


def _zeek(fields: dict[str, Any], path: str) -> Event:
    domain = fields.get("query") or fields.get("host") or fields.get("server_name")
    return Event(
        time=parse_time(fields["ts"]),
        source_format="zeek_tsv",
        fields=fields,
        product="zeek",
        service=path,
        source_type=f"zeek:{path}",
        event_code=path,
        action=path,
        src_ip=fields.get("id.orig_h"),
        src_port=fields.get("id.orig_p"),
        dst_ip=fields.get("id.resp_h"),
        dst_port=fields.get("id.resp_p"),
        protocol=fields.get("proto"),
        bytes_out=fields.get("orig_bytes", fields.get("orig_ip_bytes")),
        bytes_in=fields.get("resp_bytes"),
        domain=domain,
    )


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            out.update(_flatten(item, name + "."))
        else:
            out[name] = item
    return out


def _suricata(record: dict[str, Any]) -> Event:
    fields = _flatten(record)
    kind = record["event_type"]
    domain = fields.get("dns.rrname") or fields.get("http.hostname") or fields.get("tls.sni")
    return Event(
        time=parse_time(record["timestamp"]),
        source_format="suricata_eve",
        fields=fields,
        product="suricata",
        service=kind,
        source_type=f"suricata:{kind}",
        event_code=kind,
        action=kind,
        src_ip=record.get("src_ip"),
        src_port=record.get("src_port"),
        dst_ip=record.get("dest_ip"),
        dst_port=record.get("dest_port"),
        protocol=record.get("proto"),
        bytes_out=fields.get("flow.bytes_toserver"),
        bytes_in=fields.get("flow.bytes_toclient"),
        domain=domain,
    )
