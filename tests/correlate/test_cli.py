"""``openmdr cases`` and ``openmdr alerts`` against an embedded data directory."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from typer.testing import CliRunner

from openmdr.cli.cases import alerts_app, cases_app
from openmdr.cli.common import UserError
from tests.correlate.builders import alert

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(cases_app, name="cases")
    app.add_typer(alerts_app, name="alerts")
    return app


def _run(data_dir: Path, *args: str):
    from openmdr.cli.common import console

    console.width = 200  # the console is built at import time: in a worker without a terminal it is 80 wide
    return runner.invoke(_app(), list(args), obj={"data_dir": data_dir, "database_url": None}, env={"COLUMNS": "200"})


def test_cases_from_an_alert_file_to_resolution(tmp_path: Path) -> None:
    data = tmp_path / "data"
    alerts = [
        alert("phish", 0, host="ws01", user="alice", attack=["T1566.001"], tactics=["initial_access"]),
        alert("ps", 5, host="ws01", user="alice", attack=["T1059.001"], tactics=["execution"]),
        alert("other", 7, host="ws09", user="zed", severity="low"),
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(a.to_json_dict()) for a in alerts) + b"\nnot json\n")
    result = _run(data, "alerts", "add", str(path))
    assert result.exit_code == 1  # the bad line is reported
    assert "3 alerts" in result.output and "joined 1" in result.output and "opened 2" in result.output
    assert "line 4" in result.output

    listed = _run(data, "cases", "list", "--tenant", "acme")
    assert listed.exit_code == 0, listed.output
    case_id = next(w for w in listed.output.split() if w.startswith("C-"))

    shown = _run(data, "cases", "show", case_id, "--tenant", "acme")
    assert shown.exit_code == 0, shown.output
    assert "Initial Access" in shown.output and "Execution" in shown.output
    assert "T1566.001 Spearphishing Attachment" in shown.output.replace("\n", " ") or "Spearphishing" in shown.output
    assert "same user alice and host ws01 within 5 min" in shown.output

    assert _run(data, "cases", "ack", case_id, "--tenant", "acme", "--actor", "ann").exit_code == 0
    assert "resolved" in _run(data, "cases", "resolve", case_id, "--as", "benign", "--tenant", "acme").output
    other_tenant = _run(data, "cases", "show", case_id, "--tenant", "globex")
    assert isinstance(other_tenant.exception, UserError)
    bad = _run(data, "cases", "resolve", case_id, "--as", "maybe", "--tenant", "acme")
    assert isinstance(bad.exception, UserError) and "unknown resolution" in str(bad.exception)

    sup = _run(data, "alerts", "suppress", "--tenant", "acme", "--rule", "other", "--reason", "lab box", "--hours", "2")
    assert sup.exit_code == 0 and "suppression 1 created" in sup.output
    assert "lab box" in _run(data, "alerts", "suppressions", "--tenant", "acme").output
    assert _run(data, "alerts", "list", "--tenant", "acme").exit_code == 0
