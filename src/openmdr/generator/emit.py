"""Record rendering and file writing: every telemetry family in the format its real source writes.

Activity code (background and attack chains) appends records to a :class:`TenantOutput`
with their time in microseconds; nothing is rendered until :meth:`TenantOutput.write`,
which sorts each file by time (ties keep insertion order), numbers Windows records per
computer and channel in that order (``EventRecordID``), and writes:

* ``windows/security.jsonl`` and ``windows/sysmon.jsonl``: evtx_dump-style JSON lines
  (``{"Event": {"System": ..., "EventData": ...}}``, the ``winevent_json`` format), as a
  Windows Event Forwarding collector exports them;
* ``linux/auth.log``: RFC 5424 syslog from sshd, sudo and cron;
* ``firewall/fortigate.cef``: FortiGate traffic, user-authentication and SSL-VPN events
  as CEF behind an RFC 5424 header;
* ``zeek/{conn,dns,http,ssl}.log``: Zeek TSV with the standard ``#`` header.

Records may carry a ``mark`` (an attack-chain step id); marks are never written, they
only let the generator count each labelled step's records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from openmdr.generator.clock import LocalClock, iso_z, zeek_open_stamp, zeek_ts

SECURITY_PROVIDER = ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-a5ba-3e3b0328c30d}")
SYSMON_PROVIDER = ("Microsoft-Windows-Sysmon", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}")
SECURITY_CHANNEL = "Security"
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

#: Security audit Keywords (Audit Success / Audit Failure).
AUDIT_SUCCESS = "0x8020000000000000"
AUDIT_FAILURE = "0x8010000000000000"

#: Security event id -> (Task, Version) as Windows writes them.
_SECURITY_META: dict[int, tuple[int, int]] = {
    4624: (12544, 2),
    4625: (12544, 0),
    4634: (12545, 0),
    4647: (12545, 0),
    4648: (12544, 0),
    4672: (12548, 0),
    4688: (13312, 2),
    4689: (13313, 0),
    4720: (13824, 0),
    4722: (13824, 0),
    4724: (13824, 0),
    4728: (13826, 0),
    4732: (13826, 0),
    4738: (13824, 0),
    4768: (14339, 0),
    4769: (14337, 0),
    4771: (14339, 0),
    4776: (14336, 0),
    5140: (12808, 1),
}
#: Sysmon event id -> schema Version of Sysmon 15.
_SYSMON_VERSION = {1: 5, 3: 5, 5: 3, 10: 3, 11: 2, 12: 2, 13: 2, 22: 5}

#: Zeek log columns and types (Zeek 6 defaults), per log path.
ZEEK_LOGS: dict[str, tuple[tuple[str, str], ...]] = {
    "conn": (
        ("ts", "time"),
        ("uid", "string"),
        ("id.orig_h", "addr"),
        ("id.orig_p", "port"),
        ("id.resp_h", "addr"),
        ("id.resp_p", "port"),
        ("proto", "enum"),
        ("service", "string"),
        ("duration", "interval"),
        ("orig_bytes", "count"),
        ("resp_bytes", "count"),
        ("conn_state", "string"),
        ("local_orig", "bool"),
        ("local_resp", "bool"),
        ("missed_bytes", "count"),
        ("history", "string"),
        ("orig_pkts", "count"),
        ("orig_ip_bytes", "count"),
        ("resp_pkts", "count"),
        ("resp_ip_bytes", "count"),
        ("tunnel_parents", "set[string]"),
    ),
    "dns": (
        ("ts", "time"),
        ("uid", "string"),
        ("id.orig_h", "addr"),
        ("id.orig_p", "port"),
        ("id.resp_h", "addr"),
        ("id.resp_p", "port"),
        ("proto", "enum"),
        ("trans_id", "count"),
        ("rtt", "interval"),
        ("query", "string"),
        ("qclass", "count"),
        ("qclass_name", "string"),
        ("qtype", "count"),
        ("qtype_name", "string"),
        ("rcode", "count"),
        ("rcode_name", "string"),
        ("AA", "bool"),
        ("TC", "bool"),
        ("RD", "bool"),
        ("RA", "bool"),
        ("Z", "count"),
        ("answers", "vector[string]"),
        ("TTLs", "vector[interval]"),
        ("rejected", "bool"),
    ),
    "http": (
        ("ts", "time"),
        ("uid", "string"),
        ("id.orig_h", "addr"),
        ("id.orig_p", "port"),
        ("id.resp_h", "addr"),
        ("id.resp_p", "port"),
        ("trans_depth", "count"),
        ("method", "string"),
        ("host", "string"),
        ("uri", "string"),
        ("referrer", "string"),
        ("version", "string"),
        ("user_agent", "string"),
        ("origin", "string"),
        ("request_body_len", "count"),
        ("response_body_len", "count"),
        ("status_code", "count"),
        ("status_msg", "string"),
        ("info_code", "count"),
        ("info_msg", "string"),
        ("tags", "set[enum]"),
        ("username", "string"),
        ("password", "string"),
        ("proxied", "set[string]"),
        ("orig_fuids", "vector[string]"),
        ("orig_filenames", "vector[string]"),
        ("orig_mime_types", "vector[string]"),
        ("resp_fuids", "vector[string]"),
        ("resp_filenames", "vector[string]"),
        ("resp_mime_types", "vector[string]"),
    ),
    "ssl": (
        ("ts", "time"),
        ("uid", "string"),
        ("id.orig_h", "addr"),
        ("id.orig_p", "port"),
        ("id.resp_h", "addr"),
        ("id.resp_p", "port"),
        ("version", "string"),
        ("cipher", "string"),
        ("curve", "string"),
        ("server_name", "string"),
        ("resumed", "bool"),
        ("last_alert", "string"),
        ("next_protocol", "string"),
        ("established", "bool"),
        ("ssl_history", "string"),
        ("cert_chain_fps", "vector[string]"),
        ("client_cert_chain_fps", "vector[string]"),
        ("sni_matches_cert", "bool"),
    ),
}

FILES = {
    "security": "windows/security.jsonl",
    "sysmon": "windows/sysmon.jsonl",
    "auth": "linux/auth.log",
    "fw": "firewall/fortigate.cef",
    "conn": "zeek/conn.log",
    "dns": "zeek/dns.log",
    "http": "zeek/http.log",
    "ssl": "zeek/ssl.log",
}


def zeek_value(value: Any) -> str:
    """One Zeek TSV cell: ``-`` unset, ``(empty)`` empty, ``T``/``F`` booleans, sets comma-joined."""
    if value is None:
        return "-"
    if value is True:
        return "T"
    if value is False:
        return "F"
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) if value else "(empty)"
    text = str(value)
    return text if text else "(empty)"


def cef_escape_header(value: str) -> str:
    """Escape a CEF header field (backslash and pipe)."""
    return value.replace("\\", "\\\\").replace("|", "\\|")


def cef_escape_value(value: object) -> str:
    """Escape a CEF extension value (backslash, equals sign, newlines)."""
    return str(value).replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


@dataclass(slots=True)
class WinRecord:
    """One Windows event before rendering (its record number is assigned at write time)."""

    us: int
    seq: int
    channel: str
    computer: str
    event_id: int
    data: dict[str, Any]
    keywords: str
    pid: int
    tid: int
    mark: str | None


@dataclass(slots=True)
class TenantOutput:
    """Everything one tenant's sources wrote, collected in memory and written sorted by time."""

    tenant: str
    clock: LocalClock
    windows: dict[str, list[WinRecord]] = field(default_factory=lambda: {"security": [], "sysmon": []})
    lines: dict[str, list[tuple[int, int, str, str | None]]] = field(default_factory=dict)
    #: Where each marked record landed: mark -> [(relative path, line number, byte offset, time)].
    located: dict[str, list[tuple[str, int, int, int]]] = field(default_factory=dict)
    _seq: int = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def security(
        self,
        us: int,
        computer: str,
        event_id: int,
        data: dict[str, Any],
        *,
        failure: bool = False,
        mark: str | None = None,
    ) -> None:
        """Append a Security-log event (``data`` is its EventData in Windows' own order)."""
        seq = self._next()
        keywords = AUDIT_FAILURE if failure else AUDIT_SUCCESS
        self.windows["security"].append(
            WinRecord(us, seq, SECURITY_CHANNEL, computer, event_id, data, keywords, 636, 700 + seq % 900, mark)
        )

    def sysmon(self, us: int, computer: str, event_id: int, data: dict[str, Any], *, mark: str | None = None) -> None:
        """Append a Sysmon event (``data`` starts with RuleName/UtcTime as Sysmon writes it)."""
        seq = self._next()
        self.windows["sysmon"].append(
            WinRecord(
                us, seq, SYSMON_CHANNEL, computer, event_id, data, "0x8000000000000000", 3012, 4000 + seq % 97, mark
            )
        )

    def line(self, key: str, us: int, text: str, mark: str | None = None) -> None:
        """Append one text record (syslog, CEF or a Zeek TSV row) to the file named by ``key``."""
        seq = self._next()
        self.lines.setdefault(key, []).append((us, seq, text, mark))

    def zeek(self, path: str, us: int, values: tuple[Any, ...], mark: str | None = None) -> None:
        """Append one Zeek row to ``<path>.log`` (``values`` in :data:`ZEEK_LOGS` column order, ts first)."""
        self.line(path, us, "\t".join([zeek_ts(us), *map(zeek_value, values)]), mark)

    def count(self) -> int:
        """Records collected so far."""
        return sum(len(v) for v in self.windows.values()) + sum(len(v) for v in self.lines.values())

    def write(self, root: Path) -> dict[str, int]:
        """Write every file under ``root/<tenant>/``; returns records per relative path."""
        base = root / self.tenant
        counts: dict[str, int] = {}
        for key, records in self.windows.items():
            if not records:
                continue
            records.sort(key=lambda r: (r.us, r.seq))
            counters: dict[tuple[str, str], int] = {}
            provider = SECURITY_PROVIDER if key == "security" else SYSMON_PROVIDER
            out = bytearray()
            rel = FILES[key]
            for n, r in enumerate(records, 1):
                ck = (r.computer, r.channel)
                rid = counters.get(ck, 0) + 1
                counters[ck] = rid
                if r.mark:
                    self.located.setdefault(r.mark, []).append((rel, n, len(out), r.us))
                out += orjson.dumps(_render_windows(r, rid, provider))
                out += b"\n"
            counts[FILES[key]] = len(records)
            _write(base / FILES[key], bytes(out))
        for key, rows in self.lines.items():
            if not rows:
                continue
            rows.sort(key=lambda r: (r[0], r[1]))
            rel = FILES[key]
            header = _zeek_header(key, rows[0][0]).encode() if key in ZEEK_LOGS else b""
            out = bytearray(header)
            line_no = header.count(b"\n")
            for us, _seq, text, mark in rows:
                line_no += 1
                if mark:
                    self.located.setdefault(mark, []).append((rel, line_no, len(out), us))
                out += text.encode()
                out += b"\n"
            if key in ZEEK_LOGS:
                out += f"#close\t{zeek_open_stamp(rows[-1][0])}\n".encode()
            counts[rel] = len(rows)
            _write(base / rel, bytes(out))
        return counts


