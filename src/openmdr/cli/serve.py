"""``openmdr serve``: the REST API, the HTTP ingest endpoint and the syslog listener in one process.

State lives in the embedded SQLite database of the data directory, or in PostgreSQL with
``--database-url``/``OPENMDR_DATABASE_URL``.  SIGINT/SIGTERM stop gracefully: the HTTP
server stops accepting, lets running requests finish (up to ``--grace`` seconds), then the
syslog listener drains what it has buffered into the pipeline, then the stores close.
"""

from __future__ import annotations

import typer

from openmdr.cli.common import console, platform


def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="HTTP bind address (default from config)"),
    port: int | None = typer.Option(None, help="HTTP port (default from config)"),
    syslog: bool = typer.Option(True, help="also run the syslog listener"),
    grace: float = typer.Option(30.0, help="seconds running requests get to finish on shutdown"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json), HTTP ingest, /metrics, and listen for syslog."""
    import uvicorn

    from openmdr.api.app import create_app
    from openmdr.ingest.syslog_listener import SyslogListener

    p = platform(ctx)
    p.lake  # noqa: B018  (create the lake directory before readiness is asked)
    app = create_app(p)
    bind_host = host or p.settings.api.host
    bind_port = port or p.settings.api.port
    from openmdr.gctuning import tune_gc_for_worker

    listener = SyslogListener(p.pipeline, p.settings.syslog) if syslog else None
    tune_gc_for_worker()  # a long-lived worker: freeze start-up objects, collect the young generation less often
    if listener is not None:
        listener.start()
        console.print(f"syslog: {listener.describe()}")
    backend = "PostgreSQL" if p.state.dialect == "postgresql" else "embedded SQLite"
    console.print(f"state store: {backend}; API and ingest on http://{bind_host}:{bind_port} (docs at /docs)")
    config = uvicorn.Config(
        app, host=bind_host, port=bind_port, log_level=log_level, timeout_graceful_shutdown=int(grace)
    )
    try:
        uvicorn.Server(config).run()
    finally:
        if listener is not None:
            listener.stop(timeout=grace)
            console.print(f"syslog stopped: {listener.counters()}")
