"""The ground truth agrees with the files: every labelled record exists and is recognisable."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from openmdr.generator import Manifest

CHAINS = {"acme-dormant-contractor", "globex-vpn-spray-ransomware", "initech-credential-theft", "globex-c2-contact"}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _line_time(rel: str, line: bytes) -> datetime:
    """The record time as its own source writes it (parsed independently of the ingest parsers)."""
    if rel.endswith(".jsonl"):
        return _time(orjson.loads(line)["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"])
    if rel.startswith("zeek/"):
        return datetime.fromtimestamp(float(line.split(b"\t", 1)[0]), ZoneInfo("UTC"))
    return datetime.fromisoformat(line.split(b" ", 2)[1].decode())  # RFC 5424 TIMESTAMP


def _flat(line: bytes) -> dict[str, Any]:
    event = orjson.loads(line)["Event"]
    return {"EventID": event["System"]["EventID"], "Computer": event["System"]["Computer"], **event["EventData"]}


class _File:
    """One telemetry file read once: its records with line number, offset, time and (JSON) fields."""

    def __init__(self, out: Path, tenant: str, rel: str) -> None:
        self.rel = rel
        data = (out / tenant / rel).read_bytes()
        self.rows: list[tuple[int, int, bytes, datetime, dict[str, Any] | None]] = []
        offset = 0
        for number, line in enumerate(data.split(b"\n"), 1):
            if line and not line.startswith(b"#"):
                fields = _flat(line) if rel.endswith(".jsonl") else None
                self.rows.append((number, offset, line, _line_time(rel, line), fields))
            offset += len(line) + 1
        self.by_line = {row[0]: row for row in self.rows}


def _matches(selector: dict[str, Any], line: bytes, fields: dict[str, Any] | None) -> bool:
    if "where" in selector:
        assert fields is not None
        return all(fields.get(k) == v for k, v in selector["where"].items())
    text = line.decode()
    return all(part in text for part in selector["contains"])


def _records(out: Path, tenant: str, rel: str) -> list[tuple[int, int, bytes]]:
    """(line number, byte offset, line) of every record of a file (Zeek # lines skipped)."""
    data = (out / tenant / rel).read_bytes()
    rows, offset = [], 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line and not line.startswith(b"#"):
            rows.append((number, offset, line))
        offset += len(line) + 1
    return rows


def test_all_chains_are_labelled(labels: list[dict[str, Any]]) -> None:
    assert {c["id"] for c in labels} == CHAINS
    for chain in labels:
        assert chain["techniques"] and all(t.startswith("T") for t in chain["techniques"])
        assert chain["first_event"] <= chain["last_event"]
        assert chain["steps"] and all(s["events"] == len(s["records"]) > 0 for s in chain["steps"])


def test_every_labelled_record_exists_and_matches_its_recogniser(week: Manifest, labels: list[dict[str, Any]]) -> None:
    for chain in labels:
        tenant = chain["tenant"]
        files: dict[str, _File] = {}
        for step in chain["steps"]:
            start, end = _time(step["start"]), _time(step["end"])
            assert sum(step["files"].values()) == step["events"]
            labelled = set()
            for rec in step["records"]:
                rel = rec["file"]
                f = files.get(rel) or files.setdefault(rel, _File(week.out, tenant, rel))
                _number, off, line, when, fields = f.by_line[rec["line"]]
                assert off == rec["offset"], f"{step['id']}: offset of {rel}:{rec['line']}"
                assert abs((when - _time(rec["time"])).total_seconds()) < 0.002
                assert start - timedelta(seconds=1) <= when <= end + timedelta(seconds=1)
                mine = [s for s in step["match"] if s["file"] == rel]
                assert any(_matches(s, line, fields) for s in mine), f"{step['id']}: {line[:200]!r}"
                labelled.add((rel, rec["line"]))
            # The recognisers are exact: within the step's time range they select its records and nothing else.
            selected = set()
            for selector in step["match"]:
                rel = selector["file"]
                f = files.get(rel) or files.setdefault(rel, _File(week.out, tenant, rel))
                for number, _off, line, when, fields in f.rows:
                    if start <= when <= end and _matches(selector, line, fields):
                        selected.add((rel, number))
            assert selected == labelled, f"{step['id']}: recognisers select {len(selected)}, labelled {len(labelled)}"


def test_acme_vpn_login_is_at_three_on_saturday_tenant_time(labels: list[dict[str, Any]]) -> None:
    chain = next(c for c in labels if c["id"] == "acme-dormant-contractor")
    local = _time(chain["first_event"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert local.weekday() == 5 and local.hour == 3
    assert chain["first_event_local"].startswith(local.strftime("%Y-%m-%dT03:"))
    first_step = chain["steps"][0]
    assert first_step["id"].endswith("vpn-login") and first_step["start"] == chain["first_event"]
    roles = {h["role"]: h for h in chain["hosts"]}
    assert roles["c2_beacon"]["asset_class"] == "workstation"
    assert roles["lateral_target"]["asset_class"] == "server"
    beacon = next(s for s in chain["steps"] if s["id"].endswith("c2-beacon"))
    assert _time(beacon["end"]) - _time(beacon["start"]) > timedelta(hours=6)


def test_beacon_is_regular_with_small_jitter(week: Manifest, labels: list[dict[str, Any]]) -> None:
    chain = next(c for c in labels if c["id"] == "acme-dormant-contractor")
    beacon = next(s for s in chain["steps"] if s["id"].endswith("c2-beacon"))
    times = sorted(_time(r["time"]).timestamp() for r in beacon["records"] if r["file"] == "zeek/conn.log")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 100
    assert all(60 <= g <= 300 for g in gaps)
    mean = sum(gaps) / len(gaps)
    assert max(abs(g - mean) for g in gaps) / mean < 0.05


def test_other_chains_timing(labels: list[dict[str, Any]]) -> None:
    by_id = {c["id"]: c for c in labels}
    spray = _time(by_id["globex-vpn-spray-ransomware"]["first_event"]).astimezone(ZoneInfo("America/New_York"))
    assert spray.hour < 6, "the spraying happens at night"
    theft = _time(by_id["initech-credential-theft"]["first_event"]).astimezone(ZoneInfo("Asia/Seoul"))
    assert theft.weekday() < 5 and 9 <= theft.hour < 18
    steps = by_id["globex-vpn-spray-ransomware"]["steps"]
    assert [s["technique"] for s in steps] == ["T1110.003", "T1078.002", "T1021.001", "T1490"]


def test_cross_tenant_contact_precedes_acme_by_two_days(labels: list[dict[str, Any]]) -> None:
    by_id = {c["id"]: c for c in labels}
    acme, contact = by_id["acme-dormant-contractor"], by_id["globex-c2-contact"]
    assert contact["tenant"] == "globex" and contact["related"] == ["acme-dormant-contractor"]
    lead = _time(acme["first_event"]) - _time(contact["first_event"])
    assert timedelta(hours=44) <= lead <= timedelta(hours=52)
    c2 = set(contact["external"]["ips"])
    assert c2 <= set(acme["external"]["ips"])
    assert contact["rules"] == [] and contact["detect_by"] == ["retro_hunt"]


def test_c2_address_appears_only_in_labelled_records(week: Manifest, labels: list[dict[str, Any]]) -> None:
    c2 = next(c for c in labels if c["id"] == "globex-c2-contact")["external"]["ips"][0]
    for tenant in week.tenants:
        labelled = {(r["file"], r["line"]) for c in labels if c["tenant"] == tenant for s in c["steps"]
                    for r in s["records"]}  # fmt: skip
        for rel in ("zeek/conn.log", "zeek/ssl.log", "zeek/dns.log", "firewall/fortigate.cef", "windows/sysmon.jsonl"):
            for number, _off, line in _records(week.out, tenant, rel):
                if c2.encode() in line:
                    assert (rel, number) in labelled, f"{tenant}/{rel}:{number} contacts the C2 unlabelled"


def test_contractor_account_is_dormant_before_the_chain(week: Manifest, labels: list[dict[str, Any]]) -> None:
    chain = next(c for c in labels if c["id"] == "acme-dormant-contractor")
    first = _time(chain["first_event"])
    for rel in ("windows/security.jsonl", "windows/sysmon.jsonl", "firewall/fortigate.cef", "linux/auth.log"):
        for _number, _off, line in _records(week.out, "acme", rel):
            if b"ext.pnowak" in line:
                assert _line_time(rel, line) >= first, f"{rel}: the contractor was active before the chain"


def test_background_has_the_near_misses(week: Manifest) -> None:
    """Admin PowerShell in working hours, a business trip abroad over the VPN, a new hire's account."""
    zone = ZoneInfo("Europe/Berlin")
    admin_ps = 0
    for _number, _off, line in _records(week.out, "acme", "windows/sysmon.jsonl"):
        fields = _flat(line)
        admin = str(fields.get("User", "")).startswith("ACME\\adm-")
        if admin and fields.get("Image", "").endswith("\\powershell.exe"):
            local = _line_time("windows/sysmon.jsonl", line).astimezone(zone)
            assert local.weekday() < 5 and 7 <= local.hour < 19
            assert " -enc" not in fields["CommandLine"].lower()
            admin_ps += 1
    assert admin_ps >= 3
    manifest = orjson.loads((week.out / "manifest.json").read_bytes())
    assert manifest["total_records"] == week.total_records
    cef = (week.out / "acme" / "firewall" / "fortigate.cef").read_text()
    vpn_sources = {part[4:] for line in cef.splitlines() if "act=authentication" in line
                   for part in line.split(" ") if part.startswith("src=")}  # fmt: skip
    assert len(vpn_sources) >= 4, "home offices, a hotel abroad and the attacker"
    security = (week.out / "acme" / "windows" / "security.jsonl").read_text()
    assert '"EventID":4720' in security and '"TargetUserName":"GRP-Sales"' in security
