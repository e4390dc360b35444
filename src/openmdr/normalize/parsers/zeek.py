"""Zeek parsers: TSV logs of any type ("zeek_tsv", read by their ``#fields`` header) and JSON logs ("zeek_json").

A Zeek TSV log describes itself in its ``#`` header: the separator, the set separator,
the markers of empty and unset values, the log path (``conn``, ``dns``, ``http``...) and
the names and types of its columns.  The file framer collects those lines and hands
them to :func:`read_zeek_header` once per header; the resulting context (plain JSON-able
data) travels with every data line, so the parser reads any log type, also ones this
module has never heard of.

``fields`` keeps Zeek's own column names (``id.orig_h``, ``query``, ``conn_state``...) with
typed values: ``time``/``interval``/``double`` as floats, ``count``/``int``/``port`` as
ints, ``bool`` as booleans, ``set[...]``/``vector[...]`` as lists (each element typed),
everything else as text.  Unset values (``-``) are left out; an empty set is ``[]`` and
an empty string ``""``.  Zeek's ``\\xHH`` escapes are undone.  JSON logs already carry
typed values and are kept as given (a nested ``id`` object is flattened to ``id.orig_h``).

Conventions the network analytics build on: ``product`` is ``zeek``, ``service`` and
``event_code`` are the log path, ``source_type`` is ``zeek:<path>``.  Entities: the
connection 4-tuple from ``id.*``, ``proto``, ``bytes_out``/``bytes_in`` from
``orig_bytes``/``resp_bytes`` (the originator's point of view), ``domain`` from the DNS
query, HTTP host or TLS server name, ``url``/``user_agent`` for HTTP, the user of
ssh/ftp/kerberos/ntlm/http logs, hashes and names of files, and ``outcome`` for
authentication logs.  The JSON form of a log has no path field of its own unless Zeek
wrote ``_path``; without one the path is inferred from the columns it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.jsonlines import (
    as_int,
    as_ip,
    as_port,
    check_container,
    flatten_object,
    load_json_object,
    to_time,
)

#: Header directives a Zeek TSV log may carry (``#open``/``#close`` hold no framing facts).
HEADER_KEYS = ("separator", "set_separator", "empty_field", "unset_field", "path", "fields", "types")
_DEFAULTS = {"separator": "\t", "set_separator": ",", "empty_field": "(empty)", "unset_field": "-"}
_MAX_COLUMNS = 4096


def _unescape(text: str) -> str:
    r"""Undo Zeek's ``\xHH`` escapes (used for separators and non-printable bytes inside values)."""
    if "\\x" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        j = text.find("\\x", i)
        if j < 0 or j + 4 > n:
            out.append(text[i:])
            break
        out.append(text[i:j])
        try:
            out.append(chr(int(text[j + 2 : j + 4], 16)))
            i = j + 4
        except ValueError:
            out.append(text[j : j + 2])
            i = j + 2
    return "".join(out)


def read_zeek_header(lines: Sequence[bytes]) -> dict[str, Any]:
    """Build the record context of a Zeek TSV log from its ``#`` directive lines.

    Returns ``separator``, ``set_separator``, ``empty_field``, ``unset_field``, ``path``,
    ``fields`` and ``types`` (lists of equal length; ``types`` defaults to ``string``).
    Raises :class:`ParseError` when there is no ``#fields`` line or the header is inconsistent.
    """
    raw: dict[str, str] = {}
    for line in lines:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if not text.startswith("#"):
            continue
        if text.startswith("#separator"):
            raw["separator"] = _unescape(text[len("#separator") :].strip(" ")) or "\t"
            continue
        key, sep, rest = text[1:].partition("\t")
        if not sep:
            key, sep, rest = text[1:].partition(" ")
        if key in HEADER_KEYS:
            raw[key] = rest
    context: dict[str, Any] = {k: raw.get(k, v) for k, v in _DEFAULTS.items()}
    separator = context["separator"]
    for key in ("set_separator", "empty_field", "unset_field"):
        context[key] = _unescape(context[key])
    if "fields" not in raw:
        raise ParseError("no #fields line in the Zeek header")
    names = raw["fields"].split(separator)
    if not names or not all(names) or len(names) > _MAX_COLUMNS:
        raise ParseError(f"unusable #fields line ({len(names)} columns)")
    if len(set(names)) != len(names):
        raise ParseError("#fields names a column twice")
    types = raw["types"].split(separator) if "types" in raw else ["string"] * len(names)
    if len(types) != len(names):
        raise ParseError(f"#types has {len(types)} entries but #fields has {len(names)}")
    context["path"] = raw.get("path", "").strip() or None
    context["fields"] = names
    context["types"] = types
    return context


