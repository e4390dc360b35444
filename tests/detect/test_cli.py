"""``openmdr scan`` and ``openmdr rules``: offline scans, installing from a directory, zip and URL."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from openmdr.cli.main import app
from tests.detect.helpers import rule_text

RULE_ID = "00000000-0000-4000-8000-0000000000d1"


def _write_library(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "whoami.yml").write_text(
        rule_text(
            {"sel": {"CommandLine|contains": "whoami"}, "condition": "sel"},
            rule_id=RULE_ID,
            logsource={"product": "windows", "category": "process_creation"},
            tags=["attack.discovery", "attack.t1033"],
        )
    )
    (root / "broken.yml").write_text(
        rule_text(
            {"sel": {"A|expand": "%nothing%"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-0000000000d2"
        )
    )
    return root


def _write_events(path: Path) -> Path:
    lines = [
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "EventID": 1,
            "Computer": "ws1",
            "CommandLine": "cmd /c WHOAMI /all",
            "Image": "C:\\Windows\\System32\\cmd.exe",
            "@timestamp": "2026-03-01T10:00:00Z",
        },
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "EventID": 1,
            "Computer": "ws1",
            "CommandLine": "notepad",
            "Image": "C:\\Windows\\notepad.exe",
            "@timestamp": "2026-03-01T10:00:01Z",
        },
    ]
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n{not json\n")
    return path


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("OPENMDR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return CliRunner()


def test_scan_writes_alerts_and_counts_unparsed(runner: CliRunner, tmp_path: Path) -> None:
    rules = _write_library(tmp_path / "rules")
    events = _write_events(tmp_path / "events.json")
    out = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["scan", str(events), "--rules", str(rules), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    sigma = [a for a in alerts if a["source"] == "sigma"]
    assert [a["rule_id"] for a in sigma] == [RULE_ID]
    a = sigma[0]
    assert a["author"] == "OpenMDR tests" and a["attack"] == ["T1033"] and a["event_count"] == 1
    assert a["entities"]["host"] == "ws1" and len(a["evidence"]) == 1
    assert a["first_seen"] == a["last_seen"] == "2026-03-01T10:00:00+00:00"
    assert "1 unparsed" in result.output.replace(",", "")


def test_scan_zeek_folder_gives_network_findings(runner: CliRunner, tmp_path: Path, shared_root: Path) -> None:
    rules = _write_library(tmp_path / "rules")
    folder = shared_root / "datasets" / "zeek" / "slips-port-scans"
    out = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["scan", str(folder), "-r", str(rules), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    sources = {orjson.loads(line)["source"] for line in out.read_bytes().splitlines()}
    assert any(s.startswith("analytics:scan") for s in sources), sources


def test_scan_missing_path_is_reported_not_fatal(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "missing"), "-r", str(_write_library(tmp_path / "r")), "-q"])
    assert result.exit_code == 0  # a missing path is reported as an unreadable record, not a crash
    assert "1 unparsed" in result.output.replace(",", "")


def test_rules_check_lists_unsupported(runner: CliRunner, tmp_path: Path) -> None:
    rules = _write_library(tmp_path / "rules")
    result = runner.invoke(app, ["rules", "check", str(rules)])
    assert result.exit_code == 0, result.output
    assert "1 evaluable" in result.output and "placeholder" in result.output


@pytest.fixture()
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_rules_install_dir_zip_url_and_versions(runner: CliRunner, tmp_path: Path, http_root: tuple[str, Path]) -> None:
    rules = _write_library(tmp_path / "rules")
    base, www = http_root
    archive = www / "sigma_release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in rules.iterdir():
            zf.write(f, f"rules/windows/{f.name}")
    for source in (str(rules), str(archive), f"{base}/sigma_release.zip"):
        result = runner.invoke(app, ["tenants", "list"])  # initialises the data dir
        result = runner.invoke(app, ["rules", "install", source])
        assert result.exit_code == 0, result.output
        assert "1 evaluable" in result.output.replace(",", "")
    result = runner.invoke(app, ["rules", "list"])
    assert result.exit_code == 0 and "3" in result.output
    assert runner.invoke(app, ["rules", "activate", "1"]).exit_code == 0
    missing = runner.invoke(app, ["rules", "install", f"{base}/nope.zip"])
    assert missing.exit_code == 2 and "404" in missing.output


def test_rules_override_commands(runner: CliRunner, tmp_path: Path) -> None:
    created = runner.invoke(app, ["tenants", "add", "acme"])
    assert created.exit_code == 0, created.output
    assert runner.invoke(app, ["rules", "disable", RULE_ID, "--tenant", "acme"]).exit_code == 0
    assert runner.invoke(app, ["rules", "severity", RULE_ID, "critical", "--tenant", "acme"]).exit_code == 0
    bad = runner.invoke(app, ["rules", "severity", RULE_ID, "urgent", "--tenant", "acme"])
    assert bad.exit_code == 2 and "severity" in bad.output
    flt = tmp_path / "exception.yml"
    flt.write_text(f"title: lab host\nfilter:\n  rules: [{RULE_ID}]\n  s: {{Computer: lab1}}\n  condition: not s\n")
    added = runner.invoke(app, ["rules", "exception-add", str(flt), "--tenant", "acme"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["rules", "exception-list", "--tenant", "acme"])
    assert "lab host" in listed.output
    assert runner.invoke(app, ["rules", "exception-remove", "1", "--tenant", "acme"]).exit_code == 0
    assert runner.invoke(app, ["rules", "exception-remove", "1", "--tenant", "acme"]).exit_code == 2
    assert runner.invoke(app, ["rules", "disable", RULE_ID, "--tenant", "nobody"]).exit_code == 2
