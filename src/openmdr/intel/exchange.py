"""Indicator exchange formats: STIX 2.1 bundles, MISP events and feeds, CSV.

Readers are pure functions from text/data to an :class:`ImportReport` (indicators plus the
records refused, each with its reason and origin); writers turn indicators into the format.
Nothing here touches the store: the CLI and the TAXII client pass the report to
:meth:`openmdr.store.intel.IntelStore.upsert_indicators`.

Mapping notes (documented in ``docs/intel.md``):

* STIX: ``indicator`` objects with a ``stix`` pattern that is a disjunction of equality
  comparisons (``[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'x.example']``)
  become one indicator per comparison; AND, FOLLOWEDBY, qualifiers and other operators
  cannot be one indicator and are refused with the reason.  TLP comes from the TLP 1.0 or
  2.0 marking definitions in ``object_marking_refs``; ``confidence``, ``valid_from``,
  ``valid_until``, ``labels``/``indicator_types`` map to confidence, first seen, expiry, tags.
* MISP: attributes (including those inside objects) whose type we know and whose
  ``to_ids`` flag is set; ``tlp:*`` tags of the attribute or event give the TLP.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from openmdr.models.indicator import (
    TLP_LEVELS,
    Indicator,
    IndicatorError,
    infer_type,
    normalize_tlp,
    tlp_rank,
)
from openmdr.models.record import Rejection

#: STIX marking-definition ids of the TLP levels (TLP 2.0 ids, and the TLP 1.0 ids of STIX 2.1 section 7.2.1).
TLP_MARKING_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP1_MARKING_IDS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
_MARKING_TO_TLP = {v: k for k, v in TLP_MARKING_IDS.items()} | _TLP1_MARKING_IDS
#: Identity that signs our exported objects.
PRODUCER_IDENTITY = "identity--8d3b1c2e-6a4f-5e7d-9c0b-1a2b3c4d5e6f"

_STIX_PATHS: dict[str, str] = {
    "ipv4-addr:value": "ip",
    "ipv6-addr:value": "ip",
    "domain-name:value": "domain",
    "url:value": "url",
    "email-addr:value": "email",
    "email-message:from_ref.value": "email",
    "email-message:sender_ref.value": "email",
    "file:hashes.md5": "md5",
    "file:hashes.'md5'": "md5",
    "file:hashes.sha1": "sha1",
    "file:hashes.'sha1'": "sha1",
    "file:hashes.'sha-1'": "sha1",
    "file:hashes.sha256": "sha256",
    "file:hashes.'sha256'": "sha256",
    "file:hashes.'sha-256'": "sha256",
    "network-traffic:extensions.'http-request-ext'.request_header.'user-agent'": "user_agent",
    "x-ja3-fingerprint:value": "ja3",
}
_EXPORT_PATH: dict[str, str] = {
    "domain": "domain-name:value",
    "url": "url:value",
    "email": "email-addr:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "user_agent": "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'",
    "ja3": "x-ja3-fingerprint:value",
}
_COMPARISON = re.compile(r"(?P<path>[a-z0-9-]+:[A-Za-z0-9_.'\-]+)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)'")
_DISJUNCTION = re.compile(r"^\s*\[\s*C(?:\s+OR\s+C)*\s*\](?:\s+OR\s+\[\s*C(?:\s+OR\s+C)*\s*\])*\s*$")

#: MISP attribute types we import, and the indicator type (``ip`` becomes ``cidr`` for networks).
MISP_TYPES: dict[str, str] = {
    "ip-src": "ip", "ip-dst": "ip", "ip-src|port": "ip", "ip-dst|port": "ip", "domain": "domain",
    "hostname": "domain", "domain|ip": "domain", "url": "url", "link": "url", "md5": "md5", "sha1": "sha1",
    "sha256": "sha256", "filename|md5": "md5", "filename|sha1": "sha1", "filename|sha256": "sha256",
    "email": "email", "email-src": "email", "email-dst": "email", "user-agent": "user_agent",
    "ja3-fingerprint-md5": "ja3",
}  # fmt: skip
_MISP_EXPORT_TYPE = {
    "ip": "ip-dst", "cidr": "ip-dst", "domain": "domain", "url": "url", "md5": "md5", "sha1": "sha1",
    "sha256": "sha256", "email": "email-src", "user_agent": "user-agent", "ja3": "ja3-fingerprint-md5",
}  # fmt: skip
_MISP_THREAT_CONFIDENCE = {"1": 85, "2": 65, "3": 45, "4": 30}

#: CSV columns we read and write (``type`` may be empty: it is then inferred from the value).
CSV_COLUMNS: tuple[str, ...] = (
    "type", "value", "confidence", "tlp", "tags", "source", "first_seen", "last_seen", "expires_at", "description",
)  # fmt: skip


@dataclass(slots=True)
class ImportReport:
    """Indicators read from one input, the records refused (with reason and origin) and those skipped."""

    indicators: list[Indicator] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count an input record left out on purpose (not an error)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def reject(self, payload: Any, reason: str, origin: str, fmt: str) -> None:
        """Keep a bad record with its reason and origin."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload, default=str)
        self.rejected.append(Rejection(data, reason, origin, fmt, stage="intel"))

    def extend(self, other: ImportReport) -> None:
        """Add another report's results to this one."""
        self.indicators.extend(other.indicators)
        self.rejected.extend(other.rejected)
        for k, v in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + v


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), UTC)
    text = str(value).strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def exportable(indicators: Iterable[Indicator], max_tlp: str = "green") -> list[Indicator]:
    """Indicators that may leave the provider: provider-wide and no more restricted than ``max_tlp``.

    Tenant-scoped indicators and TLP:AMBER+STRICT/RED never leave, whatever ``max_tlp`` says.
    """
    limit = min(tlp_rank(max_tlp), TLP_LEVELS.index("amber"))
    return [i for i in indicators if i.tenant is None and tlp_rank(i.tlp) <= limit]


