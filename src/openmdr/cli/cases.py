"""``openmdr cases|alerts``: work cases (list, show with the kill-chain timeline, merge, split, lifecycle),
inspect alerts, load alert files and manage suppressions, always scoped to one tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

from openmdr.cli.common import UserError, console, platform
from openmdr.correlate.service import CaseService
from openmdr.correlate.timeline import Timeline
from openmdr.models.alert import Alert
from openmdr.models.case import Case
from openmdr.store.errors import StoreError

cases_app = typer.Typer(help="Cases: one attack each, with why its alerts were grouped.", no_args_is_help=True)
alerts_app = typer.Typer(help="Triaged alerts and suppression rules.", no_args_is_help=True)

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}
TenantOpt = typer.Option(..., "--tenant", "-t", help="tenant the case belongs to")
ActorOpt = typer.Option("cli", "--actor", help="who does it (kept in the audit trail)")


def _service(ctx: typer.Context) -> CaseService:
    return platform(ctx).cases


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the store's not-found/conflict/validation errors into one red line."""
    try:
        yield
    except (StoreError, LookupError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _sev(severity: str) -> Text:
    return Text(severity, style=_SEVERITY_STYLE.get(severity, ""))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds)))


def _entity_summary(entities: dict[str, Any]) -> str:
    """``host=ws01 user=alice dst_ip=203.0.113.5`` with process paths shortened to their names."""
    parts = []
    for key in ("host", "user", "src_ip", "dst_ip", "domain", "process", "hash"):
        value = entities.get(key)
        if value is None or value == "":
            continue
        values = value if isinstance(value, list) else [value]
        shown = [str(v).replace("\\", "/").rsplit("/", 1)[-1] if key == "process" else str(v) for v in values[:2]]
        parts.append(f"{key}={','.join(shown)}" + ("…" if len(values) > 2 else ""))
    return " ".join(parts[:4])


def _require(case: Case | None, case_id: str, tenant: str) -> Case:
    if case is None:
        raise UserError(f"tenant {tenant!r} has no case {case_id!r}")
    return case


@cases_app.command("list")
def cases_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="one tenant (default: every tenant)"),
    status: str | None = typer.Option(None, help="new, acknowledged, contained or resolved"),
    open_only: bool = typer.Option(False, "--open", help="only cases not resolved"),
    min_severity: str | None = typer.Option(None, "--min-severity", help="e.g. medium"),
    limit: int = typer.Option(50, help="most cases shown"),
) -> None:
    """The case queue: priority first, then most recently updated."""
    with _user_errors():
        found = _service(ctx).list(
            tenant, status, limit, open_only=open_only, min_severity=min_severity, provider_wide=tenant is None
        )
    table = Table(
        Column("case", no_wrap=True, min_width=12),
        "tenant",
        "P",
        "severity",
        "risk",
        "status",
        "alerts",
        "channels",
        "title",
        "updated",
    )
    for c in found:
        table.add_row(
            c.case_id,
            c.tenant,
            str(c.priority),
            _sev(c.severity),
            f"{c.risk_score:.0f}",
            c.status + (f" ({c.resolution})" if c.resolution else ""),
            str(len(c.alert_ids)),
            ",".join(c.channels),
            c.title,
            _when(c.updated_at),
        )
    console.print(table)
    if not found:
        console.print("[dim]no cases")


def render_case(case: Case, timeline: Timeline | None) -> None:
    """Print a case: header, SLA clock, observables, grouping reasons and the kill-chain timeline."""
    sla = case.sla
    head = Table.grid(padding=(0, 2))
    head.add_row("tenant", case.tenant, "status", case.status + (f" ({case.resolution})" if case.resolution else ""))
    head.add_row("severity", _sev(case.severity), "priority", f"P{case.priority}  risk {case.risk_score:.0f}/100")
    head.add_row("assignee", case.assignee or "-", "channels", ", ".join(case.channels) or "-")
    head.add_row("first event", _when(sla.first_event_at), "detected", _when(sla.detected_at))
    head.add_row("acknowledged", _when(sla.acknowledged_at), "contained", _when(sla.contained_at))
    head.add_row("resolved", _when(sla.resolved_at), "time to detect", _span(sla.time_to_detect()))
    head.add_row("time to contain", _span(sla.time_to_contain()), "time to resolve", _span(sla.time_to_resolve()))
    if case.merged_into:
        head.add_row("merged into", case.merged_into, "", "")
    console.print(Panel(head, title=f"[bold]{case.case_id}[/]  {case.title}", expand=False))
    if timeline is not None and timeline.progression:
        chain = Text()
        for i, stage in enumerate(timeline.progression):
            if i:
                chain.append("  →  ", style="dim")
            chain.append(stage.name, style="bold magenta")
            chain.append(f" {_when(stage.first_seen)[11:16]}", style="dim")
        console.print(Panel(chain, title=f"kill chain (ATT&CK {timeline.attack_version})", expand=False))
    if timeline is not None:
        table = Table(
            Column("time (UTC)", no_wrap=True), "", "tactic", "technique", "what", "entities", title="timeline"
        )
        for e in timeline.entries:
            tactic = ", ".join(name for _, name in e.tactics)
            technique = ", ".join(f"{tid} {name}" for tid, name in e.techniques)
            ents = _entity_summary(e.entities)
            if e.kind == "alert":
                what = Text(e.title)
                what.append(f"  [{e.channel}/{e.source}" + (f" x{e.count}" if e.count > 1 else "") + "]", style="dim")
                table.add_row(_when(e.time)[5:], _sev(e.severity or ""), tactic, technique, what, ents)
            else:
                table.add_row(_when(e.time)[5:], Text("event", style="dim"), "", "", Text(e.title, style="dim"), ents)
        console.print(table)
        if timeline.events_missing:
            console.print(f"[dim]{timeline.events_missing} evidence events are no longer in the lake")
    if case.observables:
        obs = Table("type", "value", "role", "scope", title="observables")
        for o in case.observables[:40]:
            obs.add_row(o.type, o.value, o.role or "", "internal" if o.internal else "[bold]external")
        console.print(obs)
    if case.reasons:
        console.print("[bold]why these alerts are one case")
        for reason in case.reasons[-15:]:
            console.print(f"  • {reason}")
    for note in case.notes:
        console.print(f"[bold]note[/] {_when(note.time)} {note.author}: {note.text}")


