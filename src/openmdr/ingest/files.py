"""File import: expand paths, detect each file's format, frame it into single records.

:func:`plan_sources` turns the paths a user gives (files, directories, globs) into a list
of :class:`SourceFile` with sizes for progress totals.  :func:`read_sources` streams them
as :class:`~openmdr.models.RawRecord` (one record each, exact bytes, format, origin) and
:class:`~openmdr.models.Rejection` (what could not be framed, with the reason and where
it was), with bounded memory whatever the file size:

* gzip (also multi-member, also inside archives) and zip archives are opened
  transparently; each zip member is detected on its own (origin ``a.zip!member:offset``);
* EVTX files go through ``evtx.PyEvtxParser`` (origin ``path#record=N``); a truncated or
  corrupt file yields what can be read plus rejections for what cannot;
* JSON lines, concatenated / pretty-printed JSON objects and top-level JSON arrays are
  split without decoding whole files; CloudTrail ``{"Records": [...]}`` files become one
  record per CloudTrail event;
* Zeek TSV logs carry their ``#`` header (separator, fields, types, path) in each
  record's ``context``; a header repeated mid-file takes effect from there on;
* text may be UTF-8 with or without BOM, or UTF-16 LE/BE (transcoded to UTF-8; origins
  of a UTF-16 file then give offsets in the UTF-8 transcoding); CRLF is accepted.

Origins are ``path:offset`` where offset is the record's first byte in the
(decompressed) stream.  Nothing is dropped: ``records + rejections`` accounts for every
non-blank line or object of every file.
"""

from __future__ import annotations

import codecs
import glob
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from openmdr.ingest.detect import (
    EVTX_MAGIC,
    detect_format,
    detect_message_format,
    looks_binary,
    utf16_encoding,
)
from openmdr.ingest.framing import KEEP_BYTES, JsonValueSplitter
from openmdr.models import RawRecord, Rejection
from openmdr.normalize.base import MAX_RECORD_BYTES

#: Bytes read per I/O call; big blocks keep per-record overhead at the split.
BLOCK_SIZE = 1 << 20
#: Bytes sampled for format detection.
HEAD_BYTES = 64 * 1024
#: Largest CloudTrail ``{"Records": [...]}`` file accepted (AWS writes them far smaller).
MAX_CLOUDTRAIL_FILE_BYTES = 256 << 20
#: Archives inside archives are opened up to this depth (zip bombs stop here).
MAX_ARCHIVE_DEPTH = 4
#: Consecutive unreadable EVTX records after which the rest of the file is given up.
MAX_EVTX_ERRORS = 10_000

JSON_FORMATS = frozenset({"json", "winevent_json", "winlogbeat_json", "suricata_eve", "zeek_json"})
LINE_DETECTED_FORMATS = frozenset({"syslog", "cef", "leef"})

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_UTF8_BOM = b"\xef\xbb\xbf"
_EVTX_HEADER = 4096
_EVTX_CHUNK = 65536
_ZEEK_HEADER_KEYS = frozenset({"separator", "set_separator", "empty_field", "unset_field", "path", "fields", "types"})

Item = RawRecord | Rejection


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to import, with its size on disk for progress totals (0 when it cannot be read)."""

    path: Path
    size: int


def _walk(root: Path) -> list[Path]:
    """Regular files under ``root``, recursively, sorted, skipping hidden files and directories."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        found.extend(base / f for f in sorted(filenames) if not f.startswith(".") and (base / f).is_file())
    return found


def plan_sources(paths: Sequence[str | Path]) -> list[SourceFile]:
    """Expand files, directories (recursive, sorted, hidden entries skipped) and globs.

    A path that does not exist and is not a glob is kept, so that :func:`read_sources`
    reports it as a rejection instead of it vanishing; a file named twice is read once.
    """
    planned: list[SourceFile] = []
    seen: set[str] = set()
    for entry in paths:
        path = Path(entry).expanduser()
        text = str(path)
        if path.is_dir():
            files = _walk(path)
        elif path.exists() or not any(c in text for c in "*?["):
            files = [path]
        else:
            files = []
            for match in sorted(glob.glob(text, recursive=True)):
                m = Path(match)
                if m.is_dir():
                    files.extend(_walk(m))
                elif m.is_file() and not m.name.startswith("."):
                    files.append(m)
        for f in files:
            key = os.path.abspath(f)
            if key in seen:
                continue
            seen.add(key)
            try:
                size = f.stat().st_size
            except OSError:
                size = 0
            planned.append(SourceFile(f, size))
    return planned


