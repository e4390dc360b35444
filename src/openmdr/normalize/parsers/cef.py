"""ArcSight Common Event Format parser ("cef"), alone or behind a syslog header.

``CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension``
where the header escapes ``\\|`` and ``\\\\`` and the extension is ``key=value`` pairs
separated by spaces (values may hold spaces; ``\\=``, ``\\\\``, ``\\n`` and ``\\r`` are
escapes).  ``fields`` holds the header as ``cefVersion``, ``deviceVendor``,
``deviceProduct``, ``deviceVersion``, ``signatureId`` (the Device Event Class ID),
``name`` and ``severity``, every extension key as written (``src``, ``dpt``, ``suser``,
``cs1``, ``cs1Label``...), and for each ``csN``/``cnN``/``flexStringN`` with a label
the value also under the label's text (``cs1Label=Rule cs1=Block all`` adds
``fields["Rule"]``), unless that name is taken.  A syslog header before ``CEF:`` adds its
fields (``hostname``, ``appname``...) with ``syslog_`` in front.

Time: ``rt``, else ``end``, else ``start`` (epoch milliseconds, ISO 8601 or the
``MMM dd yyyy HH:mm:ss[.SSS] [zone]`` forms ArcSight allows), else the syslog header
time, else the record's ``received_at`` context; a record with none is refused.

Entities: ``src``/``spt``/``dst``/``dpt``/``proto``; ``user`` from ``suser`` (the acting
user), else ``duser``; ``host`` from ``dvchost``, else the syslog host, else ``shost``;
``action`` from ``act``; ``outcome`` from ``outcome`` (or a deny-like ``act``);
``url`` from ``request``; ``user_agent`` from ``requestClientApplication``; file
name/path and hash; process from ``sproc``/``spid``; ``bytes_in``/``bytes_out`` from
``in``/``out``; ``domain`` from ``dhost`` when it is a name.  ``product`` is the device
product, ``event_code`` the signature id, ``message`` the event name, ``category`` ``cat``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.jsonlines import as_int, as_ip, as_port, to_time
from openmdr.normalize.parsers.syslog import parse_syslog_header

_HEADER_START = re.compile(r"CEF:\s?(\d+)\|")
# An extension key: letters, digits, '_', '.', '[', ']' preceded by a space (or the start).
_EXT_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z0-9_.\[\]]{1,64})=")
_EXT_UNESCAPE = {"\\=": "=", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\|": "|"}
_EXT_ESCAPE = re.compile(r"\\[=\\nr|]")
_LABELLED = re.compile(r"(cs|cn|cfp|flexString|flexNumber|flexDate|deviceCustomDate|c6a)(\d)$")
_DENY_ACTIONS = frozenset({"deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected",
                           "reset", "failure", "failed"})  # fmt: skip
_SUCCESS = frozenset({"success", "succeeded", "allowed", "allow", "accept", "accepted", "permit", "permitted"})
_VENDOR_TIME_FORMATS = (
    "%b %d %Y %H:%M:%S.%f", "%b %d %Y %H:%M:%S", "%b %d %H:%M:%S.%f", "%b %d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z",
)  # fmt: skip


def vendor_time(value: object, reference_year: int | None = None) -> datetime:
    """Parse the timestamp spellings SIEM formats use (epoch ms/s, ISO 8601, ``MMM dd [yyyy] HH:mm:ss``).

    A trailing zone name is dropped (the time is taken as UTC); a time without a year
    gets ``reference_year`` (else the current UTC year).  Raises :class:`ParseError`.
    """
    number = as_int(value)
    if number is not None:
        return to_time(number)
    if type(value) is not str or not value.strip():
        raise ParseError(f"unreadable timestamp {value!r:.40}")
    text = value.strip()
    try:
        return to_time(text)
    except ParseError:
        pass
    parts = text.split()
    if len(parts) > 3 and parts[-1].isalpha():  # a zone name: taken as UTC (see the docstring)
        text = " ".join(parts[:-1])
    for fmt in _VENDOR_TIME_FORMATS:
        try:
            when = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if "%Y" not in fmt:
            when = when.replace(year=reference_year or datetime.now(UTC).year)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    raise ParseError(f"unreadable timestamp {value[:40]!r}")


def split_header(text: str, count: int) -> tuple[list[str], str]:
    """Split ``count`` pipe-separated header fields (``\\|``, ``\\\\`` escaped) off ``text``: (fields, rest)."""
    out: list[str] = []
    current: list[str] = []
    i = 0
    n = len(text)
    while i < n and len(out) < count:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "|\\":
            current.append(text[i + 1])
            i += 2
            continue
        if c == "|":
            out.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if len(out) < count:
        raise ParseError(f"header has {len(out)} of {count} '|'-separated fields")
    return out, text[i:]


def parse_extension(text: str) -> dict[str, str]:
    """CEF extension ``k1=v1 k2=v with spaces k3=v3`` to a dict (escapes undone).

    A key is letters, digits, ``_``, ``.`` or brackets right after a space and right before
    ``=``, so an escaped ``\\=`` inside a value can never start a key.
    """
    out: dict[str, str] = {}
    keys = list(_EXT_KEY.finditer(text))
    for index, m in enumerate(keys):
        end = keys[index + 1].start() - 1 if index + 1 < len(keys) else len(text)
        value = text[m.end() : max(end, m.end())]
        if "\\" in value:
            value = _EXT_ESCAPE.sub(lambda e: _EXT_UNESCAPE[e.group(0)], value)
        out[m.group(1)] = value.rstrip() if index + 1 == len(keys) else value
    return out


def add_labels(fields: dict[str, Any]) -> None:
    """Copy labelled custom fields (``cs1`` with ``cs1Label``) under their label's text."""
    for key in list(fields):
        m = _LABELLED.match(key)
        if m is None:
            continue
        label = fields.get(f"{key}Label")
        if type(label) is str and label and label not in fields:
            fields[label] = fields[key]


