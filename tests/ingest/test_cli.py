"""The ``openmdr`` commands of the foundation, run with typer's CliRunner against a temporary --data-dir."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from openmdr.runtime import Platform

runner = CliRunner()


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``openmdr --data-dir <tmp> ...``; returns (exit code, stdout, stderr)."""
    from openmdr.cli import common
    from openmdr.cli.main import app

    for console in (common.console, common.err_console):  # wide enough that table cells are not wrapped
        monkeypatch.setattr(console, "_width", 400)

    data_dir = tmp_path / "data"

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--data-dir", str(data_dir), *args], env={"COLUMNS": "200"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    run.data_dir = data_dir  # type: ignore[attr-defined]
    return run


def _jsonl(path: Path, n: int, start: int = 0) -> Path:
    path.write_bytes(
        b"\n".join(
            orjson.dumps(
                {"@timestamp": f"2026-03-02T10:00:{i % 60:02d}Z", "host": "ws-1", "src_ip": "10.0.0.5", "n": i}
            )
            for i in range(start, start + n)
        )
    )
    return path


def test_tenants_add_list_show_and_errors(cli) -> None:
    code, out, _ = cli("tenants", "add", "acme", "--display-name", "Acme Corp", "--timezone", "Europe/Berlin",
                       "--hours", "7-19", "--days", "mon-fri,sun", "-n", "10.0.0.0/8", "-d", "acme.example",
                       "--retention-days", "30")  # fmt: skip
    assert code == 0 and "tenant acme created" in out
    assert cli("tenants", "add", "globex")[0] == 0
    code, _, err = cli("tenants", "add", "acme")
    assert code == 2 and "already exists" in err
    code, _, err = cli("tenants", "add", "Bad/Name")
    assert code == 2 and "invalid tenant name" in err
    code, _, err = cli("tenants", "add", "x", "--timezone", "Mars/Base")
    assert code == 2 and "unknown time zone" in err
    code, out, _ = cli("tenants", "list")
    assert code == 0 and "acme" in out and "globex" in out and "10.0.0.0/8" in out
    code, out, _ = cli("tenants", "show", "acme")
    assert code == 0 and "Acme Corp" in out and "mon,tue,wed,thu,fri,sun" in out and "30" in out
    code, _, err = cli("tenants", "show", "nobody")
    assert code == 2 and "unknown tenant" in err


def test_assets_import_reports_bad_rows_and_list(cli, tmp_path: Path) -> None:
    cli("tenants", "add", "acme")
    csv = tmp_path / "assets.csv"
    csv.write_text("hostname,ip,owner,criticality,asset_class,has_edr\ndc01,10.0.0.10,it,critical,domain_controller,yes\n"
                   "ws-1,10.0.0.5,alice,low,workstation,no\nbad,10.0.0.300,x,low,server,no\n")  # fmt: skip
    code, out, _ = cli("assets", "import", str(csv), "--tenant", "acme")
    assert code == 1 and "2 assets imported" in out and "line 4" in out and "10.0.0.300" in out
    code, out, _ = cli("assets", "list", "--tenant", "acme")
    assert code == 0 and "dc01" in out and "critical" in out and "ws-1" in out
    code, _, err = cli("assets", "list", "--tenant", "nobody")
    assert code == 2 and "unknown tenant" in err


def test_tokens_create_list_revoke(cli) -> None:
    cli("tenants", "add", "acme")
    code, out, _ = cli("tokens", "create", "--tenant", "acme", "--name", "edge-1", "--expires-days", "30")
    assert code == 0
    secret = re.search(r"omdr_[A-Za-z0-9_-]{43,}", out).group(0)
    code, out, _ = cli("tokens", "list", "--tenant", "acme")
    assert code == 0 and "edge-1" in out and "yes" in out and secret not in out
    platform = Platform.from_data_dir(cli.data_dir)
    try:
        assert platform.state.resolve_ingest_token(secret).tenant == "acme"
    finally:
        platform.close()
    assert cli("tokens", "revoke", "edge-1", "--tenant", "acme")[0] == 0
    code, _, err = cli("tokens", "revoke", "edge-1", "--tenant", "acme")
    assert code == 2 and "no active token" in err
    code, out, _ = cli("tokens", "list", "--tenant", "acme")
    assert "no" in out


