"""Framing helpers shared by the transports: cut byte streams into single records.

Two stream framers live here, both incremental (fed chunk by chunk, memory bounded by
the record size limit, never reading a whole stream) and both exact (a record is the
byte-for-byte slice of its input, with its offset):

* :class:`JsonValueSplitter` cuts concatenated or pretty-printed JSON objects, or the
  elements of a top-level JSON array, out of a stream.  It tracks only bracket depth and
  string boundaries (a precompiled token regex jumps over whole runs of plain text and
  complete strings), so it costs a few tokens per flat object; validating the JSON is
  the parser's job.
* :class:`SyslogFrameDecoder` implements RFC 6587 TCP syslog framing, octet counting
  ("LEN SP MSG") and non-transparent framing (LF, CRLF or NUL), detected per frame.

Whatever cannot be framed comes back as a :class:`Span` with an ``error`` (oversized,
truncated, not JSON), keeping the first bytes so a person can see what arrived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from openmdr.normalize.base import MAX_RECORD_BYTES

# One token inside a JSON value: a run of plain text and complete strings (no state
# changes inside), a bracket, or a lone quote (a string not finished in this buffer).
_TOKEN = re.compile(rb'(?:[^"{}\[\]]+|"[^"\\]*(?:\\.[^"\\]*)*")+|[{}\[\]]|"', re.S)
# The rest of a string after its opening quote, up to (not including) the closing quote.
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.S)
# What may separate top-level values: whitespace, and commas inside an array wrapper.
_GAP = re.compile(rb"[ \t\r\n\f,]*")
_VALUE_START = re.compile(rb"[{\[]")
_AFTER_CLOSE = frozenset(b" \t\r\n,]")

_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _QUOTE = 0x7B, 0x7D, 0x5B, 0x5D, 0x22
#: Bytes of unframeable input kept in a rejection (the rest is counted, not kept).
KEEP_BYTES = 64 * 1024


@dataclass(slots=True)
class Span:
    """One framed piece of a stream: a record (``error`` is None) or input refused with a reason.

    ``offset`` is the stream offset of the first byte; ``size`` the true length, which
    for a refused span can exceed ``len(payload)`` (only the first bytes are kept).
    """

    offset: int
    payload: bytes
    size: int
    error: str | None = None


class JsonValueSplitter:
    """Incremental splitter of concatenated / pretty-printed JSON objects and top-level arrays.

    Feed chunks with :meth:`feed`, then call :meth:`close` at end of input.  A value
    larger than ``max_bytes`` is reported as an error span keeping its first
    ``max_bytes`` bytes, and splitting continues after it; text between values that is
    not JSON, and a value cut by the end of input, are error spans too.
    """

    __slots__ = (
        "_array",
        "_base",
        "_buf",
        "_depth",
        "_garbage_end",
        "_garbage_head",
        "_garbage_start",
        "_head",
        "_in_string",
        "_max",
        "_pos",
        "_skipping",
        "_start",
    )

    def __init__(self, max_bytes: int = MAX_RECORD_BYTES, base_offset: int = 0) -> None:
        self._max = max_bytes
        self._buf = b""
        self._base = base_offset  # stream offset of _buf[0]
        self._pos = 0  # scan position in _buf
        self._depth = 0
        self._in_string = False
        self._start = -1  # stream offset of the value being scanned
        self._skipping = False  # the current value is oversized: bytes are dropped as scanned
        self._head = b""  # kept prefix of an oversized value
        self._array: bool | None = None  # None until the first value decides; True inside [ ... ]
        self._garbage_start = -1
        self._garbage_end = -1
        self._garbage_head = b""

    @property
    def offset(self) -> int:
        """Stream offset up to which input has been scanned."""
        return self._base + self._pos

    def feed(self, chunk: bytes) -> list[Span]:
        """Scan ``chunk`` (the next bytes of the stream); return the spans it completed."""
        buf = self._buf + chunk if self._buf else chunk
        out: list[Span] = []
        pos = self._pos
        n = len(buf)
        base = self._base
        while pos < n:
            if self._depth == 0:
                if self._garbage_start >= 0:  # inside non-JSON text: it runs to the next value
                    m = _VALUE_START.search(buf, pos)
                    end = m.start() if m else n
                    self._add_garbage(base + pos, buf[pos:end])
                    pos = end
                    if pos >= n:
                        break
                else:
                    pos = _GAP.match(buf, pos).end()
                    if pos >= n:
                        break
                c = buf[pos]
                if c in (_LBRACE, _LBRACKET):
                    self._end_garbage(out)
                    if c == _LBRACKET and self._array is None:
                        self._array = True  # a top-level array wrapper: its elements are the records
                        pos += 1
                        continue
                    if self._array is None:
                        self._array = False
                    if c == _LBRACE:
                        end = self._pretty_end(buf, pos)
                        if end > 0:
                            out.append(Span(base + pos, buf[pos:end], end - pos))
                            pos = end
                            continue
                    self._start = base + pos
                    self._depth = 1
                    pos += 1
                    continue
                if c == _RBRACKET and self._array:
                    self._end_garbage(out)
                    self._array = None  # wrapper closed; another may follow
                    pos += 1
                    continue
                m = _VALUE_START.search(buf, pos)
                end = m.start() if m else n
                self._add_garbage(base + pos, buf[pos:end])
                pos = end
                continue
            if self._in_string:
                end = _STRING_REST.match(buf, pos).end()
                if end < n and buf[end] == _QUOTE:
                    self._in_string = False
                    pos = end + 1
                    continue
                pos = end  # stops before a trailing backslash, if any, to see what it escapes
                break
            depth = self._depth
            for m in _TOKEN.finditer(buf, pos):
                c = buf[m.start()]
                if c in (_LBRACE, _LBRACKET):
                    depth += 1
                elif c in (_RBRACE, _RBRACKET):
                    depth -= 1
                    if depth == 0:
                        pos = m.end()
                        break
                elif c == _QUOTE and m.end() - m.start() == 1:
                    self._in_string = True
                    pos = m.end()
                    break
            else:
                pos = n
            self._depth = depth
            if depth == 0:
                self._emit_value(out, buf, base, pos)
        if self._depth and not self._skipping and base + pos - self._start > self._max:
            first = self._start - base
            self._head = buf[first : first + self._max]
            self._skipping = True
        # keep only what an unfinished value still needs
        keep = self._start - base if self._depth and not self._skipping else pos
        self._buf = buf[keep:]
        self._base = base + keep
        self._pos = pos - keep
        return out

    def close(self) -> list[Span]:
        """End of input: report a value cut short and trailing non-JSON text."""
        out: list[Span] = []
        if self._depth:
            size = self._base + len(self._buf) - self._start
            if self._skipping:
                head = self._head
            else:
                first = self._start - self._base
                head = self._buf[first : first + self._max]
            reason = f"truncated JSON value: input ended inside a value of at least {size} bytes"
            out.append(Span(self._start, head, size, reason))
            self._depth = 0
        else:
            tail = self._buf[self._pos :]
            if tail.strip(b" \t\r\n\f,"):
                self._add_garbage(self._base + self._pos, tail)
        self._end_garbage(out)
        self._buf = b""
        self._pos = 0
        self._in_string = False
        self._skipping = False
        return out

    def _pretty_end(self, buf: bytes, pos: int) -> int:
        """End of a pretty-printed object opening at ``pos``, or -1 to scan it token by token.

        Pretty printers close an object on a line indented like the line that opened it.
        That line is only a candidate: it is accepted when the bytes up to it decode as
        JSON, and a prefix of a value that is valid JSON can only end where the value
        ends, so this gives exactly the scanner's answer at C speed.
        """
        line_start = buf.rfind(b"\n", 0, pos) + 1
        if line_start == 0 and self._base + pos != 0:
            return -1  # the line's start is in an earlier chunk: indentation unknown
        indent = buf[line_start:pos]
        if indent.strip(b" \t"):
            return -1  # not the first thing on its line
        marker = b"\n" + indent + b"}"
        i = buf.find(marker, pos, pos + self._max)
        if i < 0:
            return -1
        end = i + len(marker)
        if end < len(buf) and buf[end] not in _AFTER_CLOSE:
            return -1
        try:
            orjson.loads(buf[pos:end])
        except orjson.JSONDecodeError:
            return -1
        return end

    def _emit_value(self, out: list[Span], buf: bytes, base: int, end: int) -> None:
        size = base + end - self._start
        if self._skipping or size > self._max:
            head = self._head if self._skipping else buf[self._start - base : self._start - base + self._max]
            reason = f"oversized record: {size} bytes > limit {self._max}"
            out.append(Span(self._start, head, size, reason))
            self._skipping = False
            self._head = b""
        else:
            out.append(Span(self._start, buf[self._start - base : end], size))
        self._start = -1

    def _add_garbage(self, offset: int, text: bytes) -> None:
        if self._garbage_start < 0:
            self._garbage_start = offset
        if len(self._garbage_head) < KEEP_BYTES:
            self._garbage_head += text[: KEEP_BYTES - len(self._garbage_head)]
        self._garbage_end = offset + len(text)

    def _end_garbage(self, out: list[Span]) -> None:
        if self._garbage_start < 0:
            return
        size = self._garbage_end - self._garbage_start
        reason = f"not JSON: {size} bytes of text between JSON objects"
        out.append(Span(self._garbage_start, self._garbage_head, size, reason))
        self._garbage_start = -1
        self._garbage_head = b""


def split_json_values(data: bytes, limit: int | None = None, final: bool = False) -> tuple[list[Span], int]:
    """Split in-memory ``data`` into JSON value spans; return them and the offset scanned to.

    With ``limit`` only the first ``limit`` spans are returned (sampling a file head);
    with ``final`` the data is the whole input, so a value cut short is reported.
    """
    splitter = JsonValueSplitter()
    spans = splitter.feed(data)
    if final:
        spans.extend(splitter.close())
    if limit is not None:
        spans = spans[:limit]
    return spans, splitter.offset


class SyslogFrameDecoder:
    """RFC 6587 framing of one TCP syslog stream, octet counting or non-transparent per frame.

    A frame starting with digits followed by a space is octet-counted ("LEN SP MSG");
    anything else runs to the next LF (CRLF and NUL also end a frame).  A message over
    ``max_bytes`` becomes an error (its first ``max_bytes`` kept): an octet-counted one
    is skipped by its length, a newline-framed one by resynchronising at the next LF.
    """

    __slots__ = ("_buf", "_discard_head", "_discard_size", "_discarding", "_max", "_skip")

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buf = b""
        self._skip = 0  # bytes of an oversized octet-counted frame still to discard
        self._discarding = False  # inside an oversized newline-framed message
        self._discard_head = b""
        self._discard_size = 0

    def feed(self, data: bytes) -> tuple[list[bytes], list[tuple[bytes, str]]]:
        """Decode the next bytes; return complete messages and (kept bytes, reason) errors."""
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        messages: list[bytes] = []
        errors: list[tuple[bytes, str]] = []
        limit = self._max
        if self._skip:
            pos = min(self._skip, n)
            self._skip -= pos
        if self._discarding:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                self._discard_size += n - pos
                self._buf = b""
                return messages, errors
            self._discard_size += nl - pos
            errors.append(self._end_discard())
            pos = nl + 1
        while pos < n:
            c = buf[pos]
            if 0x30 <= c <= 0x39:  # a digit: maybe an octet count
                sp = buf.find(b" ", pos, pos + 11)
                if sp > pos and buf[pos:sp].isdigit():
                    length = int(buf[pos:sp])
                    start = sp + 1
                    end = start + length
                    if length <= limit:
                        if end > n:
                            break  # frame not complete yet
                        messages.append(buf[start:end])
                        pos = end
                        continue
                    if n - start < limit:
                        break  # keep reading until the kept head is complete
                    errors.append(
                        (
                            buf[start : start + limit],
                            f"oversized syslog message: {length} bytes > limit {limit}",
                        )
                    )
                    pos = min(end, n)
                    self._skip = end - pos
                    continue
                if sp < 0 and n - pos < 11 and buf[pos:n].isdigit():
                    break  # the count's space has not arrived yet
            nl = buf.find(b"\n", pos)
            end = nl if nl >= 0 else n
            nul = buf.find(b"\x00", pos, end)
            if nul >= 0:
                end = nul
            elif nl < 0:
                if n - pos > limit:
                    self._discarding = True
                    self._discard_head = buf[pos : pos + limit]
                    self._discard_size = n - pos
                    pos = n
                break  # no delimiter yet
            message = buf[pos:end]
            if message.endswith(b"\r"):
                message = message[:-1]
            if len(message) > limit:
                errors.append((message[:limit], f"oversized syslog message: {len(message)} bytes > limit {limit}"))
            elif message:
                messages.append(message)
            pos = end + 1
        self._buf = buf[pos:] if pos < n else b""
        return messages, errors

    def close(self) -> tuple[list[bytes], list[tuple[bytes, str]]]:
        """End of stream: a final unterminated message is delivered; a cut octet frame is an error."""
        messages: list[bytes] = []
        errors: list[tuple[bytes, str]] = []
        buf, self._buf = self._buf, b""
        if self._discarding:
            errors.append(self._end_discard(closed=True))
        elif self._skip:
            self._skip = 0
        if not buf:
            return messages, errors
        sp = buf.find(b" ", 0, 11)
        if sp > 0 and buf[:sp].isdigit():
            declared = int(buf[:sp])
            got = len(buf) - sp - 1
            errors.append((buf[: self._max], f"truncated octet-counted frame: {got} of {declared} bytes received"))
            return messages, errors
        message = buf.rstrip(b"\r\n\x00")
        if len(message) > self._max:
            errors.append((message[: self._max], f"oversized syslog message: {len(message)} bytes > limit {self._max}"))
        elif message:
            messages.append(message)
        return messages, errors

    def _end_discard(self, closed: bool = False) -> tuple[bytes, str]:
        size = self._discard_size
        head = self._discard_head
        self._discarding = False
        self._discard_head = b""
        self._discard_size = 0
        ending = " (connection closed before its end)" if closed else ""
        return head, f"oversized syslog message: {size} bytes > limit {self._max}{ending}"
