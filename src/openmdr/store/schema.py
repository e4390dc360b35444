"""Tables of the state store (SQLAlchemy Core), identical on SQLite and PostgreSQL.

This module is the *current* shape of the schema, used by the queries in
:mod:`openmdr.store.state` and compared against the migrated database in the tests.
The database itself is only ever created and changed by the Alembic migrations in
``openmdr/store/migrations/versions``; a later feature (alerts, cases, response
actions, users, rules, baselines) adds its own tables here *and* a new migration.

Every time column is :class:`UTCDateTime`: timezone-aware UTC in and out on both
backends (SQLite has no time zones, so UTC is stored without an offset there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: Constraint names are fixed so later migrations can refer to them on both backends.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Name of Alembic's version table (prefixed so a shared database stays unambiguous).
VERSION_TABLE = "openmdr_schema_version"

#: ``prev_hash`` of the first audit record.
GENESIS_HASH = "0" * 64


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend.

    Naive datetimes are refused on the way in (their meaning is ambiguous); values read
    back are UTC-aware on SQLite (stored as UTC text) and PostgreSQL (``timestamptz``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; strip the offset for SQLite, which stores text."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given: use a timezone-aware (UTC) value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: Auto-incrementing 64-bit key (SQLite only auto-increments ``INTEGER PRIMARY KEY``).
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("work_start_hour", SmallInteger, nullable=False),
    Column("work_end_hour", SmallInteger, nullable=False),
    Column("working_days", JSON, nullable=False),
    Column("networks", JSON, nullable=False),
    Column("domains", JSON, nullable=False),
    Column("retention_days", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("name"),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("hostname_key", String(255), nullable=False),
    Column("ips", JSON, nullable=False),
    Column("owner", String(200), nullable=True),
    Column("criticality", String(16), nullable=False),
    Column("asset_class", String(32), nullable=False),
    Column("has_edr", Boolean, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "hostname_key"),
)

ingest_tokens = Table(
    "ingest_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(200), nullable=True),
    UniqueConstraint("token_hash"),
)
# One *active* token per (tenant, name); revoked tokens keep their row for the record.
Index(
    "uq_ingest_tokens_active_name",
    ingest_tokens.c.tenant_id,
    ingest_tokens.c.name,
    unique=True,
    sqlite_where=ingest_tokens.c.revoked_at.is_(None),
    postgresql_where=ingest_tokens.c.revoked_at.is_(None),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("reason_key", String(80), nullable=False),
    Column("origin", Text, nullable=False),
    Column("format", String(64), nullable=True),
    Column("stage", String(32), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=True),
    Column("blob_path", Text, nullable=True),
    Column("payload_sha256", String(64), nullable=False),
    Column("context", JSON, nullable=True),
    Column("status", String(16), nullable=False),
    Column("replay_count", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant", "status", "id"),
    Index(None, "status", "id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("tenant", String(64), nullable=True),
    Column("target", Text, nullable=True),
    # Text, not JSON: the exact canonical bytes that were hashed must survive storage.
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "tenant", "seq"),
)

# The single lock row of the audit chain: serializes appends and remembers the head, so
# that deleting the newest records is detected too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

#: Modules that add their area's tables to :data:`metadata` (alerts, cases, response, ...).
#: Each has its own Alembic branch off ``0001_initial``; ``StateStore.migrate()`` upgrades
#: every head.  Import :func:`load_all_tables` before comparing the schema as a whole.
AREA_MODULES: tuple[str, ...] = (
    "openmdr.store.baselines",
    "openmdr.store.identity",
    "openmdr.store.alerts",
    "openmdr.store.cases",
    "openmdr.store.response",
    "openmdr.store.rules",
    "openmdr.store.intel",
)


def load_all_tables() -> MetaData:
    """Import every area's table module so :data:`metadata` describes the whole schema."""
    import importlib

    for name in AREA_MODULES:
        importlib.import_module(name)
    return metadata
