"""IBM QRadar Log Event Extended Format parser ("leef"): LEEF 1.0 and 2.0, alone or behind a syslog header.

``LEEF:1.0|Vendor|Product|Version|EventID|`` followed by tab-separated ``key=value``
attributes; LEEF 2.0 adds a delimiter field after the event id
(``LEEF:2.0|Vendor|Product|Version|EventID|^|``, the delimiter given as a character or
as hex such as ``x09``/``0x5e``).  ``fields`` holds ``leefVersion``, ``vendor``,
``product``, ``version``, ``eventId`` and every attribute as written (``src``, ``dst``,
``srcPort``, ``dstPort``, ``usrName``, ``devTime``, ``cat``, ``sev``...); a syslog header
before ``LEEF:`` adds its fields with ``syslog_`` in front.

Time: ``devTime`` (read with ``devTimeFormat`` when given, else the usual spellings:
epoch milliseconds, ISO 8601, ``MMM dd yyyy HH:mm:ss``), else the syslog header time,
else the record's ``received_at`` context; a record with none is refused.

Entities: ``src``/``srcPort``/``dst``/``dstPort``/``proto``, ``usrName`` (else
``accountName``) as user, ``identHostName``/``devName`` or the syslog host as host,
``srcBytes``/``dstBytes`` as ``bytes_out``/``bytes_in``, ``url``, ``userAgent``,
``action`` and ``outcome`` from ``action``/``result``; ``product`` is the product,
``event_code`` the event id, ``category`` ``cat``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.cef import fallback_time, open_record, split_header, vendor_time
from openmdr.normalize.parsers.jsonlines import as_int, as_ip, as_port

_HEADER_START = re.compile(r"LEEF:\s?(\d+(?:\.\d+)?)\|")
_DENY = frozenset({"deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "failure",
                   "failed", "fail"})  # fmt: skip
_SUCCESS = frozenset({"success", "succeeded", "allow", "allowed", "accept", "accepted", "permit", "permitted"})
# Java SimpleDateFormat pieces -> strptime directives (the ones LEEF senders use).
_JAVA_FORMAT = (("yyyy", "%Y"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
                ("ss", "%S"), ("SSS", "%f"), ("Z", "%z"), ("z", "%Z"), ("a", "%p"), ("hh", "%I"))  # fmt: skip


def _delimiter(text: str) -> str:
    """The LEEF 2.0 attribute delimiter: one character, or hex (``x09``, ``0x5e``)."""
    value = text.strip()
    if len(value) == 1:
        return value
    hexdigits = value[2:] if value[:2].lower() == "0x" else value[1:] if value[:1].lower() == "x" else ""
    if hexdigits:
        try:
            return chr(int(hexdigits, 16))
        except ValueError:
            pass
    raise ParseError(f"unusable LEEF 2.0 delimiter {text[:10]!r}")


def _java_time(value: str, pattern: str) -> datetime:
    fmt = pattern
    for java, directive in _JAVA_FORMAT:
        fmt = fmt.replace(java, directive)
    try:
        when = datetime.strptime(value.strip(), fmt)
    except ValueError:
        raise ParseError(f"devTime {value[:40]!r} does not match devTimeFormat {pattern[:40]!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _outcome(fields: Mapping[str, Any]) -> str | None:
    for key in ("result", "outcome", "action"):
        value = fields.get(key)
        if type(value) is str and value:
            low = value.lower()
            if low in _DENY:
                return "failure"
            if low in _SUCCESS:
                return "success"
    return None


class LeefParser:
    """Parser for one LEEF 1.0/2.0 record."""

    name = "leef"

    def parse(self, record: RawRecord) -> Event:
        """Parse ``[syslog header] LEEF:...`` into an event."""
        m, body, fields, header_time = open_record(record, _HEADER_START, "LEEF")
        version = m.group(1)
        two = version.startswith("2")
        parts, rest = split_header(body, 5 if two else 4)
        if two and parts[4] == "" and rest.startswith("|"):  # a literal '|' delimiter
            parts[4], rest = "|", rest[1:]
        delimiter = _delimiter(parts[4]) if two and parts[4] else "\t"
        fields.update({"leefVersion": version, "vendor": parts[0], "product": parts[1], "version": parts[2],
                       "eventId": parts[3]})  # fmt: skip
        for item in rest.split(delimiter):
            key, sep, value = item.partition("=")
            key = key.strip()
            if sep and key:
                fields[key] = value
        when = self._time(fields, header_time, record.context)
        return self._event(fields, when)

    @staticmethod
    def _time(fields: Mapping[str, Any], header_time: datetime | None, context: Mapping[str, Any] | None) -> datetime:
        value = fields.get("devTime")
        if value:
            pattern = fields.get("devTimeFormat")
            if type(pattern) is str and pattern:
                return _java_time(str(value), pattern)
            return vendor_time(value, header_time.year if header_time else None)
        return fallback_time(
            header_time, context, "LEEF record has no devTime, no syslog header time and no receive time"
        )

    def _event(self, fields: dict[str, Any], when: datetime) -> Event:
        get = fields.get
        event = Event(
            time=when,
            source_format=self.name,
            fields=fields,
            source_type=f"leef:{get('vendor')}:{get('product')}",
            product=get("product") or None,
            service=get("vendor") or None,
            category=get("cat") or None,
            event_code=get("eventId") or None,
            action=get("action") or None,
            outcome=_outcome(fields),
            host=get("identHostName") or get("devName") or get("syslog_hostname") or None,
            user=get("usrName") or get("accountName") or None,
            user_domain=get("domain") or None,
            src_ip=as_ip(get("src")),
            src_port=as_port(get("srcPort")),
            dst_ip=as_ip(get("dst")),
            dst_port=as_port(get("dstPort")),
            protocol=(get("proto") or "").lower() or None,
            url=get("url") or None,
            user_agent=get("userAgent") or None,
            bytes_out=as_int(get("srcBytes")),
            bytes_in=as_int(get("dstBytes")),
            message=(get("msg") or None),
        )
        return event


register(LeefParser())
