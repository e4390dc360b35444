"""``openmdr audit``: read the tamper-evident audit trail and verify its hash chain."""

from __future__ import annotations

import orjson
import typer
from rich.table import Table

from openmdr.api.rbac import Principal
from openmdr.api.services import AuditService
from openmdr.cli.common import console, err_console, platform

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
OPERATOR = Principal.operator("cli")


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="only this tenant's records"),
    after: int = typer.Option(0, "--after", help="records after this sequence number"),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="one JSON record per line (with hashes)"),
) -> None:
    """List audit records in chain order."""
    records = AuditService(platform(ctx).state).list(OPERATOR, tenant, after, limit)
    if as_json:
        for r in records:
            print(orjson.dumps({"seq": r.seq, "time": r.time.isoformat(), "actor": r.actor, "action": r.action,
                                "tenant": r.tenant, "target": r.target, "details": r.details,
                                "prev_hash": r.prev_hash, "hash": r.hash}).decode())  # fmt: skip
        return
    table = Table("seq", "time", "actor", "action", "tenant", "target", "details")
    for r in records:
        details = orjson.dumps(r.details).decode()
        table.add_row(str(r.seq), f"{r.time:%Y-%m-%d %H:%M:%S}", r.actor, r.action, r.tenant or "", r.target or "",
                      details if len(details) <= 80 else details[:77] + "...")  # fmt: skip
    console.print(table)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Recompute the whole hash chain; exit 1 naming the first record edited, deleted or reordered."""
    result = AuditService(platform(ctx).state).verify(OPERATOR)
    if result.ok:
        console.print(f"[green]audit trail intact[/]: {result.records} records, head {result.head_hash}")
        return
    err_console.print(f"[red]audit trail broken at record {result.first_bad_seq}[/]: {result.problem}")
    raise typer.Exit(1)
