"""The ``openmdr`` command line: every surface of the platform from one terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from openmdr import __version__
from openmdr.cli.audit import audit_app
from openmdr.cli.cases import alerts_app, cases_app
from openmdr.cli.common import UserError, err_console
from openmdr.cli.data import deadletter_app, formats_command, ingest_command, lake_app, query_command
from openmdr.cli.demo import demo_command, generate_command
from openmdr.cli.intel import intel_app, leaks_app
from openmdr.cli.relay import relay_app
from openmdr.cli.respond import respond_app
from openmdr.cli.rules import rules_app
from openmdr.cli.scan import scan_command
from openmdr.cli.serve import serve_command
from openmdr.cli.tenants import assets_app, tenants_app, tokens_app
from openmdr.cli.users import apitokens_app, users_app
from openmdr.gctuning import tune_allocator

app = typer.Typer(
    name="openmdr",
    help="OpenMDR: multi-tenant Managed Detection and Response.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from openmdr._accelerated import ACCELERATED, compiled_in_use

        print(f"openmdr {__version__} (hot path compiled: {len(compiled_in_use())} of {len(ACCELERATED)} modules)")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="OPENMDR_DATA_DIR", help="data directory of the embedded default"
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENMDR_DATABASE_URL", help="state store URL (PostgreSQL for the service)"
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    """Global options shared by every command."""
    tune_allocator()  # batches free and reuse memory all at once (see openmdr.gctuning)
    ctx.ensure_object(dict).update(data_dir=data_dir, database_url=database_url)


app.add_typer(tenants_app, name="tenants")
app.add_typer(assets_app, name="assets")
app.add_typer(tokens_app, name="tokens")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(lake_app, name="lake")
app.add_typer(intel_app, name="intel")
app.add_typer(leaks_app, name="leaks")
app.add_typer(users_app, name="users")
app.add_typer(apitokens_app, name="apitokens")
app.add_typer(audit_app, name="audit")
app.add_typer(cases_app, name="cases")
app.add_typer(alerts_app, name="alerts")
app.add_typer(rules_app, name="rules")
app.add_typer(respond_app, name="respond")
app.add_typer(relay_app, name="relay")
app.command("ingest")(ingest_command)
app.command("query")(query_command)
app.command("formats")(formats_command)
app.command("generate")(generate_command)
app.command("demo")(demo_command)
app.command("serve")(serve_command)
app.command("scan")(scan_command)


def run() -> None:
    """Console entry point: run the CLI, turning user errors into one red line and exit code 2."""
    from openmdr.pipeline import UnknownTenantError
    from openmdr.store.errors import StoreError

    try:
        app()
    except (UserError, UnknownTenantError, FileNotFoundError, PermissionError, StoreError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise SystemExit(2) from None
