"""Reading a tenant's asset inventory from CSV, with every bad row reported by line number.

Columns (header required, case-insensitive, any order): ``hostname`` (required), ``ip``
(several separated by ``;`` or spaces), ``owner``, ``criticality``
(low/medium/high/critical, default medium), ``asset_class`` (see
:data:`openmdr.models.tenant.ASSET_CLASSES`, default workstation), ``has_edr``
(true/false/yes/no/1/0, default false) and ``tags`` (separated by ``;`` or spaces).
A row that cannot be used is returned with its line number and the reason; nothing is
skipped silently.  Blank lines are not rows.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from openmdr.models.tenant import AssetInfo
from openmdr.store.errors import ValidationError
from openmdr.store.validation import hostname_key, validate_asset

#: Header spellings accepted for each column.
COLUMN_ALIASES: dict[str, str] = {
    "hostname": "hostname", "host": "hostname", "name": "hostname",
    "ip": "ip", "ips": "ip", "ip_address": "ip", "ip_addresses": "ip",
    "owner": "owner",
    "criticality": "criticality",
    "asset_class": "asset_class", "class": "asset_class",
    "has_edr": "has_edr", "edr": "has_edr",
    "tags": "tags",
}  # fmt: skip
_BOOLEANS = {"true": True, "yes": True, "1": True, "y": True, "false": False, "no": False, "0": False, "n": False}
_LIST_SPLIT = re.compile(r"[;\s]+")
#: Largest CSV accepted (an inventory far bigger than any real one is refused, not read into memory).
MAX_CSV_BYTES = 64 * 1024 * 1024
MAX_FIELD_CHARS = 8192


@dataclass(slots=True)
class AssetImportReport:
    """What an import did: how many assets were stored, and each refused row with its reason."""

    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_csv_source(path_or_text: str | Path) -> str:
    """Load the CSV text: a :class:`Path`, a ``str`` path, or CSV text (a ``str`` with a newline).

    Accepts UTF-8 with or without BOM; bytes that are not UTF-8 are kept as escapes
    so the affected rows can be rejected one by one.
    """
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return path_or_text
    path = Path(path_or_text)
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise ValidationError(f"{path}: {size:,} bytes is larger than the {MAX_CSV_BYTES:,} bytes accepted")
    return path.read_bytes().decode("utf-8-sig", "surrogateescape")


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(x for x in _LIST_SPLIT.split(text.strip()) if x)


def parse_assets_csv(text: str) -> tuple[list[tuple[int, AssetInfo]], list[tuple[int, str]]]:
    """Parse inventory CSV text into ``(line, asset)`` pairs and ``(line, reason)`` rejections.

    Raises :class:`ValidationError` when the file as a whole is unusable (no header,
    no ``hostname`` column, unknown columns).  A hostname repeated (case-insensitively)
    in the file is rejected on its later lines, naming the first.
    """
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("the CSV is empty: expected a header line with at least 'hostname'") from None
    except csv.Error as exc:
        raise ValidationError(f"line 1: unreadable header ({exc})") from None
    columns: list[str] = []
    for raw in header:
        key = raw.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in COLUMN_ALIASES:
            expected = "hostname, ip, owner, criticality, asset_class, has_edr, tags"
            raise ValidationError(f"line 1: unknown column {raw!r}; expected {expected}")
        columns.append(COLUMN_ALIASES[key])
    if "hostname" not in columns:
        raise ValidationError("line 1: the header has no 'hostname' column")
    if len(set(columns)) != len(columns):
        raise ValidationError("line 1: a column appears twice in the header")

    assets: list[tuple[int, AssetInfo]] = []
    rejected: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    next_line = reader.line_num + 1
    while True:
        line_no = next_line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejected.append((line_no, f"unreadable CSV ({exc})"))
            next_line = reader.line_num + 1
            continue
        next_line = reader.line_num + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            rejected.append((line_no, f"{len(row)} fields where the header has {len(columns)}"))
            continue
        values = dict(zip(columns, row, strict=True))
        reason = _row_problem(values)
        if reason is not None:
            rejected.append((line_no, reason))
            continue
        try:
            asset = validate_asset(_row_asset(values))
        except ValidationError as exc:
            rejected.append((line_no, str(exc)))
            continue
        key = hostname_key(asset.hostname)
        if key in first_line:
            rejected.append((line_no, f"hostname {asset.hostname!r} already given on line {first_line[key]}"))
            continue
        first_line[key] = line_no
        assets.append((line_no, asset))
    return assets, rejected


def _row_problem(values: dict[str, str]) -> str | None:
    for name, value in values.items():
        if len(value) > MAX_FIELD_CHARS:
            return f"{name} is longer than {MAX_FIELD_CHARS} characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name} is not valid UTF-8"
    if not values.get("hostname", "").strip():
        return "hostname is empty"
    criticality = values.get("criticality", "").strip().lower()
    if criticality and criticality not in ("low", "medium", "high", "critical"):
        return f"criticality {values['criticality']!r} is not one of low, medium, high, critical"
    edr = values.get("has_edr", "").strip().lower()
    if edr and edr not in _BOOLEANS:
        return f"has_edr {values['has_edr']!r} is not true/false/yes/no/1/0"
    return None


def _row_asset(values: dict[str, str]) -> AssetInfo:
    edr = values.get("has_edr", "").strip().lower()
    return AssetInfo(
        hostname=values["hostname"].strip(),
        ips=_split_list(values.get("ip", "")),
        owner=values.get("owner", "").strip() or None,
        criticality=values.get("criticality", "").strip().lower() or "medium",
        asset_class=values.get("asset_class", "").strip().lower() or "workstation",
        has_edr=_BOOLEANS.get(edr, False),
        tags=_split_list(values.get("tags", "")),
    )
