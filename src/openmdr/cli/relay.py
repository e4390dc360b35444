"""``openmdr relay serve``: the lab relay, the receiving side of the EDR and account-action webhooks."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from openmdr.cli.common import UserError, console

relay_app = typer.Typer(help="The lab relay: a signed-webhook EDR/IdP stand-in for labs and demos.",
                        no_args_is_help=True)  # fmt: skip


@relay_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int = typer.Option(8790, help="port"),
    secret_env: str = typer.Option("OPENMDR_LAB_RELAY_SECRET", help="environment variable holding the shared secret"),
    tenant: list[str] = typer.Option([], "--tenant", "-t", help="serve only these tenants (repeatable; default all)"),
    state_file: Path | None = typer.Option(None, help="JSON file keeping the state across restarts"),
    read_token_env: str | None = typer.Option(None, help="environment variable with a Bearer token for the GETs"),
    log_level: str = typer.Option("info", help="log level"),
) -> None:
    """Serve POST /edr/{tenant} and /actions/{tenant} (signed), GET /state/{tenant}, /journal, /healthz."""
    import uvicorn

    from openmdr.respond.relay import LabRelay

    secret = os.environ.get(secret_env)
    if not secret:
        raise UserError(f"environment variable {secret_env} (the shared webhook secret) is not set")
    read_token = os.environ.get(read_token_env) if read_token_env else None
    if read_token_env and not read_token:
        raise UserError(f"environment variable {read_token_env} (the read token) is not set")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    relay = LabRelay(secret, host, port, tenants=tenant or None, state_file=state_file, read_token=read_token)
    for problem in relay.core.problems:
        console.print(f"[yellow]warning:[/] {problem}")
    console.print(f"lab relay on http://{host}:{port}: EDR at /edr/<tenant>, accounts at /actions/<tenant>, "
                  f"state at /state/<tenant>")  # fmt: skip
    config = uvicorn.Config(relay.app, host=host, port=port, log_level=log_level.lower(), access_log=False)
    uvicorn.Server(config).run()  # every request is logged by the relay itself
