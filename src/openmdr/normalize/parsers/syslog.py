"""Syslog parser ("syslog"): RFC 5424 and RFC 3164 (BSD) messages, with Linux auth (sshd, sudo, su, PAM) entities.

Accepted shapes, with or without the ``<PRI>`` part (files such as ``/var/log/auth.log``
have none):

* RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD...] MSG``;
* RFC 3164: ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`` (optionally with a year or
  fractional seconds), and the rsyslog high-precision variant with an ISO 8601 time.

``fields`` holds ``facility`` and ``severity`` (names), ``priority``, ``hostname``,
``appname``, ``procid``, ``msgid``, ``message`` and each structured-data parameter as
``<SD-ID>.<name>``; for sudo also its ``TTY``/``PWD``/``USER``/``COMMAND`` items, as
written.  Absent (``-``) header parts are left out.

Time: RFC 5424 and ISO times carry their zone.  An RFC 3164 time has neither zone nor
year: it is taken as UTC, in the year of the record's ``received_at`` context (listener
and HTTP ingest supply it) or else of the current UTC date, moved back a year when that
would put it more than two days in the future.

Entities: ``host`` is the HOSTNAME, ``service`` the application (``sshd``, ``sudo``...),
``product`` ``linux`` for the Linux authentication programs.  sshd logons give
``action`` ``logon``/``logon_failed`` with ``outcome``, ``user``, ``src_ip`` and
``src_port``; sudo gives ``sudo_command`` (or ``sudo_failed``) with the invoking
``user``, the command as ``process_command_line`` and the target account in ``fields``;
su and PAM session/authentication lines are recognised the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.jsonlines import as_int, as_ip, as_port, to_time

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5",
    "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
#: Programs whose messages are Linux authentication and privilege events.
LINUX_AUTH_PROGRAMS = frozenset(
    {"sshd", "sudo", "su", "login", "systemd-logind", "passwd", "useradd", "usermod", "groupadd",
     "gpasswd", "chpasswd", "cron", "crond", "polkitd", "pkexec", "gdm-password", "lightdm", "dropbear"}
)  # fmt: skip

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}  # fmt: skip
_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
_BSD_TIME = re.compile(
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(\.\d{1,6})? "
)
_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) ")
_TAG = re.compile(r"([^\s:\[\]]{1,128})(?:\[([^\]\s]{1,32})\])?: ?")
_SD_ELEMENT = re.compile(r'\[([^\s\]="]{1,32})((?: [^\s\]="]{1,32}="(?:[^"\\]|\\.)*")*)\]')
_SD_PARAM = re.compile(r' ([^\s\]="]{1,32})="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")

# --- Linux authentication messages
_SSH_ACCEPTED = re.compile(r"Accepted (\S+) for (\S+) from (\S+) port (\d+)")
_SSH_FAILED = re.compile(r"Failed (\S+) for (?:invalid user )?(\S*) from (\S+) port (\d+)")
_SSH_INVALID = re.compile(r"Invalid user (\S*) from (\S+)(?: port (\d+))?")
_SSH_CLOSED = re.compile(
    r"(?:Connection closed|Disconnected) by (?:authenticating|invalid) user (\S+) (\S+) port (\d+)"
)
_PAM_FAILURE = re.compile(r"pam_unix\(([^:)]+):auth\): authentication failure;.*?(?:rhost=(\S*))?\s+user=(\S+)")
_PAM_SESSION = re.compile(
    r"pam_unix\(([^:)]+):session\): session (opened|closed) for user (\S+?)(?:\(uid=\d+\))?"
    r"(?: by (\S*?)(?:\(uid=\d+\))?)?$"
)
_SU_FAILED = re.compile(r"FAILED (?:su|SU) (?:\(to (\S+)\)|for (\S+)) (?:by )?(\S+)")
_SUDO = re.compile(r"^\s*(\S+) : (.*)$")


def _unescape_sd(value: str) -> str:
    return _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value


def _reference_time(context: Mapping[str, Any] | None) -> datetime:
    received = context.get("received_at") if context else None
    if received is not None:
        try:
            return to_time(received)
        except ParseError:
            pass
    return datetime.now(UTC)


def _bsd_time(m: re.Match[str], context: Mapping[str, Any] | None) -> datetime:
    month = _MONTHS[m.group(1)]
    day, hour, minute, second = int(m.group(2)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    micro = int((m.group(7) or ".0")[1:].ljust(6, "0")[:6])
    year_text = m.group(3)
    reference = None if year_text else _reference_time(context)
    year = int(year_text) if year_text else reference.year  # type: ignore[union-attr]
    try:
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        if reference is not None and when > reference + timedelta(days=2):
            when = when.replace(year=year - 1)
    except ValueError:
        raise ParseError(f"impossible syslog date {m.group(0).strip()!r}") from None
    return when


def parse_syslog_header(
    text: str, context: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], datetime | None, str]:
    """Split a syslog line into its header fields, its time (None when it has none) and the message.

    Used by this parser and by CEF/LEEF, whose records usually arrive behind a syslog
    header.  Raises :class:`ParseError` for an impossible date or priority.
    """
    fields: dict[str, Any] = {}
    pos = 0
    m = _PRI.match(text)
    if m:
        pri = int(m.group(1))
        if pri > 191:
            raise ParseError(f"syslog priority {pri} out of range 0-191")
        fields["priority"] = pri
        fields["facility"] = FACILITIES[pri >> 3]
        fields["severity"] = SEVERITIES[pri & 7]
        pos = m.end()
    when: datetime | None = None
    m5 = _RFC5424.match(text, pos)
    if m is not None and m5:
        stamp, host, app, procid, msgid = m5.groups()
        if stamp != "-":
            try:
                when = to_time(stamp)
            except ParseError:
                raise ParseError(f"unreadable RFC 5424 timestamp {stamp[:40]!r}") from None
        for key, value in (("hostname", host), ("appname", app), ("procid", procid), ("msgid", msgid)):
            if value != "-":
                fields[key] = value
        pos = m5.end()
        if text.startswith("-", pos):
            pos += 2 if text.startswith("- ", pos) else 1
        else:
            while text.startswith("[", pos):
                sd = _SD_ELEMENT.match(text, pos)
                if sd is None:
                    raise ParseError("malformed RFC 5424 structured data")
                sd_id = sd.group(1)
                for name, value in _SD_PARAM.findall(sd.group(2)):
                    fields[f"{sd_id}.{name}"] = _unescape_sd(value)
                pos = sd.end()
            if text.startswith(" ", pos):
                pos += 1
        message = text[pos:]
        if message.startswith("\ufeff"):
            message = message[1:]
        return fields, when, message
    mb = _BSD_TIME.match(text, pos)
    if mb:
        when = _bsd_time(mb, context)
        pos = mb.end()
    else:
        mi = _ISO_TIME.match(text, pos)
        if mi:
            try:
                when = to_time(mi.group(1))
            except ParseError:
                raise ParseError(f"unreadable syslog timestamp {mi.group(1)[:40]!r}") from None
            pos = mi.end()
    if when is not None:
        # HOSTNAME, unless the next token is already the tag ("prog[pid]:" or "prog:")
        space = text.find(" ", pos)
        token = text[pos:space] if space > 0 else text[pos:]
        if token and not token.endswith(":") and "[" not in token:
            fields["hostname"] = token
            pos = space + 1 if space > 0 else len(text)
    tag = _TAG.match(text, pos)
    if tag and (when is not None or m is not None):
        fields["appname"] = tag.group(1)
        if tag.group(2):
            fields["procid"] = tag.group(2)
        pos = tag.end()
    return fields, when, text[pos:]


def _auth_entities(event: Event, program: str, message: str) -> None:
    """Fill logon/privilege entities from sshd, sudo, su and PAM messages."""
    if program in ("sshd", "dropbear"):
        m = _SSH_ACCEPTED.search(message)
        if m:
            event.action, event.outcome = "logon", "success"
            event.fields["auth_method"] = m.group(1)
            event.user, event.src_ip, event.src_port = m.group(2), as_ip(m.group(3)), as_port(m.group(4))
            return
        m = _SSH_FAILED.search(message)
        if m:
            event.action, event.outcome = "logon_failed", "failure"
            event.fields["auth_method"] = m.group(1)
            event.user, event.src_ip, event.src_port = m.group(2) or None, as_ip(m.group(3)), as_port(m.group(4))
            return
        m = _SSH_INVALID.search(message)
        if m:
            event.action, event.outcome = "logon_failed", "failure"
            event.user, event.src_ip, event.src_port = m.group(1) or None, as_ip(m.group(2)), as_port(m.group(3))
            return
        m = _SSH_CLOSED.search(message)
        if m:
            event.action = "connection_closed"
            event.user, event.src_ip, event.src_port = m.group(1), as_ip(m.group(2)), as_port(m.group(3))
            return
    if program == "sudo":
        m = _SUDO.match(message)
        if m:
            event.user = m.group(1)
            items = [part.strip() for part in m.group(2).split(" ; ")]
            failed = False
            for item in items:
                key, sep, value = item.partition("=")
                if sep and key in ("TTY", "PWD", "USER", "GROUP", "COMMAND", "ENV"):
                    event.fields[key] = value
                elif item:
                    failed = True
                    event.fields["sudo_error"] = item
            command = event.fields.get("COMMAND")
            if command is not None or failed:
                event.action = "sudo_failed" if failed else "sudo_command"
                event.outcome = "failure" if failed else "success"
                event.process_command_line = command
                if command:
                    event.process_image = command.split(" ", 1)[0]
            return
    if program == "su":
        m = _SU_FAILED.search(message)
        if m:
            event.action, event.outcome = "su_failed", "failure"
            event.user = m.group(3)
            event.fields["target_user"] = m.group(1) or m.group(2)
            return
    m = _PAM_FAILURE.search(message)
    if m:
        event.action, event.outcome = "logon_failed", "failure"
        event.user = m.group(3)
        event.src_ip = as_ip(m.group(2) or "")
        event.fields["pam_service"] = m.group(1)
        return
    m = _PAM_SESSION.search(message)
    if m:
        event.action = "session_open" if m.group(2) == "opened" else "session_close"
        event.outcome = "success"
        event.fields["pam_service"] = m.group(1)
        event.fields["target_user"] = m.group(3)
        event.user = m.group(4) or m.group(3)


def _decode(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("not valid UTF-8") from None
    if "\x00" in text:
        raise ParseError("binary content: NUL byte in a syslog message")
    return text.rstrip("\r\n")


class SyslogParser:
    """Parser for one syslog message (RFC 5424 or RFC 3164, with or without PRI)."""

    name = "syslog"

    def parse(self, record: RawRecord) -> Event:
        """Parse one syslog line; refuse text that has neither a priority nor a timestamp."""
        text = _decode(record.payload)
        if not text.strip():
            raise ParseError("empty record")
        header, when, message = parse_syslog_header(text, record.context)
        if when is None:
            if "priority" not in header:
                raise ParseError("not syslog: no <PRI> and no timestamp")
            when = _reference_time(record.context) if record.context and "received_at" in record.context else None
            if when is None:
                raise ParseError("syslog message without a timestamp and no receive time to use")
        fields = dict(header)
        fields["message"] = message
        program = str(header.get("appname", "")).lower()
        event = Event(
            time=when,
            source_format=self.name,
            fields=fields,
            source_type=f"syslog:{program}" if program else "syslog",
            product="linux" if program in LINUX_AUTH_PROGRAMS else None,
            service=program or None,
            host=header.get("hostname"),
            message=message[:512] or None,
            event_code=header.get("msgid"),
        )
        if program:
            _auth_entities(event, program, message)
            if event.process_image is None:
                event.process_pid = as_int(header.get("procid"))
        return event


register(SyslogParser())
