"""Behaviour-analytics baselines in the state store: one row per (tenant, analytic, entity).

:meth:`openmdr.detect.analytics.AnalyticsEngine.snapshot` exports every baseline as
:class:`~openmdr.detect.analytics.BaselineRecord` rows; :class:`BaselineRepository` keeps
them in the ``analytics_baselines`` table and reads them back for
:meth:`~openmdr.detect.analytics.AnalyticsEngine.restore`, so a restarted pipeline (or
another worker taking over a tenant) keeps what it learned instead of warming up again.

Saving a tenant *replaces* its stored baselines with the snapshot in one transaction:
the engine's baselines are capped (least recently seen entities evicted), and the store
mirrors that, so it stays bounded too.  Rows are read back in the order they were
written, which is the engine's least-recently-used-first order, so eviction order
survives a restart.  Every save and delete writes one audit record in the same
transaction (a summary: rows per analytic, not one record per entity).

Entities are free text from telemetry (a user name can be anything an attacker typed),
so the unique key is a SHA-256 of the entity, not the entity itself.  Tenant isolation:
every method takes the tenant and filters on it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Column, Index, LargeBinary, String, Table, Text, UniqueConstraint

from openmdr.store.errors import ValidationError
from openmdr.store.schema import BigId, UTCDateTime, metadata
from openmdr.store.state import StateStore

if TYPE_CHECKING:  # the analytics package is imported lazily: loading the schema must not need it
    from openmdr.detect.analytics.engine import AnalyticsEngine, BaselineRecord

#: Longest analytic name (``identity.user``, ``network.exfil``, ...).
MAX_ANALYTIC_LENGTH = 64
#: Longest tenant name (as in the ``tenants`` table).
MAX_TENANT_LENGTH = 64
#: Rows inserted per statement.
INSERT_CHUNK = 5_000

analytics_baselines = Table(
    "analytics_baselines",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(MAX_TENANT_LENGTH), nullable=False),
    Column("analytic", String(MAX_ANALYTIC_LENGTH), nullable=False),
    Column("entity_key", String(64), nullable=False),
    Column("entity", Text, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "analytic", "entity_key"),
    Index(None, "tenant", "id"),
)


def entity_key(entity: str) -> str:
    """SHA-256 (hex) of an entity name: the fixed-width unique key of its row."""
    return hashlib.sha256(entity.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class SaveReport:
    """What one save did, per tenant."""

    rows: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Rows written over all tenants."""
        return sum(self.rows.values())


class BaselineRepository:
    """Stores and loads analytics baselines per tenant in the state store."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def save(self, tenant: str, records: Iterable[BaselineRecord], actor: str) -> int:
        """Replace ``tenant``'s stored baselines with ``records``; returns the rows written.

        Every record must belong to ``tenant`` (a record of another tenant raises
        :class:`~openmdr.store.errors.ValidationError` and nothing is written).  A repeated
        (analytic, entity) keeps its last state.
        """
        return self._save(tenant, records, actor)[0]

    def _save(self, tenant: str, records: Iterable[BaselineRecord], actor: str) -> tuple[int, int]:
        _check_tenant(tenant)
        unique: dict[tuple[str, str], BaselineRecord] = {}
        for rec in records:
            if rec.tenant != tenant:
                raise ValidationError(f"baseline row of tenant {rec.tenant!r} given to save for {tenant!r}")
            if not rec.analytic or len(rec.analytic) > MAX_ANALYTIC_LENGTH:
                raise ValidationError(f"baseline analytic name must be 1-{MAX_ANALYTIC_LENGTH} characters")
            unique.pop((rec.analytic, rec.entity), None)  # re-insert: keeps the newest position
            unique[(rec.analytic, rec.entity)] = rec
        now = datetime.now(UTC)
        per_analytic = Counter(analytic for analytic, _ in unique)
        table = analytics_baselines
        with self.state.transaction() as conn:
            replaced = conn.execute(table.delete().where(table.c.tenant == tenant)).rowcount
            rows = [
                {
                    "tenant": tenant,
                    "analytic": rec.analytic,
                    "entity_key": entity_key(rec.entity),
                    "entity": rec.entity,
                    "state": bytes(rec.state),
                    "saved_at": now,
                }
                for rec in unique.values()
            ]
            for start in range(0, len(rows), INSERT_CHUNK):
                conn.execute(table.insert(), rows[start : start + INSERT_CHUNK])
            self.state.append_audit(
                conn,
                actor,
                "analytics.baselines.save",
                tenant,
                None,
                {"rows": len(rows), "replaced": int(replaced or 0), "per_analytic": dict(sorted(per_analytic.items()))},
            )
        return len(rows), int(replaced or 0)

    def save_snapshot(self, records: Iterable[BaselineRecord], actor: str) -> SaveReport:
        """Save a multi-tenant :meth:`AnalyticsEngine.snapshot`: one transaction per tenant in it."""
        by_tenant: dict[str, list[BaselineRecord]] = {}
        for rec in records:
            by_tenant.setdefault(rec.tenant, []).append(rec)
        report = SaveReport()
        for tenant, rows in by_tenant.items():
            report.rows[tenant], report.replaced[tenant] = self._save(tenant, rows, actor)
        return report

    def load(self, tenant: str, analytic: str | None = None) -> list[BaselineRecord]:
        """``tenant``'s stored baselines (optionally of one analytic) in the order they were saved."""
        from openmdr.detect.analytics.engine import BaselineRecord

        _check_tenant(tenant)
        table = analytics_baselines
        query = (
            sa.select(table.c.analytic, table.c.entity, table.c.state)
            .where(table.c.tenant == tenant)
            .order_by(table.c.id)
        )
        if analytic is not None:
            query = query.where(table.c.analytic == analytic)
        with self.state.transaction() as conn:
            return [BaselineRecord(tenant, r.analytic, r.entity, bytes(r.state)) for r in conn.execute(query)]

    def count(self, tenant: str) -> int:
        """Number of stored baseline rows of ``tenant``."""
        _check_tenant(tenant)
        table = analytics_baselines
        with self.state.transaction() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.tenant == tenant)).scalar_one()
            )

    def delete(self, tenant: str, actor: str) -> int:
        """Forget every baseline of ``tenant`` (it warms up again); returns the rows removed."""
        _check_tenant(tenant)
        table = analytics_baselines
        with self.state.transaction() as conn:
            removed = int(conn.execute(table.delete().where(table.c.tenant == tenant)).rowcount or 0)
            self.state.append_audit(conn, actor, "analytics.baselines.delete", tenant, None, {"rows": removed})
        return removed

    def persist(self, engine: AnalyticsEngine, actor: str) -> SaveReport:
        """Save every tenant baseline ``engine`` holds (call after ``engine.flush()``)."""
        return self.save_snapshot(engine.snapshot(), actor)

    def restore_into(self, engine: AnalyticsEngine, tenants: Iterable[str]) -> int:
        """Load the stored baselines of ``tenants`` into ``engine``; returns the rows loaded."""
        return sum(engine.restore(self.load(tenant)) for tenant in tenants)


def _check_tenant(tenant: str) -> None:
    if not tenant or len(tenant) > MAX_TENANT_LENGTH:
        raise ValidationError(f"a tenant name of 1-{MAX_TENANT_LENGTH} characters is required, got {tenant!r}")