def _describe(exc: BaseException) -> str:
    """A person-readable one-line description of an I/O or decoding error."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, zlib.error | zipfile.BadZipFile) else text


class _Progress:
    """Reports consumed bytes of one source to ``on_progress``, never more than its size."""

    __slots__ = ("callback", "reported", "size")

    def __init__(self, callback: Callable[[int], None] | None, size: int) -> None:
        self.callback = callback
        self.size = size
        self.reported = 0

    def advance(self, n: int) -> None:
        if self.callback is None or n <= 0:
            return
        n = min(n, self.size - self.reported)
        if n > 0:
            self.reported += n
            self.callback(n)

    def finish(self) -> None:
        self.advance(self.size - self.reported)


class _Stream:
    """A stream of byte chunks whose head can be peeked; read errors end it and are kept.

    Iterating yields the chunks and stops at the first error, recorded in ``error`` for
    the framer to report; :meth:`raw` re-raises instead (for stacking decoders).
    """

    __slots__ = ("_exc", "_it", "_peeked", "error")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._peeked: list[bytes] = []
        self._exc: BaseException | None = None
        self.error: str | None = None

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first ``n`` bytes (fewer at end of stream), read ahead without consuming them."""
        total = sum(len(c) for c in self._peeked)
        while total < n and self._exc is None:
            try:
                chunk = next(self._it)
            except StopIteration:
                break
            except Exception as exc:  # untrusted files raise many library-specific errors
                self._exc = exc
                self.error = _describe(exc)
                break
            if chunk:
                self._peeked.append(chunk)
                total += len(chunk)
        if len(self._peeked) > 1:
            self._peeked = [b"".join(self._peeked)]
        return self._peeked[0][:n] if self._peeked else b""

    def raw(self) -> Iterator[bytes]:
        """The chunks, re-raising a read error (for decoders stacked on this stream)."""
        peeked, self._peeked = self._peeked, []
        yield from peeked
        if self._exc is not None:
            raise self._exc
        yield from self._it

    def __iter__(self) -> Iterator[bytes]:
        peeked, self._peeked = self._peeked, []
        yield from peeked
        if self._exc is not None:
            return
        try:
            yield from self._it
        except Exception as exc:  # recorded, reported by the framer as a rejection
            self._exc = exc
            self.error = _describe(exc)


def _read_blocks(read: Callable[[int], bytes], progress: _Progress | None = None) -> Iterator[bytes]:
    while True:
        block = read(BLOCK_SIZE)
        if not block:
            return
        if progress is not None:
            progress.advance(len(block))
        yield block


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decompress gzip data (several members allowed); raise EOFError when it is cut short.

    Output is produced in bounded pieces, so a decompression bomb costs time, not memory.
    """
    step = BLOCK_SIZE * 4
    decomp = zlib.decompressobj(31)
    produced = 0
    started = False
    for chunk in chunks:
        data = chunk
        while data:
            if not started:
                data = data.lstrip(b"\x00")  # padding between members
                if not data:
                    break
                started = True
            out = decomp.decompress(data, step)
            while True:
                if out:
                    produced += len(out)
                    yield out
                if decomp.eof or (not decomp.unconsumed_tail and len(out) < step):
                    break
                out = decomp.decompress(decomp.unconsumed_tail, step)
            if decomp.eof:
                data = decomp.unused_data
                decomp = zlib.decompressobj(31)
                started = False
            else:
                data = b""
    if started:
        raise EOFError(f"truncated gzip: compressed data ended after {produced} decompressed bytes")


def _transcode(chunks: Iterator[bytes], encoding: str, skip: int) -> Iterator[bytes]:
    """Re-encode UTF-16 text as UTF-8 (undecodable units become U+FFFD)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for chunk in chunks:
        if skip:
            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
        text = decoder.decode(chunk)
        if text:
            yield text.encode("utf-8", "surrogatepass")
    text = decoder.decode(b"", final=True)
    if text:
        yield text.encode("utf-8", "surrogatepass")


