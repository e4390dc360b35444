"""``openmdr ingest|query|deadletter|lake``: get telemetry in, look at it, handle what was refused."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from enum import StrEnum

import orjson
import typer
from rich.table import Table

from openmdr.cli.common import UserError, byte_progress, console, err_console, platform, user_errors
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.normalize import known_formats
from openmdr.pipeline import IngestReport
from openmdr.store.errors import QueryError

deadletter_app = typer.Typer(help="Input that could not be read: list, inspect, replay.", no_args_is_help=True)
lake_app = typer.Typer(help="The event lake: summary, retention, compaction.", no_args_is_help=True)


def print_ingest_report(report: IngestReport, title: str = "ingest") -> None:
    """Print what became of a submission, with the accounting identity spelled out."""
    rate = report.received / report.seconds if report.seconds else 0.0
    console.print(
        f"[bold]{title}[/]: received {report.received:,} = stored {report.stored:,} "
        f"+ duplicates {report.duplicates:,} + rejected {report.rejected:,}"
        f"  ({rate:,.0f} records/s)"
    )
    if report.by_format:
        console.print("  formats: " + ", ".join(f"{k} {v:,}" for k, v in report.by_format.most_common()))
    for reason, n in report.rejection_reasons.most_common(10):
        console.print(f"  [red]rejected {n:,}[/]: {reason}  (see: openmdr deadletter list)")


def ingest_paths(
    ctx: typer.Context, paths: list[str], tenant: str, fmt: str | None, quiet: bool = False
) -> IngestReport:
    """Import files, directories, globs, .gz and .zip for ``tenant`` with a progress bar."""
    p = platform(ctx)
    sources = plan_sources(paths)
    if not sources:
        raise UserError(f"nothing to read at {' '.join(paths)}")
    total = sum(s.size for s in sources)
    with byte_progress() as progress:
        task = progress.add_task(f"ingest {tenant}", total=total, status="", visible=not quiet)

        def advance(n: int) -> None:
            progress.advance(task, n)

        def status(r: IngestReport) -> None:
            progress.update(task, status=f"{r.stored:,} stored, {r.rejected:,} rejected")

        report = p.pipeline.submit(tenant, read_sources(sources, fmt, on_progress=advance), on_batch=status)
        progress.update(task, completed=total)
    return report


@user_errors
def ingest_command(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="files, directories, globs, .gz or .zip archives"),
    tenant: str = typer.Option(..., "--tenant", "-t", help="tenant the data belongs to"),
    fmt: str | None = typer.Option(None, "--format", "-f", help="force a format instead of auto-detection"),
) -> None:
    """Import telemetry files into a tenant's event lake (formats are detected per file)."""
    if fmt is not None and fmt not in known_formats():
        raise UserError(f"unknown format {fmt!r}; known: {', '.join(known_formats())}")
    report = ingest_paths(ctx, paths, tenant, fmt)
    print_ingest_report(report)


class OutputFormat(StrEnum):
    """How query results are printed."""

    table = "table"
    json = "json"
    csv = "csv"


@user_errors
def query_command(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="DuckDB SQL over the view `events` (this tenant only)"),
    tenant: str = typer.Option(..., "--tenant", "-t"),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
    limit: int = typer.Option(1000, help="most rows printed"),
) -> None:
    """Run SQL over one tenant's events; the view `events` holds only that tenant's data."""
    p = platform(ctx)
    if p.state.get_tenant(tenant) is None:
        raise UserError(f"unknown tenant {tenant!r}")
    try:
        result = p.lake.query(tenant, sql)
    except QueryError as exc:
        raise UserError(f"query refused: {exc}") from None
    rows = result.slice(0, limit).to_pylist()
    if output is OutputFormat.json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.column_names)
        writer.writerows([[row[c] for c in result.column_names] for row in rows])
    else:
        table = Table(*result.column_names)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
        if result.num_rows > limit:
            err_console.print(f"({result.num_rows:,} rows, {limit:,} shown)")


