"""Malformed and hostile input through the real pipeline: nothing crashes, nothing is lost, all is replayable."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import orjson
import pytest

from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import RawRecord, Rejection, TenantInfo
from openmdr.normalize.base import MAX_RECORD_BYTES
from openmdr.runtime import Platform
from openmdr.store.state import INLINE_PAYLOAD_BYTES
from tests.ingest.test_files import _two_chunk_evtx


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    p = Platform.from_data_dir(tmp_path / "data")
    p.state.create_tenant(TenantInfo(name="acme", networks=("10.0.0.0/8",)), actor="test")
    yield p
    p.close()


def _good(i: int) -> bytes:
    return orjson.dumps({"@timestamp": f"2026-03-02T10:{i // 60:02d}:{i % 60:02d}Z", "host": "ws-1", "n": i})


def _nested(depth: int) -> bytes:
    return b'{"@timestamp": "2026-03-02T10:00:00Z", "x": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def _zip_nest(payload: bytes, depth: int) -> bytes:
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"level{level}.zip" if level else "inner.jsonl", payload)
        payload = buf.getvalue()
    return payload


def _write_corpus(root: Path, shared_root: Path) -> dict[str, int]:
    """Write every kind of bad input next to good records; return the good record count per file."""
    root.mkdir()
    good: dict[str, int] = {}
    lines = [_good(i) for i in range(30)]
    lines[2] = b'{"@timestamp": "2026-03-02T10:00:00Z", "cut": '  # truncated
    lines[4] = b'{"@timestamp": "2026-03-02T10:00:00Z", "latin1": "caf\xe9"}'  # wrong encoding
    lines[6] = _nested(5000)  # beyond the JSON decoder's own limit
    lines[8] = _nested(70)  # deeper than MAX_NESTING (64): refused by the nesting check
    lines[10] = b'{"@timestamp": "2026-03-02T10:00:00Z", "big": "' + b"A" * (MAX_RECORD_BYTES + 5) + b'"}'  # oversized
    lines[12] = b'{"@timestamp": "2026-03-02T10:00:00Z", "huge": "' + b"B" * 900_000 + b'"}'  # huge but allowed
    lines[14] = b"[1, 2, 3]"  # not an object
    lines[16] = b'{"no": "time"}'
    (root / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    good["mixed.jsonl"] = 30 - 7
    (root / "noise.bin").write_bytes(os.urandom(20_000))  # binary
    (root / "prose.txt").write_text("Dear team,\nplease find the logs attached.\nRegards\n")  # unknown format
    cut = gzip.compress(b"\n".join(_good(100 + i) for i in range(500)) + b"\n")
    (root / "cut.jsonl.gz").write_bytes(cut[: len(cut) // 2])  # truncated gzip
    two_chunks, _n = _two_chunk_evtx(shared_root)
    (root / "cut.evtx").write_bytes(two_chunks[: 4096 + 65536 + 20_000])  # truncated EVTX: one chunk readable
    (root / "utf16.jsonl").write_bytes(b"\n".join(_good(600 + i) for i in range(10)).decode().encode("utf-16"))
    good["utf16.jsonl"] = 10
    (root / "bomb.zip").write_bytes(_zip_nest(b"\n".join(_good(700 + i) for i in range(5)), 6))  # nested archives
    syslog = [b"<38>Mar  2 10:00:01 h sshd[1]: Invalid user a from 192.0.2.1 port 1",
              b"<999>Mar  2 10:00:01 h sshd[1]: bad priority", b"<13>Feb 30 10:00:01 h p: impossible date",
              b"<13>Mar  2 10:00:02 h p: " + b"\xff\xfe\xfd"]  # fmt: skip
    (root / "auth.log").write_bytes(b"\n".join(syslog) + b"\n")
    good["auth.log"] = 1
    (root / "fw.cef").write_bytes(b"CEF:0|V|P|1|42|n|5|rt=1772445601000 src=10.0.0.1\nCEF:0|V|P\n")
    good["fw.cef"] = 1
    header = (shared_root / "datasets" / "zeek" / "006-zeek-scenario-ssh" / "ssh.log").read_bytes()
    data = [ln for ln in header.split(b"\n") if ln and not ln.startswith(b"#")]
    head = b"\n".join(ln for ln in header.split(b"\n") if ln.startswith(b"#") and not ln.startswith(b"#close"))
    (root / "ssh.log").write_bytes(head + b"\n" + b"\n".join(data) + b"\nnot\tenough\tcolumns\n")
    good["ssh.log"] = len(data)
    return good


def test_malformed_corpus_every_record_accounted_for_and_kept(
    platform: Platform, shared_root: Path, tmp_path: Path
) -> None:
    good = _write_corpus(tmp_path / "corpus", shared_root)
    items = list(read_sources(plan_sources([tmp_path / "corpus"])))
    framed = sum(isinstance(i, RawRecord) for i in items)
    unframed = sum(isinstance(i, Rejection) for i in items)

    report = platform.pipeline.submit("acme", iter(items))
    assert report.received == framed + unframed
    assert report.received == report.stored + report.duplicates + report.rejected
    assert report.duplicates == 0
    letters = platform.state.list_dead_letters(tenant="acme", limit=10_000)
    assert len(letters) == report.rejected
    assert platform.lake.counts()["acme"] == report.stored
    # every good record of the text files landed; the truncated gzip and EVTX gave what was readable
    by_file = platform.lake.query(
        "acme", "SELECT regexp_extract(origin, '/corpus/([^:#!]+)', 1) AS f, count(*) AS n FROM events GROUP BY 1"
    ).to_pylist()
    stored = {r["f"]: r["n"] for r in by_file}
    for name, n in good.items():
        assert stored.get(name) == n, (name, stored)
    assert 0 < stored["cut.jsonl.gz"] < 500 and stored["cut.evtx"] > 0

    reasons = " | ".join(d.reason for d in letters)
    for expected in ("truncated JSON", "not valid UTF-8", "nesting deeper than", "oversized record",
                     "expected a JSON object", "no usable timestamp", "binary content", "unknown format",
                     "truncated gzip", "truncated EVTX", "archive nested deeper", "priority 999",
                     "impossible syslog date", "of 6", "columns"):  # fmt: skip
        assert expected in reasons, expected
    for d in letters:  # origin names the file and where in it
        assert "/corpus/" in d.origin and d.reason
    oversized = next(d for d in letters if d.reason.startswith("oversized record"))
    kept = platform.state.get_dead_letter_payload(oversized.id, tenant="acme")
    assert len(kept) == MAX_RECORD_BYTES > INLINE_PAYLOAD_BYTES and kept.startswith(b'{"@timestamp"')
    huge = platform.lake.query("acme", "SELECT length(fields) AS n FROM events WHERE fields LIKE '%\"huge\"%'")
    assert huge.column("n").to_pylist()[0] > 900_000

    # replay with the same parsers: nothing recovers, nothing is lost, each letter counts the attempt
    replay = platform.pipeline.replay(tenant="acme")
    assert replay.attempted == len(letters) and replay.recovered == 0
    assert replay.still_failing + replay.skipped == len(letters)
    after = platform.state.list_dead_letters(tenant="acme", limit=10_000)
    assert len(after) == len(letters) and platform.lake.counts()["acme"] == report.stored
    replayable = [d for d in after if d.format]
    assert replayable and all(d.replay_count == 1 for d in replayable)


def test_reimport_of_the_corpus_duplicates_the_good_and_dead_letters_the_bad_again(
    platform: Platform, shared_root: Path, tmp_path: Path
) -> None:
    _write_corpus(tmp_path / "corpus", shared_root)
    first = platform.pipeline.submit("acme", read_sources(plan_sources([tmp_path / "corpus"])))
    again = platform.pipeline.submit("acme", read_sources(plan_sources([tmp_path / "corpus"])))
    assert again.received == first.received and again.stored == 0
    assert again.duplicates == first.stored and again.rejected == first.rejected
    assert len(platform.state.list_dead_letters(tenant="acme", limit=10_000)) == 2 * first.rejected


def test_numbers_beyond_the_lake_columns_never_sink_a_batch(platform: Platform) -> None:
    """Huge integers and non-finite numbers: refused with a reason or kept in fields only, never a crash."""
    from openmdr.normalize.parsers.zeek import read_zeek_header

    zeek = read_zeek_header([b"#separator \\x09", b"#fields\tts\torig_bytes\tduration",
                             b"#types\ttime\tcount\tinterval"])  # fmt: skip
    records = [
        RawRecord(b"CEF:0|V|P|1|9|n|3|rt=1772445601000 in=9999999999999999999 spid=99999999999999999999", "cef", "a:0"),
        RawRecord(b"1772445601.0\t99999999999999999999999\t1", "zeek_tsv", "b:0", zeek),
        RawRecord(b"1772445601.0\t18446744073709551615\tinf", "zeek_tsv", "b:1", zeek),
        RawRecord(b"1772445601.0\t18446744073709551615\t2.5", "zeek_tsv", "b:2", zeek),
        RawRecord(b'{"@timestamp": "2026-03-02T10:00:00Z", "pid": 9999999999999999999}', "json", "c:0"),
        RawRecord(b'{"@timestamp": "2026-03-02T10:00:00Z", "pid": 99999999999999999999999}', "json", "c:1"),  # a float
        RawRecord(b"<13>1 2026-03-02T10:00:00Z h app 99999999999999999999999999 - - x", "syslog", "d:0"),
        RawRecord(b'{"@timestamp": 1e300}', "json", "c:2"),
    ]
    report = platform.pipeline.submit("acme", records)
    assert report.balanced and (report.stored, report.rejected) == (5, 3), report.rejection_reasons
    rows = platform.lake.query("acme", "SELECT bytes_in, process_pid, fields FROM events ORDER BY origin").to_pylist()
    assert rows[0]["bytes_in"] is None and rows[0]["process_pid"] is None  # the value stays in fields
    assert orjson.loads(rows[1]["fields"])["orig_bytes"] == 18446744073709551615
    assert set(report.rejection_reasons) == {
        "zeek_tsv: Zeek column orig_bytes (count)", "zeek_tsv: Zeek column duration (interval)",
        "json: no usable timestamp (@timestamp",
    }  # fmt: skip