@cases_app.command("show")
def cases_show(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="case id, e.g. C-1a2b3c4d5e"),
    tenant: str = TenantOpt,
    events: bool = typer.Option(True, "--events/--no-events", help="include evidence events from the lake"),
) -> None:
    """Show a case with its kill-chain timeline."""
    service = _service(ctx)
    with _user_errors():
        case = _require(service.get(tenant, case_id), case_id, tenant)
        timeline = service.timeline(tenant, case_id, with_events=events)
    render_case(case, timeline)


def _act(ctx: typer.Context, fn: Callable[[CaseService], Case], message: str) -> None:
    with _user_errors():
        case = fn(_service(ctx))
    console.print(
        f"[green]{message}[/] {case.case_id}: {case.status}" + (f" ({case.resolution})" if case.resolution else "")
    )


@cases_app.command("ack")
def cases_ack(ctx: typer.Context, case_id: str, tenant: str = TenantOpt, actor: str = ActorOpt) -> None:
    """Acknowledge a case (starts the analyst's clock)."""
    _act(ctx, lambda s: s.acknowledge(tenant, case_id, actor), "acknowledged")


@cases_app.command("contain")
def cases_contain(ctx: typer.Context, case_id: str, tenant: str = TenantOpt, actor: str = ActorOpt) -> None:
    """Mark a case contained."""
    _act(ctx, lambda s: s.mark_contained(tenant, case_id, actor), "contained")


@cases_app.command("assign")
def cases_assign(
    ctx: typer.Context, case_id: str, assignee: str, tenant: str = TenantOpt, actor: str = ActorOpt
) -> None:
    """Assign a case to an analyst."""
    _act(ctx, lambda s: s.assign(tenant, case_id, assignee, actor), f"assigned to {assignee}")


@cases_app.command("note")
def cases_note(ctx: typer.Context, case_id: str, text: str, tenant: str = TenantOpt, actor: str = ActorOpt) -> None:
    """Add a note to a case."""
    _act(ctx, lambda s: s.add_note(tenant, case_id, text, actor), "noted")


@cases_app.command("resolve")
def cases_resolve(
    ctx: typer.Context,
    case_id: str,
    resolution: str = typer.Option(..., "--as", help="true_positive, false_positive or benign"),
    tenant: str = TenantOpt,
    actor: str = ActorOpt,
) -> None:
    """Resolve a case."""
    _act(ctx, lambda s: s.resolve(tenant, case_id, resolution, actor), "resolved")


@cases_app.command("reopen")
def cases_reopen(
    ctx: typer.Context,
    case_id: str,
    tenant: str = TenantOpt,
    actor: str = ActorOpt,
    reason: str | None = typer.Option(None, help="why (kept as a note)"),
) -> None:
    """Reopen a resolved case."""
    _act(ctx, lambda s: s.reopen(tenant, case_id, actor, reason), "reopened")


@cases_app.command("merge")
def cases_merge(
    ctx: typer.Context,
    case_ids: list[str] = typer.Argument(..., help="target case first, then the cases merged into it"),
    tenant: str = TenantOpt,
    actor: str = ActorOpt,
) -> None:
    """Merge cases into the first one given."""
    _act(ctx, lambda s: s.merge(tenant, case_ids, actor), "merged into")


@cases_app.command("split")
def cases_split(
    ctx: typer.Context,
    case_id: str,
    alert_ids: list[str] = typer.Argument(..., help="alerts to move into a new case"),
    tenant: str = TenantOpt,
    actor: str = ActorOpt,
) -> None:
    """Split alerts out of a case into a new case."""
    _act(ctx, lambda s: s.split(tenant, case_id, alert_ids, actor), "new case")