@deadletter_app.command("list")
@user_errors
def deadletter_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t"),
    status: str = typer.Option("pending", help="pending, replayed or discarded"),
    limit: int = typer.Option(50),
) -> None:
    """List refused input with its reason and origin (file:offset, peer, token)."""
    p = platform(ctx)
    table = Table("id", "tenant", "received", "stage", "format", "size")
    table.add_column("origin", overflow="fold")  # never cut: it says where to look
    table.add_column("reason", overflow="fold")
    for d in p.state.list_dead_letters(tenant=tenant, status=status, limit=limit):
        table.add_row(str(d.id), d.tenant or "-", d.received_at.strftime("%Y-%m-%d %H:%M:%S"), d.stage,
                      d.format or "?", f"{d.size:,}", d.origin, d.reason)  # fmt: skip
    console.print(table)
    counts = p.state.dead_letter_counts(tenant)
    console.print("by reason: " + (", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"))


@deadletter_app.command("show")
@user_errors
def deadletter_show(
    ctx: typer.Context,
    dead_letter_id: int,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="only if it belongs to this tenant"),
    raw: bool = typer.Option(False, help="write the raw bytes to stdout"),
) -> None:
    """Show one dead letter: reason, origin, context and its payload (escaped unless --raw)."""
    state = platform(ctx).state
    letter = state.get_dead_letter(dead_letter_id, tenant=tenant)
    payload = state.get_dead_letter_payload(dead_letter_id, tenant=tenant)
    if raw:
        sys.stdout.buffer.write(payload)
        return
    for key in ("id", "tenant", "status", "stage", "format", "origin", "reason", "received_at", "size",
                "payload_sha256", "replay_count", "context"):  # fmt: skip
        console.print(f"[bold]{key}[/]: {getattr(letter, key)}", markup=True, highlight=False)
    console.print(repr(payload[:4096]) + (" ..." if len(payload) > 4096 else ""), soft_wrap=True, markup=False)


@deadletter_app.command("replay")
@user_errors
def deadletter_replay(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t"),
    ids: list[int] = typer.Option([], "--id", help="only these dead letters (repeatable)"),
) -> None:
    """Feed pending dead letters through the current parsers again (after a parser fix)."""
    report = platform(ctx).pipeline.replay(tenant=tenant, ids=ids or None)
    console.print(
        f"replayed {report.attempted:,}: {report.recovered:,} recovered into the lake, "
        f"{report.still_failing:,} still failing, {report.skipped:,} skipped"
    )
    for reason, n in report.reasons.most_common(10):
        console.print(f"  [red]{n:,}[/] {reason}")


@lake_app.command("summary")
@user_errors
def lake_summary(ctx: typer.Context, tenant: str | None = typer.Option(None, "--tenant", "-t")) -> None:
    """Events per tenant and day partition."""
    p = platform(ctx)
    tenants = [tenant] if tenant else sorted(p.lake.counts())
    table = Table("tenant", "date", "files", "events", "bytes")
    for t in tenants:
        for part in p.lake.partitions(t):
            table.add_row(t, str(part.date), str(part.files), f"{part.rows:,}", f"{part.bytes:,}")
    console.print(table)


@lake_app.command("retention")
@user_errors
def lake_retention(ctx: typer.Context, tenant: str | None = typer.Option(None, "--tenant", "-t")) -> None:
    """Delete day partitions older than each tenant's retention (or the default)."""
    p = platform(ctx)
    if tenant and p.state.get_tenant(tenant) is None:
        raise UserError(f"unknown tenant {tenant!r}")
    now = datetime.now(UTC)
    for info in p.state.list_tenants():
        if tenant and info.name != tenant:
            continue
        keep = info.retention_days or p.settings.lake.default_retention_days
        removed = p.lake.apply_retention(info.name, keep, now)
        p.state.audit("cli", "lake.retention", info.name, None, {"keep_days": keep, "rows_removed": removed})
        console.print(f"{info.name}: kept {keep} days, removed {removed:,} events")


@lake_app.command("compact")
@user_errors
def lake_compact(ctx: typer.Context, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """Merge small part files of every day partition of a tenant."""
    p = platform(ctx)
    for part in p.lake.partitions(tenant):
        if part.files > 1:
            p.lake.compact(tenant, part.date)
            console.print(f"{tenant} {part.date}: {part.files} files merged")


def formats_command() -> None:
    """List the formats the parsers read."""
    for name in known_formats():
        console.print(name)
