"""Format auto-detection: which parser should read a file, a stream head or one message.

Detection looks at content, never at trust-bearing metadata: a file's first bytes (magic
numbers, byte-order marks, the keys of its first few JSON objects, the shape of its first
few lines) decide between the fixed parser names of :mod:`openmdr.normalize`.  Several
complete lines or objects are sampled and the family seen most wins, so one odd first
record does not mislabel a whole file.  The file name is only a tie-breaker for text that
is otherwise undecidable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from openmdr.ingest.framing import split_json_values

#: Magic number of a Windows XML EventLog (EVTX) file.
EVTX_MAGIC = b"ElfFile\x00"
#: Lines or objects sampled from a head before deciding.
SAMPLE_RECORDS = 8

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_LE_BOM = b"\xff\xfe"
_UTF16_BE_BOM = b"\xfe\xff"

# Preference when two families are seen equally often: the more specific one wins.
_JSON_PRIORITY = ("winevent_json", "winlogbeat_json", "cloudtrail", "suricata_eve", "zeek_json", "json")
_TEXT_PRIORITY = ("cef", "leef", "syslog")

_CLOUDTRAIL_WRAPPER = re.compile(rb'\A\s*\{\s*"Records"\s*:\s*\[')
_CEF_HEAD = re.compile(rb"CEF:\s?\d+\|")
_LEEF_HEAD = re.compile(rb"LEEF:\s?\d+(?:\.\d+)?\|")
_MONTHS = b"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_SYSLOG_LINE = re.compile(
    rb"<\d{1,3}>"  # RFC 3164/5424 priority
    rb"|(?:" + _MONTHS + rb") {1,2}\d{1,2} \d\d:\d\d:\d\d \S+ "  # BSD timestamp + host
    rb"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? \S+ "  # ISO time + host
)
_WINDOWS_FLAT_COMPANIONS = ("Channel", "Hostname", "SourceName", "Computer", "ProviderGuid", "ProviderName")
_SUFFIX_HINTS = {".cef": "cef", ".leef": "leef", ".syslog": "syslog"}


def strip_bom(head: bytes) -> bytes:
    """Return ``head`` as UTF-8 bytes: drop a UTF-8 BOM, transcode UTF-16 (BOM or NUL pattern).

    Only for sniffing: a cut in the middle of a character is tolerated.
    """
    if head.startswith(_UTF8_BOM):
        return head[3:]
    encoding = utf16_encoding(head)
    if encoding is None:
        return head
    body = head[2:] if head[:2] in (_UTF16_LE_BOM, _UTF16_BE_BOM) else head
    body = body[: len(body) & ~1]
    return body.decode(encoding, "replace").encode("utf-8")


def utf16_encoding(head: bytes) -> str | None:
    """Name the UTF-16 byte order of ``head`` ("utf-16-le"/"utf-16-be") or None if it is not UTF-16.

    A byte-order mark decides; without one, text whose odd (or even) bytes are nearly all
    NUL while the others are not is taken as BOM-less UTF-16 of mostly ASCII content.
    """
    if head.startswith(_UTF16_LE_BOM) and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16-le"
    if head.startswith(_UTF16_BE_BOM):
        return "utf-16-be"
    sample = head[:4096]
    if len(sample) < 16:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0), odd.count(0)
    if odd_nul > 0.9 * len(odd) and even_nul < 0.05 * len(even):
        return "utf-16-le"
    if even_nul > 0.9 * len(even) and odd_nul < 0.05 * len(odd):
        return "utf-16-be"
    return None


def looks_binary(head: bytes) -> bool:
    """True when ``head`` (already BOM-stripped/transcoded) is not text: NUL bytes or many controls."""
    sample = head[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = sum(sample.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13, 27))
    return controls > len(sample) // 20


def classify_json(obj: Any) -> str:
    """Name the parser for one decoded JSON value by the keys that mark each family."""
    if not isinstance(obj, dict):
        return "json"
    event = obj.get("Event")
    if isinstance(event, dict) and "System" in event:
        return "winevent_json"
    if isinstance(obj.get("winlog"), dict):
        return "winlogbeat_json"
    if "EventID" in obj and any(k in obj for k in _WINDOWS_FLAT_COMPANIONS):
        return "winlogbeat_json"
    if "event_id" in obj and "log_name" in obj and "computer_name" in obj:
        return "winlogbeat_json"  # Winlogbeat 5/6 flat field names
    if "event_type" in obj and ("src_ip" in obj or "flow_id" in obj or "timestamp" in obj):
        return "suricata_eve"
    if isinstance(obj.get("Records"), list):
        return "cloudtrail"
    if "eventSource" in obj and "eventName" in obj and ("awsRegion" in obj or "eventVersion" in obj):
        return "cloudtrail"
    if "_path" in obj:
        return "zeek_json"
    if "ts" in obj:
        ident = obj.get("id")
        if "uid" in obj or "id.orig_h" in obj or (isinstance(ident, dict) and "orig_h" in ident):
            return "zeek_json"
    return "json"


def classify_line(line: bytes) -> str | None:
    """Name the parser for one text line: "cef", "leef", "syslog", or None if none fits."""
    window = line[:2048]
    if b"CEF:" in window and _CEF_HEAD.search(window):
        return "cef"
    if b"LEEF:" in window and _LEEF_HEAD.search(window):
        return "leef"
    if _SYSLOG_LINE.match(line.lstrip()):
        return "syslog"
    return None


def detect_message_format(message: bytes) -> str:
    """Parser for one message received over a syslog transport: "cef", "leef" or "syslog".

    CEF and LEEF are recognised anywhere in the first 1 KiB (they usually follow a syslog
    header); anything else is read by the syslog parser, which rejects what it cannot read.
    """
    i = message.find(b"CEF:", 0, 1024)
    if i >= 0 and _CEF_HEAD.match(message, i):
        return "cef"
    i = message.find(b"LEEF:", 0, 1024)
    if i >= 0 and _LEEF_HEAD.match(message, i):
        return "leef"
    return "syslog"


def _vote(labels: Iterable[str | None], priority: tuple[str, ...]) -> str | None:
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next((label for label in priority if counts.get(label) == best), None)


def _complete_lines(text: bytes, limit: int) -> list[bytes]:
    """The first ``limit`` non-blank lines of ``text``; a last line without newline counts only alone."""
    lines = text.split(b"\n", limit * 4)
    if len(lines) > 1:
        lines = lines[:-1]  # the tail may be cut in the middle
    out = [ln.rstrip(b"\r") for ln in lines if ln.strip()]
    return out[:limit]


def _detect_json(text: bytes) -> str | None:
    if _CLOUDTRAIL_WRAPPER.match(text):
        return "cloudtrail"
    objects: list[Any] = []
    if text.lstrip().startswith(b"{"):
        for line in _complete_lines(text, SAMPLE_RECORDS):
            try:
                objects.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                objects = []
                break
    if not objects:  # pretty-printed, concatenated or array-wrapped objects
        spans, _rest = split_json_values(text, limit=SAMPLE_RECORDS)
        for span in spans:
            if span.error is None:
                try:
                    objects.append(orjson.loads(span.payload))
                except orjson.JSONDecodeError:
                    continue
    if not objects:
        return _sniff_json_keys(text)
    return _vote((classify_json(o) for o in objects), _JSON_PRIORITY)


def _sniff_json_keys(text: bytes) -> str:
    """Best guess for a JSON head holding no complete object (one huge first object)."""
    window = text[:65536]
    if b'"Event"' in window and b'"System"' in window:
        return "winevent_json"
    if b'"winlog"' in window or (b'"EventID"' in window and b'"Channel"' in window):
        return "winlogbeat_json"
    if b'"event_type"' in window and (b'"flow_id"' in window or b'"src_ip"' in window):
        return "suricata_eve"
    if b'"eventSource"' in window and b'"eventName"' in window:
        return "cloudtrail"
    return "json"


def detect_format(head: bytes, name: str = "") -> str | None:
    """Name the parser for a file (or message) from its first bytes, or None when unknown.

    ``head`` should hold at least a few complete lines or objects (64 KiB is plenty);
    ``name`` (a file name) only breaks ties for text that matches no known shape.
    """
    if head.startswith(EVTX_MAGIC):
        return "evtx"
    text = strip_bom(head).lstrip()
    if not text or looks_binary(text):
        return None
    first = text[:1]
    if first in (b"{", b"["):
        return _detect_json(text)
    if text.startswith(b"#separator") or (text.startswith(b"#") and b"\n#fields" in text[:65536]):
        return "zeek_tsv"
    lines = _complete_lines(text, SAMPLE_RECORDS)
    labels = [classify_line(line) for line in lines]
    if sum(label is not None for label in labels) * 2 >= len(labels):  # most lines must fit a shape
        detected = _vote(labels, _TEXT_PRIORITY)
        if detected is not None:
            return detected
    lower = name.lower()
    for suffix, fmt in _SUFFIX_HINTS.items():
        if lower.endswith(suffix) or lower.endswith(suffix + ".gz"):
            return fmt
    return None