def _render_windows(r: WinRecord, record_id: int, provider: tuple[str, str]) -> dict[str, Any]:
    if r.channel == SECURITY_CHANNEL:
        task, version = _SECURITY_META.get(r.event_id, (0, 0))
        level, opcode = 0, 0
    else:
        task, version, level, opcode = r.event_id, _SYSMON_VERSION.get(r.event_id, 2), 4, 0
    system = {
        "Provider": {"#attributes": {"Name": provider[0], "Guid": provider[1]}},
        "EventID": r.event_id,
        "Version": version,
        "Level": level,
        "Task": task,
        "Opcode": opcode,
        "Keywords": r.keywords,
        "TimeCreated": {"#attributes": {"SystemTime": iso_z(r.us)}},
        "EventRecordID": record_id,
        "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": r.pid, "ThreadID": r.tid}},
        "Channel": r.channel,
        "Computer": r.computer,
        "Security": None if r.channel == SECURITY_CHANNEL else {"#attributes": {"UserID": "S-1-5-18"}},
    }
    return {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": system,
            "EventData": r.data,
        }
    }


def _zeek_header(path: str, first_us: int) -> str:
    cols = ZEEK_LOGS[path]
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\t{path}\n#open\t{zeek_open_stamp(first_us)}\n"
        "#fields\t" + "\t".join(c for c, _t in cols) + "\n#types\t" + "\t".join(t for _c, t in cols) + "\n"
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