def _skip_prefix(chunks: Iterator[bytes], skip: int) -> Iterator[bytes]:
    for chunk in chunks:
        if skip:
            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
            if not chunk:
                continue
        yield chunk


def _rejection(payload: bytes, reason: str, origin: str, fmt: str | None) -> Rejection:
    return Rejection(payload=payload, reason=reason, origin=origin, format=fmt, stage="collect")


def _stream_error(stream: _Stream, pending: bytes, offset: int, prefix: str, fmt: str | None) -> Rejection:
    """The rejection closing a stream that failed: the partial record it was in, and why."""
    what = f"{len(pending)} bytes of an unfinished record kept; " if pending else ""
    reason = f"read error at byte {offset + len(pending)}: {what}the rest is lost: {stream.error}"
    return _rejection(pending[:MAX_RECORD_BYTES], reason, f"{prefix}:{offset}", fmt)


# --------------------------------------------------------------------------- framers


def _frame_lines(stream: _Stream, fmt: str, prefix: str, base: int, per_line: bool) -> Iterator[Item]:
    """One record per non-blank line (LF or CRLF); oversized lines become rejections.

    The hot path of JSON-lines import: blocks are split on LF in C and each line costs
    a length check, a CR check and the record itself.
    """
    limit = MAX_RECORD_BYTES
    pending = b""
    offset = base  # stream offset of pending[0]
    big_start = -1  # start of an oversized line being skipped
    big_head = b""
    big_size = 0
    for chunk in stream:
        if big_start >= 0:
            nl = chunk.find(b"\n")
            if nl < 0:
                big_size += len(chunk)
                offset += len(chunk)
                continue
            big_size += nl
            reason = f"oversized record: {big_size} bytes > limit {limit}"
            yield _rejection(big_head, reason, f"{prefix}:{big_start}", fmt)
            big_start, big_head = -1, b""
            offset += nl + 1
            chunk = chunk[nl + 1 :]
        data = pending + chunk if pending else chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        pos = offset
        for line in lines:
            size = len(line)
            if size:
                if line[-1] == 13:
                    line = line[:-1]
                if size > limit:
                    reason = f"oversized record: {size} bytes > limit {limit}"
                    yield _rejection(line[:limit], reason, f"{prefix}:{pos}", fmt)
                elif line:
                    if per_line:
                        yield RawRecord(line, detect_message_format(line), f"{prefix}:{pos}")
                    else:
                        yield RawRecord(line, fmt, f"{prefix}:{pos}")
            pos += size + 1
        offset = pos
        if len(pending) > limit:
            big_start, big_head, big_size = offset, pending[:limit], len(pending)
            offset += len(pending)
            pending = b""
    if stream.error is not None:
        if big_start >= 0:
            pending, offset = big_head, big_start
        yield _stream_error(stream, pending, offset, prefix, fmt)
        return
    if big_start >= 0:
        yield _rejection(big_head, f"oversized record: {big_size} bytes > limit {limit}", f"{prefix}:{big_start}", fmt)
    line = pending.rstrip(b"\r")
    if line.strip():
        if len(line) > limit:
            yield _rejection(
                line[:limit],
                f"oversized record: {len(line)} bytes > limit {limit}",
                f"{prefix}:{offset}",
                fmt,
            )
        else:
            yield RawRecord(line, detect_message_format(line) if per_line else fmt, f"{prefix}:{offset}")


def _zeek_context(header: dict[str, bytes]) -> dict[str, Any]:
    """Build a Zeek TSV record context from the latest ``#`` directive lines (parser's contract)."""
    from openmdr.normalize.parsers.zeek import read_zeek_header

    return read_zeek_header(list(header.values()))