def _hash_attr(digest: str) -> str | None:
    return {32: "hash_md5", 40: "hash_sha1", 64: "hash_sha256"}.get(len(digest))


def syslog_prefix(prefix: str, context: Mapping[str, Any] | None) -> tuple[dict[str, Any], datetime | None]:
    """Header fields (``syslog_``-prefixed) and time of a syslog header in front of a CEF/LEEF record."""
    if not prefix.strip():
        return {}, None
    header, when, _rest = parse_syslog_header(prefix, context)
    return {f"syslog_{k}": v for k, v in header.items()}, when


def open_record(
    record: RawRecord, header: re.Pattern[str], kind: str
) -> tuple[re.Match[str], str, dict[str, Any], datetime | None]:
    """Decode a CEF/LEEF record and find its ``<kind>:<version>|`` header in the first 2048 characters.

    Returns the header match, the text after it, and the fields and time of any syslog header in
    front; refuses (``ParseError``) a record that is not UTF-8 or has no such header.
    """
    try:
        text = record.payload.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ParseError("not valid UTF-8") from None
    m = header.search(text, 0, 2048)
    if m is None:
        raise ParseError(f"not {kind}: no '{kind}:<version>|' header")
    fields, header_time = syslog_prefix(text[: m.start()], record.context)
    return m, text[m.end() :], fields, header_time


def fallback_time(header_time: datetime | None, context: Mapping[str, Any] | None, missing: str) -> datetime:
    """The time of a record without a vendor time: the syslog header's, else ``received_at``.

    Raises ``ParseError(missing)`` when the record has neither, so it is refused rather than guessed.
    """
    if header_time is not None:
        return header_time
    received = context.get("received_at") if context else None
    if received is not None:
        return to_time(received)
    raise ParseError(missing)


def _outcome(fields: Mapping[str, Any]) -> str | None:
    value = fields.get("outcome")
    if type(value) is str and value:
        low = value.lower()
        if low in _SUCCESS:
            return "success"
        if low in _DENY_ACTIONS:
            return "failure"
        return low
    act = fields.get("act")
    if type(act) is str and act.lower() in _DENY_ACTIONS:
        return "failure"
    return None


class CefParser:
    """Parser for one CEF record."""

    name = "cef"

    def parse(self, record: RawRecord) -> Event:
        """Parse ``[syslog header] CEF:...`` into an event."""
        m, body, fields, header_time = open_record(record, _HEADER_START, "CEF")
        parts, rest = split_header(body, 6)
        vendor, product, version, signature, name, severity = parts
        fields.update(
            {
                "cefVersion": int(m.group(1)),
                "deviceVendor": vendor,
                "deviceProduct": product,
                "deviceVersion": version,
                "signatureId": signature,
                "name": name,
                "severity": severity,
            }
        )
        fields.update(parse_extension(rest))
        add_labels(fields)
        when = self._time(fields, header_time, record.context)
        return self._event(fields, when)

    @staticmethod
    def _time(fields: Mapping[str, Any], header_time: datetime | None, context: Mapping[str, Any] | None) -> datetime:
        year = header_time.year if header_time else None
        for key in ("rt", "end", "start", "deviceReceiptTime"):
            value = fields.get(key)
            if value:
                return vendor_time(value, year)
        return fallback_time(
            header_time, context, "CEF record has no time (rt, end, start or a syslog header) and no receive time"
        )

    def _event(self, fields: dict[str, Any], when: datetime) -> Event:
        get = fields.get
        dhost = get("dhost")
        event = Event(
            time=when,
            source_format=self.name,
            fields=fields,
            source_type=f"cef:{get('deviceVendor')}:{get('deviceProduct')}",
            product=get("deviceProduct") or None,
            service=get("deviceVendor") or None,
            category=get("cat") or None,
            event_code=get("signatureId") or None,
            message=(get("msg") or get("name") or None),
            action=get("act") or None,
            outcome=_outcome(fields),
            host=get("dvchost") or get("syslog_hostname") or get("shost") or None,
            user=get("suser") or get("duser") or None,
            user_domain=get("sntdom") or get("dntdom") or None,
            src_ip=as_ip(get("src")) or as_ip(get("c6a2")),
            src_port=as_port(get("spt")),
            dst_ip=as_ip(get("dst")) or as_ip(get("c6a3")),
            dst_port=as_port(get("dpt")),
            protocol=(get("proto") or "").lower() or None,
            url=get("request") or None,
            user_agent=get("requestClientApplication") or None,
            file_path=get("filePath") or get("fname") or None,
            process_image=get("sproc") or get("dproc") or None,
            process_pid=as_int(get("spid")) or as_int(get("dpid")),
            bytes_in=as_int(get("in")),
            bytes_out=as_int(get("out")),
            domain=dhost if type(dhost) is str and dhost and not as_ip(dhost) else None,
        )
        digest = get("fileHash")
        if type(digest) is str and (attr := _hash_attr(digest.strip())):
            setattr(event, attr, digest.strip().lower())
        if event.message:
            event.message = event.message[:512]
        return event


register(CefParser())
