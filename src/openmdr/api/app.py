"""The HTTP service: REST API, HTTP ingest endpoint, health, readiness and Prometheus metrics.

Routers stay thin (:mod:`openmdr.api.routers`); every operation is a call into the
services of :mod:`openmdr.api.services`, which check the caller's permission on the
tenant and go through tenant-scoped stores.  The OpenAPI document is served at
``/openapi.json`` (interactive docs at ``/docs``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response

from openmdr import __version__
from openmdr.api.deps import Services, current_principal, install_error_handlers
from openmdr.api.ingest import IngestEndpointStats, create_ingest_router
from openmdr.api.metrics import PlatformMetrics
from openmdr.api.rbac import Principal, require
from openmdr.api.routers import auth, cases, provider, response, rules, tenants
from openmdr.runtime import Platform
from openmdr.store.identity import IdentityStore
from openmdr.store.state import StateStore


def create_app(platform: Platform, *, identity: IdentityStore | None = None) -> FastAPI:
    """Build the FastAPI application over ``platform``'s stores and pipeline.

    ``identity`` replaces the platform's identity store (tests pass one with a
    controllable clock and a cheap password hasher).
    """
    svc = Services.build(platform.state, identity or platform.identity, platform.lake)
    metrics = PlatformMetrics(
        platform.state,
        pipeline_totals=lambda: platform.pipeline.totals,
        open_cases=lambda: open_cases_per_tenant(platform.state),
    ).attach(platform.bus)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        metrics.close()

    app = FastAPI(
        title="OpenMDR", version=__version__, description="Multi-tenant Managed Detection and Response",
        lifespan=lifespan,
    )  # fmt: skip
    app.state.services = svc
    app.state.metrics = metrics
    install_error_handlers(app)

    def resolve(token: str) -> str | None:
        info = platform.state.resolve_ingest_token(token)
        return None if info is None else info.tenant

    ingest_stats = IngestEndpointStats()
    metrics.ingest_stats = ingest_stats
    app.include_router(
        create_ingest_router(platform.pipeline, resolve, platform.settings.api.max_batch_bytes, stats=ingest_stats),
        tags=["ingest"],
    )
    app.include_router(auth.router)
    app.include_router(tenants.router)
    app.include_router(provider.router)
    install_domain_routers(app, platform)
    install_protocol_routers(app, platform)

    @app.get("/healthz", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["service"], responses={503: {"description": "not ready"}})
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

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def prometheus(principal: Principal = Depends(current_principal)) -> Response:
        """Prometheus metrics per tenant (needs provider-wide metrics:read: they name every tenant)."""
        require(principal, "metrics:read", None)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def install_domain_routers(app: FastAPI, platform: Platform) -> None:
    """Cases and alerts, response, rules and indicators: thin routers over the stages' services."""
    from openmdr.api.domain import CaseWork, IndicatorWork, ResponseWork, RuleWork, SuppressionWork

    app.state.domain = {
        "cases": CaseWork(platform.cases, platform.state),
        "suppressions": SuppressionWork(platform.cases),
        "response": ResponseWork(platform.response),
        "rules": RuleWork(
            platform.rules, lambda tenant: _reload_overrides(platform, tenant), lambda: _follow_library(platform)
        ),
        "indicators": IndicatorWork(platform.intel, lambda: platform.learning),
    }
    app.include_router(cases.router)
    app.include_router(response.router)
    app.include_router(rules.router)


#: ``user:password[,user:password]`` of the TAXII 2.1 clients allowed to pull the shared collection.
TAXII_CREDENTIALS_ENV = "OPENMDR_TAXII_CREDENTIALS"


def install_protocol_routers(app: FastAPI, platform: Platform) -> None:
    """Endpoints that external systems poll with their own credentials (not part of the REST API document).

    * ``/edl/...``: every tenant's block lists as External Dynamic Lists for firewalls, each
      list behind its per-tenant token (``openmdr respond edl-token``);
    * ``/taxii2/`` and ``/intel/...``: the provider's shared indicator collection over TAXII 2.1, mounted only
      when ``OPENMDR_TAXII_CREDENTIALS`` names the clients (basic authentication), so the
      collection is never served anonymously.
    """
    from openmdr.intel.taxii import taxii_router
    from openmdr.respond.edl import create_edl_router
    from openmdr.store.response import ResponseStore

    app.include_router(create_edl_router(ResponseStore(platform.state), platform.clock), include_in_schema=False)
    raw = os.environ.get(TAXII_CREDENTIALS_ENV, "")
    credentials = dict(pair.split(":", 1) for pair in raw.split(",") if ":" in pair)
    if credentials:
        app.include_router(taxii_router(lambda: platform.intel, credentials=credentials), include_in_schema=False)


def _reload_overrides(platform: Platform, tenant: str) -> None:
    """Hand a tenant's changed overrides to this process's detection service, if it is running."""
    if "detection" in platform.__dict__:  # never compile the rule library just for this
        platform.detection.set_overrides(tenant, platform.rules.overrides(tenant))


def _follow_library(platform: Platform) -> None:
    """Switch this process's running detection to the active rule library; publish what closing its windows found."""
    if "detection" in platform.__dict__:  # a process that does not detect compiles nothing
        closed = platform.detection.follow(platform.rules)
        if closed and "flow" in platform.__dict__:
            platform.flow.publish_alerts(closed)


def open_cases_per_tenant(state: StateStore) -> dict[str, int]:
    """Open (not resolved, not merged) cases per tenant, for the metrics."""
    import sqlalchemy as sa

    from openmdr.store.cases import cases

    query = (
        sa.select(cases.c.tenant, sa.func.count().label("n"))
        .where(cases.c.status != "resolved", cases.c.merged_into.is_(None))
        .group_by(cases.c.tenant)
    )
    with state.transaction() as conn:
        return {r.tenant: int(r.n) for r in conn.execute(query)}
