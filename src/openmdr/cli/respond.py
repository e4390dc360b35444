"""``openmdr respond``: plan and run a case's response, approve or deny, roll back, list actions, edit the policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer
import yaml
from rich.table import Table

from openmdr.cli.common import UserError, console, platform
from openmdr.models.action import ActionRecord
from openmdr.models.alert import Alert
from openmdr.models.case import Case, Observable, SlaClock
from openmdr.respond.planner import ResponsePlan
from openmdr.respond.policy import PolicyError, parse_policy
from openmdr.respond.service import ResponseService
from openmdr.store.errors import StoreError

respond_app = typer.Typer(help="Response under delegated authority: plans, approvals, rollback, policy.",
                          no_args_is_help=True)  # fmt: skip
actions_app = typer.Typer(help="The tenant's response actions.", no_args_is_help=True)
policy_app = typer.Typer(help="The tenant's authority policy (versioned, audited).", no_args_is_help=True)
respond_app.add_typer(actions_app, name="actions")
respond_app.add_typer(policy_app, name="policy")

T = TypeVar("T")
_TENANT = typer.Option(..., "--tenant", "-t", help="tenant the case or action belongs to")
_ACTOR = typer.Option(..., "--as", help="who is acting (recorded in the audit trail)")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Store and policy errors are the user's to fix: one line, no traceback."""
    try:
        yield
    except (StoreError, PolicyError, LookupError) as exc:
        raise UserError(str(exc).strip("'\"")) from None


def _service(ctx: typer.Context) -> ResponseService:
    return platform(ctx).response


def case_from_json(data: dict[str, Any]) -> Case:
    """A case from its JSON form (the fields of :class:`~openmdr.models.case.Case`; times as ISO 8601)."""

    def ts(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None

    try:
        observables = [Observable(o["type"], str(o["value"]), bool(o.get("internal", False)), o.get("role"))
                       for o in data.get("observables") or []]  # fmt: skip
        sla = data.get("sla") or {}
        return Case(
            case_id=str(data["case_id"]), tenant=str(data["tenant"]), title=str(data.get("title") or data["case_id"]),
            severity=str(data.get("severity") or "medium"), status=str(data.get("status") or "new"),
            risk_score=float(data.get("risk_score") or 0.0), alert_ids=list(data.get("alert_ids") or []),
            observables=observables, entities={k: list(v) for k, v in (data.get("entities") or {}).items()},
            tactics=list(data.get("tactics") or []), techniques=list(data.get("techniques") or []),
            sources=list(data.get("sources") or []),
            sla=SlaClock(**{k: ts(sla.get(k)) for k in ("first_event_at", "detected_at", "acknowledged_at",
                                                         "contained_at", "resolved_at")}),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"not a case document: {exc}") from None


def _load_case(ctx: typer.Context, tenant: str, case_id: str, case_file: Path | None) -> tuple[Case, list[Alert]]:
    """The case from ``--case-file`` or from the case service (``openmdr.correlate``), with its alerts."""
    if case_file is not None:
        case = case_from_json(orjson.loads(case_file.read_bytes()))
        if case.tenant != tenant or case.case_id != case_id:
            raise UserError(f"{case_file} holds case {case.tenant}/{case.case_id}, not {tenant}/{case_id}")
        return case, []
    try:
        cases = platform(ctx).cases
    except ImportError:
        raise UserError("the case service (openmdr.correlate) is not part of this build: pass --case-file") from None
    found = cases.get(tenant, case_id)
    if found is None:
        raise UserError(f"tenant {tenant!r} has no case {case_id!r}")
    return found, list(cases.alerts(tenant, case_id))


def _print_plan(plan: ResponsePlan) -> None:
    clock = "working hours" if plan.working_time else "off hours"
    console.print(f"[bold]{plan.tenant}/{plan.case_id}[/]: policy v{plan.policy_version}, confidence "
                  f"{plan.confidence:.2f}, {clock} ({plan.at.isoformat()}); playbooks: "
                  f"{', '.join(plan.playbooks) or 'none match'}")  # fmt: skip
    table = Table("playbook", "step", "what", "target", "asset", "decision", "why")
    for item in plan.items:
        if item.gate:
            table.add_row(item.playbook, str(item.step), "wait for approval", "", "", "",
                          f"{item.params['timeout_minutes']} min for every later action")  # fmt: skip
        elif item.notify:
            table.add_row(item.playbook, str(item.step), f"notify {item.notify}", "", "", "", item.message or "")
        elif item.skipped:
            table.add_row(item.playbook, str(item.step), item.kind or "", "", "", "skip", item.skipped)
        else:
            d = item.decision
            asset = "/".join(x for x in (item.asset, item.asset_class, item.criticality) if x)
            verdict = "" if d is None else d.verdict + (f" x{d.approvals_required}" if d.approvals_required > 1 else "")
            table.add_row(item.playbook, str(item.step), item.kind or "", item.target or "", asset, verdict,
                          "" if d is None else d.reason)  # fmt: skip
    console.print(table)


def _print_actions(records: list[ActionRecord]) -> None:
    table = Table("action id", "case", "kind", "target", "status", "policy", "approvals", "deadline / executed")
    for r in records:
        when = r.executed_at or r.deadline_at
        table.add_row(r.action_id, r.case_id or "", r.kind, r.target, r.status, f"v{r.policy_version}",
                      f"{len(r.approvals)}/{r.approvals_required}" if r.approvals_required else "",
                      when.isoformat() if when else "")  # fmt: skip
    console.print(table)


def _run(fn: Callable[[], T]) -> T:
    with _user_errors():
        return fn()


@respond_app.command("plan")
def plan_command(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="the case to plan for"),
    tenant: str = _TENANT,
    case_file: Path | None = typer.Option(None, "--case-file", exists=True, dir_okay=False, help="case as JSON"),
    confidence: float | None = typer.Option(None, min=0, max=1, help="override the alerts' confidence"),
) -> None:
    """Show what would run for a case now, and why (changes nothing)."""
    case, alerts = _load_case(ctx, tenant, case_id, case_file)
    _print_plan(_run(lambda: _service(ctx).plan(case, alerts, confidence)))


