"""Generic JSON lines parser ("json") and the JSON helpers the other JSON parsers share.

One record is one JSON object.  Nested objects are flattened into ``fields`` with dotted
keys (``{"source": {"ip": "10.0.0.5"}}`` becomes ``fields["source.ip"]``); lists stay
lists.  When two spellings give the same dotted key (``"a.b"`` and ``{"a": {"b"}}``)
the later one in the object wins.

Time: the first usable value among the usual timestamp keys (:data:`TIME_KEYS`, ISO 8601
or epoch seconds/milliseconds/microseconds/nanoseconds).  An event must have a time, and
a made-up one would corrupt every timeline and SLA clock, so when the record has none
the parser uses ``received_at`` from the record's context if the transport supplied it
(an explicit, honest fact about the record) and otherwise refuses the record with
"no usable timestamp".

Entities are mapped best-effort from common key spellings (ECS dotted names, snake case,
vendor habits), see :data:`ENTITY_KEYS`; the original fields are always kept.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import MAX_NESTING, MAX_RECORD_BYTES, check_depth, parse_time, register

_UTF8_BOM = b"\xef\xbb\xbf"

#: Keys tried in order for the event time of a generic JSON record.
TIME_KEYS: tuple[str, ...] = (
    "@timestamp", "timestamp", "time", "ts", "eventTime", "event_time", "datetime", "date",
    "event.created", "_time", "Timestamp", "EventTime",
)  # fmt: skip


# ---------------------------------------------------------------------------
# Shared JSON helpers (also used by the Windows and CloudTrail parsers)
# ---------------------------------------------------------------------------


def load_json_object(record: RawRecord) -> dict[str, Any]:
    """Decode ``record.payload`` as one JSON object or raise :class:`ParseError` saying why not.

    Refuses oversized payloads, invalid UTF-8 (with a hint when the bytes look like
    UTF-16), truncated or malformed JSON, JSON nested beyond the decoder's limit, and
    JSON values that are not objects.  A leading UTF-8 byte-order mark is tolerated.
    """
    payload = record.payload
    size = len(payload)
    if size > MAX_RECORD_BYTES:
        raise ParseError(f"oversized record: {size} bytes > limit {MAX_RECORD_BYTES}")
    if payload[:3] == _UTF8_BOM:
        payload = payload[3:]
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ParseError(_json_error_reason(payload, exc)) from None
    if type(value) is not dict:
        raise ParseError(f"expected a JSON object, got {_json_type(value)}")
    return value


def load_json_objects(records: Sequence[RawRecord]) -> list[dict[str, Any] | ParseError]:
    """:func:`load_json_object` over a block: each record's object, or the ParseError it would raise.

    The common case (a plain UTF-8 JSON object within the size limit) costs one
    ``orjson.loads``; anything else goes through :func:`load_json_object` for its reason.
    """
    out: list[dict[str, Any] | ParseError] = []
    append = out.append
    loads, decode_error, limit, bom = orjson.loads, orjson.JSONDecodeError, MAX_RECORD_BYTES, _UTF8_BOM
    for record in records:
        payload = record.payload
        if len(payload) <= limit and payload[:3] != bom:
            try:
                value = loads(payload)
            except decode_error:
                value = None
            if type(value) is dict:
                append(value)
                continue
        try:
            append(load_json_object(record))
        except ParseError as exc:
            append(exc)
    return out


def _json_error_reason(payload: bytes | bytearray | memoryview | str, exc: orjson.JSONDecodeError) -> str:
    """Turn an orjson error into a reason a person can act on."""
    message = exc.msg
    if "UTF-8" in message:
        head = bytes(payload[:64]) if not isinstance(payload, str) else b""
        if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
            return "not valid UTF-8 (looks like UTF-16: transcode to UTF-8 before ingest)"
        return "not valid UTF-8"
    if "zero-length" in message or not bytes(payload).strip():
        return "empty record"
    if "depth limit" in message or "recursion" in message:
        return f"nesting deeper than {MAX_NESTING} levels"
    if "end of data" in message:
        return f"truncated JSON: {message} at byte {exc.pos}"
    return f"not valid JSON: {message} at byte {exc.pos}"


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def check_container(value: object, depth: int) -> None:
    """Refuse ``value`` (found at nesting level ``depth``) if it nests beyond :data:`MAX_NESTING`.

    Costs nothing for scalars; used before a parser keeps a list or object as a field value.
    """
    if type(value) is dict or type(value) is list:
        check_depth(value, MAX_NESTING - depth + 1)


def flatten_object(obj: Mapping[str, Any], *, expand_object_lists: bool = False) -> dict[str, Any]:
    """Flatten nested objects into one level with dotted keys; lists are kept as lists.

    With ``expand_object_lists`` a list of objects is additionally spread into
    multi-valued dotted keys, the way search engines index arrays of objects: the list
    ``containerDefinitions: [{"command": ["sh"]}, {"command": ["env"]}]`` also yields
    ``containerDefinitions.command = ["sh", "env"]``, so rules can name a path through it.
    Raises :class:`ParseError` for nesting deeper than :data:`MAX_NESTING`.
    """
    out: dict[str, Any] = {}
    _flatten_into(out, obj, "", 1, expand_object_lists)
    return out


def _flatten_into(out: dict[str, Any], obj: Mapping[str, Any], prefix: str, depth: int, expand: bool) -> None:
    if depth > MAX_NESTING:
        raise ParseError(f"nesting deeper than {MAX_NESTING} levels")
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else key
        kind = type(value)
        if kind is dict:
            if value:
                _flatten_into(out, value, name, depth + 1, expand)
            else:
                out[name] = {}
        elif kind is list:
            has_objects = False
            for item in value:
                if type(item) is dict or type(item) is list:
                    check_depth(value, MAX_NESTING - depth)
                    has_objects = has_objects or type(item) is dict
                    break
            out[name] = value
            if expand and has_objects:
                _expand_list(out, value, name, depth + 1)
        else:
            out[name] = value


def _expand_list(out: dict[str, Any], items: list[Any], name: str, depth: int) -> None:
    multi: dict[str, list[Any]] = {}
    for item in items:
        if type(item) is not dict:
            continue
        sub: dict[str, Any] = {}
        _flatten_into(sub, item, name, depth, True)
        for key, value in sub.items():
            bucket = multi.setdefault(key, [])
            if type(value) is list:
                bucket.extend(value)
            else:
                bucket.append(value)
    for key, values in multi.items():
        out.setdefault(key, values)


def first_line(text: object, limit: int = 512) -> str | None:
    """The first non-empty line of a human message, trimmed, at most ``limit`` characters."""
    if type(text) is not str or not text:
        return None
    newline = text.find("\n")
    head = (text if newline < 0 else text[:newline]).strip()
    if head or newline < 0:  # the common case: the first line holds the text
        return head[:limit] or None
    for line in text.split("\n", 8):
        line = line.strip()
        if line:
            return line[:limit]
    return None


def to_time(value: object) -> datetime:
    """Parse a timestamp value (ISO 8601 text, epoch s/ms/us/ns) to aware UTC, or raise ParseError."""
    if type(value) is str:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return parse_time(value)
        if dt.tzinfo is not None:
            return dt.astimezone(UTC)
        try:  # naive text is UTC: parsing it with the zone is several times cheaper than replace()
            aware = datetime.fromisoformat(value + "+00:00")
        except ValueError:  # a form that takes no offset
            aware = None
        if aware is not None and aware.tzinfo is UTC and _same_wall_time(aware, dt):
            return aware
        return dt.replace(tzinfo=UTC)  # e.g. a bare date, where Python ignores the appended zone
    if (type(value) is int or type(value) is float) and value > 1e17:
        value = value / 1e9  # nanoseconds
    return parse_time(value)


def _same_wall_time(a: datetime, b: datetime) -> bool:
    return (
        a.microsecond == b.microsecond and a.second == b.second and a.minute == b.minute and a.hour == b.hour
        and a.day == b.day and a.month == b.month and a.year == b.year
    )  # fmt: skip


#: Range of the lake's integer columns (int64): larger numbers are kept in ``fields`` only.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def as_int(value: object) -> int | None:
    """An int64 from an int, an integral float or decimal/``0x`` hex text; None otherwise (never raises).

    Numbers outside the int64 range give None: an entity column must never make a batch
    unstorable (the original value stays in ``fields``).
    """
    kind = type(value)
    number: int | None = None
    if kind is int:
        number = value  # type: ignore[assignment]
    elif kind is float:
        number = int(value) if value.is_integer() else None  # type: ignore[attr-defined]
    elif kind is str and value:
        text: str = value  # type: ignore[assignment]
        if text.isdigit():
            if len(text) >= 20:
                return None
            try:
                number = int(text)
            except ValueError:  # digits int() does not read, such as superscripts
                return None
        elif text[:2] in ("0x", "0X") and len(text) <= 18:
            try:
                number = int(text, 16)
            except ValueError:
                return None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        return None
    return number


def as_port(value: object) -> int | None:
    """A TCP/UDP port number (1-65535) from an int or text; None otherwise."""
    port = as_int(value)
    if port is None or not 0 < port < 65536:
        return None
    return port


def as_ip(value: object) -> str | None:
    """A validated IP address text (IPv4-mapped IPv6 unwrapped); None for anything else."""
    if type(value) is not str or not value or len(value) > 64:
        return None
    try:  # fast path: canonical dotted-quad IPv4
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value)) == value:
            return value
    except (OSError, ValueError):
        pass
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:  # type: ignore[union-attr]
        return str(address.ipv4_mapped)  # type: ignore[union-attr]
    return str(address)


def as_text(value: object) -> str | None:
    """A non-empty text from a string or a number; None for containers, booleans and blanks."""
    kind = type(value)
    if kind is str:
        return value or None  # type: ignore[return-value]
    if kind is int or kind is float:
        return str(value)
    return None


# ---------------------------------------------------------------------------
# The generic "json" parser
# ---------------------------------------------------------------------------


def _as_outcome(value: object) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    low = text.lower()
    if low in _SUCCESS_WORDS:
        return "success"
    if low in _FAILURE_WORDS:
        return "failure"
    return low


_SUCCESS_WORDS = frozenset(
    {"success", "succeeded", "successful", "ok", "allowed", "allow", "accept", "accepted", "pass", "true"}
)
_FAILURE_WORDS = frozenset(
    {"failure", "failed", "fail", "denied", "deny", "blocked", "block", "rejected", "reject", "error",
     "false", "drop", "dropped"}
)  # fmt: skip


def _lower_text(value: object) -> str | None:
    text = as_text(value)
    return text.lower() if text else None


def _hash_text(value: object) -> str | None:
    text = as_text(value)
    return text.lower() if text else None


#: Event attribute -> keys it is read from (first present, usable key wins) and converter.
ENTITY_KEYS: dict[str, tuple[tuple[str, ...], Any]] = {
    "host": (("host", "hostname", "host.name", "host.hostname", "computer", "Computer", "device",
              "device_name", "observer.hostname", "agent.hostname"), as_text),
    "user": (("user", "username", "user.name", "userName", "user_name", "account", "account_name",
              "principal"), as_text),
    "user_domain": (("user.domain", "user_domain", "domain_name"), as_text),
    "src_ip": (("src_ip", "source.ip", "src", "srcip", "source_ip", "client_ip", "client.ip",
                "remote_addr", "ip", "ip_address", "sourceIPAddress"), as_ip),
    "src_port": (("src_port", "source.port", "sport", "srcport", "source_port", "client.port"), as_port),
    "dst_ip": (("dst_ip", "destination.ip", "dst", "dstip", "dest_ip", "destination_ip", "server.ip"),
               as_ip),
    "dst_port": (("dst_port", "destination.port", "dport", "dstport", "dest_port", "destination_port",
                  "server.port"), as_port),
    "protocol": (("protocol", "proto", "network.transport", "transport"), _lower_text),
    "process_image": (("process.executable", "process_path", "image", "Image", "process.name", "process"),
                      as_text),
    "process_pid": (("pid", "process.pid", "process_id", "ProcessId"), as_int),
    "process_command_line": (("command_line", "commandline", "cmdline", "process.command_line",
                              "CommandLine"), as_text),
    "parent_image": (("process.parent.executable", "parent_image", "ParentImage", "process.parent.name"),
                     as_text),
    "parent_pid": (("process.parent.pid", "ppid", "parent_pid", "ParentProcessId"), as_int),
    "parent_command_line": (("process.parent.command_line", "parent_command_line", "ParentCommandLine"),
                            as_text),
    "file_path": (("file.path", "file_path", "filepath", "file.name", "filename", "TargetFilename"),
                  as_text),
    "hash_md5": (("md5", "hash.md5", "file.hash.md5", "process.hash.md5"), _hash_text),
    "hash_sha1": (("sha1", "hash.sha1", "file.hash.sha1", "process.hash.sha1"), _hash_text),
    "hash_sha256": (("sha256", "hash.sha256", "file.hash.sha256", "process.hash.sha256"), _hash_text),
    "domain": (("domain", "dns.question.name", "query", "qname", "url.domain", "destination.domain"),
               as_text),
    "url": (("url", "url.full", "url.original", "uri", "request_url"), as_text),
    "user_agent": (("user_agent", "user_agent.original", "useragent", "userAgent", "http.user_agent",
                    "http_user_agent"), as_text),
    "bytes_in": (("bytes_in", "source.bytes", "bytes_received", "rcvd_bytes"), as_int),
    "bytes_out": (("bytes_out", "destination.bytes", "bytes_sent", "sent_bytes"), as_int),
    "action": (("action", "event.action"), as_text),
    "outcome": (("outcome", "event.outcome", "result"), _as_outcome),
    "event_code": (("event.code", "event_id", "eventid", "EventID", "event_code"), as_text),
    "category": (("event.category", "category"), as_text),
    "product": (("product", "observer.product", "event.module"), as_text),
    "service": (("service", "event.dataset", "service.name"), as_text),
    "message": (("message", "msg", "log", "event.original", "description"), first_line),
}  # fmt: skip

# key -> list of (priority, attribute, converter); built once so a record costs one lookup per field.
_KEY_INDEX: dict[str, list[tuple[int, str, Any]]] = {}
for _attr, (_keys, _conv) in ENTITY_KEYS.items():
    for _rank, _key in enumerate(_keys):
        _KEY_INDEX.setdefault(_key, []).append((_rank, _attr, _conv))
del _attr, _keys, _conv, _rank, _key


def map_entities(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Best-effort entity attributes from a flat field mapping (see :data:`ENTITY_KEYS`)."""
    best: dict[str, tuple[int, Any]] = {}
    index = _KEY_INDEX
    for key, value in fields.items():
        targets = index.get(key)
        if targets is None or value is None:
            continue
        for rank, attr, conv in targets:
            held = best.get(attr)
            if held is not None and held[0] <= rank:
                continue
            converted = conv(value)
            if converted is not None:
                best[attr] = (rank, converted)
    return {attr: value for attr, (_rank, value) in best.items()}


