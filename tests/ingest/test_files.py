"""File import: planning, detection per file and member, framing, and every malformed case.

Every test checks the accounting: what went in (lines, objects, EVTX records) equals
records + rejections, and origins point at the bytes they name.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import evtx
import orjson
import pytest

from openmdr.ingest import files as files_module
from openmdr.ingest.files import SourceFile, plan_sources, read_sources
from openmdr.models import RawRecord, Rejection
from openmdr.normalize.base import MAX_RECORD_BYTES

Item = RawRecord | Rejection


def _read(*paths: Path | str, fmt: str | None = None) -> list[Item]:
    return list(read_sources(plan_sources(list(paths)), fmt))


def _records(items: list[Item]) -> list[RawRecord]:
    return [i for i in items if isinstance(i, RawRecord)]


def _rejections(items: list[Item]) -> list[Rejection]:
    return [i for i in items if isinstance(i, Rejection)]


def _offset(origin: str) -> int:
    return int(origin.rsplit(":", 1)[1])


def _line(i: int, **extra: object) -> bytes:
    return orjson.dumps({"@timestamp": f"2026-03-02T10:00:{i % 60:02d}Z", "host": f"ws-{i % 5}", "n": i, **extra})


def _json_objects(text: str) -> list[object]:
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)


# ---------------------------------------------------------------------------- planning


def test_plan_expands_dirs_recursively_sorted_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for rel in ["b/2.log", "a/deep/1.log", "a/0.log", ".git/config", "a/.hidden.log", "z.jsonl"]:
        (tmp_path / rel).write_bytes(b"x" * len(rel))
    planned = plan_sources([tmp_path])
    names = [p.path.relative_to(tmp_path).as_posix() for p in planned]
    assert names == ["z.jsonl", "a/0.log", "a/deep/1.log", "b/2.log"]
    assert [p.size for p in planned] == [7, 7, 12, 7]


def test_plan_globs_duplicates_and_missing_paths(tmp_path: Path) -> None:
    for name in ["x1.json", "x2.json", "y.log"]:
        (tmp_path / name).write_bytes(b"{}")
    planned = plan_sources([tmp_path / "x*.json", tmp_path / "x1.json", str(tmp_path / "**" / "*.log")])
    assert [p.path.name for p in planned] == ["x1.json", "x2.json", "y.log"]
    assert plan_sources([tmp_path / "nothing-*.json"]) == []
    missing = plan_sources([tmp_path / "typo.json"])
    assert missing == [SourceFile(tmp_path / "typo.json", 0)]
    items = list(read_sources(missing))
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert "No such file" in items[0].reason and items[0].origin == str(tmp_path / "typo.json")


# ---------------------------------------------------------------------------- real captures


def test_sigma_regression_json_and_evtx_give_the_same_records(shared_root: Path) -> None:
    root = shared_root / "sigma" / "regression_data"
    pairs = [(j, j.with_suffix(".evtx")) for j in sorted(root.rglob("*.json")) if j.with_suffix(".evtx").exists()]
    assert len(pairs) > 50
    for js, ev in pairs:
        from_json, from_evtx = _read(js), _read(ev)
        expected = _json_objects(js.read_text(encoding="utf-8"))
        assert not _rejections(from_json) and not _rejections(from_evtx), js
        assert [orjson.loads(r.payload) for r in from_json] == expected, js
        assert {r.format for r in from_json} == {"winevent_json"}
        assert {r.format for r in from_evtx} == {"evtx"}
        ids = [rec["event_record_id"] for rec in evtx.PyEvtxParser(str(ev)).records_json()]
        assert [r.origin for r in from_evtx] == [f"{ev}#record={i}" for i in ids]
        assert len(from_evtx) == len(from_json), js
        raw = js.read_bytes()
        for r in from_json:
            off = _offset(r.origin)
            assert raw[off : off + len(r.payload)] == r.payload


def test_otrf_zip_members_with_offsets(shared_root: Path) -> None:
    for path in sorted((shared_root / "datasets" / "otrf").glob("*.zip")):
        items = _read(path)
        assert not _rejections(items), path
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            content = zf.read(name)
        assert len(items) == sum(1 for line in content.split(b"\n") if line.strip())
        assert {r.format for r in _records(items)} == {"winlogbeat_json"}
        for r in items[:: max(1, len(items) // 50)]:
            prefix, off = r.origin.rsplit(":", 1)
            assert prefix == f"{path}!{name}"
            assert content[int(off) : int(off) + len(r.payload)] == r.payload


def test_suricata_and_zeek_json(shared_root: Path) -> None:
    eve = shared_root / "datasets" / "suricata" / "slips-test6-malicious.suricata.json"
    items = _read(eve)
    assert len(items) == sum(1 for line in eve.read_bytes().splitlines() if line.strip())
    assert Counter(r.format for r in items) == {"suricata_eve": len(items)}
    zeek_json = shared_root / "datasets" / "zeek" / "002-zeek-scenario-port-scanning" / "conn.log"
    items = _read(zeek_json)
    assert len(items) == len(zeek_json.read_bytes().splitlines())
    assert {r.format for r in _records(items)} == {"zeek_json"}


def test_zeek_tsv_context_from_header(shared_root: Path) -> None:
    log = shared_root / "datasets" / "zeek" / "010-zeek-mixed" / "data" / "conn.log.labeled"
    items = _read(log)
    data_lines = [ln for ln in log.read_bytes().split(b"\n") if ln.strip() and not ln.startswith(b"#")]
    assert not _rejections(items)
    assert len(items) == len(data_lines)
    ctx = items[0].context
    assert ctx is not None and ctx["path"] == "conn"
    assert list(ctx["fields"])[:3] == ["ts", "uid", "id.orig_h"] and "detailedlabel" in ctx["fields"]
    assert len(ctx["types"]) == len(ctx["fields"])
    assert all(r.context is ctx for r in items)  # one shared context per header, not one per line


def test_zeek_tsv_header_change_mid_file_updates_context(shared_root: Path, tmp_path: Path) -> None:
    base = shared_root / "datasets" / "zeek" / "005-zeek-scenario-malicious"
    conn, dns = (base / "conn.log").read_bytes(), (base / "dns.log").read_bytes()
    joined = tmp_path / "rotated.log"
    joined.write_bytes(conn + dns)
    items = _read(joined)
    assert not _rejections(items)
    paths = Counter(r.context["path"] for r in _records(items))
    count = lambda b: sum(1 for ln in b.split(b"\n") if ln.strip() and not ln.startswith(b"#"))  # noqa: E731
    assert paths == {"conn": count(conn), "dns": count(dns)}
    first_dns = next(r for r in items if r.context["path"] == "dns")
    assert joined.read_bytes()[_offset(first_dns.origin) :].startswith(first_dns.payload)


def test_zeek_tsv_data_before_any_header_is_rejected(tmp_path: Path, shared_root: Path) -> None:
    log = (shared_root / "datasets" / "zeek" / "006-zeek-scenario-ssh" / "ssh.log").read_bytes()
    header = b"".join(ln + b"\n" for ln in log.split(b"\n") if ln.startswith(b"#") and not ln.startswith(b"#close"))
    data = [ln for ln in log.split(b"\n") if ln.strip() and not ln.startswith(b"#")]
    f = tmp_path / "odd.log"
    f.write_bytes(b"#separator \\x09\n" + data[0] + b"\n" + header + b"\n".join(data[1:]) + b"\n")
    items = _read(f, fmt="zeek_tsv")
    assert len(items) == len(data)
    (bad,) = _rejections(items)
    assert "before any #fields" in bad.reason and bad.payload == data[0]


# ---------------------------------------------------------------------------- compression and archives


def test_gzip_plain_multimember_and_cloudtrail_json_gz(tmp_path: Path) -> None:
    lines = [_line(i) for i in range(300)]
    f = tmp_path / "app.jsonl.gz"
    f.write_bytes(gzip.compress(b"\n".join(lines[:100]) + b"\n") + gzip.compress(b"\n".join(lines[100:]) + b"\n"))
    items = _read(f)
    assert [r.payload for r in items] == lines
    assert _offset(items[100].origin) == sum(len(x) + 1 for x in lines[:100])

    event = {"eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
             "awsRegion": "eu-west-1", "eventTime": "2026-03-02T10:00:00Z"}  # fmt: skip
    trail = tmp_path / "123456789012_CloudTrail_eu-west-1_20260302T1000Z_abc.json.gz"
    doc = {"Records": [{**event, "eventID": f"id-{i}"} for i in range(25)]}
    trail.write_bytes(gzip.compress(json.dumps(doc, indent=2).encode()))
    items = _read(trail)
    assert [orjson.loads(r.payload) for r in items] == doc["Records"]
    assert {r.format for r in items} == {"cloudtrail"}
    raw = gzip.decompress(trail.read_bytes())
    assert all(raw[_offset(r.origin) :].startswith(r.payload) for r in items)


def test_truncated_gzip_yields_records_read_so_far_and_one_rejection(tmp_path: Path) -> None:
    lines = [_line(i, pad="x" * 200) for i in range(2000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(whole[: len(whole) // 2])
    items = _read(f)
    records, rejections = _records(items), _rejections(items)
    assert 0 < len(records) < len(lines)
    assert [r.payload for r in records] == lines[: len(records)]
    (rej,) = rejections
    assert "truncated gzip" in rej.reason and rej.origin.startswith(f"{f}:")
    assert _offset(rej.origin) == sum(len(x) + 1 for x in lines[: len(records)])
    assert lines[len(records)].startswith(rej.payload)  # the unfinished line is kept


def test_corrupt_gzip_is_a_rejection_with_the_zlib_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.gz"
    f.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    items = _read(f)
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert "rror" in items[0].reason and str(f) in items[0].origin


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_zip_members_are_detected_one_by_one(tmp_path: Path, shared_root: Path) -> None:
    evtx = next((shared_root / "sigma" / "regression_data").rglob("*.evtx")).read_bytes()
    ndjson = b"\n".join(_line(i) for i in range(10)) + b"\n"
    syslog = b"<38>Mar  2 10:00:01 bastion sshd[1]: Failed password for root\n" * 3
    inner = tmp_path / "inner.zip"
    _zip(inner, {"deep.jsonl": ndjson})
    f = tmp_path / "bundle.zip"
    members = {
        "logs/app.jsonl": ndjson,
        "logs/app2.jsonl.gz": gzip.compress(ndjson),
        "sys.log": syslog,
        "host.evtx": evtx,
        "nested.zip": inner.read_bytes(),
        "empty.txt": b"",
        "blob.bin": os.urandom(500),
        "dir/": b"",
    }
    _zip(f, members)
    items = _read(f)
    by_member = Counter(i.origin.split("!", 1)[1].split(":")[0].split("#")[0] for i in items)
    assert by_member == {"logs/app.jsonl": 10, "logs/app2.jsonl.gz": 10, "sys.log": 3, "host.evtx": 1,
                         "nested.zip!deep.jsonl": 10, "blob.bin": 1}  # fmt: skip
    formats = Counter(r.format for r in _records(items))
    assert formats == {"json": 30, "syslog": 3, "evtx": 1}
    (blob,) = _rejections(items)
    assert blob.reason.startswith("binary content") and blob.origin == f"{f}!blob.bin:0"


def test_broken_zip_is_a_rejection(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    _zip(good, {"a.jsonl": b"\n".join(_line(i) for i in range(100))})
    f = tmp_path / "broken.zip"
    f.write_bytes(good.read_bytes()[:-30])  # the central directory is cut off
    items = _read(f)
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert "zip" in items[0].reason.lower() and items[0].origin == str(f)


def test_zip_member_with_bad_crc_keeps_what_was_read(tmp_path: Path) -> None:
    f = tmp_path / "crc.zip"
    payload = b"\n".join(_line(i) for i in range(50)) + b"\n"
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.jsonl", payload)
    raw = bytearray(f.read_bytes())
    at = raw.index(b'"n":7}')
    raw[at + 5] = ord("8")  # same length, different CRC
    f.write_bytes(bytes(raw))
    items = _read(f)
    assert len(_rejections(items)) == 1
    assert "CRC" in _rejections(items)[0].reason


# ---------------------------------------------------------------------------- encodings and line ends


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_transcoded(tmp_path: Path, encoding: str) -> None:
    lines = [_line(i, user="Jürgen ✓") for i in range(20)]
    text = "\r\n".join(x.decode() for x in lines) + "\r\n"
    f = tmp_path / "export.json"
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    f.write_bytes(bom + text.encode(encoding))
    items = _read(f)
    assert [r.payload for r in items] == lines
    assert {r.format for r in items} == {"json"}


def test_utf8_bom_and_crlf_offsets(tmp_path: Path) -> None:
    lines = [_line(i) for i in range(5)]
    raw = b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n\r\n"
    f = tmp_path / "bom.jsonl"
    f.write_bytes(raw)
    items = _read(f)
    assert [r.payload for r in items] == lines
    assert _offset(items[0].origin) == 3
    assert all(raw[_offset(r.origin) :].startswith(r.payload) for r in items)


def test_syslog_file_with_cef_and_leef_lines_gets_per_line_formats(tmp_path: Path) -> None:
    f = tmp_path / "messages"
    f.write_bytes(
        b"<38>Mar  2 10:00:01 bastion sshd[4121]: Failed password for root from 203.0.113.50\n"
        b"<134>Mar  2 10:00:02 fw01 CEF:0|Acme|EdgeWall|4.2|100|Blocked|7|src=203.0.113.9\n"
        b"<13>Mar  2 10:00:03 gate LEEF:2.0|Acme|Gate|2.1|login|^|src=198.51.100.8\n"
        b"<38>Mar  2 10:00:04 bastion sshd[4121]: Accepted password for ops"
    )
    assert [r.format for r in _read(f)] == ["syslog", "cef", "leef", "syslog"]


# ---------------------------------------------------------------------------- malformed and hostile input


def test_mixed_bad_lines_are_each_accounted_for(tmp_path: Path) -> None:
    good = [_line(i) for i in range(30)]
    bad = [
        b'{"@timestamp": "2026-03-02T10:00:00Z", "msg": "\xff\xfe not utf-8"}',
        b'{"truncated": ',
        b"[" * 5000 + b"]" * 5000,
    ]
    huge = b'{"big": "' + b"A" * (MAX_RECORD_BYTES + 10) + b'"}'
    lines = good[:10] + bad + good[10:20] + [huge] + good[20:]
    raw = b"\n".join(lines) + b"\n"
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(raw)
    items = _read(f)
    assert len(items) == len(lines)  # count in == records + rejections
    (rej,) = _rejections(items)
    assert rej.reason == f"oversized record: {len(huge)} bytes > limit {MAX_RECORD_BYTES}"
    assert rej.payload == huge[:MAX_RECORD_BYTES]
    assert _offset(rej.origin) == raw.index(huge)
    assert [r.payload for r in _records(items)] == [x for x in lines if x is not huge]
    for r in _records(items):
        assert raw[_offset(r.origin) :].startswith(r.payload)


def test_oversized_last_line_without_newline_and_oversized_pretty_object(tmp_path: Path) -> None:
    f = tmp_path / "tail.jsonl"
    tail = b'{"x": "' + b"B" * (MAX_RECORD_BYTES * 3) + b'"}'
    f.write_bytes(_line(1) + b"\n" + tail)
    items = _read(f)
    assert isinstance(items[0], RawRecord) and isinstance(items[1], Rejection) and len(items) == 2
    assert str(len(tail)) in items[1].reason and len(items[1].payload) == MAX_RECORD_BYTES

    pretty = tmp_path / "pretty.json"
    big = json.dumps({"Event": {"System": {"EventID": 1}, "EventData": {"b": "C" * MAX_RECORD_BYTES}}}, indent=2)
    small = json.dumps({"Event": {"System": {"EventID": 2}, "EventData": {}}}, indent=2)
    pretty.write_text(small + "\n" + big + "\n" + small + "\n")
    items = _read(pretty)
    assert [type(i).__name__ for i in items] == ["RawRecord", "Rejection", "RawRecord"]
    assert items[1].reason.startswith("oversized record") and _offset(items[1].origin) == len(small) + 1


def test_concatenated_objects_with_garbage_and_a_cut_end(tmp_path: Path) -> None:
    obj = json.dumps({"Event": {"System": {"EventID": 4688}, "EventData": {"x": "}{"}}}, indent=2)
    raw = (obj + "\n-- exported by some tool --\n" + obj + "\n" + obj[:40]).encode()
    f = tmp_path / "export.json"
    f.write_bytes(raw)
    items = _read(f)
    kinds = [(type(i).__name__, _offset(i.origin)) for i in items]
    second = raw.index(b"{", len(obj) + 2)
    cut = raw.rindex(obj[:40].encode())
    assert kinds == [("RawRecord", 0), ("Rejection", len(obj) + 1), ("RawRecord", second), ("Rejection", cut)]
    assert "not JSON" in items[1].reason and "truncated" in items[3].reason


def test_binary_unknown_and_empty_files(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(200_000) + b"\x00" * 100)
    prose = tmp_path / "notes.txt"
    prose.write_bytes(b"Dear team,\nplease find the logs attached.\nRegards\n")
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    items = _read(blob, prose, empty)
    assert len(items) == 2
    assert items[0].reason.startswith("binary content") and len(items[0].payload) == 64 * 1024
    assert items[0].origin == f"{blob}:0"
    assert items[1].reason.startswith("unknown format") and items[1].payload == prose.read_bytes()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_a_rejection_with_the_os_error(tmp_path: Path) -> None:
    f = tmp_path / "secret.jsonl"
    f.write_bytes(_line(1))
    f.chmod(0)
    items = _read(f)
    assert len(items) == 1 and "Permission denied" in items[0].reason


def test_directory_given_as_a_file_is_a_rejection_with_the_os_error(tmp_path: Path) -> None:
    items = list(read_sources([SourceFile(tmp_path, 4096)]))
    assert len(items) == 1 and "Is a directory" in items[0].reason and items[0].origin == str(tmp_path)


def test_forced_format_applies_to_every_file(tmp_path: Path) -> None:
    f = tmp_path / "eve.json"
    f.write_bytes(b'{"event_type": "dns", "src_ip": "10.0.0.1", "timestamp": "2026-03-02T10:00:00Z"}\n')
    assert [r.format for r in _read(f)] == ["suricata_eve"]
    assert [r.format for r in _read(f, fmt="json")] == ["json"]


# ---------------------------------------------------------------------------- CloudTrail files


def _trail_event(i: int) -> dict:
    return {"eventVersion": "1.08", "eventTime": "2026-03-02T10:00:00Z", "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser", "awsRegion": "us-east-1", "eventID": f"e-{i}"}  # fmt: skip


def test_cloudtrail_compact_file_and_oversize_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"Records": [_trail_event(i) for i in range(40)]}
    f = tmp_path / "trail.json"
    f.write_bytes(orjson.dumps(doc))
    items = _read(f)
    assert [orjson.loads(r.payload) for r in items] == doc["Records"]
    assert all(f.read_bytes()[_offset(r.origin) :].startswith(r.payload) for r in items)

    monkeypatch.setattr(files_module, "MAX_CLOUDTRAIL_FILE_BYTES", 1000)
    items = _read(f)
    assert len(items) == 1 and "exceeds the 1000 byte limit" in items[0].reason


def test_cloudtrail_records_key_not_first_falls_back_to_decoding(tmp_path: Path) -> None:
    doc = {"Digest": "x", "Records": [_trail_event(i) for i in range(3)]}
    f = tmp_path / "odd-trail.json"
    f.write_bytes(orjson.dumps(doc))
    items = _read(f, fmt="cloudtrail")
    assert [orjson.loads(r.payload) for r in items] == doc["Records"]
    assert items[2].origin == f"{f}#record=2"


# ---------------------------------------------------------------------------- EVTX damage


def _two_chunk_evtx(shared_root: Path) -> tuple[bytes, int]:
    """An EVTX file of two chunks spliced from two regression samples (header fixed up)."""
    a, b = sorted((shared_root / "sigma" / "regression_data").rglob("*.evtx"))[:2]
    first, second = a.read_bytes(), b.read_bytes()
    header = bytearray(first[:4096])
    struct.pack_into("<H", header, 42, 2)
    struct.pack_into("<Q", header, 16, 1)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header) + first[4096 : 4096 + 65536] + second[4096 : 4096 + 65536], 2


def test_truncated_evtx_yields_readable_records_and_a_rejection(tmp_path: Path, shared_root: Path) -> None:
    data, n = _two_chunk_evtx(shared_root)
    whole = tmp_path / "whole.evtx"
    whole.write_bytes(data)
    assert len(_records(_read(whole))) == n and not _rejections(_read(whole))
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 65536 + 20_000])
    items = _read(cut)
    assert len(_records(items)) == 1
    (rej,) = _rejections(items)
    assert rej.reason.startswith("truncated EVTX file") and "declares 2 chunks" in rej.reason
    assert rej.origin == f"{cut}:{4096 + 65536}"


def test_corrupt_evtx_chunk_and_headerless_file(tmp_path: Path, shared_root: Path) -> None:
    data, _ = _two_chunk_evtx(shared_root)
    bad = bytearray(data)
    bad[4096 + 65536 + 512 : 4096 + 65536 + 1024] = b"\xff" * 512
    f = tmp_path / "corrupt.evtx"
    f.write_bytes(bytes(bad))
    items = _read(f)
    assert len(_records(items)) == 1
    assert [r.reason.split(":")[0] for r in _rejections(items)] == ["unreadable EVTX record(s)"]

    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"ElfFile\x00" + b"\x00" * 50)
    items = _read(junk)
    assert len(items) == 1 and items[0].reason.startswith("unreadable EVTX file")


def test_evtx_inside_gzip_is_spooled_and_read(tmp_path: Path, shared_root: Path) -> None:
    data, n = _two_chunk_evtx(shared_root)
    f = tmp_path / "host.evtx.gz"
    f.write_bytes(gzip.compress(data))
    items = _read(f)
    assert len(_records(items)) == n and items[0].origin.startswith(f"{f}#record=")


# ---------------------------------------------------------------------------- progress


def test_progress_adds_up_to_the_planned_sizes(tmp_path: Path, shared_root: Path) -> None:
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"\n".join(_line(i) for i in range(5000)))
    gz = tmp_path / "b.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zf = tmp_path / "c.zip"
    _zip(zf, {"x.jsonl": plain.read_bytes()})
    evtx = next((shared_root / "sigma" / "regression_data").rglob("*.evtx"))
    sources = plan_sources([plain, gz, zf, evtx, tmp_path / "missing.log"])
    calls: list[int] = []
    items = list(read_sources(sources, on_progress=calls.append))
    assert len(items) == 5000 * 3 + 1 + 1
    assert sum(calls) == sum(s.size for s in sources)
    assert all(c > 0 for c in calls)


def test_memory_stays_bounded_on_a_line_without_end(tmp_path: Path) -> None:
    f = tmp_path / "endless.jsonl"
    with f.open("wb") as out:
        out.write(_line(0) + b"\n{")
        for _ in range(40):  # 40 MiB without a newline
            out.write(b"Z" * (1 << 20))
        out.write(b"\n" + _line(1) + b"\n")
    items = _read(f)
    assert [type(i).__name__ for i in items] == ["RawRecord", "Rejection", "RawRecord"]
    assert items[1].reason == f"oversized record: {40 * (1 << 20) + 1} bytes > limit {MAX_RECORD_BYTES}"
    assert len(items[1].payload) == MAX_RECORD_BYTES


def test_stream_reader_reports_errors_instead_of_raising() -> None:
    def chunks():
        yield b'{"a": 1}\n{"b":'
        raise OSError(5, "Input/output error")

    stream = files_module._Stream(chunks())
    items = list(files_module._frame_lines(stream, "json", "dev", 0, per_line=False))
    assert isinstance(items[0], RawRecord) and isinstance(items[1], Rejection)
    assert "Input/output error" in items[1].reason and items[1].payload == b'{"b":'
    assert items[1].origin == "dev:9"
