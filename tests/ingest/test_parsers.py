"""Every parser on real files (../shared) and on the documented shapes of the text and cloud formats."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Event, ParseError, RawRecord, TenantInfo
from openmdr.normalize import get_parser, known_formats
from openmdr.runtime import Platform


def _events(path: Path | str, fmt: str | None = None) -> tuple[list[Event], list[object]]:
    events: list[Event] = []
    refused: list[object] = []
    for item in read_sources(plan_sources([path]), fmt):
        if not isinstance(item, RawRecord):
            refused.append(item)
            continue
        try:
            events.append(get_parser(item.format).parse(item))
        except ParseError as exc:
            refused.append((item.origin, str(exc)))
    return events, refused


def _parse(fmt: str, line: bytes | str, context: dict | None = None) -> Event:
    payload = line.encode() if isinstance(line, str) else line
    return get_parser(fmt).parse(RawRecord(payload, fmt, "test:0", context))


def test_every_documented_format_is_registered() -> None:
    assert set(known_formats()) >= {
        "evtx", "winevent_json", "winlogbeat_json", "syslog", "cef", "leef", "json", "zeek_tsv", "zeek_json",
        "suricata_eve", "cloudtrail",
    }  # fmt: skip


# ---------------------------------------------------------------------------- Windows


def test_evtx_and_its_json_export_give_the_same_events(shared_root: Path) -> None:
    root = shared_root / "sigma" / "regression_data"
    pairs = [(j, j.with_suffix(".evtx")) for j in sorted(root.rglob("*.json")) if j.with_suffix(".evtx").exists()]
    assert len(pairs) > 100
    compared = 0
    for js, ev in pairs:
        from_json, bad_json = _events(js)
        from_evtx, bad_evtx = _events(ev)
        assert not bad_json and not bad_evtx, js
        assert len(from_json) == len(from_evtx) > 0, js
        for a, b in zip(from_json, from_evtx, strict=True):
            left, right = a.to_dict(), b.to_dict()
            assert (left.pop("source_format"), right.pop("source_format")) == ("winevent_json", "evtx")
            assert left == right, js
            assert a.natural_key == b.natural_key and a.natural_key, js
            compared += 1
    assert compared >= 140


def test_sysmon_process_creation_entities_from_regression_data(shared_root: Path) -> None:
    root = shared_root / "sigma" / "regression_data" / "rules" / "windows" / "process_creation"
    events = [e for p in sorted(root.rglob("*.evtx")) for e in _events(p)[0]]
    sysmon = [e for e in events if e.service == "sysmon" and e.event_code == "1"]
    assert len(sysmon) > 20
    for e in sysmon:
        assert e.category == "process_creation" and e.action == "process_start"
        assert e.process_image == e.fields["Image"] and e.process_command_line == e.fields["CommandLine"]
        parent = e.fields.get("ParentImage")
        assert e.parent_image == (None if parent in (None, "-") else parent) and e.host == e.fields["Computer"]
        assert e.time.tzinfo is not None and e.source_type == "windows:Microsoft-Windows-Sysmon/Operational"


def test_otrf_flat_winlogbeat_documents(shared_root: Path) -> None:
    for path in sorted((shared_root / "datasets" / "otrf").glob("*.zip")):
        events, refused = _events(path)
        assert not refused and events, path
        assert {e.source_format for e in events} == {"winlogbeat_json"}
        assert all(e.host and e.event_code and e.product == "windows" for e in events), path
        for e in events:
            if e.service == "sysmon" and e.event_code == "1":
                assert e.process_image == e.fields["Image"] and e.category == "process_creation"
            if e.service == "security" and e.event_code == "4624":
                assert e.action == "logon" and e.outcome == "success" and e.user


# ---------------------------------------------------------------------------- Zeek


def _zeek_tsv_logs(shared_root: Path) -> list[Path]:
    logs = [p for p in sorted((shared_root / "datasets" / "zeek").rglob("*")) if p.is_file()]
    return [p for p in logs if p.read_bytes()[:10].startswith(b"#separator")]


def test_zeek_tsv_every_log_type_in_the_captures(shared_root: Path) -> None:
    logs = _zeek_tsv_logs(shared_root)
    paths: Counter[str] = Counter()
    for log in logs:
        data_lines = [ln for ln in log.read_bytes().split(b"\n") if ln.strip() and not ln.startswith(b"#")]
        events, refused = _events(log)
        assert not refused, (log, refused[:3])
        assert len(events) == len(data_lines), log
        for e in events:
            assert e.product == "zeek" and e.source_format == "zeek_tsv" and e.service == e.event_code
            paths[e.service] += 1
    assert set(paths) >= {"conn", "dns", "http", "ssh", "ssl", "weird", "notice", "sip", "tunnel"}


def test_zeek_tsv_values_are_typed_and_entities_mapped(shared_root: Path) -> None:
    conn, _ = _events(shared_root / "datasets" / "zeek" / "010-zeek-mixed" / "data" / "conn.log.labeled")
    first = conn[0]
    assert first.fields["ts"] == 1655157610.743948 and first.fields["id.orig_p"] == 27620
    assert first.fields["local_orig"] is False and first.fields["tunnel_parents"] == []
    assert "service" not in first.fields  # "-" is unset: left out
    assert first.fields["label"] == "Malicious"
    assert (first.src_ip, first.src_port, first.dst_ip, first.dst_port, first.protocol) == (
        "167.94.146.67", 27620, "147.32.83.234", 2052, "tcp")  # fmt: skip
    assert first.time == datetime.fromtimestamp(1655157610.743948, UTC)
    dns, _ = _events(shared_root / "datasets" / "zeek" / "005-zeek-scenario-malicious" / "dns.log")
    assert dns[0].domain == "dns.msftncsi.com" and dns[0].fields["answers"] == ["131.107.255.255"]
    assert dns[0].fields["TTLs"] == [17.0] and dns[0].outcome == "success"
    http, _ = _events(shared_root / "datasets" / "zeek" / "005-zeek-scenario-malicious" / "http.log")
    with_url = [e for e in http if e.url]
    assert with_url and all(e.url.startswith("http://") and e.domain for e in with_url)
    ssh, _ = _events(shared_root / "datasets" / "zeek" / "006-zeek-scenario-ssh" / "ssh.log")
    assert {e.service for e in ssh} == {"ssh"} and all(e.dst_port for e in ssh)


def test_zeek_json_log(shared_root: Path) -> None:
    log = shared_root / "datasets" / "zeek" / "002-zeek-scenario-port-scanning" / "conn.log"
    events, refused = _events(log)
    assert not refused and len(events) == len(log.read_bytes().splitlines())
    first = events[0]
    assert (first.source_format, first.product, first.service) == ("zeek_json", "zeek", "conn")
    assert (first.src_ip, first.dst_ip, first.dst_port, first.protocol) == ("172.16.1.11", "8.8.8.8", 53, "udp")
    assert first.bytes_in == 111 and first.bytes_out == 0


def test_zeek_tsv_and_json_of_one_record_agree() -> None:
    header = [b"#separator \\x09", b"#set_separator\t,", b"#empty_field\t(empty)", b"#unset_field\t-",
              b"#path\tdns", b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers",
              b"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tvector[string]"]  # fmt: skip
    from openmdr.normalize.parsers.zeek import read_zeek_header

    context = read_zeek_header(header)
    line = b"1655157610.5\tCx1\t10.0.0.5\t53000\t10.0.0.2\t53\tudp\tevil\\x09.example\ta.b,c.d"
    tsv = _parse("zeek_tsv", line, context)
    js = _parse("zeek_json", orjson.dumps({"_path": "dns", **{k: v for k, v in tsv.fields.items()}}))
    assert tsv.fields["query"] == "evil\t.example" and tsv.fields["answers"] == ["a.b", "c.d"]
    for attr in ("time", "service", "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "domain"):
        assert getattr(tsv, attr) == getattr(js, attr), attr


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b"1.0\tonly-two", "columns"), (b"abc\tC1\t1.2.3.4\t1\t5.6.7.8\t2\ttcp\tq\t-", "ts (time)"),
     (b"\xff\xfe", "UTF-8"), (b"#close\t2020", "directive")],
)  # fmt: skip
def test_zeek_tsv_bad_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    from openmdr.normalize.parsers.zeek import read_zeek_header

    context = read_zeek_header(
        [
            b"#separator \\x09",
            b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers",
            b"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tvector[string]",
        ]
    )
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        _parse("zeek_tsv", line, context)
    with pytest.raises(ParseError, match="header"):
        _parse("zeek_tsv", b"1.0\tx", None)


# ---------------------------------------------------------------------------- Suricata


def test_suricata_eve_every_event_type(shared_root: Path) -> None:
    eve = shared_root / "datasets" / "suricata" / "slips-test6-malicious.suricata.json"
    events, refused = _events(eve)
    lines = [orjson.loads(line) for line in eve.read_bytes().splitlines() if line.strip()]
    assert not refused and len(events) == len(lines)
    assert Counter(e.service for e in events) == Counter(r["event_type"] for r in lines)
    for e, raw in zip(events, lines, strict=True):
        assert e.product == "suricata" and e.src_ip == raw["src_ip"] and e.dst_ip == raw["dest_ip"]
        assert e.protocol == raw["proto"].lower() and e.time.tzinfo is not None
        if raw["event_type"] == "alert":
            assert e.message == raw["alert"]["signature"] and e.event_code == str(raw["alert"]["signature_id"])
            assert e.outcome == "success" and e.fields["alert.category"] == raw["alert"]["category"]
        if raw["event_type"] == "flow":
            assert e.bytes_out == raw["flow"]["bytes_toserver"] and e.bytes_in == raw["flow"]["bytes_toclient"]
        if raw["event_type"] == "dns" and "rrname" in raw["dns"]:
            assert e.domain == raw["dns"]["rrname"]
        if raw["event_type"] == "http":
            assert e.user_agent == raw["http"].get("http_user_agent") and e.url
    assert events[0].time == datetime(2021, 6, 6, 13, 59, 46, 457984, tzinfo=UTC)


# ---------------------------------------------------------------------------- syslog, CEF, LEEF

AUTH_LOG = b"""\
Mar  2 10:00:01 bastion sshd[4121]: Failed password for invalid user admin from 203.0.113.50 port 52113 ssh2
Mar  2 10:00:04 bastion sshd[4121]: Failed password for root from 203.0.113.50 port 52113 ssh2
Mar  2 10:00:09 bastion sshd[4125]: Accepted publickey for deploy from 10.1.2.3 port 50522 ssh2: ED25519 SHA256:x
Mar  2 10:01:00 bastion sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app
Mar  2 10:02:00 bastion sudo:   intern : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/intern ; USER=root ; COMMAND=/bin/bash
Mar  2 10:03:00 bastion sshd[4130]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root
"""  # noqa: E501


def test_syslog_rfc3164_auth_log(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(AUTH_LOG)
    events, refused = _events(path)
    assert not refused and len(events) == 6
    assert [e.action for e in events] == ["logon_failed", "logon_failed", "logon", "sudo_command", "sudo_failed",
                                          "logon_failed"]  # fmt: skip
    assert [e.user for e in events] == ["admin", "root", "deploy", "deploy", "intern", "root"]
    assert events[0].src_ip == "203.0.113.50" and events[0].src_port == 52113 and events[0].outcome == "failure"
    assert events[2].outcome == "success" and events[2].service == "sshd" and events[2].host == "bastion"
    assert events[3].process_command_line == "/usr/bin/systemctl restart app" and events[3].fields["USER"] == "root"
    assert events[4].fields["sudo_error"] == "user NOT in sudoers" and events[4].outcome == "failure"
    assert events[5].src_ip == "198.51.100.7"
    assert {e.product for e in events} == {"linux"}
    assert events[0].time.month == 3 and events[0].time.day == 2 and events[0].time.hour == 10


def test_syslog_rfc3164_year_comes_from_the_receive_time() -> None:
    received = {"received_at": datetime(2026, 1, 2, 0, 0, tzinfo=UTC)}
    late = _parse("syslog", b"<38>Dec 31 23:59:59 h sshd[1]: Invalid user x from 192.0.2.1 port 22", received)
    assert late.time == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    early = _parse("syslog", b"<38>Jan  1 00:00:01 h sshd[1]: Invalid user x from 192.0.2.1 port 22", received)
    assert early.time == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_syslog_rfc5424_with_structured_data() -> None:
    line = (
        '<165>1 2026-03-02T10:00:02.120+01:00 web01.example.com sshd 4121 ID47 [exampleSDID@32473 iut="3" '
        'eventSource="App\\"X\\]"][meta sequenceId="7"] \ufeffAccepted password for alice from 192.0.2.9 port 2200 ssh2'
    )
    e = _parse("syslog", line)
    assert e.time == datetime(2026, 3, 2, 9, 0, 2, 120000, tzinfo=UTC)
    assert (e.host, e.service, e.event_code, e.action, e.user, e.src_ip) == (
        "web01.example.com", "sshd", "ID47", "logon", "alice", "192.0.2.9")  # fmt: skip
    assert e.fields["exampleSDID@32473.eventSource"] == 'App"X]' and e.fields["meta.sequenceId"] == "7"
    assert e.fields["facility"] == "local4" and e.fields["severity"] == "notice" and e.process_pid == 4121
    assert e.fields["message"].startswith("Accepted password")
    nil = _parse("syslog", "<14>1 2026-03-02T10:00:00Z - - - - - plain")
    assert nil.host is None and nil.fields["message"] == "plain"


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b"just words", "not syslog"), (b"<999>Mar  2 10:00:01 h p: x", "priority"),
     (b"<13>Feb 30 10:00:01 h p: x", "impossible"), (b"<13>1 yesterday h p - - - x", "timestamp"),
     (b"Mar  2 10:00:01 h p: \xff", "UTF-8"), (b"<13>1 2026-03-02T10:00:00Z h a p m [broken", "structured")],
)  # fmt: skip
def test_syslog_refusals(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        _parse("syslog", line)


def test_cef_behind_syslog_header_with_escapes_and_labels() -> None:
    line = (r"<134>Mar  2 10:00:01 fw01 CEF:0|Palo Alto\|Networks|PAN-OS|10.1|TRAFFIC|end|3|rt=1772445601000 "
            r"src=10.1.2.3 spt=51515 dst=203.0.113.50 dpt=443 proto=TCP act=deny suser=alice "
            r"cs1Label=Rule Name cs1=Block all request=https://x.example/a?b\=c msg=line one\nline two "
            r"fileHash=d41d8cd98f00b204e9800998ecf8427e in=10 out=1200")  # fmt: skip
    e = _parse("cef", line)
    f = e.fields
    assert (f["deviceVendor"], f["deviceProduct"], f["signatureId"], f["severity"]) == (
        "Palo Alto|Networks", "PAN-OS", "TRAFFIC", "3")  # fmt: skip
    assert f["Rule Name"] == "Block all" and f["request"] == "https://x.example/a?b=c"
    assert f["msg"] == "line one\nline two" and f["syslog_hostname"] == "fw01"
    assert e.time == datetime.fromtimestamp(1772445601, UTC)
    assert (e.src_ip, e.src_port, e.dst_ip, e.dst_port, e.protocol) == ("10.1.2.3", 51515, "203.0.113.50", 443, "tcp")
    assert (e.action, e.outcome, e.user, e.host) == ("deny", "failure", "alice", "fw01")
    assert e.hash_md5 == "d41d8cd98f00b204e9800998ecf8427e" and (e.bytes_in, e.bytes_out) == (10, 1200)
    assert e.url == "https://x.example/a?b=c" and e.product == "PAN-OS"


def test_cef_times_and_refusals() -> None:
    text = "CEF:0|V|P|1|42|n|5|rt=Mar 02 2026 10:00:01.250 UTC dst=10.0.0.1"
    assert _parse("cef", text).time == datetime(2026, 3, 2, 10, 0, 1, 250000, tzinfo=UTC)
    received = {"received_at": "2026-03-02T10:00:00+00:00"}
    assert _parse("cef", "CEF:0|V|P|1|42|n|5|dst=10.0.0.1", received).time == datetime(2026, 3, 2, 10, tzinfo=UTC)
    with pytest.raises(ParseError, match="no time"):
        _parse("cef", "CEF:0|V|P|1|42|n|5|dst=10.0.0.1")
    with pytest.raises(ParseError, match="of 6"):
        _parse("cef", "CEF:0|V|P")
    with pytest.raises(ParseError, match="not CEF"):
        _parse("cef", "hello")


def test_leef_1_and_2() -> None:
    one = _parse(
        "leef",
        "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.10\tdst=172.50.123.1\tsev=5\t"
        "cat=anomaly\tsrcPort=81\tdstPort=21\tusrName=joe.black\tdevTime=Mar 02 2026 10:00:01",
    )
    assert (one.product, one.event_code, one.category, one.user) == ("MSExchange", "15345", "anomaly", "joe.black")
    assert (one.src_ip, one.src_port, one.dst_ip, one.dst_port) == ("192.0.2.10", 81, "172.50.123.1", 21)
    assert one.time == datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC)
    two = _parse("leef", "<13>Mar  2 10:00:01 qr01 LEEF:2.0|Lancope|StealthWatch|1.0|41|x5E|src=10.0.1.8^dst=10.0.0.5"
                         "^action=blocked^devTime=02/03/2026 11:00:01^devTimeFormat=dd/MM/yyyy HH:mm:ss")  # fmt: skip
    assert two.fields["syslog_hostname"] == "qr01" and two.host == "qr01" and two.outcome == "failure"
    assert two.time == datetime(2026, 3, 2, 11, 0, 1, tzinfo=UTC)
    with pytest.raises(ParseError, match="devTimeFormat"):
        _parse("leef", "LEEF:2.0|V|P|1|41|^|devTime=nope^devTimeFormat=yyyy-MM-dd")
    with pytest.raises(ParseError, match="delimiter"):
        _parse("leef", "LEEF:2.0|V|P|1|41|zz|src=1.2.3.4")


# ---------------------------------------------------------------------------- CloudTrail and JSON

CLOUDTRAIL = {
    "Records": [
        {"eventVersion": "1.08", "eventTime": "2026-03-02T03:04:05Z", "eventSource": "signin.amazonaws.com",
         "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.20",
         "userAgent": "Mozilla/5.0", "eventID": "3b6e8a30-1111-4e5f-9c3e-1a2b3c4d5e6f",
         "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/bob",
                          "accountId": "111122223333", "userName": "bob"},
         "responseElements": {"ConsoleLogin": "Failure"}, "additionalEventData": {"MFAUsed": "No"},
         "errorMessage": "Failed authentication", "recipientAccountId": "111122223333"},
        {"eventVersion": "1.08", "eventTime": "2026-03-02T03:05:00Z", "eventSource": "s3.amazonaws.com",
         "eventName": "GetObject", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.8",
         "eventID": "3b6e8a30-2222-4e5f-9c3e-1a2b3c4d5e6f",
         "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                          "accountId": "111122223333"},
         "requestParameters": {"bucketName": "payroll", "key": "2026/03.csv"},
         "additionalEventData": {"bytesTransferredOut": 52311, "bytesTransferredIn": 0},
         "recipientAccountId": "111122223333"},
    ]
}  # fmt: skip


def test_cloudtrail_file(tmp_path: Path) -> None:
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20260302T0305Z_x.json.gz"
    path.write_bytes(gzip.compress(json.dumps(CLOUDTRAIL, indent=2).encode()))
    (login, get), refused = _events(path)
    assert not refused
    assert (login.action, login.outcome, login.user, login.src_ip, login.host) == (
        "ConsoleLogin", "failure", "bob", "198.51.100.20", "111122223333")  # fmt: skip
    assert login.fields["additionalEventData.MFAUsed"] == "No" and login.natural_key
    assert (get.user, get.bytes_in, get.domain) == ("alice", 52311, "s3.amazonaws.com")
    assert get.fields["requestParameters.bucketName"] == "payroll"
    assert orjson.loads(get.fields["requestParameters"]) == {"bucketName": "payroll", "key": "2026/03.csv"}


def test_generic_json_lines_entities_and_missing_time() -> None:
    e = _parse(
        "json",
        orjson.dumps(
            {
                "@timestamp": "2026-03-02T10:00:00Z",
                "source": {"ip": "10.0.0.1", "port": 5},
                "user": {"name": "eve"},
                "event": {"action": "login", "outcome": "failure"},
            }
        ),
    )
    assert (e.src_ip, e.src_port, e.user, e.action, e.outcome) == ("10.0.0.1", 5, "eve", "login", "failure")
    with pytest.raises(ParseError, match="no usable timestamp"):
        _parse("json", b'{"msg": "no time"}')


# ---------------------------------------------------------------------------- detection through the pipeline


def test_directory_glob_gz_and_zip_detection_through_the_pipeline(shared_root: Path, tmp_path: Path) -> None:
    """A mixed folder of every family: each file (and zip member) is detected on its own and lands in the lake."""
    datasets = shared_root / "datasets"
    drop = tmp_path / "drop"
    (drop / "net").mkdir(parents=True)
    shutil.copy(datasets / "zeek" / "006-zeek-scenario-ssh" / "ssh.log", drop / "net" / "ssh.log")
    (drop / "net" / "conn.json.gz").write_bytes(
        gzip.compress((datasets / "zeek" / "002-zeek-scenario-port-scanning" / "conn.log").read_bytes()[:20_000]
                      .rsplit(b"\n", 1)[0] + b"\n"))  # fmt: skip
    (drop / "auth.log").write_bytes(AUTH_LOG)
    (drop / "fw.cef").write_text("CEF:0|V|FW|1|100|deny|5|rt=1772445601000 src=10.0.0.1 dst=8.8.8.8 dpt=53\n")
    (drop / "trail.json").write_text(json.dumps(CLOUDTRAIL))
    regression = shared_root / "sigma" / "regression_data"
    evtx = sorted(regression.rglob("*.evtx"))[0]
    with zipfile.ZipFile(drop / "bundle.zip", "w") as zf:
        zf.write(evtx, "case/host.evtx")
        zf.write(evtx.with_suffix(".json"), "case/host.json")
        zf.writestr("eve.json", b"\n".join((datasets / "suricata" / "slips-test6-malicious.suricata.json")
                                           .read_bytes().splitlines()[:50]))  # fmt: skip
    shutil.copy(sorted((datasets / "otrf").glob("*.zip"))[0], tmp_path / "otrf-1.zip")
    platform = Platform.from_data_dir(tmp_path / "data")
    try:
        platform.state.create_tenant(TenantInfo(name="acme"), actor="test")
        sources = plan_sources([drop, str(tmp_path / "otrf-*.zip")])
        report = platform.pipeline.submit("acme", read_sources(sources))
        assert report.balanced and report.rejected == 0, report.rejection_reasons
        assert set(report.by_format) == {"zeek_tsv", "zeek_json", "syslog", "cef", "cloudtrail", "evtx",
                                         "winevent_json", "suricata_eve", "winlogbeat_json"}  # fmt: skip
        stored = platform.lake.query("acme", "SELECT source_format, count(*) AS n FROM events GROUP BY 1")
        counts = {r["source_format"]: r["n"] for r in stored.to_pylist()}
        assert sum(counts.values()) == report.stored
        assert counts["syslog"] == 6 and counts["cef"] == 1 and counts["cloudtrail"] == 2
    finally:
        platform.close()