def _iter_lines(stream: _Stream, base: int) -> Iterator[tuple[int, bytes, int]]:
    """(offset, line, size) for every line; ``size > MAX_RECORD_BYTES`` marks an oversized
    line of which only the first bytes are given; ``size < 0`` marks a read error ending
    the stream with the unfinished line."""
    limit = MAX_RECORD_BYTES
    pending = b""
    offset = base
    big_start, big_head, big_size = -1, b"", 0
    for chunk in stream:
        if big_start >= 0:
            nl = chunk.find(b"\n")
            if nl < 0:
                big_size += len(chunk)
                offset += len(chunk)
                continue
            yield big_start, big_head, big_size + nl
            big_start, big_head = -1, b""
            offset += nl + 1
            chunk = chunk[nl + 1 :]
        data = pending + chunk if pending else chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        pos = offset
        for line in lines:
            size = len(line)
            yield pos, line[:limit] if size > limit else line, size
            pos += size + 1
        offset = pos
        if len(pending) > limit:
            big_start, big_head, big_size = offset, pending[:limit], len(pending)
            offset += len(pending)
            pending = b""
    if stream.error is not None:
        if big_start >= 0:
            yield big_start, big_head, -1
        else:
            yield offset, pending, -1
        return
    if big_start >= 0:
        yield big_start, big_head, big_size
    elif pending:
        yield offset, pending, len(pending)


def _frame_zeek_tsv(stream: _Stream, prefix: str, base: int) -> Iterator[Item]:
    """Zeek TSV data lines with the file's ``#`` header in each record's context.

    The header lines are collected as they come; a repeated ``#fields`` (several logs
    concatenated) builds a new context for the lines after it.  ``#open``/``#close``
    lines carry no framing facts and are skipped.
    """
    fmt = "zeek_tsv"
    limit = MAX_RECORD_BYTES
    header: dict[str, bytes] = {}
    context: dict[str, Any] | None = None
    error = ""
    stale = True
    for pos, line, size in _iter_lines(stream, base):
        if size < 0:
            yield _stream_error(stream, line, pos, prefix, fmt)
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] == 35:  # '#': a header directive
            key = line[1:].split(None, 1)[0].decode("ascii", "replace") if len(line) > 1 else ""
            if key in _ZEEK_HEADER_KEYS and header.get(key) != line:
                header[key] = line
                stale = True
            continue
        if stale:
            context, error = _zeek_header_context(header)
            stale = False
        if size > limit:
            yield _rejection(line, f"oversized record: {size} bytes > limit {limit}", f"{prefix}:{pos}", fmt)
        elif context is None:
            yield _rejection(line, error, f"{prefix}:{pos}", fmt)
        else:
            yield RawRecord(line, fmt, f"{prefix}:{pos}", context)


def _zeek_header_context(header: dict[str, bytes]) -> tuple[dict[str, Any] | None, str]:
    if "fields" not in header:
        return None, "zeek TSV data line before any #fields header line"
    try:
        return _zeek_context(header), ""
    except ValueError as exc:  # ParseError is a ValueError
        return None, f"unreadable zeek TSV header: {exc}"


def _frame_json_values(stream: _Stream, fmt: str, prefix: str, base: int) -> Iterator[Item]:
    """Concatenated / pretty-printed JSON objects or array elements, one record each."""
    splitter = JsonValueSplitter(MAX_RECORD_BYTES, base)
    for chunk in stream:
        for span in splitter.feed(chunk):
            if span.error is None:
                yield RawRecord(span.payload, fmt, f"{prefix}:{span.offset}")
            else:
                yield _rejection(span.payload, span.error, f"{prefix}:{span.offset}", fmt)
    for span in splitter.close():
        if span.error is None:
            yield RawRecord(span.payload, fmt, f"{prefix}:{span.offset}")
        elif stream.error is None:
            yield _rejection(span.payload, span.error, f"{prefix}:{span.offset}", fmt)
        else:  # the value was cut by the read error: one rejection says both
            reason = f"read error inside a JSON value, the rest is lost: {stream.error}"
            yield _rejection(span.payload, reason, f"{prefix}:{span.offset}", fmt)
            return
    if stream.error is not None:
        yield _stream_error(stream, b"", splitter.offset, prefix, fmt)


