"""``openmdr tenants|assets|tokens``: the tenants, their inventory and their ingest credentials."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from openmdr.cli.common import UserError, console, platform, user_errors
from openmdr.models import TenantInfo

tenants_app = typer.Typer(help="Create and inspect tenants.", no_args_is_help=True)
assets_app = typer.Typer(help="A tenant's asset inventory.", no_args_is_help=True)
tokens_app = typer.Typer(help="Per-tenant ingest tokens for the HTTP ingest endpoint.", no_args_is_help=True)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(text: str) -> tuple[int, int]:
    """Parse working hours ``"8-18"`` into ``(8, 18)``."""
    try:
        start, end = (int(x) for x in text.split("-", 1))
    except ValueError:
        raise UserError(f"working hours must look like 8-18, got {text!r}") from None
    if not (0 <= start < end <= 24):
        raise UserError(f"working hours must satisfy 0 <= start < end <= 24, got {text!r}")
    return start, end


def parse_days(text: str) -> tuple[int, ...]:
    """Parse working days ``"mon-fri"`` or ``"mon,tue,sat"`` into weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for part in text.lower().split(","):
        bounds = part.strip().split("-")
        try:
            idx = [DAY_NAMES.index(b.strip()[:3]) for b in bounds]
        except ValueError:
            raise UserError(f"unknown day in {text!r}; use mon..sun") from None
        if len(idx) == 1:
            days.add(idx[0])
        else:
            days.update(range(idx[0], idx[1] + 1))
    return tuple(sorted(days))


def _validate_networks(networks: list[str]) -> tuple[str, ...]:
    try:
        return tuple(str(ipaddress.ip_network(n, strict=False)) for n in networks)
    except ValueError as exc:
        raise UserError(f"bad network: {exc}") from None


@tenants_app.command("add")
@user_errors
def tenants_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="tenant key: lower-case letters, digits, - and _"),
    display_name: str = typer.Option("", "--display-name", help="name shown to people"),
    timezone: str = typer.Option("UTC", help="IANA time zone of the tenant's working hours"),
    hours: str = typer.Option("8-18", help="working hours, local time, e.g. 8-18"),
    days: str = typer.Option("mon-fri", help="working days, e.g. mon-fri"),
    network: list[str] = typer.Option([], "--network", "-n", help="internal network CIDR (repeatable)"),
    domain: list[str] = typer.Option([], "--domain", "-d", help="e-mail/AD domain (repeatable)"),
    retention_days: int | None = typer.Option(None, help="days of events kept in the lake"),
) -> None:
    """Create a tenant."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown time zone {timezone!r}") from None
    info = TenantInfo(
        name=name, display_name=display_name or name, timezone=timezone, working_hours=parse_hours(hours),
        working_days=parse_days(days), networks=_validate_networks(network), domains=tuple(domain),
        retention_days=retention_days,
    )  # fmt: skip
    platform(ctx).state.create_tenant(info, actor="cli")
    console.print(f"[green]tenant {name} created")


@tenants_app.command("list")
@user_errors
def tenants_list(ctx: typer.Context) -> None:
    """List tenants with their event counts."""
    p = platform(ctx)
    counts = p.lake.counts()
    table = Table("tenant", "name", "time zone", "hours", "networks", "assets", "events")
    for t in p.state.list_tenants():
        table.add_row(
            t.name, t.display_name, t.timezone, f"{t.working_hours[0]}-{t.working_hours[1]}",
            ", ".join(t.networks), str(len(p.state.list_assets(t.name))), f"{counts.get(t.name, 0):,}",
        )  # fmt: skip
    console.print(table)


@tenants_app.command("show")
@user_errors
def tenants_show(ctx: typer.Context, name: str) -> None:
    """Show one tenant and what its lake holds."""
    p = platform(ctx)
    info = p.state.get_tenant(name)
    if info is None:
        raise UserError(f"unknown tenant {name!r}")
    summary = p.lake.tenant_summary(name)
    table = Table(show_header=False)
    for key, value in (
        ("tenant", info.name), ("name", info.display_name), ("time zone", info.timezone),
        ("working hours", f"{info.working_hours[0]}-{info.working_hours[1]}"),
        ("working days", ",".join(DAY_NAMES[d] for d in info.working_days)),
        ("networks", ", ".join(info.networks) or "-"), ("domains", ", ".join(info.domains) or "-"),
        ("retention days", str(info.retention_days or p.settings.lake.default_retention_days)),
        ("assets", str(len(p.state.list_assets(name)))), ("events", f"{summary['events']:,}"),
        ("first event", str(summary["first_time"] or "-")), ("last event", str(summary["last_time"] or "-")),
        ("by format", ", ".join(f"{k} {v:,}" for k, v in summary["by_source_format"].items()) or "-"),
    ):  # fmt: skip
        table.add_row(key, value)
    console.print(table)


@assets_app.command("import")
@user_errors
def assets_import(
    ctx: typer.Context,
    csv_path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV: hostname,ip,owner,criticality,asset_class,has_edr,tags"
    ),
    tenant: str = typer.Option(..., "--tenant", "-t"),
) -> None:
    """Import or update a tenant's asset inventory from CSV; bad rows are listed, not skipped silently."""
    p = platform(ctx)
    if p.state.get_tenant(tenant) is None:
        raise UserError(f"unknown tenant {tenant!r}")
    report = p.state.import_assets_csv(tenant, csv_path, actor="cli")
    console.print(f"[green]{report.imported} assets imported for {tenant}")
    for line_no, reason in report.rejected:
        console.print(f"[red]line {line_no}: {reason}")
    if report.rejected:
        raise typer.Exit(1)


@assets_app.command("list")
@user_errors
def assets_list(ctx: typer.Context, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """List a tenant's assets."""
    table = Table("hostname", "ips", "owner", "criticality", "class", "EDR")
    for a in platform(ctx).state.list_assets(tenant):
        table.add_row(a.hostname, " ".join(a.ips), a.owner or "", a.criticality, a.asset_class,
                      "yes" if a.has_edr else "[red]no")  # fmt: skip
    console.print(table)


@tokens_app.command("create")
@user_errors
def tokens_create(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t"),
    name: str = typer.Option(..., "--name", help="what the token is for, e.g. the sender"),
    expires_days: int | None = typer.Option(None, help="days until the token expires"),
) -> None:
    """Create an ingest token; the secret is printed once and only its hash is kept."""
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    secret = platform(ctx).state.create_ingest_token(tenant, name, actor="cli", expires_at=expires)
    console.print(f"[green]ingest token {name} for {tenant} (shown once):")
    console.print(secret, soft_wrap=True)


@tokens_app.command("list")
@user_errors
def tokens_list(ctx: typer.Context, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """List a tenant's ingest tokens (never their secrets)."""
    table = Table("name", "created", "created by", "expires", "revoked", "active")
    for tok in platform(ctx).state.list_ingest_tokens(tenant):
        table.add_row(tok.name, f"{tok.created_at:%Y-%m-%d %H:%M}", tok.created_by,
                      f"{tok.expires_at:%Y-%m-%d %H:%M}" if tok.expires_at else "never",
                      f"{tok.revoked_at:%Y-%m-%d %H:%M}" if tok.revoked_at else "",
                      "yes" if tok.active else "[red]no")  # fmt: skip
    console.print(table)


@tokens_app.command("revoke")
@user_errors
def tokens_revoke(ctx: typer.Context, name: str, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """Revoke an ingest token."""
    platform(ctx).state.revoke_ingest_token(tenant, name, actor="cli")
    console.print(f"[yellow]token {name} of {tenant} revoked")
