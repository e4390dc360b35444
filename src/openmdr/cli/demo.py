"""``openmdr generate`` and ``openmdr demo``: realistic multi-tenant telemetry and the story it tells."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import orjson
import typer
from rich.panel import Panel
from rich.table import Table

from openmdr.cli.common import UserError, console, platform
from openmdr.cli.data import ingest_paths, print_ingest_report
from openmdr.generator import GeneratorConfig, generate
from openmdr.models import TenantInfo
from openmdr.pipeline import IngestReport
from openmdr.runtime import Platform


def _config(tenants: int, days: int, seed: int, scale: float, start: str | None) -> GeneratorConfig:
    kwargs: dict[str, object] = {"tenants": tenants, "days": days, "seed": seed, "scale": scale}
    if start:
        try:
            kwargs["start"] = date.fromisoformat(start)
        except ValueError:
            raise UserError(f"--start must be YYYY-MM-DD, got {start!r}") from None
    return GeneratorConfig(**kwargs)


def generate_command(
    out: Path = typer.Option(..., "--out", "-o", help="directory to write the telemetry into"),
    tenants: int = typer.Option(3, min=1, help="number of tenants"),
    days: int = typer.Option(7, min=1, help="days of activity"),
    seed: int = typer.Option(7, help="random seed (same seed, same bytes)"),
    scale: float = typer.Option(1.0, min=0.01, help="background volume multiplier"),
    start: str | None = typer.Option(None, help="first day, YYYY-MM-DD"),
) -> None:
    """Write a week of realistic multi-tenant telemetry with labelled attack chains."""
    started = time.perf_counter()
    with console.status("generating telemetry"):
        manifest = generate(out, _config(tenants, days, seed, scale, start))
    console.print(f"[green]wrote {out}[/] in {time.perf_counter() - started:.1f}s")
    console.print(manifest.summary(), highlight=False, markup=False)
    console.print(f"ground truth: {out / 'labels.json'}")


def load_generated_tenants(out: Path) -> list[TenantInfo]:
    """Read ``tenants.json`` written by the generator into tenant records."""
    rows = orjson.loads((out / "tenants.json").read_bytes())
    tenants = []
    for row in rows:
        row = dict(row)
        for key in ("working_hours", "working_days", "networks", "domains"):
            if key in row and row[key] is not None:
                row[key] = tuple(row[key])
        tenants.append(TenantInfo(**{k: v for k, v in row.items() if k in TenantInfo.__slots__}))
    return tenants


def provision_tenants(p: Platform, out: Path) -> list[TenantInfo]:
    """Create (or update) the generated tenants and import their asset inventories."""
    tenants = load_generated_tenants(out)
    for info in tenants:
        if p.state.get_tenant(info.name) is None:
            p.state.create_tenant(info, actor="demo")
        else:
            p.state.update_tenant(info, actor="demo")
        assets = out / info.name / "assets.csv"
        if assets.is_file():
            report = p.state.import_assets_csv(info.name, assets, actor="demo")
            if report.rejected:
                console.print(f"[yellow]{info.name}: {len(report.rejected)} asset rows rejected")
    p.pipeline.refresh()
    return tenants


def demo_command(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", help="where to write the generated telemetry"),
    seed: int = typer.Option(7, help="random seed"),
    scale: float = typer.Option(1.0, min=0.01, help="background volume multiplier"),
) -> None:
    """Run the MDR story end to end on generated multi-tenant telemetry (embedded default)."""
    p = platform(ctx)
    out = out or p.settings.data_dir / "demo-telemetry"
    started = time.perf_counter()
    console.print(Panel.fit("[bold]OpenMDR demo[/]: a week of telemetry from several customers, attacks hidden in it"))
    with console.status("generating a week of multi-tenant telemetry"):
        manifest = generate(out, _config(3, 7, seed, scale, None))
    console.print(f"generated telemetry in {out} ({time.perf_counter() - started:.1f}s)")
    tenants = provision_tenants(p, out)
    total = IngestReport()
    for info in tenants:
        report = ingest_paths(ctx, [str(out / info.name)], info.name, None)
        total.add(report)
        print_ingest_report(report, title=info.name)
    table = Table("tenant", "time zone", "assets", "events in lake", "first event", "last event", "by source")
    for info in tenants:
        summary = p.lake.tenant_summary(info.name)
        by_format = summary.get("by_source_format") or summary.get("by_format") or {}
        table.add_row(
            info.name, info.timezone, str(len(p.state.list_assets(info.name))), f"{summary.get('events', 0):,}",
            str(summary.get("first_time", ""))[:19], str(summary.get("last_time", ""))[:19],
            ", ".join(f"{k} {v:,}" for k, v in sorted(by_format.items())),
        )  # fmt: skip
    console.print(table)
    chains = getattr(manifest, "chains", None) or []
    if chains:
        console.print(f"{len(chains)} labelled attack chains are hidden in this data (ground truth: {out / 'labels.json'})")
    console.print(
        f"[bold green]done[/] in {time.perf_counter() - started:.1f}s: {total.received:,} records, "
        f"{total.stored:,} stored, {total.duplicates:,} already present, {total.rejected:,} rejected.  "
        f"Try: openmdr query --tenant {tenants[0].name} \"SELECT host, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC\""
    )