# ---------------------------------------------------------------------------- STIX 2.1
def parse_stix_pattern(pattern: str) -> list[tuple[str, str]]:
    """``(indicator type, value)`` pairs of a STIX pattern that is a disjunction of equality comparisons.

    Raises :class:`IndicatorError` for patterns one indicator cannot represent.
    """
    found: list[tuple[str, str]] = []
    for m in _COMPARISON.finditer(pattern):
        path = m.group("path")
        key = path.lower()
        kind = _STIX_PATHS.get(key)
        if kind is None:
            raise IndicatorError(f"unsupported object path {path}")
        value = m.group("value").replace("\\'", "'").replace("\\\\", "\\")
        if kind == "ip" and "/" in value:
            kind = "cidr"
        found.append((kind, value))
    skeleton = _COMPARISON.sub("C", pattern)
    if not found or not _DISJUNCTION.match(skeleton):
        raise IndicatorError("unsupported pattern: only equality comparisons joined by OR are indicators")
    return found


def read_stix(
    data: str | bytes | dict[str, Any],
    origin: str = "stix",
    tenant: str | None = None,
    default_tlp: str = "amber",
    default_confidence: int = 50,
    source: str = "stix",
) -> ImportReport:
    """Indicators of a STIX 2.1 bundle (or a TAXII envelope, or a list of objects)."""
    report = ImportReport()
    try:
        doc = orjson.loads(data) if isinstance(data, str | bytes) else data
    except orjson.JSONDecodeError as exc:
        report.reject(data if isinstance(data, bytes) else str(data).encode(), f"not JSON: {exc}", origin, "stix")
        return report
    objects = doc.get("objects", []) if isinstance(doc, dict) else doc
    if not isinstance(objects, list):
        report.reject(doc, "no objects list", origin, "stix")
        return report
    markings: dict[str, str] = dict(_MARKING_TO_TLP)
    for obj in objects:
        if isinstance(obj, dict) and obj.get("type") == "marking-definition":
            level = _marking_level(obj)
            if level:
                markings[str(obj.get("id"))] = level
    for n, obj in enumerate(objects):
        where = f"{origin}#objects[{n}]"
        if not isinstance(obj, dict):
            report.reject(obj, "object is not a JSON object", where, "stix")
            continue
        if obj.get("type") != "indicator":
            report.skip(f"stix {obj.get('type')} object")
            continue
        if obj.get("revoked"):
            report.skip("revoked indicator")
            continue
        if obj.get("pattern_type", "stix") != "stix":
            report.reject(obj, f"pattern type {obj.get('pattern_type')} is not stix", where, "stix")
            continue
        try:
            pairs = parse_stix_pattern(str(obj.get("pattern", "")))
            levels = [markings[r] for r in obj.get("object_marking_refs") or [] if r in markings]
            tlp = max(levels, key=tlp_rank) if levels else default_tlp
            tags = [str(t) for t in (obj.get("labels") or []) + (obj.get("indicator_types") or [])]
            first = _parse_time(obj.get("valid_from"))
            for kind, value in pairs:
                report.indicators.append(
                    Indicator(
                        type=kind,
                        value=value,
                        tenant=tenant,
                        source=source,
                        confidence=int(obj.get("confidence", default_confidence)),
                        tlp=tlp,
                        tags=sorted(set(tags)),
                        first_seen=first,
                        last_seen=_parse_time(obj.get("modified")) or first,
                        expires_at=_parse_time(obj.get("valid_until")),
                        description=obj.get("description") or obj.get("name"),
                    )
                )
        except (IndicatorError, ValueError, TypeError) as exc:
            report.reject(obj, str(exc), where, "stix")
    return report


