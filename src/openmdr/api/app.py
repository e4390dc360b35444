"""The HTTP service: health, readiness and the per-tenant ingest endpoint (more routes join later)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from openmdr import __version__
from openmdr.api.ingest import create_ingest_router
from openmdr.runtime import Platform


def create_app(platform: Platform) -> FastAPI:
    """Build the FastAPI application over ``platform``'s stores and pipeline."""
    app = FastAPI(title="OpenMDR", version=__version__, description="Multi-tenant Managed Detection and Response")

    def resolve(token: str) -> str | None:
        info = platform.state.resolve_ingest_token(token)
        return None if info is None else info.tenant

    app.include_router(
        create_ingest_router(platform.pipeline, resolve, platform.settings.api.max_batch_bytes),
        tags=["ingest"],
    )

    @app.get("/healthz", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["service"])
    def ready() -> JSONResponse:
        """Readiness: the state store answers and the lake directory is writable."""
        problems: list[str] = []
        try:
            platform.state.list_tenants()
        except Exception as exc:
            problems.append(f"state store: {type(exc).__name__}")
        lake_dir = platform.settings.lake_dir
        if not lake_dir.is_dir():
            problems.append("event lake directory missing")
        status = 503 if problems else 200
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)

    return app
