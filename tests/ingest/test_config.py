"""Settings: TOML file, OPENMDR_* environment variables and explicit overrides, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmdr.config import load_settings


def test_toml_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "openmdr.toml"
    toml.write_text(
        f"""
data_dir = "{tmp_path / "from-toml"}"
[lake]
batch_size = 500
[syslog]
tcp_port = 6000
[[syslog.routes]]
tenant = "acme"
peers = ["198.51.100.0/24"]
[[syslog.routes]]
tenant = "globex"
port = 5515
"""
    )
    monkeypatch.setenv("OPENMDR_CONFIG", str(toml))
    monkeypatch.delenv("OPENMDR_DATA_DIR", raising=False)
    monkeypatch.delenv("OPENMDR_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.data_dir == tmp_path / "from-toml" and settings.lake.batch_size == 500
    assert settings.syslog.tcp_port == 6000 and settings.syslog.udp_port == 5514
    assert [(r.tenant, r.peers, r.port) for r in settings.syslog.routes] == [
        ("acme", ["198.51.100.0/24"], None),
        ("globex", [], 5515),
    ]
    assert settings.state_url == f"sqlite:///{tmp_path / 'from-toml' / 'state.db'}"
    assert settings.lake_dir == tmp_path / "from-toml" / "lake"

    monkeypatch.setenv("OPENMDR_SYSLOG__TCP_PORT", "7000")
    monkeypatch.setenv("OPENMDR_DATABASE_URL", "postgresql+psycopg://u@db/openmdr")
    settings = load_settings()
    assert settings.syslog.tcp_port == 7000 and settings.state_url == "postgresql+psycopg://u@db/openmdr"

    settings = load_settings(data_dir=tmp_path / "explicit", database_url=None)
    assert settings.data_dir == tmp_path / "explicit"  # None means "not given", not "unset it"


def test_bad_values_are_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENMDR_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("OPENMDR_LAKE__BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="batch_size"):
        load_settings()
