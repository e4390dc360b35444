"""Settings: one TOML file plus ``OPENMDR_*`` environment variables, embedded defaults.

Precedence (highest first): explicit arguments, environment variables
(``OPENMDR_DATA_DIR``, ``OPENMDR_DATABASE_URL``, nested ones with ``__`` such as
``OPENMDR_SYSLOG__TCP_PORT``), the TOML file named by ``OPENMDR_CONFIG`` or
``./openmdr.toml``, then the defaults below.  The embedded default needs no server:
state in SQLite and the event lake as Parquet files, both under ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "openmdr"


class LakeSettings(BaseModel):
    """Event lake tuning."""

    batch_size: int = Field(20_000, ge=1, description="events buffered before a Parquet part is written")
    default_retention_days: int = Field(90, ge=1, description="days kept when a tenant sets no retention")


class SyslogRoute(BaseModel):
    """Which tenant a syslog peer belongs to: by the listener port or by the peer's network."""

    tenant: str
    peers: list[str] = Field(default_factory=list, description="CIDRs of senders belonging to the tenant")
    port: int | None = Field(None, description="a listener port dedicated to this tenant")


class SyslogSettings(BaseModel):
    """Syslog listener: UDP, TCP (octet counting or newline framing) and TLS."""

    host: str = "127.0.0.1"
    udp_port: int | None = 5514
    tcp_port: int | None = 5514
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_message_bytes: int = 256 * 1024
    routes: list[SyslogRoute] = Field(default_factory=list)


class ApiSettings(BaseModel):
    """HTTP API and ingest endpoint."""

    host: str = "127.0.0.1"
    port: int = 8900
    max_batch_bytes: int = 16 * 1024 * 1024


class Settings(BaseSettings):
    """Every setting of an OpenMDR process."""

    model_config = SettingsConfigDict(env_prefix="OPENMDR_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir when unset")
    geoip_database: Path | None = Field(None, description="MaxMind-format city database (GeoLite2/DB-IP)")
    lake: LakeSettings = Field(default_factory=LakeSettings)
    syslog: SyslogSettings = Field(default_factory=SyslogSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read init args, then the environment, then the TOML file."""
        toml_path = Path(os.environ.get("OPENMDR_CONFIG", "openmdr.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def state_url(self) -> str:
        """The state-store URL: the configured one or SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def lake_dir(self) -> Path:
        """Root of the tenant/day-partitioned Parquet event lake."""
        return self.data_dir / "lake"

    @property
    def deadletter_dir(self) -> Path:
        """Where payloads of rejected input too large for the state store are kept."""
        return self.data_dir / "deadletter"


def load_settings(**overrides: Any) -> Settings:
    """Load settings from file and environment, applying ``overrides`` on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
