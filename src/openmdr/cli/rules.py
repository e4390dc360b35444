"""``openmdr rules``: install, check and version the Sigma library; per-tenant overrides."""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path

import httpx
import orjson
import typer
from rich.table import Table

from openmdr.cli.common import UserError, console, platform, user_errors
from openmdr.detect import Engine, RuleLibrary, check_rules, default_cache_dir, default_library, load_rules
from openmdr.store.rules import RuleStore

rules_app = typer.Typer(
    help="The Sigma rule library: install, check, versions, tenant overrides.", no_args_is_help=True
)

#: Largest rule archive downloaded by ``rules install URL``.
MAX_DOWNLOAD_BYTES = 256 << 20
ACTOR = "cli"


def fetch_library(source: str, timeout: float = 60.0) -> RuleLibrary:
    """Read a library from a directory, file or release zip, or download one from an http(s) URL."""
    scheme = urllib.parse.urlparse(source).scheme.lower()
    if scheme not in ("http", "https"):
        return load_rules([source])
    with tempfile.TemporaryDirectory(prefix="openmdr-rules-") as tmp:
        name = Path(urllib.parse.urlparse(source).path).name or "rules.zip"
        target = Path(tmp) / name
        size = 0
        try:
            with httpx.stream("GET", source, timeout=timeout, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise UserError(f"download of {source} failed: HTTP {response.status_code}")
                with target.open("wb") as fh:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD_BYTES:
                            raise UserError(f"{source} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise UserError(f"download of {source} failed: {exc}") from exc
        return load_rules([target])


def _store(ctx: typer.Context) -> RuleStore:
    return RuleStore(platform(ctx).state)


def active_library(ctx: typer.Context) -> RuleLibrary:
    """The active installed library, else the built-in rule pack."""
    library = _store(ctx).library()
    return library if library is not None else default_library()


@rules_app.command("install")
@user_errors
def install_command(
    ctx: typer.Context, source: str = typer.Argument(..., help="directory, .yml, release .zip or URL")
) -> None:
    """Install a library as the next active version (checked first; unusable rules are listed)."""
    library = fetch_library(source)
    if not library.sources:
        raise UserError(f"no Sigma rule files in {source}")
    report = check_rules(library, Engine(cache_dir=default_cache_dir()))
    info = _store(ctx).install(library, source, ACTOR)
    console.print(
        f"installed ruleset version {info.version}: {report.rule_files:,} files, {report.evaluable:,} evaluable rules, "
        f"{len(report.problems):,} not evaluable (see: openmdr rules check)"
    )


@rules_app.command("check")
@user_errors
def check_command(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(None, help="library to check (default: the active one)"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """Counts of what a library holds, and every rule that is not evaluated with its reason."""
    library = (
        fetch_library(paths[0]) if paths and len(paths) == 1 else (load_rules(paths) if paths else active_library(ctx))
    )
    report = check_rules(library, Engine(cache_dir=default_cache_dir()))
    if as_json:
        print(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2, default=str).decode())
        return
    console.print(
        f"[bold]{report.rule_files:,}[/] files, {report.rules:,} detection rules, {report.correlation_rules:,} "
        f"correlation rules: [green]{report.evaluable:,} evaluable[/], {len(report.problems):,} not "
        f"({report.compile_seconds:.1f}s{', cached' if report.from_cache else ''})"
    )
    for title, counts in (("status", report.by_status), ("level", report.by_level), ("product", report.by_product)):
        console.print(
            f"  {title}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        )
    if report.problems:
        table = Table("status", "rule", "file", "reason")
        for p in report.problems:
            table.add_row(p.status, p.rule_id or "-", p.path, p.reason)
        console.print(table)
    if report.notes:
        console.print(f"  {len(report.notes):,} notes (e.g. rules without a Security-log variant); --json lists them")


@rules_app.command("list")
@user_errors
def list_command(ctx: typer.Context) -> None:
    """Installed ruleset versions (the active one marked)."""
    table = Table("version", "active", "files", "installed", "by", "source", "sha256")
    for v in _store(ctx).versions():
        table.add_row(
            str(v.version),
            "*" if v.active else "",
            f"{v.rule_files:,}",
            v.installed_at.isoformat(timespec="seconds"),
            v.installed_by,
            v.source,
            v.content_hash[:12],
        )
    console.print(table)


@rules_app.command("activate")
@user_errors
def activate_command(ctx: typer.Context, version: int = typer.Argument(..., help="installed version")) -> None:
    """Make an installed version active (roll back or forward)."""
    info = _store(ctx).activate(version, ACTOR)
    console.print(f"ruleset version {info.version} is active")


@rules_app.command("disable")
@user_errors
def disable_command(ctx: typer.Context, rule_id: str, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """Stop one rule from alerting for one tenant."""
    _store(ctx).set_enabled(tenant, rule_id, False, ACTOR)
    console.print(f"rule {rule_id} disabled for {tenant}")


@rules_app.command("enable")
@user_errors
def enable_command(ctx: typer.Context, rule_id: str, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """Let a disabled rule alert again for one tenant."""
    _store(ctx).set_enabled(tenant, rule_id, True, ACTOR)
    console.print(f"rule {rule_id} enabled for {tenant}")


@rules_app.command("severity")
@user_errors
def severity_command(
    ctx: typer.Context,
    rule_id: str,
    severity: str = typer.Argument(..., help="informational|low|medium|high|critical, or 'reset'"),
    tenant: str = typer.Option(..., "--tenant", "-t"),
) -> None:
    """Override the severity of one rule's alerts for one tenant."""
    _store(ctx).set_severity(tenant, rule_id, None if severity == "reset" else severity, ACTOR)
    console.print(f"rule {rule_id} severity for {tenant}: {severity}")


@rules_app.command("exception-add")
@user_errors
def exception_add_command(
    ctx: typer.Context,
    filter_file: Path = typer.Argument(..., help="Sigma filter YAML (filter: rules/selection/condition)"),
    tenant: str = typer.Option(..., "--tenant", "-t"),
) -> None:
    """Add a tenant exception written as a Sigma filter."""
    info = _store(ctx).add_exception(tenant, filter_file.read_text(), ACTOR)
    console.print(f"exception {info.id} ({info.title}) added for {tenant}")


@rules_app.command("exception-list")
@user_errors
def exception_list_command(ctx: typer.Context, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """The tenant's exceptions."""
    table = Table("id", "title", "created", "by")
    for e in _store(ctx).exceptions(tenant):
        table.add_row(str(e.id), e.title, e.created_at.isoformat(timespec="seconds"), e.created_by)
    console.print(table)


@rules_app.command("exception-remove")
@user_errors
def exception_remove_command(
    ctx: typer.Context, exception_id: int, tenant: str = typer.Option(..., "--tenant", "-t")
) -> None:
    """Remove one of the tenant's exceptions."""
    _store(ctx).remove_exception(tenant, exception_id, ACTOR)
    console.print(f"exception {exception_id} removed for {tenant}")
