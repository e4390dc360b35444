"""The rule library in the state store: versioned rulesets and per-tenant overrides.

One global library serves every tenant.  Each ``openmdr rules install`` stores the
library's files as a new immutable *version* and makes it active; ``activate`` rolls
back or forward.  Tenants never get copies of rules: a tenant's overrides (rule
enabled/disabled, severity override, exceptions written as Sigma filters) are rows of
their own, read back as :class:`openmdr.detect.TenantOverrides`.  Every change is
audited in the same transaction; every tenant-owned read and write filters on the tenant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Boolean, Column, ForeignKey, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from openmdr.detect.overrides import OverrideError, RuleException, TenantOverrides
from openmdr.detect.rules import RuleLibrary, RuleSource
from openmdr.models.alert import SEVERITIES
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.schema import UTCDateTime, metadata, tenants
from openmdr.store.state import StateStore

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("source", String(2000), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("rule_files", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("installed_at", UTCDateTime, nullable=False),
    Column("installed_by", String(200), nullable=False),
    UniqueConstraint("version"),
)

rule_set_files = Table(
    "rule_set_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule_set_id", Integer, ForeignKey("rule_sets.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(2000), nullable=False),
    Column("content", LargeBinary, nullable=False),
)

rule_overrides = Table(
    "rule_overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("enabled", Boolean, nullable=True),
    Column("severity", String(16), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "rule_id"),
)

rule_exceptions = Table(
    "rule_exceptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("filter", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)

MAX_RULE_ID = 200


@dataclass(frozen=True, slots=True)
class RuleSetInfo:
    """One installed version of the library."""

    version: int
    source: str
    content_hash: str
    rule_files: int
    active: bool
    installed_at: datetime
    installed_by: str


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """One tenant exception (a Sigma filter document)."""

    id: int
    tenant: str
    title: str
    filter: str
    created_at: datetime
    created_by: str


def _now() -> datetime:
    return datetime.now(UTC)


def _info(row: Any) -> RuleSetInfo:
    return RuleSetInfo(
        int(row.version),
        row.source,
        row.content_hash,
        int(row.rule_files),
        bool(row.active),
        row.installed_at,
        row.installed_by,
    )


def _check_rule_id(rule_id: str) -> str:
    rule_id = rule_id.strip()
    if not rule_id or len(rule_id) > MAX_RULE_ID:
        raise ValidationError(f"a rule id needs 1-{MAX_RULE_ID} characters")
    return rule_id


class RuleStore:
    """Versioned rule library and per-tenant overrides on a :class:`StateStore`."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    # ------------------------------------------------------------------ library versions
    def install(self, library: RuleLibrary, source: str, actor: str) -> RuleSetInfo:
        """Store ``library`` as the next version and make it the active one."""
        if not library.sources:
            raise ValidationError(f"no rule files found in {source}")
        now = _now()
        with self.state.transaction() as conn:
            last = conn.execute(sa.select(sa.func.max(rule_sets.c.version))).scalar()
            version = int(last or 0) + 1
            conn.execute(rule_sets.update().values(active=False))
            rs_id = conn.execute(
                rule_sets.insert().values(
                    version=version,
                    source=source[:2000],
                    content_hash=library.content_hash,
                    rule_files=len(library.sources),
                    active=True,
                    installed_at=now,
                    installed_by=actor,
                )
            ).inserted_primary_key[0]
            conn.execute(
                rule_set_files.insert(),
                [{"rule_set_id": rs_id, "path": s.path[:2000], "content": s.text} for s in library.sources],
            )
            self.state.append_audit(
                conn,
                actor,
                "rules.install",
                None,
                f"ruleset:{version}",
                {
                    "source": source,
                    "content_hash": library.content_hash,
                    "rule_files": len(library.sources),
                    "unreadable": len(library.problems),
                },
            )
            row = conn.execute(sa.select(rule_sets).where(rule_sets.c.id == rs_id)).one()
        return _info(row)

    def activate(self, version: int, actor: str) -> RuleSetInfo:
        """Make an installed version the active one (roll back or forward)."""
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(rule_sets).where(rule_sets.c.version == version)).first()
            if row is None:
                raise NotFoundError(f"no installed ruleset version {version}")
            conn.execute(rule_sets.update().values(active=False))
            conn.execute(rule_sets.update().where(rule_sets.c.version == version).values(active=True))
            self.state.append_audit(conn, actor, "rules.activate", None, f"ruleset:{version}", {})
            row = conn.execute(sa.select(rule_sets).where(rule_sets.c.version == version)).one()
        return _info(row)

    def versions(self) -> list[RuleSetInfo]:
        """Every installed version, oldest first."""
        with self.state.transaction() as conn:
            rows = conn.execute(sa.select(rule_sets).order_by(rule_sets.c.version)).all()
        return [_info(r) for r in rows]

    def active(self) -> RuleSetInfo | None:
        """The active version, or ``None`` when no library was installed."""
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(rule_sets).where(rule_sets.c.active.is_(True))).first()
        return _info(row) if row is not None else None

    def library(self, version: int | None = None) -> RuleLibrary | None:
        """The rule files of ``version`` (default: the active one), or ``None`` if there is none."""
        with self.state.transaction() as conn:
            query = sa.select(rule_sets.c.id)
            query = (
                query.where(rule_sets.c.version == version) if version else query.where(rule_sets.c.active.is_(True))
            )
            rs_id = conn.execute(query).scalar()
            if rs_id is None:
                if version:
                    raise NotFoundError(f"no installed ruleset version {version}")
                return None
            rows = conn.execute(
                sa.select(rule_set_files.c.path, rule_set_files.c.content)
                .where(rule_set_files.c.rule_set_id == rs_id)
                .order_by(rule_set_files.c.id)
            ).all()
        return RuleLibrary(sources=[RuleSource(r.path, bytes(r.content)) for r in rows])

    # ------------------------------------------------------------------ tenant overrides
    def _set_override(self, tenant: str, rule_id: str, actor: str, action: str, **values: Any) -> None:
        rule_id = _check_rule_id(rule_id)
        with self.state.transaction() as conn:
            tid = self.state.tenant_id(conn, tenant)
            where = sa.and_(rule_overrides.c.tenant_id == tid, rule_overrides.c.rule_id == rule_id)
            row = conn.execute(sa.select(rule_overrides.c.id).where(where)).first()
            if row is None:
                conn.execute(
                    rule_overrides.insert().values(tenant_id=tid, rule_id=rule_id, updated_at=_now(), **values)
                )
            else:
                conn.execute(rule_overrides.update().where(where).values(updated_at=_now(), **values))
            self.state.append_audit(conn, actor, action, tenant, f"rule:{rule_id}", values)

    def set_enabled(self, tenant: str, rule_id: str, enabled: bool, actor: str) -> None:
        """Enable or disable one rule for one tenant."""
        self._set_override(tenant, rule_id, actor, "rules.enable" if enabled else "rules.disable", enabled=enabled)

    def set_severity(self, tenant: str, rule_id: str, severity: str | None, actor: str) -> None:
        """Override (or with ``None`` reset) the severity of one rule's alerts for one tenant."""
        if severity is not None and severity not in SEVERITIES:
            raise ValidationError(f"severity must be one of {', '.join(SEVERITIES)}")
        self._set_override(tenant, rule_id, actor, "rules.severity", severity=severity)

    def add_exception(self, tenant: str, filter_yaml: str, actor: str) -> ExceptionInfo:
        """Add a Sigma-filter exception for one tenant (validated by compiling it)."""
        try:
            exc = RuleException.from_filter(filter_yaml)
        except OverrideError as error:
            raise ValidationError(str(error)) from error
        now = _now()
        with self.state.transaction() as conn:
            tid = self.state.tenant_id(conn, tenant)
            new_id = conn.execute(
                rule_exceptions.insert().values(
                    tenant_id=tid, title=exc.title[:200], filter=filter_yaml, created_at=now, created_by=actor
                )
            ).inserted_primary_key[0]
            digest = hashlib.sha256(filter_yaml.encode()).hexdigest()
            self.state.append_audit(
                conn,
                actor,
                "rules.exception.add",
                tenant,
                f"exception:{new_id}",
                {"title": exc.title, "filter_sha256": digest, "rules": sorted(exc.rules) if exc.rules else None},
            )
        return ExceptionInfo(int(new_id), tenant, exc.title[:200], filter_yaml, now, actor)

    def remove_exception(self, tenant: str, exception_id: int, actor: str) -> None:
        """Remove one of the tenant's exceptions (another tenant's id is not found)."""
        with self.state.transaction() as conn:
            tid = self.state.tenant_id(conn, tenant)
            where = sa.and_(rule_exceptions.c.id == exception_id, rule_exceptions.c.tenant_id == tid)
            if conn.execute(rule_exceptions.delete().where(where)).rowcount == 0:
                raise NotFoundError(f"tenant {tenant!r} has no exception {exception_id}")
            self.state.append_audit(conn, actor, "rules.exception.remove", tenant, f"exception:{exception_id}", {})

    def exceptions(self, tenant: str) -> list[ExceptionInfo]:
        """The tenant's exceptions, oldest first."""
        with self.state.transaction() as conn:
            tid = self.state.tenant_id(conn, tenant)
            rows = conn.execute(
                sa.select(rule_exceptions).where(rule_exceptions.c.tenant_id == tid).order_by(rule_exceptions.c.id)
            ).all()
        return [ExceptionInfo(int(r.id), tenant, r.title, r.filter, r.created_at, r.created_by) for r in rows]

    def overrides(self, tenant: str) -> TenantOverrides:
        """The tenant's overrides in the form the engine applies."""
        with self.state.transaction() as conn:
            tid = self.state.tenant_id(conn, tenant)
            rows = conn.execute(sa.select(rule_overrides).where(rule_overrides.c.tenant_id == tid)).all()
        disabled = frozenset(r.rule_id for r in rows if r.enabled is False)
        severity = {r.rule_id: r.severity for r in rows if r.severity}
        exceptions = tuple(RuleException.from_filter(e.filter) for e in self.exceptions(tenant))
        return TenantOverrides(disabled=disabled, severity=severity, exceptions=exceptions)

    def all_overrides(self) -> dict[str, TenantOverrides]:
        """Overrides of every tenant that has any (tenant name -> overrides)."""
        with self.state.transaction() as conn:
            names = conn.execute(
                sa.select(tenants.c.name)
                .where(
                    sa.or_(
                        tenants.c.id.in_(sa.select(rule_overrides.c.tenant_id)),
                        tenants.c.id.in_(sa.select(rule_exceptions.c.tenant_id)),
                    )
                )
                .order_by(tenants.c.name)
            ).scalars()
            tenant_names = list(names)
        return {name: self.overrides(name) for name in tenant_names}
