"""The case service: the one entry point for alerts -> cases and for working cases.

The streaming pipeline calls :meth:`CaseService.add_alerts`; response, intel, the API and
the CLI call the lifecycle, query and timeline methods.  Every change runs in one
state-store transaction together with its audit record, and every read and write names
the tenant.  Correlation itself is the pure :class:`~openmdr.correlate.core.Correlator`;
this service keeps it in step with the store (rebuilding a tenant's memory from its open
cases whenever another process changed them) and persists what it decides.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openmdr.correlate.core import CaseChange, Correlator, CorrelatorConfig, TenantContext, split_case_id
from openmdr.correlate.entities import alert_channel, normalize_host
from openmdr.correlate.timeline import Timeline, build_timeline, evidence_sql
from openmdr.correlate.triage import Suppression, first_match, internal_checker, risk_score, summarize_case
from openmdr.models.alert import SEVERITIES, Alert
from openmdr.models.case import CASE_STATUSES, RESOLUTIONS, Case, CaseNote
from openmdr.models.record import Rejection
from openmdr.store.alerts import AlertStore, StoredAlert, alert_row
from openmdr.store.cases import CaseStore, case_alerts, case_notes, case_values, cases, row_case
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.schema import assets, tenants
from openmdr.store.state import StateStore

#: Most grouping reasons a case keeps (the audit trail has them all).
MAX_REASONS = 200
#: How long the inventory hints of a tenant are reused before they are read again.
CONTEXT_TTL = timedelta(minutes=5)
#: Weight factor of hosts (and their addresses) by asset class: everyone talks to these.
SHARED_ASSET_SPECIFICITY: dict[str, float] = {"domain_controller": 0.25, "network": 0.25}
#: Case columns that belong to the lifecycle (analysts, response), never overwritten by a summary refresh.
_LIFECYCLE_COLUMNS = (
    "status",
    "resolution",
    "assignee",
    "merged_into",
    "created_at",
    "detected_at",
    "acknowledged_at",
    "contained_at",
    "resolved_at",
)
_STATUS_RANK = {s: i for i, s in enumerate(CASE_STATUSES)}


def utcnow() -> datetime:
    """The wall clock, UTC (the default clock; tests pass their own)."""
    return datetime.now(UTC)


def validate_alert(alert: Any) -> str | None:
    """Why an alert cannot be triaged (None when it can)."""
    if not isinstance(alert, Alert):
        return f"not an Alert: {type(alert).__name__}"
    if not isinstance(alert.tenant, str) or not alert.tenant or len(alert.tenant) > 64:
        return "alert without a valid tenant"
    if not alert.alert_id or len(alert.alert_id) > 64:
        return "alert without a valid alert_id (1-64 characters)"
    if not alert.rule_id or not alert.source:
        return "alert without rule_id or source"
    if alert.severity not in SEVERITIES:
        return f"unknown severity {alert.severity!r}"
    for name in ("first_seen", "last_seen"):
        value = getattr(alert, name)
        if not isinstance(value, datetime) or value.tzinfo is None:
            return f"{name} must be a timezone-aware datetime"
    if not isinstance(alert.entities, dict):
        return "entities must be a mapping"
    return None


class CaseService:
    """Alert triage, correlation into cases, the case lifecycle and the timeline, over the state store."""

    def __init__(
        self,
        state: StateStore,
        clock: Callable[[], datetime] = utcnow,
        lake: Any = None,
        config: CorrelatorConfig | None = None,
        actor: str = "correlator",
    ) -> None:
        self.state = state
        self.clock = clock
        self.lake = lake
        self.actor = actor
        self.core = Correlator(config)
        self.alert_store = AlertStore()
        self.case_store = CaseStore()
        self._revisions: dict[str, int] = {}
        self._contexts: dict[str, tuple[datetime, dict[str, str], Callable[[str, str], bool]]] = {}

    # ================================================================ alerts in
    def add_alerts(self, alerts_in: Sequence[Alert]) -> builtins.list[CaseChange]:
        """Dedup, score, store and correlate alerts; returns what happened to each case.

        Bad alerts are dead-lettered with their reason (kind ``rejected``); alert ids seen
        before are ``redelivered`` and change nothing, so re-running a batch is harmless.
        """
        changes: list[CaseChange] = []
        by_tenant: dict[str, list[Alert]] = {}
        rejections: list[Rejection] = []
        for alert in alerts_in:
            problem = validate_alert(alert)
            if problem is not None:
                tenant = getattr(alert, "tenant", "") if isinstance(getattr(alert, "tenant", ""), str) else ""
                alert_id = str(getattr(alert, "alert_id", "") or "")
                changes.append(CaseChange(tenant, None, "rejected", [alert_id] if alert_id else [], problem))
                rejections.append(
                    Rejection(
                        _alert_bytes(alert),
                        problem,
                        f"alert:{getattr(alert, 'source', '?')}",
                        "alert",
                        tenant[:64],
                        "correlate",
                        self.clock(),
                    )
                )
                continue
            by_tenant.setdefault(alert.tenant, []).append(alert)
        if rejections:
            self.state.add_dead_letters(rejections, actor=self.actor)
        for tenant, batch in by_tenant.items():
            try:
                changes.extend(self._add_tenant(tenant, batch))
            except Exception:
                self._forget(tenant)
                raise
        return changes

    def _add_tenant(self, tenant: str, batch: list[Alert]) -> list[CaseChange]:
        now = self.clock()
        out: list[CaseChange] = []
        with self.state.transaction() as conn:
            self._sync(conn, tenant)
            known = self.alert_store.known_ids(conn, tenant, [a.alert_id for a in batch])
            sups = self.alert_store.suppressions(conn, tenant, active_at=now)
            crit = self._criticality(conn, tenant, now)
            rows: dict[str, dict[str, Any]] = {}
            hits: dict[int, int] = {}
            correlated: list[CaseChange] = []
            for alert in batch:
                if alert.alert_id in known or alert.alert_id in rows:
                    out.append(CaseChange(tenant, None, "redelivered", [alert.alert_id], "alert id seen before"))
                    continue
                hosts = [normalize_host(h) for h in _as_list(alert.entities.get("host"))]
                level = (alert.details or {}).get("asset_criticality") or _max_crit(crit.get(h) for h in hosts)
                risk = risk_score(alert, level)
                channel = alert_channel(alert)
                sup = first_match(sups, alert, now)
                if sup is not None:
                    rows[alert.alert_id] = alert_row(alert, risk, channel, "suppressed", None, sup.id, now)
                    hits[sup.id] = hits.get(sup.id, 0) + 1
                    out.append(
                        CaseChange(
                            tenant, None, "suppressed", [alert.alert_id], f"suppressed by rule {sup.id}: {sup.reason}"
                        )
                    )
                    continue
                for ch in self.core.process(alert):
                    if ch.kind == "deduplicated" and ch.kept_alert is not None:
                        kept = rows.get(ch.kept_alert)
                        if kept is not None:
                            _fold_row(kept, alert)
                        else:
                            self.alert_store.fold(conn, tenant, ch.kept_alert, alert)
                    elif ch.kind in ("opened", "joined"):
                        rows[alert.alert_id] = alert_row(alert, risk, channel, "active", ch.case_id, None, now)
                    correlated.append(ch)
            self.alert_store.insert(conn, list(rows.values()))
            if hits:
                self.alert_store.count_hits(conn, tenant, hits)
            case_changes = self._persist(conn, tenant, correlated, now)
            details = {
                "received": len(batch),
                "stored": len(rows),
                "suppressed": sum(hits.values()),
                "deduplicated": sum(1 for c in correlated if c.kind == "deduplicated"),
                "redelivered": sum(1 for c in out if c.kind == "redelivered"),
                **case_changes,
            }
            self.state.append_audit(conn, self.actor, "alerts.correlate", tenant, None, details, time=now)
            self._revisions[tenant] = self.case_store.bump_revision(conn, tenant)
        return out + correlated

    def _persist(self, conn: Connection, tenant: str, changes: list[CaseChange], now: datetime) -> dict[str, Any]:
        """Write the correlator's decisions: new cases, memberships, merges, refreshed summaries.

        Returns what changed (for the batch's audit record).
        """
        touched: dict[str, list[str]] = {}
        opened: set[str] = set()
        merged_away: dict[str, str] = {}
        joins: list[tuple[str, str, str]] = []
        for ch in changes:
            cid = ch.case_id
            assert cid is not None
            if ch.kind in ("opened", "joined"):
                if ch.kind == "opened":
                    opened.add(cid)
                joins.extend((cid, a, ch.reason) for a in ch.alert_ids)
                touched.setdefault(cid, []).append(ch.reason)
            elif ch.kind == "merged":
                self._flush_members(conn, tenant, joins, now)
                self.case_store.move_members(conn, tenant, ch.alert_ids, cid)
                self.alert_store.set_case(conn, tenant, ch.alert_ids, cid)
                touched.setdefault(cid, []).append(ch.reason)
                for other in ch.related:
                    merged_away[other] = cid
                    opened.discard(other)
                    touched.pop(other, None)
            elif ch.kind == "deduplicated":
                touched.setdefault(cid, [])
        self._flush_members(conn, tenant, joins, now)
        for other, target in merged_away.items():
            self._absorb_lifecycle(conn, tenant, target, other, now)
        live = {cid: reasons for cid, reasons in touched.items() if cid not in merged_away}
        self._refresh_many(conn, tenant, live, now, opened)
        return {
            "opened": sorted(c for c in live if c in opened)[:500],
            "updated": sorted(c for c in live if c not in opened)[:500],
            "merged": dict(sorted(merged_away.items())[:500]),
        }

    def _flush_members(self, conn: Connection, tenant: str, joins: list[tuple[str, str, str]], now: datetime) -> None:
        """Write pending memberships (in one statement) and empty the list."""
        if joins:
            self.case_store.add_memberships(conn, tenant, joins, now)
            joins.clear()

    def _absorb_lifecycle(self, conn: Connection, tenant: str, target: str, other: str, now: datetime) -> None:
        """Mark ``other`` merged into ``target`` and carry its SLA milestones over."""
        src = self.case_store.row(conn, tenant, other)
        dst = self.case_store.row(conn, tenant, target)
        if src is None:  # opened and merged away within this batch
            return
        self.case_store.update(conn, tenant, other, {"merged_into": target, "updated_at": now, "alert_count": 0})
        if dst is not None:
            self.case_store.update(conn, tenant, target, _combined_lifecycle(dst, [src]))

    def _refresh(
        self,
        conn: Connection,
        tenant: str,
        case_id: str,
        reasons: list[str],
        now: datetime,
        new: bool,
        detected_at: datetime | None = None,
    ) -> None:
        """Recompute one case's summary from its alerts and write it (creating the row when new)."""
        self._refresh_many(conn, tenant, {case_id: reasons}, now, {case_id} if new else set(), detected_at)

    def _refresh_many(
        self,
        conn: Connection,
        tenant: str,
        touched: dict[str, list[str]],
        now: datetime,
        new: set[str],
        detected_at: datetime | None = None,
    ) -> None:
        """Recompute the summaries of several cases from their alerts; new rows are inserted in one statement."""
        if not touched:
            return
        members = self.alert_store.of_cases(conn, tenant, list(touched))
        old = self.case_store.rows(conn, tenant, [c for c in touched if c not in new])
        crit, internal = self._inventory(conn, tenant, now)
        inserts: list[dict[str, Any]] = []
        for case_id, reasons in touched.items():
            stored = members.get(case_id)
            if not stored:
                continue
            risks = {s.alert.alert_id: s.risk_score for s in stored}
            summary = summarize_case([s.alert for s in stored], risks, crit, internal)
            row = old.get(case_id)
            data: dict[str, Any] = dict(row.data) if row is not None else {}
            case = Case(
                case_id=case_id,
                tenant=tenant,
                title=summary.title,
                severity=summary.severity,
                priority=summary.priority,
                risk_score=summary.risk_score,
                alert_ids=[s.alert.alert_id for s in stored],
                observables=summary.observables,
                entities=summary.entities,
                tactics=summary.tactics,
                techniques=summary.techniques,
                sources=summary.sources,
                reasons=(list(data.get("reasons", [])) + reasons)[-MAX_REASONS:],
                links=list(data.get("links", [])),
                channels=summary.channels,
                evidence=_evidence([s.alert for s in stored]),
            )
            values = case_values(case, {"last_event_at": summary.last_event_at})
            if row is None:
                values.update(
                    status="new",
                    created_at=now,
                    updated_at=now,
                    first_event_at=summary.first_event_at,
                    detected_at=detected_at or min(s.received_at for s in stored),
                )
                inserts.append(values)
                continue
            for name in _LIFECYCLE_COLUMNS:
                values.pop(name, None)
            values["updated_at"] = now
            values["first_event_at"] = min(x for x in (row.first_event_at, summary.first_event_at) if x is not None)
            self.case_store.update(conn, tenant, case_id, values)
        self.case_store.insert_many(conn, inserts)

    # ================================================================ memory <-> store
    def _sync(self, conn: Connection, tenant: str) -> None:
        """Rebuild the tenant's correlator memory when the store changed behind it."""
        revision = self.case_store.revision(conn, tenant)
        if self._revisions.get(tenant) == revision and tenant in self.core.tenants():
            return
        self.core.forget(tenant)
        self.core.set_context(tenant, self._tenant_context(conn, tenant))
        newest = conn.execute(sa.select(sa.func.max(cases.c.last_event_at)).where(cases.c.tenant == tenant)).scalar()
        if newest is not None:
            newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
            since = newest - timedelta(seconds=self.core.config.horizon)
            for case_id in self.case_store.open_since(conn, tenant, since):
                self.core.seed(tenant, case_id, [s.alert for s in self.alert_store.of_case(conn, tenant, case_id)])
        self._revisions[tenant] = revision

    def _forget(self, tenant: str) -> None:
        self.core.forget(tenant)
        self._revisions.pop(tenant, None)

    def _tenant_context(self, conn: Connection, tenant: str) -> TenantContext:
        """Inventory hints: address -> host, and how specific shared infrastructure is."""
        ip_hosts: dict[str, str] = {}
        specificity: dict[str, float] = {}
        for hostname, ips, asset_class in self._assets(conn, tenant):
            host = normalize_host(hostname)
            factor = SHARED_ASSET_SPECIFICITY.get(asset_class)
            if factor is not None:
                specificity[f"host:{host}"] = factor
            for ip in ips or []:
                ip_hosts[str(ip)] = host
                if factor is not None:
                    specificity[f"ip:{ip}"] = factor
        return TenantContext(ip_hosts, specificity)

    def _assets(self, conn: Connection, tenant: str) -> list[tuple[str, list[str], str]]:
        q = (
            sa.select(assets.c.hostname, assets.c.ips, assets.c.asset_class, assets.c.criticality)
            .join(tenants, tenants.c.id == assets.c.tenant_id)
            .where(tenants.c.name == tenant)
        )
        return [(r.hostname, list(r.ips or []), r.asset_class) for r in conn.execute(q)]

    def _criticality(self, conn: Connection, tenant: str, now: datetime) -> dict[str, str]:
        """Host -> asset criticality of the tenant's inventory (cached for :data:`CONTEXT_TTL`)."""
        return self._inventory(conn, tenant, now)[0]

    def _inventory(
        self, conn: Connection, tenant: str, now: datetime
    ) -> tuple[dict[str, str], Callable[[str, str], bool]]:
        cached = self._contexts.get(tenant)
        if cached is not None and now - cached[0] < CONTEXT_TTL:
            return cached[1], cached[2]
        q = (
            sa.select(assets.c.hostname, assets.c.criticality)
            .join(tenants, tenants.c.id == assets.c.tenant_id)
            .where(tenants.c.name == tenant)
        )
        crit = {normalize_host(r.hostname): r.criticality for r in conn.execute(q)}
        networks = conn.execute(sa.select(tenants.c.networks).where(tenants.c.name == tenant)).scalar()
        internal = internal_checker(list(networks or []))
        self._contexts[tenant] = (now, crit, internal)
        return crit, internal

    # ================================================================ reads
    def get(self, tenant: str, case_id: str) -> Case | None:
        """One case of ``tenant`` with its alert ids and notes (None for unknown ids or other tenants')."""
        with self.state.transaction() as conn:
            return self.case_store.get(conn, tenant, case_id)

    def list(
        self,
        tenant: str | None,
        status: str | None = None,
        limit: int = 100,
        *,
        open_only: bool = False,
        min_severity: str | None = None,
        assignee: str | None = None,
        offset: int = 0,
        provider_wide: bool = False,
    ) -> builtins.list[Case]:
        """Cases by priority then recency; ``tenant=None`` (every tenant) needs ``provider_wide=True``."""
        if tenant is None and not provider_wide:
            raise ValidationError("listing every tenant's cases needs provider_wide=True")
        if status is not None and status not in CASE_STATUSES:
            raise ValidationError(f"unknown status {status!r}; one of {', '.join(CASE_STATUSES)}")
        with self.state.transaction() as conn:
            rows = self.case_store.list(
                conn,
                tenant,
                status=status,
                open_only=open_only,
                min_severity=min_severity,
                assignee=assignee,
                limit=limit,
                offset=offset,
            )
            keys = [(r.tenant, r.case_id) for r in rows]
            members: dict[tuple[str, str], list[str]] = {k: [] for k in keys}
            notes: dict[tuple[str, str], list[Any]] = {k: [] for k in keys}
            for t in {k[0] for k in keys}:
                ids = [k[1] for k in keys if k[0] == t]
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    q = (
                        sa.select(case_alerts.c.case_id, case_alerts.c.alert_id)
                        .where(case_alerts.c.tenant == t, case_alerts.c.case_id.in_(chunk))
                        .order_by(case_alerts.c.added_at, case_alerts.c.alert_id)
                    )
                    for r in conn.execute(q):
                        members[(t, r.case_id)].append(r.alert_id)
                    nq = sa.select(case_notes).where(case_notes.c.tenant == t, case_notes.c.case_id.in_(chunk))
                    for r in conn.execute(nq.order_by(case_notes.c.id)):
                        notes[(t, r.case_id)].append(CaseNote(r.author, r.time, r.text))
            return [row_case(r, members[(r.tenant, r.case_id)], notes[(r.tenant, r.case_id)]) for r in rows]

    def alerts(self, tenant: str, case_id: str) -> builtins.list[Alert]:
        """The alerts of one of the tenant's cases, in time order."""
        with self.state.transaction() as conn:
            return [s.alert for s in self.alert_store.of_case(conn, tenant, case_id)]

    def list_alerts(self, tenant: str, **filters: Any) -> builtins.list[StoredAlert]:
        """The tenant's alerts, newest first (filters: case_id, status, min_severity, rule_id, since, until, limit)."""
        with self.state.transaction() as conn:
            return self.alert_store.query(conn, tenant, **filters)

    def get_alert(self, tenant: str, alert_id: str) -> StoredAlert | None:
        """One of the tenant's alerts with its triage (risk, channel, dedup count, case)."""
        with self.state.transaction() as conn:
            return self.alert_store.get(conn, tenant, alert_id)

    def timeline(self, tenant: str, case_id: str, with_events: bool = True) -> Timeline | None:
        """The case's kill-chain timeline; evidence events come from the lake when one was given."""
        with self.state.transaction() as conn:
            case = self.case_store.get(conn, tenant, case_id)
            if case is None:
                return None
            stored = self.alert_store.of_case(conn, tenant, case_id)
        alert_list = [s.alert for s in stored]
        events = None
        if with_events and self.lake is not None:
            from openmdr.correlate.timeline import EVENTS_PER_ALERT

            ids = [ev for a in alert_list for ev in a.evidence[:EVENTS_PER_ALERT]]
            if ids:
                sql, params = evidence_sql(ids)
                events = self.lake.query(tenant, sql, params)
        return build_timeline(case, alert_list, events)

    # ================================================================ lifecycle
    def acknowledge(self, tenant: str, case_id: str, actor: str, at: datetime | None = None) -> Case:
        """An analyst took the case: ``new`` -> ``acknowledged`` (stamps the acknowledged SLA time once)."""
        return self._transition(tenant, case_id, actor, "case.acknowledge", at, "acknowledged")

    def mark_contained(self, tenant: str, case_id: str, actor: str, at: datetime | None = None) -> Case:
        """Response contained the threat (stamps the contained SLA time once)."""
        return self._transition(tenant, case_id, actor, "case.contain", at, "contained")

    def resolve(self, tenant: str, case_id: str, resolution: str, actor: str, at: datetime | None = None) -> Case:
        """Close the case as true_positive, false_positive or benign; later alerts open a new case."""
        if resolution not in RESOLUTIONS:
            raise ValidationError(f"unknown resolution {resolution!r}; one of {', '.join(RESOLUTIONS)}")
        return self._transition(tenant, case_id, actor, "case.resolve", at, "resolved", resolution)

    def reopen(
        self, tenant: str, case_id: str, actor: str, reason: str | None = None, at: datetime | None = None
    ) -> Case:
        """Reopen a resolved case (back to its last milestone before resolution); it correlates again."""
        when = at or self.clock()
        with self.state.transaction() as conn:
            row = self._open_row(conn, tenant, case_id, allow_resolved=True)
            if row.status != "resolved":
                raise ConflictError(f"case {case_id} is not resolved")
            status = "contained" if row.contained_at else "acknowledged" if row.acknowledged_at else "new"
            self.case_store.update(
                conn, tenant, case_id, {"status": status, "resolution": None, "resolved_at": None, "updated_at": when}
            )
            if reason:
                self.case_store.add_note(conn, tenant, case_id, actor, when, f"reopened: {reason}")
            self.state.append_audit(
                conn,
                actor,
                "case.reopen",
                tenant,
                case_id,
                {"previous_resolution": row.resolution, "status": status, "reason": reason},
            )
            self._changed(conn, tenant)
            return self._get(conn, tenant, case_id)

    def assign(self, tenant: str, case_id: str, assignee: str | None, actor: str) -> Case:
        """Give the case to an analyst (None unassigns)."""
        if assignee is not None and not (0 < len(assignee) <= 200):
            raise ValidationError("an assignee needs 1-200 characters")
        with self.state.transaction() as conn:
            row = self._open_row(conn, tenant, case_id, allow_resolved=True)
            self.case_store.update(conn, tenant, case_id, {"assignee": assignee, "updated_at": self.clock()})
            self.state.append_audit(conn, actor, "case.assign", tenant, case_id, {"from": row.assignee, "to": assignee})
            self._changed(conn, tenant)
            return self._get(conn, tenant, case_id)

    def add_note(self, tenant: str, case_id: str, text: str, actor: str, at: datetime | None = None) -> Case:
        """Append an analyst note."""
        text = (text or "").strip()
        if not text:
            raise ValidationError("a note needs text")
        when = at or self.clock()
        with self.state.transaction() as conn:
            self._open_row(conn, tenant, case_id, allow_resolved=True)
            self.case_store.add_note(conn, tenant, case_id, actor, when, text[:20_000])
            self.case_store.update(conn, tenant, case_id, {"updated_at": when})
            self.state.append_audit(conn, actor, "case.note", tenant, case_id, {"chars": len(text)})
            self._changed(conn, tenant)
            return self._get(conn, tenant, case_id)

    def _transition(
        self,
        tenant: str,
        case_id: str,
        actor: str,
        action: str,
        at: datetime | None,
        status: str,
        resolution: str | None = None,
    ) -> Case:
        when = at or self.clock()
        with self.state.transaction() as conn:
            row = self._open_row(conn, tenant, case_id)
            values: dict[str, Any] = {"updated_at": when}
            stamp = {"acknowledged": "acknowledged_at", "contained": "contained_at", "resolved": "resolved_at"}[status]
            if getattr(row, stamp) is None or status == "resolved":
                values[stamp] = when
            if _STATUS_RANK[status] > _STATUS_RANK[row.status]:
                values["status"] = status
            if resolution is not None:
                values["resolution"] = resolution
            self.case_store.update(conn, tenant, case_id, values)
            self.state.append_audit(
                conn,
                actor,
                action,
                tenant,
                case_id,
                {
                    "from": row.status,
                    "to": values.get("status", row.status),
                    "resolution": resolution,
                    "at": when.isoformat(),
                },
            )
            self._changed(conn, tenant)
            return self._get(conn, tenant, case_id)

    def merge(self, tenant: str, case_ids: Sequence[str], actor: str) -> Case:
        """Merge cases into the first one given: every alert moves, none is lost or duplicated."""
        ids = list(dict.fromkeys(case_ids))
        if len(ids) < 2:
            raise ValidationError("merging needs at least two different cases")
        now = self.clock()
        with self.state.transaction() as conn:
            rows = [self._open_row(conn, tenant, cid, allow_resolved=True) for cid in ids]
            target, others = ids[0], ids[1:]
            moved: list[str] = []
            for other in others:
                members = self.case_store.members(conn, tenant, other)
                self.case_store.move_members(conn, tenant, members, target)
                self.alert_store.set_case(conn, tenant, members, target)
                self.case_store.update(
                    conn, tenant, other, {"merged_into": target, "updated_at": now, "alert_count": 0}
                )
                moved.extend(members)
            self.case_store.update(conn, tenant, target, _combined_lifecycle(rows[0], rows[1:]))
            reason = f"merged by {actor}: cases {', '.join(others)} into {target}"
            self._refresh(conn, tenant, target, [reason], now, new=False)
            self.state.append_audit(conn, actor, "case.merge", tenant, target, {"merged": others, "alerts": len(moved)})
            self._changed(conn, tenant)
            return self._get(conn, tenant, target)

    def split(self, tenant: str, case_id: str, alert_ids: Sequence[str], actor: str) -> Case:
        """Move some (not all) of a case's alerts into a new case; returns the new case."""
        wanted = list(dict.fromkeys(alert_ids))
        now = self.clock()
        with self.state.transaction() as conn:
            row = self._open_row(conn, tenant, case_id, allow_resolved=True)
            members = self.case_store.members(conn, tenant, case_id)
            foreign = [a for a in wanted if a not in set(members)]
            if foreign:
                raise ValidationError(f"alerts not in case {case_id}: {', '.join(foreign[:5])}")
            if not wanted or len(wanted) >= len(members):
                raise ValidationError("a split needs some, but not all, of the case's alerts")
            new_id = split_case_id(tenant, case_id, wanted, lambda c: self.case_store.row(conn, tenant, c) is not None)
            self.case_store.move_members(conn, tenant, wanted, new_id)
            self.alert_store.set_case(conn, tenant, wanted, new_id)
            reason = f"split from case {case_id} by {actor}"
            self._refresh(conn, tenant, new_id, [reason], now, new=True, detected_at=row.detected_at)
            self._refresh(conn, tenant, case_id, [f"alerts split out into case {new_id} by {actor}"], now, new=False)
            self.state.append_audit(
                conn,
                actor,
                "case.split",
                tenant,
                case_id,
                {"new_case": new_id, "alerts": wanted[:200], "count": len(wanted)},
            )
            self._changed(conn, tenant)
            return self._get(conn, tenant, new_id)

    def _open_row(self, conn: Connection, tenant: str, case_id: str, allow_resolved: bool = False) -> Any:
        row = self.case_store.row(conn, tenant, case_id, for_update=True)
        if row is None:
            raise NotFoundError(f"tenant {tenant!r} has no case {case_id!r}")
        if row.merged_into is not None:
            raise ConflictError(f"case {case_id} was merged into {row.merged_into}")
        if row.status == "resolved" and not allow_resolved:
            raise ConflictError(f"case {case_id} is resolved; reopen it first")
        return row

    def _get(self, conn: Connection, tenant: str, case_id: str) -> Case:
        case = self.case_store.get(conn, tenant, case_id)
        assert case is not None
        return case

    def _changed(self, conn: Connection, tenant: str) -> None:
        """Count the change; the correlator's memory of this tenant is rebuilt on the next alerts."""
        self.case_store.bump_revision(conn, tenant)
        self._forget(tenant)

    # ================================================================ suppressions
    def add_suppression(
        self,
        tenant: str,
        reason: str,
        actor: str,
        *,
        rule_id: str | None = None,
        source: str | None = None,
        entities: dict[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> Suppression:
        """Silence the tenant's alerts that match, until ``expires_at``, with a reason (audited)."""
        now = self.clock()
        with self.state.transaction() as conn:
            sup = self.alert_store.add_suppression(
                conn,
                tenant,
                reason,
                actor,
                now,
                rule_id=rule_id,
                source=source,
                entities=entities,
                expires_at=expires_at,
            )
            self.state.append_audit(
                conn,
                actor,
                "suppression.add",
                tenant,
                str(sup.id),
                {
                    "reason": sup.reason,
                    "rule_id": rule_id,
                    "source": source,
                    "entities": sup.entities,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        return sup

    def list_suppressions(self, tenant: str, active_only: bool = False) -> builtins.list[Suppression]:
        """The tenant's suppressions (only the active ones when asked)."""
        with self.state.transaction() as conn:
            return self.alert_store.suppressions(conn, tenant, self.clock() if active_only else None)

    def revoke_suppression(self, tenant: str, suppression_id: int, actor: str) -> None:
        """End one of the tenant's suppressions now (audited)."""
        with self.state.transaction() as conn:
            self.alert_store.revoke_suppression(conn, tenant, suppression_id, actor, self.clock())
            self.state.append_audit(conn, actor, "suppression.revoke", tenant, str(suppression_id), {})


def _combined_lifecycle(target: Any, others: Sequence[Any]) -> dict[str, Any]:
    """Lifecycle of a merged case: earliest SLA milestones, furthest open status."""
    rows = [target, *others]
    values: dict[str, Any] = {}
    for name in ("first_event_at", "detected_at", "acknowledged_at", "contained_at"):
        stamps = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        values[name] = min(stamps) if stamps else None
    if target.status != "resolved":
        open_statuses = [r.status for r in rows if r.status != "resolved"]
        values["status"] = max(open_statuses, key=lambda s: _STATUS_RANK[s])
    return values


def _evidence(alerts: Sequence[Alert], limit: int = 500) -> list[str]:
    """The lake event ids behind a case's alerts, a few per alert first so every alert is represented."""
    out: dict[str, None] = {}
    for depth in (3, limit):
        for alert in alerts:
            for event_id in alert.evidence[:depth]:
                if len(out) >= limit:
                    return list(out)
                out.setdefault(event_id, None)
    return list(out)


def _fold_row(row: dict[str, Any], repeat: Alert) -> None:
    """Fold a repeat into a kept alert row not yet written (same batch)."""
    row["first_seen"] = min(row["first_seen"], repeat.first_seen)
    row["last_seen"] = max(row["last_seen"], repeat.last_seen)
    row["event_count"] += repeat.event_count
    row["dedup_count"] += 1
    dups = row["data"].setdefault("_duplicates", [])
    if len(dups) < 100:
        dups.append(repeat.alert_id)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _max_crit(levels: Any) -> str | None:
    order = ("low", "medium", "high", "critical")
    known = [x for x in levels if x in order]
    return max(known, key=order.index) if known else None


def _alert_bytes(alert: Any) -> bytes:
    try:
        return orjson.dumps(alert.to_json_dict(), default=str)
    except Exception:
        return repr(alert).encode("utf-8", "replace")
