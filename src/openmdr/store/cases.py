"""Case tables of the state store: cases, case membership, notes and per-tenant revisions.

``case_alerts`` has one row per alert with the tenant and alert id as primary key, so
an alert belongs to at most one case by construction (merges and splits move rows, they
never copy them).  ``case_revisions`` counts every change per tenant, so a process that
keeps cases in memory (the streaming correlator) notices changes made by another (an
analyst in the console) and reloads.  Every query names the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, PrimaryKeyConstraint, String, Table, Text
from sqlalchemy.engine import Connection

from openmdr.models.case import Case, CaseNote, Observable, SlaClock
from openmdr.store.schema import BigId, UTCDateTime, metadata

cases = Table(
    "cases",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("case_id", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolution", String(32), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("risk_score", Float, nullable=False),
    Column("assignee", String(200), nullable=True),
    Column("merged_into", String(32), nullable=True),
    Column("alert_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("first_event_at", UTCDateTime, nullable=True),
    Column("last_event_at", UTCDateTime, nullable=True),
    Column("detected_at", UTCDateTime, nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("contained_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("data", JSON, nullable=False),
    sa.UniqueConstraint("tenant", "case_id"),
    Index(None, "tenant", "status", "updated_at"),
    Index(None, "status", "updated_at"),
)
# The SOC's cross-tenant queue (open and resolved cases by priority, newest first): one index scan.
Index(
    "ix_cases_queue",
    cases.c.priority,
    cases.c.updated_at.desc(),
    cases.c.id.desc(),
    sqlite_where=cases.c.merged_into.is_(None),
    postgresql_where=cases.c.merged_into.is_(None),
)

case_alerts = Table(
    "case_alerts",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("case_id", String(32), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    PrimaryKeyConstraint("tenant", "alert_id"),
    Index(None, "tenant", "case_id"),
)

case_notes = Table(
    "case_notes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("case_id", String(32), nullable=False),
    Column("author", String(200), nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("text", Text, nullable=False),
    Index(None, "tenant", "case_id", "id"),
)

case_revisions = Table(
    "case_revisions",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

_DATA_FIELDS = ("entities", "tactics", "techniques", "sources", "reasons", "links", "channels", "evidence")


def case_values(case: Case, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``cases`` row of a :class:`Case` (lists and observables go into ``data``)."""
    data: dict[str, Any] = {name: getattr(case, name) for name in _DATA_FIELDS if hasattr(case, name)}
    data["observables"] = [
        {"type": o.type, "value": o.value, "internal": o.internal, "role": o.role} for o in case.observables
    ]
    data.update(extra or {})
    sla = case.sla
    return {
        "tenant": case.tenant,
        "case_id": case.case_id,
        "title": case.title,
        "severity": case.severity,
        "status": case.status,
        "resolution": case.resolution,
        "priority": case.priority,
        "risk_score": case.risk_score,
        "assignee": case.assignee,
        "merged_into": case.merged_into,
        "alert_count": len(case.alert_ids),
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "first_event_at": sla.first_event_at,
        "last_event_at": data.pop("last_event_at", None),
        "detected_at": sla.detected_at,
        "acknowledged_at": sla.acknowledged_at,
        "contained_at": sla.contained_at,
        "resolved_at": sla.resolved_at,
        "data": data,
    }