def test_ingest_query_and_lake(cli, tmp_path: Path) -> None:
    cli("tenants", "add", "acme", "-n", "10.0.0.0/8", "--retention-days", "30")
    cli("tenants", "add", "globex")
    data = _jsonl(tmp_path / "app.jsonl", 40)
    code, out, _ = cli("ingest", str(data), "--tenant", "acme")
    assert code == 0 and "received 40 = stored 40 + duplicates 0 + rejected 0" in out and "json 40" in out
    code, out, _ = cli("ingest", str(data), "--tenant", "acme")
    assert "stored 0 + duplicates 40" in out
    assert cli("ingest", str(_jsonl(tmp_path / "more.jsonl", 5, start=100)), "-t", "acme")[0] == 0
    code, _, err = cli("ingest", str(data), "--tenant", "nobody")
    assert code == 2 and "unknown tenant" in err
    code, _, err = cli("ingest", str(data), "--tenant", "acme", "--format", "nope")
    assert code == 2 and "unknown format" in err
    code, _, err = cli("ingest", str(tmp_path / "missing-*.jsonl"), "--tenant", "acme")
    assert code == 2 and "nothing to read" in err

    code, out, _ = cli(
        "query", "--tenant", "acme", "-o", "json", "SELECT count(*) AS n, min(src_internal) AS i FROM events"
    )
    assert code == 0 and orjson.loads(out.strip()) == {"n": 45, "i": True}
    code, out, _ = cli("query", "--tenant", "globex", "-o", "csv", "SELECT count(*) AS n FROM events")
    assert out.split() == ["n", "0"]  # the other tenant's events are not there
    code, out, _ = cli("query", "--tenant", "acme", "SELECT host, count(*) AS n FROM events GROUP BY 1")
    assert code == 0 and "ws-1" in out and "45" in out
    code, _, err = cli("query", "--tenant", "acme", "DROP VIEW events")
    assert code == 2 and "read-only" in err
    code, _, err = cli(
        "query", "--tenant", "globex", f"SELECT * FROM read_parquet('{cli.data_dir}/lake/tenant=acme/*/*.parquet')"
    )
    assert code == 2 and "Permission" in err

    code, out, _ = cli("lake", "summary")
    assert code == 0 and "acme" in out and "2026-03-02" in out and "45" in out
    assert "2 files merged" in cli("lake", "compact", "--tenant", "acme")[1]
    code, out, _ = cli("lake", "retention", "--tenant", "acme")
    assert code == 0 and "kept 30 days, removed 45 events" in out  # March 2026 is older than 30 days
    code, _, err = cli("lake", "retention", "--tenant", "nobody")
    assert code == 2


def test_deadletter_list_show_replay_and_formats(cli, tmp_path: Path) -> None:
    cli("tenants", "add", "acme")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({"@timestamp": "2026-03-02T10:00:00Z", "ok": 1}) + b'\n{"cut": \n{"no": "time"}\n')
    code, out, _ = cli("ingest", str(bad), "--tenant", "acme")
    assert code == 0 and "rejected 2" in out and "deadletter list" in out
    code, out, _ = cli("deadletter", "list", "--tenant", "acme")
    assert code == 0 and "truncated JSON" in out and "no usable timestamp" in out and f"{bad}:" in out
    platform = Platform.from_data_dir(cli.data_dir)
    try:
        first = platform.state.list_dead_letters(tenant="acme")[0].id
    finally:
        platform.close()
    code, out, _ = cli("deadletter", "show", str(first))
    assert code == 0 and "truncated JSON" in out and "b'{\"cut\": '" in out
    code, _, err = cli("deadletter", "show", str(first), "--tenant", "globex")
    assert code == 2 and "no dead letter" in err
    code, out, _ = cli("deadletter", "show", str(first), "--raw")
    assert out == '{"cut": '
    code, out, _ = cli("deadletter", "replay", "--tenant", "acme")
    assert code == 0 and "replayed 2: 0 recovered into the lake, 2 still failing" in out
    code, out, _ = cli("formats")
    assert code == 0 and {"evtx", "syslog", "cef", "leef", "zeek_tsv", "suricata_eve", "cloudtrail"} <= set(out.split())


def test_help_everywhere(cli) -> None:
    for args in (["--help"], ["tenants", "--help"], ["assets", "--help"], ["tokens", "--help"], ["ingest", "--help"],
                 ["query", "--help"], ["deadletter", "--help"], ["lake", "--help"], ["formats", "--help"]):  # fmt: skip
        code, out, _ = cli(*args)
        assert code == 0 and "Usage" in out, args
