"""Alert and suppression tables of the state store, and their tenant-scoped queries.

Alerts of every source land here after triage: one row per kept alert (repeats within
the dedup window only grow its ``event_count``, ``dedup_count`` and first/last seen),
with its risk score, channel, case and, for silenced alerts, the suppression that
matched.  Every query names the tenant; a row of another tenant is never returned or
changed.  The calls that take a ``conn`` run inside the caller's transaction (the case
service writes alerts, cases and the audit record together).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.engine import Connection

from openmdr.correlate.triage import Suppression
from openmdr.models.alert import Alert
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.schema import BigId, UTCDateTime, metadata

#: Alert statuses: correlated into a case, or silenced by a suppression.
ALERT_STATUSES = ("active", "suppressed")
#: Most duplicate alert ids a kept alert remembers (the count is always exact).
MAX_DUPLICATE_IDS = 100

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("source", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("risk_score", Float, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("dedup_count", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("suppression_id", Integer, nullable=True),
    Column("case_id", String(32), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("tenant", "alert_id"),
    Index(None, "tenant", "first_seen"),
    Index(None, "tenant", "case_id"),
)

alert_suppressions = Table(
    "alert_suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("rule_id", String(200), nullable=True),
    Column("source", String(100), nullable=True),
    Column("entities", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("hits", Integer, nullable=False),
    Index(None, "tenant", "id"),
)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as kept: the alert itself plus triage (risk, channel, dedup, status, case)."""

    alert: Alert
    risk_score: float
    channel: str
    dedup_count: int
    status: str
    case_id: str | None
    suppression_id: int | None
    received_at: datetime
    duplicate_ids: tuple[str, ...] = ()


def alert_row(
    alert: Alert,
    risk: float,
    channel: str,
    status: str,
    case_id: str | None,
    suppression_id: int | None,
    received_at: datetime,
) -> dict[str, Any]:
    """The ``alerts`` row of a new alert."""
    return {
        "tenant": alert.tenant,
        "alert_id": alert.alert_id,
        "rule_id": alert.rule_id[:200],
        "source": alert.source[:100],
        "title": alert.title,
        "severity": alert.severity,
        "risk_score": risk,
        "channel": channel,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "event_count": alert.event_count,
        "dedup_count": 0,
        "status": status,
        "suppression_id": suppression_id,
        "case_id": case_id,
        "received_at": received_at,
        "data": _json_alert(alert),
    }


def _json_alert(alert: Alert) -> dict[str, Any]:
    import orjson

    return orjson.loads(orjson.dumps(alert.to_json_dict(), default=str, option=orjson.OPT_NON_STR_KEYS))


def _row_alert(row: Any) -> StoredAlert:
    data = dict(row.data)
    duplicates = tuple(data.pop("_duplicates", ()))
    alert = Alert.from_json_dict(data)
    alert.first_seen, alert.last_seen, alert.event_count = row.first_seen, row.last_seen, int(row.event_count)
    return StoredAlert(
        alert,
        float(row.risk_score),
        row.channel,
        int(row.dedup_count),
        row.status,
        row.case_id,
        row.suppression_id,
        row.received_at,
        duplicates,
    )