def _marking_level(obj: dict[str, Any]) -> str | None:
    definition = obj.get("definition") or {}
    for candidate in (definition.get("tlp") if isinstance(definition, dict) else None, obj.get("name")):
        if candidate:
            try:
                return normalize_tlp(str(candidate))
            except IndicatorError:
                continue
    for ext in (obj.get("extensions") or {}).values():
        if isinstance(ext, dict) and ext.get("tlp_2_0"):
            try:
                return normalize_tlp(str(ext["tlp_2_0"]))
            except IndicatorError:
                continue
    return None


def _stix_pattern(ind: Indicator) -> str:
    escaped = ind.value.replace("\\", "\\\\").replace("'", "\\'")
    if ind.type in ("ip", "cidr"):
        path = "ipv6-addr:value" if ":" in ind.value else "ipv4-addr:value"
    else:
        path = _EXPORT_PATH[ind.type]
    return f"[{path} = '{escaped}']"


def stix_objects(indicators: Sequence[Indicator], producer: str = "OpenMDR") -> list[dict[str, Any]]:
    """STIX 2.1 objects (producer identity, TLP markings used, one indicator each) built with ``stix2``."""
    import stix2

    created = datetime(2026, 1, 1, tzinfo=UTC)
    identity = stix2.v21.Identity(
        id=PRODUCER_IDENTITY, name=producer, identity_class="organization", created=created, modified=created
    )
    out: list[dict[str, Any]] = [orjson.loads(identity.serialize())]
    for level in sorted({i.tlp for i in indicators}, key=tlp_rank):
        out.append(_marking_object(level))
    for ind in indicators:
        valid_from = ind.first_seen or ind.created_at or created
        modified = max(ind.updated_at or valid_from, valid_from)
        kwargs: dict[str, Any] = {}
        if ind.expires_at is not None and ind.expires_at > valid_from:
            kwargs["valid_until"] = ind.expires_at
        if ind.description:
            kwargs["description"] = ind.description
        if ind.tags:
            kwargs["labels"] = sorted(ind.tags)
        obj = stix2.v21.Indicator(
            id=f"indicator--{ind.id}",
            created=valid_from,
            modified=modified,
            name=f"{ind.type} {ind.value}"[:250],
            pattern=_stix_pattern(ind),
            pattern_type="stix",
            valid_from=valid_from,
            confidence=ind.confidence,
            created_by_ref=PRODUCER_IDENTITY,
            object_marking_refs=[TLP_MARKING_IDS[ind.tlp]],
            allow_custom=True,
            **kwargs,
        )
        out.append(orjson.loads(obj.serialize()))
    return out


def _marking_object(level: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_MARKING_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        },
    }


def write_stix(indicators: Sequence[Indicator], producer: str = "OpenMDR") -> bytes:
    """A STIX 2.1 bundle of ``indicators`` as JSON bytes."""
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": stix_objects(indicators, producer)}
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2)