def _frame_cloudtrail(stream: _Stream, prefix: str, base: int, head: bytes) -> Iterator[Item]:
    """A CloudTrail log file: ``{"Records": [...]}`` split into one record per event.

    Records given one per line or as concatenated objects are framed like other JSON.
    """
    fmt = "cloudtrail"
    stripped = head.lstrip()
    if not (stripped.startswith(b"{") and b'"Records"' in stripped[:4096]):
        yield from _frame_json(stream, fmt, prefix, base, head)
        return
    parts: list[bytes] = []
    total = 0
    for chunk in stream:
        total += len(chunk)
        if total <= MAX_CLOUDTRAIL_FILE_BYTES:
            parts.append(chunk)
        elif parts:
            parts = []
    if total > MAX_CLOUDTRAIL_FILE_BYTES:
        reason = f"CloudTrail file of {total} bytes exceeds the {MAX_CLOUDTRAIL_FILE_BYTES} byte limit"
        yield _rejection(head[:KEEP_BYTES], reason, f"{prefix}:{base}", fmt)
        return
    data = b"".join(parts)
    if stream.error is not None:
        reason = f"read error, CloudTrail file incomplete ({len(data)} bytes read): {stream.error}"
        yield _rejection(data[:MAX_RECORD_BYTES], reason, f"{prefix}:{base}", fmt)
        return
    start = data.find(b"[", data.find(b'"Records"'))
    prologue = data[:start].replace(b" ", b"").replace(b"\n", b"").replace(b"\r", b"").replace(b"\t", b"")
    if start < 0 or prologue != b'{"Records":':
        yield from _cloudtrail_by_decoding(data, prefix, base)
        return
    splitter = JsonValueSplitter(MAX_RECORD_BYTES, base + start)
    spans = splitter.feed(data[start:])
    spans.extend(splitter.close())
    for span in spans:
        if span.error is None:
            yield RawRecord(span.payload, fmt, f"{prefix}:{span.offset}")
        elif span.payload.strip() != b"}":  # the wrapper's closing brace is not a record
            yield _rejection(span.payload, f"CloudTrail file: {span.error}", f"{prefix}:{span.offset}", fmt)


def _cloudtrail_by_decoding(data: bytes, prefix: str, base: int) -> Iterator[Item]:
    """Fallback for a Records file with other keys first: decode it and re-encode each record."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield _rejection(
            data[:MAX_RECORD_BYTES],
            f"CloudTrail file is not valid JSON: {exc}",
            f"{prefix}:{base}",
            "cloudtrail",
        )
        return
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        yield _rejection(
            data[:MAX_RECORD_BYTES],
            "CloudTrail file without a Records list",
            f"{prefix}:{base}",
            "cloudtrail",
        )
        return
    for i, record in enumerate(records):
        yield RawRecord(orjson.dumps(record), "cloudtrail", f"{prefix}#record={i}")


def _json_lines_layout(head: bytes) -> bool:
    """True when the head reads as JSON lines (most of its first complete lines parse alone)."""
    text = head.lstrip()
    if not text.startswith(b"{"):
        return False
    lines = [ln for ln in text.split(b"\n", 16)[:-1] if ln.strip()][:8] or [text]
    good = 0
    for line in lines:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        good += 1
    return good * 2 > len(lines)


def _frame_json(stream: _Stream, fmt: str, prefix: str, base: int, head: bytes) -> Iterator[Item]:
    if _json_lines_layout(head):
        return _frame_lines(stream, fmt, prefix, base, per_line=False)
    return _frame_json_values(stream, fmt, prefix, base)


def _evtx_header(header: bytes) -> tuple[int, int]:
    """(declared chunk count, next record id) from an EVTX file header, (0, 0) if unreadable."""
    if len(header) < 44 or not header.startswith(EVTX_MAGIC):
        return 0, 0
    next_record = struct.unpack_from("<Q", header, 24)[0]
    chunks = struct.unpack_from("<H", header, 42)[0]
    return chunks, next_record


def _frame_evtx(target: str | IO[bytes], size: int, header: bytes, prefix: str, progress: _Progress) -> Iterator[Item]:
    """EVTX records as their JSON rendering; unreadable and truncated parts become rejections."""
    import evtx  # the Rust parser; imported here so text-only imports do not load it

    fmt = "evtx"
    declared_chunks, next_record = _evtx_header(header)
    try:
        parser = evtx.PyEvtxParser(target)
        records = parser.records_json()
    except Exception as exc:  # the library raises OSError/RuntimeError variants for bad files
        yield _rejection(header[:KEEP_BYTES], f"unreadable EVTX file: {exc}", f"{prefix}:0", fmt)
        return
    first_id = 0
    count = 0
    failures = 0
    last_id = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except Exception as exc:  # one corrupt chunk or record costs its records, not the file
            failures += 1
            yield _rejection(b"", f"unreadable EVTX record(s): {exc}", f"{prefix}#record={last_id + 1}", fmt)
            if failures >= MAX_EVTX_ERRORS:
                yield _rejection(b"", f"EVTX file abandoned after {failures} unreadable records", prefix, fmt)
                break
            continue
        last_id = rec["event_record_id"]
        yield RawRecord(rec["data"].encode("utf-8", "surrogatepass"), fmt, f"{prefix}#record={last_id}")
        count += 1
        if count == 1:
            first_id = last_id
        elif count % 1024 == 0 and next_record > first_id:
            done = size * (last_id - first_id) // (next_record - first_id)
            progress.advance(done - progress.reported)
    body = max(0, size - _EVTX_HEADER)
    full_chunks, partial = divmod(body, _EVTX_CHUNK)
    if partial or declared_chunks > full_chunks + (1 if partial else 0):
        reason = (
            f"truncated EVTX file: {size} bytes hold {full_chunks} complete chunks"
            + (f" and {partial} of {_EVTX_CHUNK} bytes of one more" if partial else "")
            + (f"; the header declares {declared_chunks} chunks" if declared_chunks else "")
            + "; records in the missing part cannot be read"
        )
        yield _rejection(b"", reason, f"{prefix}:{_EVTX_HEADER + full_chunks * _EVTX_CHUNK}", fmt)


# --------------------------------------------------------------------------- dispatch


def _spool(stream: _Stream) -> tuple[IO[bytes], int]:
    """Copy a stream to an anonymous temporary file (for formats that need random access)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (returned open; callers close it)
    size = 0
    for chunk in stream:
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    return spool, size


