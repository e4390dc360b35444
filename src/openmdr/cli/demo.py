"""``openmdr generate`` and ``openmdr demo``: realistic multi-tenant telemetry and the story it tells."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openmdr.cli.common import UserError, console, err_console
from openmdr.config import load_settings
from openmdr.generator import GeneratorConfig, generate
from openmdr.replay import SimClock
from openmdr.runtime import Platform
from openmdr.story import StoryConfig, StoryReport, run_story


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


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def demo_command(
    ctx: typer.Context,
    seed: int = typer.Option(7, help="random seed of the generated week"),
    scale: float = typer.Option(1.0, min=0.01, help="background volume multiplier"),
    window_minutes: int = typer.Option(30, min=1, help="replay step: minutes of telemetry per batch"),
) -> None:
    """Run the whole MDR story on a generated multi-tenant week (embedded default, nothing to install).

    Generates a week of telemetry from three customers with attacks hidden in it, replays it
    in time order through the real pipeline at an accelerated clock (ingest, Sigma rules,
    indicators, behaviour analytics, cases, response under each tenant's delegated
    authority, the learning loop) and prints what happened per tenant.  The data stays in
    the data directory, so ``openmdr serve`` shows the same state afterwards.
    """
    obj = ctx.ensure_object(dict)
    settings = load_settings(data_dir=obj.get("data_dir"), database_url=obj.get("database_url"))
    out = settings.data_dir / "demo-telemetry"
    clock = SimClock(datetime.now(UTC))
    platform = Platform(settings, clock=clock)
    config = StoryConfig(seed=seed, scale=scale, window=timedelta(minutes=window_minutes))
    console.print(Panel.fit(
        "[bold]OpenMDR demo[/]: a week of telemetry from three customers, attacks hidden in it,\n"
        "replayed through detection, correlation and response at an accelerated clock",
    ))  # fmt: skip
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console,
    )  # fmt: skip
    task = progress.add_task("replay", total=None, visible=False)

    def stage(text: str) -> None:
        progress.console.print(f"[cyan]>[/] {text}")

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total, visible=True,
                        description=f"replay  [dim]{clock.now:%a %Y-%m-%d %H:%M} UTC[/]")  # fmt: skip

    from openmdr.gctuning import tune_gc_for_worker

    tune_gc_for_worker()  # this process is the whole platform's worker for the next minute
    try:
        with progress:
            report = run_story(platform, out, config, on_stage=stage, on_progress=advance)
        render_story(report)
    finally:
        platform.close()


def render_story(report: StoryReport) -> None:
    """Print the per-tenant summary, the attack chains' cases and timelines, and the measured result."""
    table = Table(title="per tenant", title_justify="left")
    for column in ("tenant", "events", "alerts (sigma/ioc/analytics)", "cases (high+)", "actions auto",
                   "approved", "awaiting", "shared IoCs", "retro-hunt", "MTTD", "MTTR", "off-hours"):  # fmt: skip
        table.add_column(column)
    for t in report.tenants:
        sla = t.sla
        high = sum(1 for c in t.cases if c.severity in ("high", "critical"))
        share = sla.off_hours_share if sla else None
        table.add_row(
            t.tenant.name, f"{t.events_stored:,}",
            f"{t.alerts.get('sigma', 0)}/{t.alerts.get('ioc', 0)}/{t.alerts.get('analytics', 0)}",
            f"{len(t.cases)} ({high})", str(t.automatic), str(t.approved), str(t.awaiting),
            str(t.indicators_shared), str(t.retro_hunt_hits), _duration(sla.mttd_s if sla else None),
            _duration(sla.mttr_s if sla else None), "-" if share is None else f"{share:.0%}",
        )  # fmt: skip
    console.print(table)
    if report.chains:
        chains = Table(title="the hidden attack chains (ground truth from labels.json)", title_justify="left")
        for column in ("chain", "tenant", "detected", "cases", "contained", "time to detect", "time to contain"):
            chains.add_column(column)
        for c in report.chains:
            contain = (c.contained_at - c.detected_at).total_seconds() if c.contained_at and c.detected_at else None
            chains.add_row(
                c.chain_id, c.tenant, "[green]yes" if c.detected else "[red]no", ", ".join(c.case_ids) or "-",
                "[green]yes" if c.contained else "no", _duration(c.time_to_detect_s), _duration(contain),
            )  # fmt: skip
        console.print(chains)
    for s in report.shared:
        hunted = ", ".join(s["retro_hunt_tenants"]) or "no other tenant"
        held = f", {len(s['held_for_review'])} too common to share unattended" if s["held_for_review"] else ""
        console.print(f"learning loop: case {s['case_id']} ({s['tenant']}) shared {len(s['shared'])} indicators "
                      f"({s['withheld']} withheld as tenant-private{held}); retro-hunt hits in: {hunted}")  # fmt: skip
    if report.benign_contained:
        console.print(f"[red]{len(report.benign_contained)} actions touched things outside the attack chains")
    secs = report.seconds
    console.print(
        f"[bold green]done[/] in {secs.get('total', 0):.0f}s (generate {secs.get('generate', 0):.0f}s, "
        f"parse {secs.get('parse', 0):.0f}s, replay {secs.get('replay', 0):.0f}s).  Next: "
        "openmdr cases list --tenant acme;  openmdr serve"
    )