# --------------------------------------------------------------------------- typed values

Converter = Callable[[str], Any]


def _to_int(text: str) -> int:
    """A Zeek count/int/port: must fit JSON's 64-bit integers (Zeek counts are unsigned 64-bit)."""
    number = int(text)
    if not -(1 << 63) <= number < (1 << 64):
        raise ValueError(f"integer out of 64-bit range: {text[:24]}")
    return number


def _to_float(text: str) -> float:
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text[:24]}")
    return number


def _to_bool(text: str) -> bool:
    if text == "T":
        return True
    if text == "F":
        return False
    raise ValueError(f"not a Zeek bool: {text[:20]!r}")


_SCALAR: dict[str, Converter] = {
    "time": _to_float, "interval": _to_float, "double": _to_float,
    "count": _to_int, "int": _to_int, "port": _to_int, "bool": _to_bool,
}  # fmt: skip


def _converter(kind: str, set_separator: str, empty: str) -> tuple[Converter | None, bool]:
    """(element converter or None for text, is_container) of a Zeek type name."""
    if kind.startswith(("set[", "vector[", "table[")) and kind.endswith("]"):
        inner = kind[kind.index("[") + 1 : -1]
        return _SCALAR.get(inner), True
    return _SCALAR.get(kind), False


class _Plan:
    """Per-header column plan: names, converters and markers (built once per header)."""

    __slots__ = ("columns", "empty", "path", "separator", "set_separator", "unset")

    def __init__(self, context: Mapping[str, Any]) -> None:
        try:
            names = list(context["fields"])
            types = list(context.get("types") or ["string"] * len(names))
            self.separator = str(context.get("separator", "\t"))
            self.set_separator = str(context.get("set_separator", ","))
            self.empty = str(context.get("empty_field", "(empty)"))
            self.unset = str(context.get("unset_field", "-"))
        except (KeyError, TypeError) as exc:
            raise ParseError(f"Zeek TSV record without a usable header context: {exc}") from None
        if len(types) != len(names):
            raise ParseError("Zeek TSV header context has unequal fields and types")
        path = context.get("path")
        self.path = str(path) if path else None
        self.columns = [(name, kind, *_converter(kind, self.set_separator, self.empty)) for name, kind in
                        zip(names, types, strict=True)]  # fmt: skip


_PLANS: dict[int, tuple[Mapping[str, Any], _Plan]] = {}


def _plan(context: Mapping[str, Any] | None) -> _Plan:
    if not context or "fields" not in context:
        raise ParseError("Zeek TSV record without its #fields header (no context from the framer)")
    held = _PLANS.get(id(context))
    if held is not None and held[0] is context:
        return held[1]
    plan = _Plan(context)
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[id(context)] = (context, plan)
    return plan


def _tsv_fields(line: str, plan: _Plan) -> dict[str, Any]:
    values = line.split(plan.separator)
    if len(values) != len(plan.columns):
        raise ParseError(f"Zeek TSV line has {len(values)} columns, the header names {len(plan.columns)}")
    out: dict[str, Any] = {}
    unset, empty = plan.unset, plan.empty
    for (name, kind, convert, container), value in zip(plan.columns, values, strict=True):
        if value == unset:
            continue
        if container:
            if value == empty:
                out[name] = []
                continue
            items = [_unescape(v) for v in value.split(plan.set_separator)]
            if convert is not None:
                try:
                    out[name] = [convert(v) for v in items]
                except ValueError:
                    raise ParseError(f"Zeek column {name} ({kind}): unreadable value {value[:40]!r}") from None
            else:
                out[name] = items
            continue
        if convert is None:
            out[name] = "" if value == empty else _unescape(value)
            continue
        try:
            out[name] = convert(value)
        except ValueError:
            raise ParseError(f"Zeek column {name} ({kind}): unreadable value {value[:40]!r}") from None
    return out


# --------------------------------------------------------------------------- entities

# Columns that identify a log type when a JSON record does not name its path.
_PATH_MARKERS: tuple[tuple[str, str], ...] = (
    ("conn_state", "conn"), ("qtype_name", "dns"), ("query", "dns"), ("status_code", "http"),
    ("method", "http"), ("server_name", "ssl"), ("ja3", "ssl"), ("auth_success", "ssh"),
    ("fuid", "files"), ("mime_type", "files"), ("note", "notice"), ("cert_chain_fuids", "ssl"),
)  # fmt: skip