@respond_app.command("run")
def run_command(
    ctx: typer.Context,
    case_id: str = typer.Argument(..., help="the case to respond to"),
    tenant: str = _TENANT,
    case_file: Path | None = typer.Option(None, "--case-file", exists=True, dir_okay=False, help="case as JSON"),
    confidence: float | None = typer.Option(None, min=0, max=1, help="override the alerts' confidence"),
    dry_run: bool = typer.Option(False, "--dry-run", help="record the plan, execute nothing"),
) -> None:
    """Respond to a case: run what is inside authority, queue the rest for approval."""
    case, alerts = _load_case(ctx, tenant, case_id, case_file)
    result = _run(lambda: _service(ctx).on_case(case, alerts, confidence, dry_run=dry_run))
    _print_actions(result.actions)
    state = "contained" if result.contained else "not contained yet"
    console.print(f"case {tenant}/{case_id}: {state}")


@respond_app.command("approve")
def approve_command(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="the action waiting for approval"),
    tenant: str = _TENANT,
    actor: str = _ACTOR,
    comment: str | None = typer.Option(None, help="why"),
) -> None:
    """Approve an action; it runs once enough distinct people approved."""
    record = _run(lambda: _service(ctx).approve(tenant, action_id, actor, comment))
    _print_actions([record])


@respond_app.command("deny")
def deny_command(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="the action waiting for approval"),
    tenant: str = _TENANT,
    actor: str = _ACTOR,
    reason: str | None = typer.Option(None, help="why not"),
) -> None:
    """Refuse an action: it will not run."""
    _print_actions([_run(lambda: _service(ctx).deny(tenant, action_id, actor, reason))])


@respond_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    action_id: str = typer.Argument(..., help="the executed action to undo"),
    tenant: str = _TENANT,
    actor: str = _ACTOR,
    reason: str | None = typer.Option(None, help="why"),
) -> None:
    """Undo an executed action, restoring the state it found."""
    record = _run(lambda: _service(ctx).rollback(tenant, action_id, actor, reason))
    _print_actions([record])
    if record.status != "rolled_back":
        raise UserError(record.error or "rollback failed")


@respond_app.command("tick")
def tick_command(ctx: typer.Context) -> None:
    """Escalate overdue approvals and expire old ones and old blocks now (the pipeline does this on a timer)."""
    _print_actions(_run(lambda: _service(ctx).tick()))


@respond_app.command("edl-token")
def edl_token_command(ctx: typer.Context, tenant: str = _TENANT, actor: str = _ACTOR) -> None:
    """Create (or replace) the tenant's EDL token for its firewalls; shown once."""
    token = _run(lambda: _service(ctx).store.create_edl_token(tenant, actor))
    console.print(token, highlight=False, soft_wrap=True)


@actions_app.command("list")
def actions_list(
    ctx: typer.Context,
    tenant: str = _TENANT,
    case_id: str | None = typer.Option(None, "--case", help="only this case"),
    status: list[str] = typer.Option([], "--status", help="only these statuses (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """List the tenant's actions, oldest first."""
    records = _run(lambda: _service(ctx).list_actions(tenant, case_id, status or None))
    if as_json:
        for r in records:
            print(orjson.dumps(r.to_json_dict(), default=str).decode())
        return
    _print_actions(records)


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    tenant: str = _TENANT,
    version: int | None = typer.Option(None, help="an older version"),
    history: bool = typer.Option(False, "--history", help="list the versions instead"),
) -> None:
    """Print the tenant's authority policy as YAML (or its version history)."""
    service = _service(ctx)
    if history:
        table = Table("version", "created", "by", "comment")
        for v in _run(lambda: service.store.policy_history(tenant)):
            table.add_row(str(v.version), v.created_at.isoformat() if v.created_at else "", v.created_by,
                          v.comment or "")  # fmt: skip
        console.print(table)
        return
    current = _run(lambda: service.get_policy(tenant) if version is None else
                   service.store.get_policy_version(tenant, version))  # fmt: skip
    print(f"# tenant {tenant}, policy version {current.version} ({current.created_by})")
    print(yaml.safe_dump(current.policy.to_dict(), sort_keys=False, allow_unicode=True), end="")


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="policy as YAML or JSON"),
    tenant: str = _TENANT,
    actor: str = _ACTOR,
    comment: str | None = typer.Option(None, help="why it changed"),
) -> None:
    """Store a new version of the tenant's authority policy (validated; audited with the whole document)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML/JSON: {exc}") from None
    with _user_errors():
        policy = parse_policy(doc)
        stored = _service(ctx).set_policy(tenant, policy, actor, comment)
    console.print(f"[green]tenant {tenant}: policy version {stored.version} stored")
