"""``openmdr intel`` and ``openmdr leaks``: indicators, feeds, allow-lists, sharing and retro-hunts."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import orjson
import typer
from rich.table import Table

from openmdr.cli.common import UserError, console, err_console, platform, user_errors
from openmdr.intel.exchange import (
    ImportReport,
    exportable,
    read_any,
    write_csv,
    write_misp,
    write_misp_feed,
    write_stix,
)
from openmdr.intel.leaks import LeakMonitor
from openmdr.intel.learning import LearningLoop
from openmdr.models.alert import Alert
from openmdr.models.indicator import INDICATOR_TYPES, Indicator, IndicatorError, infer_type, tlp_rank
from openmdr.store.intel import IntelStore

intel_app = typer.Typer(help="Threat-intelligence indicators, feeds, allow-lists, sharing and retro-hunts.",
                        no_args_is_help=True)  # fmt: skip
leaks_app = typer.Typer(help="Leaked-credential monitoring.", no_args_is_help=True)


class ExportFormat(StrEnum):
    """Indicator export formats."""

    stix = "stix"
    misp = "misp"
    misp_feed = "misp-feed"
    csv = "csv"


class ImportFormat(StrEnum):
    """Indicator import formats."""

    stix = "stix"
    misp = "misp"
    csv = "csv"


def _store(ctx: typer.Context) -> IntelStore:
    return IntelStore(platform(ctx).state)


def _need_tenant(ctx: typer.Context, tenant: str | None) -> None:
    if tenant is not None and platform(ctx).state.get_tenant(tenant) is None:
        raise UserError(f"unknown tenant {tenant!r}")


def _print_report(report: ImportReport, added: int, updated: int, refused: int) -> None:
    console.print(
        f"read {len(report.indicators):,} indicator(s): {added:,} added, {updated:,} updated, "
        f"{refused:,} refused (allow-listed), {len(report.rejected):,} rejected"
    )
    for reason, n in sorted(report.skipped.items()):
        console.print(f"  skipped {n:,}: {reason}")
    for rej in report.rejected[:10]:
        err_console.print(f"  rejected {rej.origin}: {rej.reason}", highlight=False)
    if len(report.rejected) > 10:
        err_console.print(f"  ... and {len(report.rejected) - 10:,} more rejected")


def _write_alerts(alerts: list[Alert], out: Path | None) -> None:
    if out is None:
        return
    with out.open("wb") as fh:
        for alert in alerts:
            fh.write(orjson.dumps(alert.to_json_dict()) + b"\n")
    console.print(f"wrote {len(alerts):,} alert(s) to {out}")


@intel_app.command("add")
@user_errors
def intel_add(
    ctx: typer.Context,
    value: str = typer.Argument(..., help="the indicator value"),
    kind: str | None = typer.Option(None, "--type", help=f"one of {', '.join(INDICATOR_TYPES)} (guessed if left out)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="only for this tenant (default: provider-wide)"),
    tlp: str = typer.Option("amber", help="TLP level: clear, green, amber, amber+strict, red"),
    confidence: int = typer.Option(50, min=0, max=100),
    tag: list[str] = typer.Option([], "--tag", help="tag (repeatable)"),
    source: str = typer.Option("manual", help="where the indicator comes from"),
    expires_days: int | None = typer.Option(None, "--expires-days", help="expire after this many days"),
    description: str | None = typer.Option(None),
) -> None:
    """Add (or refresh) one indicator."""
    _need_tenant(ctx, tenant)
    now = datetime.now(UTC)
    try:
        ind = Indicator(
            type=kind or infer_type(value), value=value, tenant=tenant, source=source, confidence=confidence, tlp=tlp,
            tags=list(tag), first_seen=now, last_seen=now, description=description,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )  # fmt: skip
    except IndicatorError as exc:
        raise UserError(str(exc)) from None
    report = _store(ctx).upsert_indicators([ind], "cli", now=now)
    if report.refused:
        raise UserError(f"{ind.value} is allow-listed: not added")
    console.print(f"{'added' if report.added else 'updated'} {ind.type} {ind.value} ({ind.id})")


@intel_app.command("import")
@user_errors
def intel_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, help="STIX bundle, MISP event, CSV file or MISP feed directory"),
    fmt: ImportFormat | None = typer.Option(None, "--format", "-f", help="format (guessed from the content)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="import for this tenant only"),
    source: str | None = typer.Option(None, help="feed name (default: the file name)"),
    tlp: str = typer.Option("amber", help="TLP of indicators that carry none"),
) -> None:
    """Import indicators from a file or MISP feed directory."""
    _need_tenant(ctx, tenant)
    name = source or path.stem
    try:
        report = read_any(path, fmt.value if fmt else None, tenant, name, tlp)
    except (ValueError, IndicatorError) as exc:
        raise UserError(str(exc)) from None
    store = _store(ctx)
    kind = "misp" if path.is_dir() else (fmt.value if fmt else "file")
    if store.get_source(name) is None:
        store.upsert_source(name, kind, "cli", url=str(path), default_tlp=tlp)
    result = store.upsert_indicators(report.indicators, "cli", source=name)
    _print_report(report, result.added, result.updated, len(result.refused))


@intel_app.command("export")
@user_errors
def intel_export(
    ctx: typer.Context,
    fmt: ExportFormat = typer.Option(ExportFormat.stix, "--format", "-f"),
    out: Path | None = typer.Option(None, "--out", "-o", help="file (directory for misp-feed); default stdout"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="export what this tenant sees, its own included"),
    max_tlp: str = typer.Option("green", "--max-tlp", help="most restricted TLP exported"),
) -> None:
    """Export indicators (TLP:AMBER+STRICT and RED never leave the provider, except to their own tenant)."""
    _need_tenant(ctx, tenant)
    now = datetime.now(UTC)
    visible = _store(ctx).list_indicators(tenant, active_at=now)
    chosen = exportable(visible, max_tlp)
    if tenant:
        chosen += [i for i in visible if i.tenant == tenant and tlp_rank(i.tlp) <= tlp_rank(max_tlp)]
    if fmt is ExportFormat.misp_feed:
        if out is None:
            raise UserError("misp-feed needs --out DIRECTORY")
        write_misp_feed(chosen, out)
        console.print(f"wrote a MISP feed of {len(chosen):,} indicator(s) to {out}")
        return
    data = {
        ExportFormat.stix: lambda: write_stix(chosen),
        ExportFormat.misp: lambda: write_misp(chosen),
        ExportFormat.csv: lambda: write_csv(chosen).encode(),
    }[fmt]()
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)
        console.print(f"wrote {len(chosen):,} indicator(s) to {out}")


@intel_app.command("list")
@user_errors
def intel_list(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="what this tenant sees (default: provider-wide)"),
    kind: str | None = typer.Option(None, "--type"),
    limit: int = typer.Option(50, help="most indicators shown"),
    json_out: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """List indicators."""
    _need_tenant(ctx, tenant)
    items = _store(ctx).list_indicators(tenant, kind=kind, limit=limit)
    if json_out:
        for i in items:
            sys.stdout.write(orjson.dumps(i.to_json_dict()).decode() + "\n")
        return
    table = Table("type", "value", "scope", "tlp", "conf", "source", "expires")
    table.add_column("id", no_wrap=True, min_width=36)
    for i in items:
        expires = i.expires_at.isoformat() if i.expires_at else ""
        table.add_row(i.type, i.value, i.tenant or "provider", i.tlp, str(i.confidence), i.source, expires, i.id)
    console.print(table)


@intel_app.command("allow")
@user_errors
def intel_allow(
    ctx: typer.Context,
    value: str | None = typer.Argument(None, help="value never to alert or block on"),
    kind: str | None = typer.Option(None, "--type"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="only for this tenant (default: provider-wide)"),
    reason: str = typer.Option("", help="why it is allowed (required to add)"),
    list_all: bool = typer.Option(False, "--list", help="list the entries that apply"),
    remove: str | None = typer.Option(None, "--remove", help="remove the entry with this id"),
) -> None:
    """Add, list or remove allow-list entries."""
    _need_tenant(ctx, tenant)
    store = _store(ctx)
    if remove:
        store.remove_allow(remove, "cli", tenant)
        console.print(f"removed {remove}")
        return
    if list_all or value is None:
        table = Table("type", "value", "scope", "reason", "by")
        table.add_column("id", no_wrap=True, min_width=36)
        for e in store.list_allow(tenant):
            table.add_row(e.type, e.value, e.tenant or "provider", e.reason, e.created_by, e.id)
        console.print(table)
        return
    if not reason:
        raise UserError("give a --reason for the allow-list entry")
    try:
        entry = store.add_allow(kind or infer_type(value), value, "cli", reason, tenant)
    except IndicatorError as exc:
        raise UserError(str(exc)) from None
    console.print(f"allow-listed {entry.type} {entry.value} ({entry.id})")


@intel_app.command("share")
@user_errors
def intel_share(
    ctx: typer.Context,
    proposal_ids: list[str] = typer.Argument(None, help="proposals to approve (none: list pending ones)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="the tenant whose case the proposals came from"),
    reject: bool = typer.Option(False, "--reject", help="reject instead of approving"),
    reason: str = typer.Option("", help="why (for --reject)"),
    tlp: str | None = typer.Option(None, help="share at this TLP instead of the proposed one"),
    analyst: str = typer.Option("cli", help="who decides"),
    days: int = typer.Option(30, help="retro-hunt depth in days"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write retro-hunt alerts as JSON lines"),
) -> None:
    """List pending sharing proposals, or approve (share + retro-hunt) or reject some."""
    _need_tenant(ctx, tenant)
    p = platform(ctx)
    store = _store(ctx)
    if not proposal_ids:
        pending = store.list_proposals(tenant, "proposed") if tenant else store.pending_proposals()
        table = Table("tenant", "case", "type", "value", "tlp", "conf")
        table.add_column("id", no_wrap=True, min_width=36)
        for prop in pending:
            table.add_row(prop.tenant, prop.case_id, prop.type, prop.value, prop.tlp, str(prop.confidence), prop.id)
        console.print(table)
        return
    if tenant is None:
        raise UserError("give the --tenant the proposals belong to")
    from openmdr.intel.learning import SharingPolicy

    loop = LearningLoop(p.state, p.lake, store=store, policy=SharingPolicy(retro_hunt_days=days))
    if reject:
        for pid in proposal_ids:
            loop.reject(tenant, pid, analyst, reason or "rejected by analyst")
        console.print(f"rejected {len(proposal_ids)} proposal(s)")
        return
    try:
        result = loop.approve(tenant, proposal_ids, analyst, tlp)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console.print(f"shared {len(result.shared)} indicator(s); retro-hunt raised {len(result.alerts)} alert(s)")
    _write_alerts(result.alerts, out)


@intel_app.command("retrohunt")
@user_errors
def intel_retrohunt(
    ctx: typer.Context,
    indicator_ids: list[str] = typer.Argument(..., help="indicator ids to hunt for"),
    days: int = typer.Option(30, help="how many days back"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="look ids up in this tenant's scope too"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the alerts as JSON lines"),
) -> None:
    """Hunt stored events of every tenant for indicators."""
    _need_tenant(ctx, tenant)
    p = platform(ctx)
    store = _store(ctx)
    indicators = [store.get_indicator(i, tenant) for i in indicator_ids]
    loop = LearningLoop(p.state, p.lake, store=store)
    alerts, run = loop.retro_hunt_run(indicators, days, trigger="cli")
    if run is not None:
        console.print(
            f"retro-hunt {run.id}: {run.tenants} tenant(s), {run.files} file(s), "
            f"{run.rows_matched:,} candidate row(s), {run.alerts} alert(s)"
        )
        for name, n in sorted(run.by_tenant.items()):
            console.print(f"  {name}: {n} alert(s)")
    _write_alerts(alerts, out)


@intel_app.command("taxii-pull")
@user_errors
def intel_taxii_pull(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="discovery URL (.../taxii2/) or API root URL"),
    collection: str | None = typer.Option(None, help="collection id (default: the first readable)"),
    user: str | None = typer.Option(None, envvar="OPENMDR_TAXII_USER"),
    password: str | None = typer.Option(None, envvar="OPENMDR_TAXII_PASSWORD"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="import for this tenant only"),
    source: str = typer.Option("taxii", help="feed name (remembers where the last pull ended)"),
    full: bool = typer.Option(False, "--all", help="pull everything, not only what was added since the last pull"),
) -> None:
    """Pull a TAXII 2.1 collection into the indicator store."""
    from openmdr.intel.taxii import pull_taxii

    _need_tenant(ctx, tenant)
    store = _store(ctx)
    known = store.get_source(source)
    since = None if full or known is None else known.last_pulled_at
    started = datetime.now(UTC)
    try:
        report = pull_taxii(url, collection, user, password, since, tenant, source)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:  # network and protocol errors of the remote server
        raise UserError(f"TAXII pull from {url} failed: {exc}") from None
    if known is None:
        store.upsert_source(source, "taxii", "cli", url=url, collection=collection)
    result = store.upsert_indicators(report.indicators, "cli", source=source)
    store.mark_pulled(source, started, "cli")
    _print_report(report, result.added, result.updated, len(result.refused))


@leaks_app.command("import")
@user_errors
def leaks_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON lines or CSV leak feed"),
    source: str | None = typer.Option(None, help="leak source name (default: the file name)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the alerts as JSON lines"),
) -> None:
    """Match a leaked-credential feed against every tenant's domains and users."""
    p = platform(ctx)
    report = LeakMonitor(p.state, p.lake).import_file(path, source, actor="cli")
    console.print(
        f"{report.records:,} record(s), {report.matched:,} matched a tenant, {report.new:,} new, "
        f"{len(report.rejected):,} rejected"
    )
    for name, n in sorted(report.by_tenant.items()):
        console.print(f"  {name}: {n} new leaked identit{'y' if n == 1 else 'ies'}")
    for rej in report.rejected[:10]:
        err_console.print(f"  rejected {rej.origin}: {rej.reason}", highlight=False)
    _write_alerts(report.alerts, out)
