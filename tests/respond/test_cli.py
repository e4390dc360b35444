"""``openmdr respond``: plan, run, approve, deny, rollback, actions list, policy show/set, through the real CLI."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from openmdr.cli import common
from openmdr.cli.common import UserError
from openmdr.cli.main import app
from openmdr.models import AssetInfo
from openmdr.runtime import Platform
from tests.respond.cases import c2_case, lateral_case
from tests.respond.conftest import Receiver


def _case_file(path: Path, case: object) -> Path:
    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError

    path.write_bytes(orjson.dumps(asdict(case), default=default))  # type: ignore[call-overload]
    return path


@pytest.fixture()
def cli(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(common.console, "width", 250)  # rich tables wrap at the terminal width otherwise
    receiver.secret = b"cli-edr-secret"
    monkeypatch.setenv("ACME_EDR_SECRET", receiver.secret.decode())
    monkeypatch.delenv("OPENMDR_RESPONSE_CONFIG", raising=False)
    monkeypatch.delenv("OPENMDR_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "response.toml").write_text(
        f'[tenants.acme.edr]\ntype = "webhook"\nurl = "{receiver.url}"\nsecret_env = "ACME_EDR_SECRET"\n'
    )
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data-dir", str(data), *args], env={"COLUMNS": "250"})
        if isinstance(result.exception, UserError):  # what openmdr.cli.main.run turns into exit code 2
            return 2, f"{result.output}error: {result.exception}"
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    assert run("tenants", "add", "acme", "--timezone", "Europe/Berlin", "-n", "10.10.0.0/16")[0] == 0
    assert run("tenants", "add", "globex", "-n", "10.10.0.0/16")[0] == 0
    platform = Platform.from_data_dir(data)
    platform.state.upsert_assets("acme", [AssetInfo("BER-WS-007", ("10.10.10.27",), asset_class="workstation",
                                                    criticality="low", has_edr=True),
                                          AssetInfo("ACME-FS01", ("10.10.0.20",), asset_class="server",
                                                    criticality="high", has_edr=True)], "test")  # fmt: skip
    platform.close()
    return run


def _actions(run, tenant: str = "acme") -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    code, out = run("respond", "actions", "list", "--tenant", tenant, "--json")
    assert code == 0, out
    return [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_cli_end_to_end(cli, tmp_path: Path, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    c2 = _case_file(tmp_path / "c2.json", c2_case(now))
    code, out = cli("respond", "plan", "case-c2", "--tenant", "acme", "--case-file", str(c2))
    assert code == 0, out
    assert "c2-beacon" in out and "isolate_host" in out and "allow-list" in out
    assert _actions(cli) == []  # planning changes nothing

    code, out = cli("respond", "run", "case-c2", "--tenant", "acme", "--case-file", str(c2))
    assert code == 0 and "contained" in out, out
    isolate = next(a for a in _actions(cli) if a["kind"] == "isolate_host")
    assert isolate["status"] == "executed" and ("acme", "ber-ws-007") in receiver.isolated

    code, out = cli("respond", "rollback", str(isolate["action_id"]), "--tenant", "acme", "--as", "analyst")
    assert code == 0, out
    assert ("acme", "ber-ws-007") not in receiver.isolated

    lateral = _case_file(tmp_path / "lateral.json", lateral_case(now))
    assert cli("respond", "run", "case-lateral", "--tenant", "acme", "--case-file", str(lateral))[0] == 0
    pending = next(a for a in _actions(cli) if a["kind"] == "isolate_host" and a["target"] == "ACME-FS01")
    assert pending["status"] == "awaiting_approval"
    code, out = cli("respond", "approve", str(pending["action_id"]), "--tenant", "globex", "--as", "mallory")
    assert code == 2 and "no action" in out
    code, out = cli("respond", "approve", str(pending["action_id"]), "--tenant", "acme", "--as", "alice")
    assert code == 0 and "executed" in out, out
    kill = next(a for a in _actions(cli) if a["kind"] == "kill_process")
    code, out = cli("respond", "deny", str(kill["action_id"]), "--tenant", "acme", "--as", "alice", "--reason", "no")
    assert code == 0 and "rejected" in out
    assert _actions(cli, "globex") == []


def test_cli_policy_show_and_set(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("respond", "policy", "show", "--tenant", "acme")
    assert code == 0 and "policy version 0" in out and "servers need approval" in out
    bad = tmp_path / "bad.yml"
    bad.write_text("rules:\n  - mode: sometimes\n")
    code, out = cli("respond", "policy", "set", str(bad), "--tenant", "acme", "--as", "admin")
    assert code == 2 and "mode must be" in out
    good = tmp_path / "good.yml"
    good.write_text("rules:\n  - name: approve everything\n    mode: approve\nallow_list:\n"
                    "  networks: [10.10.0.1/32, 8.8.8.8/32]\n")  # fmt: skip
    code, out = cli("respond", "policy", "set", str(good), "--tenant", "acme", "--as", "admin", "--comment", "audit")
    assert code == 0 and "version 1" in out
    code, out = cli("respond", "policy", "show", "--tenant", "acme", "--history")
    assert code == 0 and "audit" in out and "admin" in out
    code, out = cli("respond", "policy", "show", "--tenant", "globex")
    assert "policy version 0" in out


def test_cli_case_lookup_errors_are_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("respond", "plan", "nope", "--tenant", "acme")
    assert code == 2 and "no case" in out