def _infer_path(fields: Mapping[str, Any]) -> str:
    for key, path in _PATH_MARKERS:
        if key in fields:
            return path
    return "unknown"


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if type(value) is list and value and type(value[0]) is str:
        return value[0] or None
    return None


def _outcome(path: str, f: Mapping[str, Any]) -> str | None:
    if path == "ssh":
        ok = f.get("auth_success")
        return None if ok is None else ("success" if ok is True or ok == "T" else "failure")
    if path in ("kerberos", "ntlm", "radius"):
        ok = f.get("success")
        if ok is not None:
            return "success" if ok is True or ok == "T" else "failure"
        result = f.get("result")
        return None if result is None else ("success" if str(result).lower() == "success" else "failure")
    if path == "dns":
        rcode = f.get("rcode_name")
        return None if rcode is None else ("success" if rcode == "NOERROR" else "failure")
    if path == "http":
        code = as_int(f.get("status_code"))
        return None if code is None else ("success" if code < 400 else "failure")
    return None


def build_zeek_event(fields: dict[str, Any], path: str | None, source_format: str) -> Event:
    """Turn one Zeek log record's typed ``fields`` into an event (see the module docstring)."""
    ts = fields.get("ts")
    if ts is None:
        raise ParseError("Zeek record has no ts")
    time = to_time(ts)
    path = path or _infer_path(fields)
    host = _text(fields.get("host"))
    uri = _text(fields.get("uri"))
    domain = _text(fields.get("query")) or _text(fields.get("server_name")) or (host if path == "http" else None)
    user = _text(fields.get("user")) or _text(fields.get("username")) or _text(fields.get("client"))
    if path == "kerberos" and user and "/" in user:
        user = user.split("/", 1)[0]
    event = Event(
        time=time,
        source_format=source_format,
        fields=fields,
        source_type=f"zeek:{path}",
        product="zeek",
        service=path,
        event_code=path,
        action=path,
        outcome=_outcome(path, fields),
        src_ip=as_ip(fields.get("id.orig_h")) or as_ip(fields.get("tx_hosts")),
        src_port=as_port(fields.get("id.orig_p")),
        dst_ip=as_ip(fields.get("id.resp_h")) or as_ip(fields.get("rx_hosts")),
        dst_port=as_port(fields.get("id.resp_p")),
        protocol=_text(fields.get("proto")),
        bytes_out=as_int(fields.get("orig_bytes")),
        bytes_in=as_int(fields.get("resp_bytes")),
        domain=domain,
        url=(f"http://{host}{uri}" if host and uri and path == "http" else uri),
        user_agent=_text(fields.get("user_agent")),
        user=user,
        hash_md5=_text(fields.get("md5")),
        hash_sha1=_text(fields.get("sha1")),
        hash_sha256=_text(fields.get("sha256")),
        file_path=_text(fields.get("filename")),
        message=_text(fields.get("msg")) or _text(fields.get("note")),
    )
    if event.protocol:
        event.protocol = event.protocol.lower()
    return event


class ZeekTsvParser:
    """Parser for one data line of a Zeek TSV log ("zeek_tsv"), typed by its header context."""

    name = "zeek_tsv"

    def parse(self, record: RawRecord) -> Event:
        """Parse one tab-separated data line with the ``#fields``/``#types`` header in ``record.context``."""
        plan = _plan(record.context)
        try:
            line = record.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("not valid UTF-8") from None
        line = line.rstrip("\r\n")
        if not line or line.startswith("#"):
            raise ParseError("not a Zeek data line (empty or a # directive)")
        return build_zeek_event(_tsv_fields(line, plan), plan.path, self.name)


class ZeekJsonParser:
    """Parser for one record of a Zeek JSON log ("zeek_json")."""

    name = "zeek_json"

    def parse(self, record: RawRecord) -> Event:
        """Parse one Zeek JSON object (``ts`` as epoch seconds or ISO 8601 text)."""
        obj = load_json_object(record)
        for value in obj.values():
            check_container(value, 2)
        fields = flatten_object(obj) if type(obj.get("id")) is dict else obj
        path = fields.get("_path")
        return build_zeek_event(fields, path if type(path) is str and path else None, self.name)


register(ZeekTsvParser())
register(ZeekJsonParser())