def _frame_text(stream: _Stream, fmt: str | None, display: str, base: int, head: bytes) -> Iterator[Item]:
    """Detect (unless forced) and frame a decoded text stream."""
    detected = fmt or detect_format(head, display)
    if detected is None:
        binary = looks_binary(head)
        reason = (
            "binary content: not a known log format" if binary else "unknown format: no parser recognises this content"
        )
        yield _rejection(head[:KEEP_BYTES], reason, f"{display}:{base}", None)
        return  # refused as a whole: the rest is not read (progress is completed per source)
    if detected == "zeek_tsv":
        yield from _frame_zeek_tsv(stream, display, base)
    elif detected == "cloudtrail":
        yield from _frame_cloudtrail(stream, display, base, head)
    elif detected in JSON_FORMATS:
        yield from _frame_json(stream, detected, display, base, head)
    elif detected == "evtx":
        yield _rejection(head[:KEEP_BYTES], "not an EVTX file (no ElfFile signature)", f"{display}:{base}", "evtx")
    else:
        per_line = fmt is None and detected in LINE_DETECTED_FORMATS
        yield from _frame_lines(stream, detected, display, base, per_line)


def _read_stream(stream: _Stream, display: str, fmt: str | None, depth: int, progress: _Progress) -> Iterator[Item]:
    """Frame one (possibly compressed or archived) byte stream named ``display``."""
    head = stream.head(HEAD_BYTES)
    if not head:
        if stream.error is not None:
            yield _rejection(b"", f"unreadable: {stream.error}", display, fmt)
        return  # an empty file holds no records
    if head.startswith(_GZIP_MAGIC):
        if depth >= MAX_ARCHIVE_DEPTH:
            yield _rejection(head[:KEEP_BYTES], f"archive nested deeper than {MAX_ARCHIVE_DEPTH} levels", display, fmt)
            return
        yield from _read_stream(_Stream(_gunzip(stream.raw())), display, fmt, depth + 1, progress)
        return
    if head.startswith(_ZIP_MAGICS):
        if depth >= MAX_ARCHIVE_DEPTH:
            yield _rejection(head[:KEEP_BYTES], f"archive nested deeper than {MAX_ARCHIVE_DEPTH} levels", display, fmt)
            return
        spool, _size = _spool(stream)
        with spool:
            if stream.error is not None:
                yield _rejection(head[:KEEP_BYTES], f"unreadable zip archive: {stream.error}", display, fmt)
                return
            yield from _read_zip(spool, display, fmt, depth + 1, progress)
        return
    if head.startswith(EVTX_MAGIC) and fmt in (None, "evtx"):
        spool, size = _spool(stream)
        with spool:
            if stream.error is not None:
                yield _rejection(
                    b"",
                    f"read error, EVTX file incomplete ({size} bytes read): {stream.error}",
                    display,
                    "evtx",
                )
            yield from _frame_evtx(spool, size, head[:_EVTX_HEADER], display, _Progress(None, 0))
        return
    if fmt == "evtx":
        yield from _frame_text(stream, fmt, display, 0, head)
        return
    # text: settle the encoding first
    base = 0
    if head.startswith(_UTF8_BOM):
        stream = _Stream(_skip_prefix(stream.raw(), 3))
        base = 3
        head = head[3:]
    else:
        encoding = utf16_encoding(head)
        if encoding is not None:
            skip = 2 if head[:2] in (b"\xff\xfe", b"\xfe\xff") else 0
            stream = _Stream(_transcode(stream.raw(), encoding, skip))
            head = stream.head(HEAD_BYTES)
    yield from _frame_text(stream, fmt, display, base, head)