# ---------------------------------------------------------------------------- MISP
def read_misp(
    data: str | bytes | dict[str, Any],
    origin: str = "misp",
    tenant: str | None = None,
    default_tlp: str = "amber",
    source: str = "misp",
    include_non_ids: bool = False,
) -> ImportReport:
    """Indicators of one MISP event (``{"Event": {...}}``) or a list of such events (a MISP search result)."""
    from pymisp import MISPEvent
    from pymisp.exceptions import PyMISPError

    report = ImportReport()
    try:
        doc = orjson.loads(data) if isinstance(data, str | bytes) else data
    except orjson.JSONDecodeError as exc:
        report.reject(data if isinstance(data, bytes) else str(data).encode(), f"not JSON: {exc}", origin, "misp")
        return report
    events = (
        doc
        if isinstance(doc, list)
        else (doc.get("response") if isinstance(doc, dict) and "response" in doc else [doc])
    )
    for n, raw in enumerate(events):
        where = f"{origin}#event[{n}]" if len(events) > 1 else origin
        event = MISPEvent()
        try:
            event.load(raw)
        except (PyMISPError, KeyError, TypeError, ValueError) as exc:
            report.reject(raw, f"not a MISP event: {exc}", where, "misp")
            continue
        event_tlp = _tlp_of_tags([t.name for t in event.tags]) or default_tlp
        event_tags = [t.name for t in event.tags if not t.name.lower().startswith("tlp:")]
        threat = str(event.get("threat_level_id") or "")
        confidence = _MISP_THREAT_CONFIDENCE.get(threat, 50)
        event_time = _parse_time(event.get("timestamp")) if event.get("timestamp") else None
        attributes = list(event.attributes) + [a for obj in event.objects for a in obj.attributes]
        for k, attr in enumerate(attributes):
            kind = MISP_TYPES.get(attr.type)
            if kind is None:
                report.skip(f"misp type {attr.type}")
                continue
            if not attr.to_ids and not include_non_ids:
                report.skip("misp to_ids false")
                continue
            value = str(attr.value)
            if "|" in attr.type:
                left, _, right = value.partition("|")
                value = left if attr.type in ("domain|ip",) else right
                if attr.type.endswith("|port"):
                    value = left
            if kind == "ip" and "/" in value:
                kind = "cidr"
            tags = [t.name for t in attr.tags]
            tlp = _tlp_of_tags(tags) or event_tlp
            seen = attr.get("timestamp") or event.get("timestamp")
            try:
                report.indicators.append(
                    Indicator(
                        type=kind,
                        value=value,
                        tenant=tenant,
                        source=source,
                        confidence=confidence,
                        tlp=tlp,
                        tags=sorted(set(event_tags + [t for t in tags if not t.lower().startswith("tlp:")])),
                        first_seen=_parse_time(attr.get("first_seen")) or _parse_time(seen) or event_time,
                        last_seen=_parse_time(attr.get("last_seen")) or _parse_time(seen) or event_time,
                        description=(attr.get("comment") or event.info or None),
                    )
                )
            except (IndicatorError, ValueError, TypeError) as exc:
                report.reject(attr.to_dict(), str(exc), f"{where}#attribute[{k}]", "misp")
    return report


def _tlp_of_tags(tags: Iterable[str]) -> str | None:
    best: str | None = None
    for name in tags:
        if name.lower().startswith("tlp:"):
            try:
                level = normalize_tlp(name)
            except IndicatorError:
                continue
            if best is None or tlp_rank(level) > tlp_rank(best):
                best = level
    return best


def read_misp_feed(folder: Path | str, tenant: str | None = None, source: str = "misp-feed") -> ImportReport:
    """Every event of a MISP feed directory (``manifest.json`` plus one ``<uuid>.json`` per event)."""
    folder = Path(folder)
    report = ImportReport()
    manifest_path = folder / "manifest.json"
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        report.reject(b"", f"unreadable MISP feed manifest: {exc}", str(manifest_path), "misp")
        return report
    for event_uuid in manifest:
        path = folder / f"{event_uuid}.json"
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.reject(event_uuid.encode(), f"event file missing: {exc}", str(path), "misp")
            continue
        report.extend(read_misp(data, str(path), tenant, source=source))
    return report


def misp_event(indicators: Sequence[Indicator], info: str, org: str = "OpenMDR") -> dict[str, Any]:
    """One MISP event (feed format, built with PyMISP) holding ``indicators`` as ``to_ids`` attributes."""
    from pymisp import MISPEvent, MISPOrganisation

    event = MISPEvent()
    event.info = info
    event.uuid = str(
        uuid.uuid5(uuid.NAMESPACE_URL, "openmdr:" + info + ":" + ",".join(sorted(i.id for i in indicators)))
    )
    event.date = datetime.now(UTC).date()
    event.threat_level_id = 2
    event.analysis = 2
    event.distribution = 0
    organisation = MISPOrganisation()
    organisation.name = org
    organisation.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "openmdr:org:" + org))
    event.Orgc = organisation
    levels = {i.tlp for i in indicators}
    if len(levels) == 1:
        event.add_tag(f"tlp:{levels.pop()}")
    for ind in indicators:
        tags = [{"name": f"tlp:{ind.tlp}"}] + [{"name": t} for t in sorted(ind.tags)]
        attr = event.add_attribute(
            _MISP_EXPORT_TYPE[ind.type],
            ind.value,
            to_ids=True,
            comment=ind.description or "",
            Tag=tags,
            uuid=ind.id,
        )
        if ind.first_seen:
            attr.first_seen = ind.first_seen
        if ind.last_seen and ind.first_seen and ind.last_seen >= ind.first_seen:
            attr.last_seen = ind.last_seen
    return event.to_feed(with_meta=False)


