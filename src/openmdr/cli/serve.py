"""``openmdr serve``: the HTTP service and the syslog listener in one process."""

from __future__ import annotations

import typer

from openmdr.cli.common import console, platform


def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="HTTP bind address (default from config)"),
    port: int | None = typer.Option(None, help="HTTP port (default from config)"),
    syslog: bool = typer.Option(True, help="also run the syslog listener"),
) -> None:
    """Serve the HTTP API and ingest endpoint, and listen for syslog; Ctrl-C stops gracefully."""
    import uvicorn

    from openmdr.api.app import create_app
    from openmdr.ingest.syslog_listener import SyslogListener

    p = platform(ctx)
    p.lake  # noqa: B018  (create the lake directory before readiness is asked)
    app = create_app(p)
    listener = SyslogListener(p.pipeline, p.settings.syslog) if syslog else None
    if listener is not None:
        listener.start()
        console.print(f"syslog listening: {listener.describe() if hasattr(listener, 'describe') else 'on'}")
    try:
        uvicorn.run(app, host=host or p.settings.api.host, port=port or p.settings.api.port, log_level="info")
    finally:
        if listener is not None:
            listener.stop()