class AlertStore:
    """Tenant-scoped reads and writes of alerts and suppressions."""

    def insert(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new alert rows (callers have already skipped known alert ids)."""
        if rows:
            conn.execute(alerts.insert(), list(rows))

    def known_ids(self, conn: Connection, tenant: str, alert_ids: Iterable[str]) -> set[str]:
        """Which of ``alert_ids`` the tenant already has."""
        ids = list(dict.fromkeys(alert_ids))
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found.update(
                conn.execute(
                    sa.select(alerts.c.alert_id).where(alerts.c.tenant == tenant, alerts.c.alert_id.in_(chunk))
                ).scalars()
            )
        return found

    def fold(self, conn: Connection, tenant: str, kept_id: str, repeat: Alert) -> None:
        """Fold a repeat into the kept alert: grow its counts and first/last seen, remember the id."""
        row = conn.execute(
            sa.select(
                alerts.c.id,
                alerts.c.first_seen,
                alerts.c.last_seen,
                alerts.c.event_count,
                alerts.c.dedup_count,
                alerts.c.data,
            ).where(alerts.c.tenant == tenant, alerts.c.alert_id == kept_id)
        ).first()
        if row is None:
            raise NotFoundError(f"tenant {tenant!r} has no alert {kept_id!r}")
        data = dict(row.data)
        dups = list(data.get("_duplicates", []))
        if len(dups) < MAX_DUPLICATE_IDS:
            dups.append(repeat.alert_id)
        data["_duplicates"] = dups
        evidence = list(data.get("evidence", []))
        for ev in repeat.evidence:
            if len(evidence) >= 1000:
                break
            if ev not in evidence:
                evidence.append(ev)
        data["evidence"] = evidence
        conn.execute(
            alerts.update()
            .where(alerts.c.id == row.id)
            .values(
                first_seen=min(row.first_seen, repeat.first_seen),
                last_seen=max(row.last_seen, repeat.last_seen),
                event_count=int(row.event_count) + repeat.event_count,
                dedup_count=int(row.dedup_count) + 1,
                data=data,
            )
        )

    def set_case(self, conn: Connection, tenant: str, alert_ids: Sequence[str], case_id: str | None) -> None:
        """Point the tenant's alerts at ``case_id``."""
        ids = list(alert_ids)
        for i in range(0, len(ids), 500):
            conn.execute(
                alerts.update()
                .where(alerts.c.tenant == tenant, alerts.c.alert_id.in_(ids[i : i + 500]))
                .values(case_id=case_id)
            )

    def load(self, conn: Connection, tenant: str, alert_ids: Sequence[str]) -> list[StoredAlert]:
        """The tenant's alerts with these ids (unknown or other tenants' ids are skipped)."""
        out: list[StoredAlert] = []
        ids = list(dict.fromkeys(alert_ids))
        for i in range(0, len(ids), 500):
            rows = conn.execute(
                sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.alert_id.in_(ids[i : i + 500]))
            )
            out.extend(_row_alert(r) for r in rows)
        return sorted(out, key=lambda s: (s.alert.first_seen, s.alert.alert_id))

    def of_case(self, conn: Connection, tenant: str, case_id: str) -> list[StoredAlert]:
        """Every alert of one of the tenant's cases, in time order."""
        rows = conn.execute(sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.case_id == case_id))
        return sorted((_row_alert(r) for r in rows), key=lambda s: (s.alert.first_seen, s.alert.alert_id))

    def of_cases(self, conn: Connection, tenant: str, case_ids: Sequence[str]) -> dict[str, list[StoredAlert]]:
        """The alerts of several of the tenant's cases, per case, in time order."""
        out: dict[str, list[StoredAlert]] = {}
        ids = list(dict.fromkeys(case_ids))
        for i in range(0, len(ids), 500):
            q = sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.case_id.in_(ids[i : i + 500]))
            for r in conn.execute(q):
                out.setdefault(r.case_id, []).append(_row_alert(r))
        for stored in out.values():
            stored.sort(key=lambda s: (s.alert.first_seen, s.alert.alert_id))
        return out

    def get(self, conn: Connection, tenant: str, alert_id: str) -> StoredAlert | None:
        """One alert of the tenant by id (None for unknown ids and other tenants' alerts)."""
        row = conn.execute(sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.alert_id == alert_id)).first()
        return None if row is None else _row_alert(row)

    def query(
        self,
        conn: Connection,
        tenant: str,
        *,
        case_id: str | None = None,
        status: str | None = None,
        min_severity: str | None = None,
        rule_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredAlert]:
        """The tenant's alerts, newest first, filtered."""
        from openmdr.models.alert import SEVERITIES, severity_rank

        q = sa.select(alerts).where(alerts.c.tenant == tenant)
        if case_id is not None:
            q = q.where(alerts.c.case_id == case_id)
        if status is not None:
            q = q.where(alerts.c.status == status)
        if min_severity is not None:
            q = q.where(alerts.c.severity.in_(SEVERITIES[severity_rank(min_severity) :]))
        if rule_id is not None:
            q = q.where(alerts.c.rule_id == rule_id)
        if since is not None:
            q = q.where(alerts.c.last_seen >= since)
        if until is not None:
            q = q.where(alerts.c.first_seen < until)
        q = q.order_by(alerts.c.first_seen.desc(), alerts.c.id.desc()).limit(max(1, min(limit, 10_000))).offset(offset)
        return [_row_alert(r) for r in conn.execute(q)]

    def recent(self, conn: Connection, tenant: str, since: datetime) -> list[StoredAlert]:
        """The tenant's active alerts seen since ``since`` (rebuilding the correlator's memory)."""
        q = sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.status == "active", alerts.c.last_seen >= since)
        return [_row_alert(r) for r in conn.execute(q.order_by(alerts.c.id))]

    # ------------------------------------------------------------ suppressions
    def add_suppression(
        self,
        conn: Connection,
        tenant: str,
        reason: str,
        actor: str,
        now: datetime,
        *,
        rule_id: str | None = None,
        source: str | None = None,
        entities: dict[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> Suppression:
        """Create a suppression rule; it needs a reason and at least one criterion."""
        reason = (reason or "").strip()
        if not reason:
            raise ValidationError("a suppression needs a reason")
        if not (rule_id or source or entities):
            raise ValidationError("a suppression needs a rule, a source or an entity to match")
        if expires_at is not None and expires_at <= now:
            raise ValidationError("the suppression would already be expired")
        values = {
            "tenant": tenant,
            "rule_id": rule_id,
            "source": source,
            "entities": dict(entities or {}),
            "reason": reason,
            "created_by": actor,
            "created_at": now,
            "expires_at": expires_at,
            "hits": 0,
        }
        sid = int(conn.execute(alert_suppressions.insert().values(**values)).inserted_primary_key[0])
        return Suppression(sid, tenant, reason, actor, now, rule_id, source, dict(entities or {}), expires_at)

    def suppressions(self, conn: Connection, tenant: str, active_at: datetime | None = None) -> list[Suppression]:
        """The tenant's suppressions (only those active at ``active_at`` when given), by id."""
        q = sa.select(alert_suppressions).where(alert_suppressions.c.tenant == tenant)
        if active_at is not None:
            q = q.where(alert_suppressions.c.revoked_at.is_(None)).where(
                sa.or_(alert_suppressions.c.expires_at.is_(None), alert_suppressions.c.expires_at > active_at)
            )
        return [
            Suppression(
                r.id,
                r.tenant,
                r.reason,
                r.created_by,
                r.created_at,
                r.rule_id,
                r.source,
                dict(r.entities),
                r.expires_at,
                r.revoked_at,
                int(r.hits),
            )
            for r in conn.execute(q.order_by(alert_suppressions.c.id))
        ]

    def revoke_suppression(self, conn: Connection, tenant: str, suppression_id: int, actor: str, now: datetime) -> None:
        """Revoke one of the tenant's active suppressions."""
        result = conn.execute(
            alert_suppressions.update()
            .where(
                alert_suppressions.c.tenant == tenant,
                alert_suppressions.c.id == suppression_id,
                alert_suppressions.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_by=actor)
        )
        if result.rowcount == 0:
            raise NotFoundError(f"tenant {tenant!r} has no active suppression {suppression_id}")

    def count_hits(self, conn: Connection, tenant: str, hits: dict[int, int]) -> None:
        """Add to the hit counters of the tenant's suppressions."""
        for sid, n in hits.items():
            conn.execute(
                alert_suppressions.update()
                .where(alert_suppressions.c.tenant == tenant, alert_suppressions.c.id == sid)
                .values(hits=alert_suppressions.c.hits + n)
            )


def utc(value: datetime) -> datetime:
    """Aware UTC (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