def write_misp(indicators: Sequence[Indicator], info: str = "OpenMDR shared indicators") -> bytes:
    """One MISP event JSON document holding ``indicators``."""
    return orjson.dumps(misp_event(indicators, info), option=orjson.OPT_INDENT_2, default=str)


def write_misp_feed(
    indicators: Sequence[Indicator], folder: Path | str, info: str = "OpenMDR shared indicators"
) -> Path:
    """A MISP feed directory (manifest plus one event) that MISP can subscribe to."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    event = misp_event(indicators, info)
    body = event["Event"]
    (folder / f"{body['uuid']}.json").write_bytes(orjson.dumps(event, default=str))
    manifest = {
        body["uuid"]: {
            k: body.get(k)
            for k in ("info", "date", "timestamp", "threat_level_id", "analysis", "Orgc", "Tag")
            if k in body
        }
    }
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest, default=str))
    return folder


# ---------------------------------------------------------------------------- CSV
def read_csv(
    text: str,
    origin: str = "csv",
    tenant: str | None = None,
    default_tlp: str = "amber",
    default_confidence: int = 50,
    source: str = "csv",
) -> ImportReport:
    """Indicators of a CSV with a header (:data:`CSV_COLUMNS`, ``value`` required; tags ``;``-separated)."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "value" not in [f.strip().lower() for f in reader.fieldnames]:
        report.reject(text[:200].encode(), "CSV header must name a value column", origin, "csv")
        return report
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{origin}:{line}"
        try:
            value = row["value"]
            kind = row.get("type") or infer_type(value)
            if kind == "ip" and "/" in value:
                kind = "cidr"
            tags = [t.strip() for t in row.get("tags", "").split(";") if t.strip()]
            report.indicators.append(
                Indicator(
                    type=kind,
                    value=value,
                    tenant=tenant,
                    source=row.get("source") or source,
                    confidence=int(row.get("confidence") or default_confidence),
                    tlp=row.get("tlp") or default_tlp,
                    tags=tags,
                    first_seen=_parse_time(row.get("first_seen")),
                    last_seen=_parse_time(row.get("last_seen")),
                    expires_at=_parse_time(row.get("expires_at")),
                    description=row.get("description") or None,
                )
            )
        except (IndicatorError, ValueError, KeyError) as exc:
            report.reject(orjson.dumps(raw), str(exc), where, "csv")
    return report


def write_csv(indicators: Iterable[Indicator]) -> str:
    """CSV of ``indicators`` with the :data:`CSV_COLUMNS` header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in indicators:
        writer.writerow(
            [
                i.type,
                i.value,
                i.confidence,
                i.tlp,
                ";".join(sorted(i.tags)),
                i.source,
                _iso(i.first_seen) or "",
                _iso(i.last_seen) or "",
                _iso(i.expires_at) or "",
                i.description or "",
            ]
        )
    return out.getvalue()


def read_any(
    path: Path | str,
    fmt: str | None = None,
    tenant: str | None = None,
    source: str | None = None,
    default_tlp: str = "amber",
) -> ImportReport:
    """Read a file or MISP feed directory in ``fmt`` (``stix``, ``misp``, ``csv``; guessed when None)."""
    path = Path(path)
    if path.is_dir():
        return read_misp_feed(path, tenant, source or "misp-feed")
    data = path.read_bytes()
    if fmt is None:
        fmt = guess_format(path, data)
    if fmt == "stix":
        return read_stix(data, str(path), tenant, default_tlp, source=source or path.stem)
    if fmt == "misp":
        return read_misp(data, str(path), tenant, default_tlp, source=source or path.stem)
    if fmt == "csv":
        return read_csv(data.decode("utf-8-sig", "replace"), str(path), tenant, default_tlp, source=source or path.stem)
    raise ValueError(f"unknown indicator format {fmt!r} (stix, misp, csv)")


def guess_format(path: Path, data: bytes) -> str:
    """``stix``, ``misp`` or ``csv`` from the content (JSON with ``Event`` is MISP, with ``objects`` STIX)."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        text = data[:4096]
        if b'"Event"' in text or b'"Attribute"' in text:
            return "misp"
        return "stix"
    return "csv"