def row_case(row: Any, alert_ids: list[str], notes: list[CaseNote]) -> Case:
    """A :class:`Case` from its row, member alert ids and notes."""
    data = dict(row.data)
    return Case(
        case_id=row.case_id,
        tenant=row.tenant,
        title=row.title,
        severity=row.severity,
        status=row.status,
        resolution=row.resolution,
        priority=int(row.priority),
        risk_score=float(row.risk_score),
        assignee=row.assignee,
        alert_ids=alert_ids,
        observables=[
            Observable(o["type"], o["value"], bool(o.get("internal")), o.get("role"))
            for o in data.get("observables", [])
        ],
        entities=dict(data.get("entities", {})),
        tactics=list(data.get("tactics", [])),
        techniques=list(data.get("techniques", [])),
        sources=list(data.get("sources", [])),
        reasons=list(data.get("reasons", [])),
        notes=notes,
        sla=SlaClock(row.first_event_at, row.detected_at, row.acknowledged_at, row.contained_at, row.resolved_at),
        created_at=row.created_at,
        updated_at=row.updated_at,
        merged_into=row.merged_into,
        links=list(data.get("links", [])),
        channels=list(data.get("channels", [])),
        evidence=list(data.get("evidence", [])),
    )


class CaseStore:
    """Tenant-scoped case queries inside the caller's transaction."""

    def row(self, conn: Connection, tenant: str, case_id: str, for_update: bool = False) -> Any:
        """The case row (None when the tenant has no such case)."""
        q = sa.select(cases).where(cases.c.tenant == tenant, cases.c.case_id == case_id)
        if for_update and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return conn.execute(q).first()

    def get(self, conn: Connection, tenant: str, case_id: str) -> Case | None:
        """The full case (members and notes), or None."""
        row = self.row(conn, tenant, case_id)
        if row is None:
            return None
        return row_case(row, self.members(conn, tenant, case_id), self.notes(conn, tenant, case_id))

    def members(self, conn: Connection, tenant: str, case_id: str) -> list[str]:
        """Alert ids of a case in the order they joined."""
        q = (
            sa.select(case_alerts.c.alert_id)
            .where(case_alerts.c.tenant == tenant, case_alerts.c.case_id == case_id)
            .order_by(case_alerts.c.added_at, case_alerts.c.alert_id)
        )
        return list(conn.execute(q).scalars())

    def notes(self, conn: Connection, tenant: str, case_id: str) -> list[CaseNote]:
        """The case's notes, oldest first."""
        q = (
            sa.select(case_notes)
            .where(case_notes.c.tenant == tenant, case_notes.c.case_id == case_id)
            .order_by(case_notes.c.id)
        )
        return [CaseNote(r.author, r.time, r.text) for r in conn.execute(q)]

    def insert(self, conn: Connection, values: dict[str, Any]) -> None:
        """Insert a new case row."""
        conn.execute(cases.insert().values(**values))

    def insert_many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new case rows in one statement."""
        if rows:
            conn.execute(cases.insert(), list(rows))

    def rows(self, conn: Connection, tenant: str, case_ids: Sequence[str]) -> dict[str, Any]:
        """Case rows of the tenant by id (unknown ids are absent)."""
        out: dict[str, Any] = {}
        ids = list(dict.fromkeys(case_ids))
        for i in range(0, len(ids), 500):
            q = sa.select(cases).where(cases.c.tenant == tenant, cases.c.case_id.in_(ids[i : i + 500]))
            out.update({r.case_id: r for r in conn.execute(q)})
        return out

    def update(self, conn: Connection, tenant: str, case_id: str, values: dict[str, Any]) -> None:
        """Update one of the tenant's case rows."""
        conn.execute(cases.update().where(cases.c.tenant == tenant, cases.c.case_id == case_id).values(**values))

    def add_members(
        self, conn: Connection, tenant: str, case_id: str, alert_ids: Sequence[str], reason: str, at: datetime
    ) -> None:
        """Add alerts to a case (the primary key refuses an alert that is already in a case)."""
        if alert_ids:
            conn.execute(
                case_alerts.insert(),
                [
                    {"tenant": tenant, "alert_id": a, "case_id": case_id, "added_at": at, "reason": reason[:2000]}
                    for a in alert_ids
                ],
            )

    def add_memberships(
        self, conn: Connection, tenant: str, joins: Sequence[tuple[str, str, str]], at: datetime
    ) -> None:
        """Add (case id, alert id, reason) memberships in one statement."""
        if joins:
            conn.execute(
                case_alerts.insert(),
                [
                    {"tenant": tenant, "alert_id": a, "case_id": c, "added_at": at, "reason": r[:2000]}
                    for c, a, r in joins
                ],
            )

    def move_members(self, conn: Connection, tenant: str, alert_ids: Sequence[str], to_case: str) -> None:
        """Move alerts (of this tenant) to another case."""
        ids = list(alert_ids)
        for i in range(0, len(ids), 500):
            conn.execute(
                case_alerts.update()
                .where(case_alerts.c.tenant == tenant, case_alerts.c.alert_id.in_(ids[i : i + 500]))
                .values(case_id=to_case)
            )

    def membership(self, conn: Connection, tenant: str, alert_ids: Sequence[str]) -> dict[str, str]:
        """alert id -> case id for those of ``alert_ids`` that are in one of the tenant's cases."""
        out: dict[str, str] = {}
        ids = list(alert_ids)
        for i in range(0, len(ids), 500):
            q = sa.select(case_alerts.c.alert_id, case_alerts.c.case_id).where(
                case_alerts.c.tenant == tenant, case_alerts.c.alert_id.in_(ids[i : i + 500])
            )
            out.update({r.alert_id: r.case_id for r in conn.execute(q)})
        return out

    def add_note(self, conn: Connection, tenant: str, case_id: str, author: str, at: datetime, text: str) -> None:
        """Append a note."""
        conn.execute(case_notes.insert().values(tenant=tenant, case_id=case_id, author=author, time=at, text=text))

    def list(
        self,
        conn: Connection,
        tenant: str | None,
        *,
        status: str | None = None,
        open_only: bool = False,
        min_severity: str | None = None,
        assignee: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Any]:
        """Case rows, highest priority then newest first; ``tenant`` None means every tenant."""
        from openmdr.models.alert import SEVERITIES, severity_rank

        q = sa.select(cases).where(cases.c.merged_into.is_(None))
        if tenant is not None:
            q = q.where(cases.c.tenant == tenant)
        if status is not None:
            q = q.where(cases.c.status == status)
        if open_only:
            q = q.where(cases.c.status != "resolved")
        if min_severity is not None:
            q = q.where(cases.c.severity.in_(SEVERITIES[severity_rank(min_severity) :]))
        if assignee is not None:
            q = q.where(cases.c.assignee == assignee)
        q = q.order_by(cases.c.priority, cases.c.updated_at.desc(), cases.c.id.desc())
        return list(conn.execute(q.limit(max(1, min(limit, 10_000))).offset(offset)))

    def open_since(self, conn: Connection, tenant: str, since: datetime) -> list[Any]:
        """Open, unmerged case rows of the tenant active since ``since`` (for the correlator's memory)."""
        q = (
            sa.select(cases.c.case_id)
            .where(
                cases.c.tenant == tenant,
                cases.c.status != "resolved",
                cases.c.merged_into.is_(None),
                cases.c.last_event_at >= since,
            )
            .order_by(cases.c.id)
        )
        return list(conn.execute(q).scalars())

    def bump_revision(self, conn: Connection, tenant: str) -> int:
        """Count one more change of the tenant's cases; returns the new revision."""
        result = conn.execute(
            case_revisions.update()
            .where(case_revisions.c.tenant == tenant)
            .values(revision=case_revisions.c.revision + 1)
        )
        if result.rowcount == 0:
            conn.execute(case_revisions.insert().values(tenant=tenant, revision=1))
        return self.revision(conn, tenant)

    def revision(self, conn: Connection, tenant: str) -> int:
        """The tenant's case revision (0 before any case)."""
        value = conn.execute(sa.select(case_revisions.c.revision).where(case_revisions.c.tenant == tenant)).scalar()
        return int(value or 0)


def channels_of(row: Any) -> list[str]:
    """Channels a case row spans."""
    return list(dict(row.data).get("channels", []))