def json_event_time(fields: Mapping[str, Any], context: Mapping[str, Any] | None) -> datetime:
    """The event time of a generic JSON record (see the module docstring for the rules)."""
    problems: list[str] = []
    for key in TIME_KEYS:
        value = fields.get(key)
        if value is None or value == "":
            continue
        try:
            return to_time(value)
        except ParseError as exc:
            problems.append(f"{key}: {exc}")
    received = context.get("received_at") if context else None
    if received is not None:
        try:
            return to_time(received)
        except ParseError as exc:
            problems.append(f"context received_at: {exc}")
    if problems:
        raise ParseError("no usable timestamp (" + "; ".join(problems)[:200] + ")")
    raise ParseError(f"no usable timestamp: none of {', '.join(TIME_KEYS)} present")


class JsonLinesParser:
    """Parser for generic JSON lines ("json"): dotted ``fields`` plus best-effort entities."""

    name = "json"

    def parse(self, record: RawRecord) -> Event:
        """Parse one generic JSON object into an event (raises :class:`ParseError`)."""
        obj = load_json_object(record)
        fields = flatten_object(obj)
        time = json_event_time(fields, record.context)
        event = Event(time=time, source_format="json", fields=fields, source_type="json")
        for attr, value in map_entities(fields).items():
            setattr(event, attr, value)
        return event


register(JsonLinesParser())