# ------------------------------------------------------------------ alerts
@alerts_app.command("add")
def alerts_add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="alerts as JSON lines (openmdr scan --out)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="only load this tenant's alerts"),
) -> None:
    """Triage and correlate alerts from a JSON-lines file; bad lines are reported, not skipped silently."""
    alerts: list[Alert] = []
    bad: list[tuple[int, str]] = []
    with path.open("rb") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = Alert.from_json_dict(orjson.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                bad.append((no, str(exc)[:200]))
                continue
            if tenant is None or item.tenant == tenant:
                alerts.append(item)
    changes = _service(ctx).add_alerts(alerts)
    counts: dict[str, int] = {}
    for ch in changes:
        counts[ch.kind] = counts.get(ch.kind, 0) + 1
    console.print(f"[green]{len(alerts)} alerts[/]: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for no, reason in bad[:20]:
        console.print(f"[red]line {no}: {reason}")
    if bad:
        raise typer.Exit(1)


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t"),
    case_id: str | None = typer.Option(None, "--case"),
    status: str | None = typer.Option(None, help="active or suppressed"),
    min_severity: str | None = typer.Option(None, "--min-severity"),
    limit: int = typer.Option(50),
) -> None:
    """A tenant's alerts, newest first."""
    with _user_errors():
        found = _service(ctx).list_alerts(
            tenant, case_id=case_id, status=status, min_severity=min_severity, limit=limit
        )
    table = Table("alert", "first seen", "severity", "risk", "source", "channel", "title", "count", "case")
    for s in found:
        a = s.alert
        table.add_row(
            a.alert_id[:12],
            _when(a.first_seen),
            _sev(a.severity),
            f"{s.risk_score:.0f}",
            a.source,
            s.channel,
            a.title,
            str(a.event_count) + (f" (+{s.dedup_count} dup)" if s.dedup_count else ""),
            s.case_id or (f"suppressed #{s.suppression_id}" if s.status == "suppressed" else "-"),
        )
    console.print(table)


@alerts_app.command("show")
def alerts_show(ctx: typer.Context, alert_id: str, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """One alert with its triage."""
    stored = _service(ctx).get_alert(tenant, alert_id)
    if stored is None:
        raise UserError(f"tenant {tenant!r} has no alert {alert_id!r}")
    data: dict[str, Any] = stored.alert.to_json_dict()
    data.update(
        risk_score=stored.risk_score,
        channel=stored.channel,
        dedup_count=stored.dedup_count,
        status=stored.status,
        case_id=stored.case_id,
        suppression_id=stored.suppression_id,
        duplicate_ids=list(stored.duplicate_ids),
    )
    console.print_json(orjson.dumps(data, default=str).decode())


@alerts_app.command("suppress")
def alerts_suppress(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t"),
    reason: str = typer.Option(..., "--reason", help="why these alerts are not worth a case"),
    rule_id: str | None = typer.Option(None, "--rule"),
    source: str | None = typer.Option(None, "--source"),
    entity: list[str] = typer.Option([], "--entity", help="key=value, e.g. host=ws01 (repeatable)"),
    hours: float | None = typer.Option(None, "--hours", help="expires after this many hours (default never)"),
    actor: str = ActorOpt,
) -> None:
    """Suppress matching alerts of a tenant, with a reason and an expiry."""
    entities: dict[str, str] = {}
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UserError(f"--entity must look like key=value, got {item!r}")
        entities[key.strip()] = value.strip()
    service = _service(ctx)
    expires = service.clock() + timedelta(hours=hours) if hours else None
    with _user_errors():
        sup = service.add_suppression(
            tenant, reason, actor, rule_id=rule_id, source=source, entities=entities, expires_at=expires
        )
    console.print(f"[green]suppression {sup.id} created[/] (expires {_when(sup.expires_at)})")


@alerts_app.command("suppressions")
def alerts_suppressions(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t"),
    active: bool = typer.Option(False, "--active"),
) -> None:
    """A tenant's suppression rules."""
    service = _service(ctx)
    now = service.clock()
    table = Table("id", "rule", "source", "entities", "reason", "by", "expires", "state", "hits")
    for s in service.list_suppressions(tenant, active_only=active):
        state = "active" if s.active(now) else "revoked" if s.revoked_at else "expired"
        table.add_row(
            str(s.id),
            s.rule_id or "*",
            s.source or "*",
            " ".join(f"{k}={v}" for k, v in s.entities.items()),
            s.reason,
            s.created_by,
            _when(s.expires_at),
            state,
            str(s.hits),
        )
    console.print(table)


@alerts_app.command("unsuppress")
def alerts_unsuppress(
    ctx: typer.Context, suppression_id: int, tenant: str = typer.Option(..., "--tenant", "-t"), actor: str = ActorOpt
) -> None:
    """Revoke a suppression rule."""
    with _user_errors():
        _service(ctx).revoke_suppression(tenant, suppression_id, actor)
    console.print(f"[green]suppression {suppression_id} revoked")
