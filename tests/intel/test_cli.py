"""``openmdr intel`` and ``openmdr leaks`` end to end over a data directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from openmdr.cli.main import app
from openmdr.models.case import Case, Observable
from openmdr.runtime import Platform
from openmdr.store.intel import IntelStore
from tests.intel.helpers import ACME, GLOBEX, event, table

DATA = Path(__file__).with_name("data")


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("OPENMDR_DATA_DIR", str(tmp_path / "data"))
    platform = Platform.from_data_dir(tmp_path / "data")
    platform.state.create_tenant(ACME, "test")
    platform.state.create_tenant(GLOBEX, "test")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    platform.lake.append(table(event("g-1", tenant="globex", host="gx-ws-007", dst_ip="198.51.100.23", time=yesterday),
                               event("a-1", user="svc_backup", time=yesterday)))  # fmt: skip
    platform.close()
    return CliRunner()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_export_import_allow(runner: CliRunner, tmp_path: Path) -> None:
    assert "added ip 198.51.100.23" in run(runner, "intel", "add", "198.51.100.23", "--tlp", "green", "--tag", "c2")
    run(runner, "intel", "add", "private.example", "--tenant", "acme", "--tlp", "red")
    listed = [orjson.loads(x) for x in run(runner, "intel", "list", "--json").splitlines()]
    assert [(i["type"], i["value"]) for i in listed] == [("ip", "198.51.100.23")]
    mine = [orjson.loads(x) for x in run(runner, "intel", "list", "--tenant", "acme", "--json").splitlines()]
    assert {i["value"] for i in mine} == {"198.51.100.23", "private.example"}
    out = tmp_path / "shared.json"
    run(runner, "intel", "export", "--format", "stix", "--out", str(out))
    exported = orjson.loads(out.read_bytes())
    assert [o["pattern"] for o in exported["objects"] if o["type"] == "indicator"] == [
        "[ipv4-addr:value = '198.51.100.23']"
    ]
    imported = run(runner, "intel", "import", str(DATA / "misp_event.json"), "--source", "example-cert")
    assert "5 added, 1 updated" in imported and "1 rejected" in imported
    run(runner, "intel", "allow", "update-check.example", "--reason", "sinkholed")
    refused = runner.invoke(app, ["intel", "add", "www.update-check.example"])
    assert refused.exit_code == 2 and "allow-listed" in refused.output
    platform = Platform.from_data_dir(tmp_path / "data")
    [entry] = IntelStore(platform.state).list_allow()
    platform.close()
    assert (entry.type, entry.value, entry.reason) == ("domain", "update-check.example", "sinkholed")
    assert entry.id in run(runner, "intel", "allow", "--list")
    bad = runner.invoke(app, ["intel", "add", "not a value"])
    assert bad.exit_code == 2 and "cannot tell" in bad.output


def test_share_and_retrohunt(runner: CliRunner, tmp_path: Path) -> None:
    from openmdr.intel import LearningLoop, SharingPolicy

    platform = Platform.from_data_dir(tmp_path / "data")
    case = Case(case_id="case-9", tenant="acme", title="c2", severity="high", status="resolved",
                resolution="true_positive", observables=[Observable("ip", "198.51.100.23")])  # fmt: skip
    result = LearningLoop(platform.state, platform.lake, policy=SharingPolicy(auto_approve=False)).on_case_resolved(
        case, ACME
    )
    platform.close()
    [proposal] = result.pending
    assert proposal.id in run(runner, "intel", "share")
    alerts = tmp_path / "alerts.jsonl"
    shared = run(runner, "intel", "share", proposal.id, "--tenant", "acme", "--out", str(alerts))
    assert "shared 1 indicator(s); retro-hunt raised 1 alert(s)" in shared
    [alert] = [orjson.loads(x) for x in alerts.read_text().splitlines()]
    assert alert["tenant"] == "globex" and alert["entities"]["host"] == ["gx-ws-007"]
    platform = Platform.from_data_dir(tmp_path / "data")
    [ind] = IntelStore(platform.state).list_indicators(None)
    platform.close()
    hunted = run(runner, "intel", "retrohunt", ind.id, "--days", "3")
    assert "1 alert(s)" in hunted and "globex: 1" in hunted
    missing = runner.invoke(app, ["intel", "retrohunt", "no-such-id"])
    assert missing.exit_code == 2


def test_leaks_import(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "leaks.jsonl"
    text = run(runner, "leaks", "import", str(DATA / "leaks.jsonl"), "--out", str(out))
    assert "acme: 3 new" in text and "globex: 1 new" in text and "3 rejected" in text
    assert len(out.read_text().splitlines()) == 4