def _read_zip(fileobj: IO[bytes], display: str, fmt: str | None, depth: int, progress: _Progress) -> Iterator[Item]:
    """Every member of a zip archive, detected on its own (origin ``archive!member``)."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        fileobj.seek(0)
        yield _rejection(fileobj.read(KEEP_BYTES), f"unreadable zip archive: {_describe(exc)}", display, fmt)
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            member = f"{display}!{info.filename}"
            try:
                handle = archive.open(info)
            except Exception as exc:  # encrypted, unsupported compression, bad header
                yield _rejection(b"", f"unreadable archive member: {_describe(exc)}", member, fmt)
                continue
            with handle:
                yield from _read_stream(_Stream(_read_blocks(handle.read)), member, fmt, depth, progress)


def _read_source(source: SourceFile, fmt: str | None, on_progress: Callable[[int], None] | None) -> Iterator[Item]:
    progress = _Progress(on_progress, source.size)
    display = str(source.path)
    try:
        handle = open(source.path, "rb", buffering=0)  # noqa: SIM115  (closed below, also on error)
    except OSError as exc:
        yield _rejection(b"", f"unreadable file: {_describe(exc)}", display, fmt)
        progress.finish()
        return
    try:
        magic = handle.read(8)
        handle.seek(0)
        if magic.startswith(_ZIP_MAGICS):
            yield from _read_zip(_CountingFile(handle, progress), display, fmt, 1, progress)
        elif magic.startswith(EVTX_MAGIC) and fmt in (None, "evtx"):
            header = handle.read(_EVTX_HEADER)
            yield from _frame_evtx(display, os.fstat(handle.fileno()).st_size, header, display, progress)
        else:
            yield from _read_stream(_Stream(_read_blocks(handle.read, progress)), display, fmt, 0, progress)
    except OSError as exc:
        yield _rejection(b"", f"unreadable file: {_describe(exc)}", display, fmt)
    finally:
        handle.close()
        progress.finish()


class _CountingFile:
    """A seekable file wrapper that reports bytes read as progress (for zip archives)."""

    def __init__(self, handle: Any, progress: _Progress) -> None:
        self._h = handle
        self._progress = progress
        self.name = getattr(handle, "name", None)

    def read(self, n: int = -1) -> bytes:
        data = self._h.read(n)
        self._progress.advance(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._h.seek(offset, whence)

    def tell(self) -> int:
        return self._h.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        """Closing is left to the owner of the wrapped file."""


def read_sources(
    sources: Iterable[SourceFile],
    format: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[RawRecord | Rejection]:
    """Stream every record of ``sources`` as RawRecord, and what cannot be framed as Rejection.

    ``format`` forces one parser for every file instead of detecting it per file (and per
    archive member).  ``on_progress(n)`` is called with the number of bytes consumed from
    disk as reading advances; over a whole source it adds up to its planned size.
    """
    for source in sources:
        yield from _read_source(source, format, on_progress)
