"""Format detection on real captures and hand-written samples of every family."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import orjson
import pytest

from openmdr.ingest.detect import classify_json, detect_format, detect_message_format, looks_binary

HEAD = 64 * 1024


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD)


# ---------------------------------------------------------------------------- real files


def test_sigma_regression_json_and_evtx(shared_root: Path) -> None:
    root = shared_root / "sigma" / "regression_data"
    jsons = sorted(root.rglob("*.json"))
    evtxs = sorted(root.rglob("*.evtx"))
    assert len(jsons) > 50 and len(evtxs) > 50
    assert {detect_format(_head(p), p.name) for p in jsons} == {"winevent_json"}
    assert {detect_format(_head(p), p.name) for p in evtxs} == {"evtx"}


def test_otrf_zip_members_are_winlogbeat_json(shared_root: Path) -> None:
    zips = sorted((shared_root / "datasets" / "otrf").glob("*.zip"))
    assert zips
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                with zf.open(name) as member:
                    assert detect_format(member.read(HEAD), name) == "winlogbeat_json", f"{path.name}!{name}"


def test_zeek_tsv_and_zeek_json_logs(shared_root: Path) -> None:
    zeek = shared_root / "datasets" / "zeek"
    tsv = [p for p in sorted(zeek.rglob("*.log*")) if _head(p).startswith(b"#separator")]
    as_json = [p for p in sorted(zeek.rglob("*.log*")) if _head(p).startswith(b"{")]
    assert any(p.name.endswith(".labeled") for p in tsv) and len(tsv) >= 10
    assert as_json  # some captures were written by Zeek's JSON writer
    for p in tsv:
        assert detect_format(_head(p), p.name) == "zeek_tsv", p
    for p in as_json:
        assert detect_format(_head(p), p.name) == "zeek_json", p


def test_suricata_eve(shared_root: Path) -> None:
    path = shared_root / "datasets" / "suricata" / "slips-test6-malicious.suricata.json"
    assert detect_format(_head(path), path.name) == "suricata_eve"


# ---------------------------------------------------------------------------- hand-written samples

CEF = b"CEF:0|Acme|EdgeWall|4.2|100|Blocked inbound|7|src=203.0.113.9 dst=10.1.1.5 dpt=445 act=blocked"
LEEF1 = b"LEEF:1.0|Acme|Gate|2.1|login_fail|devTime=Mar 02 2026 10:00:00\tsrc=198.51.100.7\tusrName=bob"
LEEF2 = b"LEEF:2.0|Acme|Gate|2.1|login_ok|^|src=198.51.100.8^usrName=alice"
RFC3164 = b"<38>Mar  2 10:00:01 bastion sshd[4121]: Failed password for root from 203.0.113.50 port 52113 ssh2"
RFC5424 = b"<86>1 2026-03-02T10:00:02.120Z bastion sshd 4121 - - Accepted publickey for deploy from 10.1.2.3"
ISO_HOST = b"2026-03-02T10:00:03+01:00 fw01 kernel: DROP IN=eth0 SRC=203.0.113.4 DST=10.0.0.1"
BSD_NO_PRI = b"Mar 12 07:15:00 web01 nginx: upstream timed out"


def _lines(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_lines(CEF, CEF, CEF), "cef"),
        (_lines(b"<134>Mar  2 10:00:00 fw01 " + CEF, b"<134>Mar  2 10:00:01 fw01 " + CEF), "cef"),
        (_lines(LEEF1, LEEF2), "leef"),
        (_lines(b"<13>Mar  2 10:00:00 qradar-src " + LEEF1), "leef"),
        (_lines(RFC3164, RFC5424, ISO_HOST, BSD_NO_PRI), "syslog"),
        (_lines(ISO_HOST, ISO_HOST), "syslog"),
        (_lines(BSD_NO_PRI, BSD_NO_PRI), "syslog"),
        (b"\xef\xbb\xbf" + _lines(RFC5424, RFC5424), "syslog"),
        (_lines(b"just some words", b"and more words", b"nothing to see"), None),
        (b"", None),
        (b"   \n\n", None),
        (b"\x00\x01\x02\x03binary\x00\xff" * 50, None),
        (b"ElfFile\x00" + b"\x00" * 100, "evtx"),
        (b"#separator \\x09\n#set_separator\t,\n#fields\tts\tuid\n", "zeek_tsv"),
    ],
)
def test_text_families(content: bytes, expected: str | None) -> None:
    assert detect_format(content) == expected


def _ndjson(*objs: dict) -> bytes:
    return b"\n".join(orjson.dumps(o) for o in objs) + b"\n"


CLOUDTRAIL_EVENT = {
    "eventVersion": "1.08", "eventTime": "2026-03-02T10:00:00Z", "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.20",
    "userIdentity": {"type": "IAMUser", "userName": "ops"}, "eventID": "0c9f3d3e-1111-2222-3333-444455556666",
}  # fmt: skip
ECS_WINLOGBEAT = {
    "@timestamp": "2026-03-02T10:00:00.000Z", "host": {"name": "ws-7"},
    "winlog": {"channel": "Security", "event_id": 4625, "event_data": {"TargetUserName": "bob"}},
}  # fmt: skip
FLAT_WINLOGBEAT = {
    "Channel": "Security",
    "EventID": 4624,
    "Hostname": "dc1",
    "@timestamp": "2026-03-02T10:00:00Z",
}
EVE = {
    "timestamp": "2026-03-02T10:00:00.000000+0000",
    "flow_id": 7,
    "event_type": "dns",
    "src_ip": "10.0.0.2",
}
ZEEK_JSON = {"ts": 1772445600.1, "uid": "CAbc1", "id.orig_h": "10.0.0.2", "id.resp_h": "10.0.0.3"}
EVTX_JSON = {"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}, "EventData": {}}}
GENERIC = {"@timestamp": "2026-03-02T10:00:00Z", "host": "app-1", "src_ip": "10.0.0.9", "msg": "login"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (orjson.dumps({"Records": [CLOUDTRAIL_EVENT, CLOUDTRAIL_EVENT]}), "cloudtrail"),
        (b'{\n  "Records": [\n    ' + orjson.dumps(CLOUDTRAIL_EVENT), "cloudtrail"),  # head of a big file
        (_ndjson(CLOUDTRAIL_EVENT, CLOUDTRAIL_EVENT), "cloudtrail"),
        (_ndjson(ECS_WINLOGBEAT, ECS_WINLOGBEAT), "winlogbeat_json"),
        (_ndjson(FLAT_WINLOGBEAT), "winlogbeat_json"),
        (_ndjson(EVE, {**EVE, "event_type": "flow"}), "suricata_eve"),
        (_ndjson(ZEEK_JSON, {"_path": "dns", "ts": 1.0}), "zeek_json"),
        (orjson.dumps(EVTX_JSON, option=orjson.OPT_INDENT_2) * 3, "winevent_json"),
        (
            b"[" + orjson.dumps(FLAT_WINLOGBEAT) + b",\n" + orjson.dumps(FLAT_WINLOGBEAT) + b"]",
            "winlogbeat_json",
        ),
        (_ndjson(GENERIC, GENERIC), "json"),
        # one odd first record does not decide: the majority of the sample does
        (_ndjson(GENERIC, FLAT_WINLOGBEAT, FLAT_WINLOGBEAT, FLAT_WINLOGBEAT), "winlogbeat_json"),
        (_ndjson(FLAT_WINLOGBEAT).decode().encode("utf-16"), "winlogbeat_json"),
        (_ndjson(EVE).decode().encode("utf-16-be"), "suricata_eve"),
    ],
)
def test_json_families(content: bytes, expected: str) -> None:
    assert detect_format(content) == expected


def test_a_head_cut_mid_line_decides_on_complete_lines_only() -> None:
    content = _ndjson(*[FLAT_WINLOGBEAT] * 3) + orjson.dumps(GENERIC)[:20]
    assert detect_format(content) == "winlogbeat_json"


def test_compressed_bytes_are_not_a_format() -> None:
    assert detect_format(gzip.compress(_ndjson(GENERIC))) is None
    assert looks_binary(gzip.compress(b"x" * 1000))


def test_name_only_breaks_ties_for_undecidable_text() -> None:
    assert detect_format(b"free text\n", "vendor.cef") == "cef"
    assert detect_format(_ndjson(GENERIC), "vendor.cef") == "json"


def test_classify_json_on_values() -> None:
    assert classify_json([1, 2]) == "json"
    assert classify_json({"Event": "text"}) == "json"
    assert classify_json({"ts": 1, "id": {"orig_h": "10.0.0.1"}}) == "zeek_json"
    assert classify_json({"event_id": 4624, "log_name": "Security", "computer_name": "dc"}) == "winlogbeat_json"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (CEF, "cef"),
        (b"<134>Mar  2 10:00:00 fw01 " + CEF, "cef"),
        (b"<134>1 2026-03-02T10:00:00Z fw01 cef - - - " + CEF, "cef"),
        (LEEF1, "leef"),
        (b"<13>Mar  2 10:00:00 src " + LEEF2, "leef"),
        (RFC3164, "syslog"),
        (RFC5424, "syslog"),
        (b"<13>Mar  2 10:00:00 host app: the word CEF: appears in prose", "syslog"),
        (b"", "syslog"),
        (b"\xff\xfe\x00garbage", "syslog"),
    ],
)
def test_message_format(message: bytes, expected: str) -> None:
    assert detect_message_format(message) == expected
