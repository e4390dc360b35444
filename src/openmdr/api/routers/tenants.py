"""Everything under one tenant: settings, assets, ingest tokens, users, events, dead letters, audit.

Every route names the tenant in its path; the service checks the caller's permission on
that tenant before anything is read, and the stores filter on it, so an id of another
tenant's object is simply not found.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from openmdr.api.deps import COMMON_RESPONSES, Services, current_principal, services
from openmdr.api.rbac import Principal
from openmdr.api.schemas import (
    AssetBody,
    AuditRecordOut,
    CountOut,
    DeadLetterOut,
    IdsBody,
    IngestTokenBody,
    IngestTokenOut,
    NewIngestTokenOut,
    OkOut,
    QueryBody,
    QueryOut,
    TenantBody,
    TenantRoleBody,
    TenantUserCreateBody,
    UpsertOut,
    UserOut,
    UserPatchBody,
)
from openmdr.store.errors import ValidationError
from openmdr.store.identity import Grant

router = APIRouter(prefix="/api/v1", tags=["tenants"], responses=COMMON_RESPONSES)
TenantPath = Path(..., max_length=64, description="tenant key")


@router.get("/tenants", response_model=list[TenantBody])
def list_tenants(
    principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[TenantBody]:
    """The tenants the caller may read."""
    return [TenantBody.of(t) for t in svc.tenants.list(principal)]


@router.post("/tenants", response_model=TenantBody, status_code=201)
def create_tenant(
    body: TenantBody, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> TenantBody:
    """Create a tenant (provider administrators)."""
    return TenantBody.of(svc.tenants.create(principal, body.to_info()))


@router.get("/tenants/{tenant}", response_model=TenantBody)
def get_tenant(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> TenantBody:
    """One tenant's settings."""
    return TenantBody.of(svc.tenants.get(principal, tenant))


@router.put("/tenants/{tenant}", response_model=TenantBody)
def update_tenant(
    body: TenantBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> TenantBody:
    """Replace a tenant's settings (the body's name must be the path's)."""
    if body.name != tenant:
        raise ValidationError("the body names another tenant than the path")
    return TenantBody.of(svc.tenants.update(principal, body.to_info()))


@router.delete("/tenants/{tenant}", response_model=OkOut)
def delete_tenant(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> OkOut:
    """Delete a tenant with its assets, tokens and role assignments (provider administrators)."""
    svc.tenants.delete(principal, tenant)
    return OkOut()


# ---------------------------------------------------------------- assets
@router.get("/tenants/{tenant}/assets", response_model=list[AssetBody])
def list_assets(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[AssetBody]:
    """The tenant's asset inventory."""
    return [AssetBody.of(a) for a in svc.assets.list(principal, tenant)]


@router.put("/tenants/{tenant}/assets", response_model=UpsertOut)
def upsert_assets(
    body: list[AssetBody],
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UpsertOut:
    """Insert or update assets (matched by hostname, case-insensitively)."""
    return UpsertOut(stored=svc.assets.upsert(principal, tenant, [a.to_info() for a in body[:10_000]]))


@router.get("/tenants/{tenant}/assets/{hostname}", response_model=AssetBody)
def get_asset(
    hostname: str = Path(..., max_length=255),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> AssetBody:
    """One asset of the tenant."""
    return AssetBody.of(svc.assets.get(principal, tenant, hostname))


@router.delete("/tenants/{tenant}/assets/{hostname}", response_model=OkOut)
def delete_asset(
    hostname: str = Path(..., max_length=255),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> OkOut:
    """Remove an asset from the tenant's inventory."""
    svc.assets.delete(principal, tenant, hostname)
    return OkOut()


# ---------------------------------------------------------------- ingest tokens
@router.get("/tenants/{tenant}/ingest-tokens", response_model=list[IngestTokenOut])
def list_ingest_tokens(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[IngestTokenOut]:
    """The tenant's ingest tokens (never their secrets)."""
    return [IngestTokenOut.of(t) for t in svc.ingest_tokens.list(principal, tenant)]


@router.post("/tenants/{tenant}/ingest-tokens", response_model=NewIngestTokenOut, status_code=201)
def create_ingest_token(
    body: IngestTokenBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> NewIngestTokenOut:
    """Create an ingest token for the tenant (its secret is shown only in this answer)."""
    expires = body.expires_at
    if expires is not None and expires.tzinfo is None:
        raise ValidationError("expires_at needs a time zone")
    secret = svc.ingest_tokens.create(principal, tenant, body.name, expires)
    return NewIngestTokenOut(tenant=tenant, name=body.name, secret=secret)


@router.delete("/tenants/{tenant}/ingest-tokens/{name}", response_model=OkOut)
def revoke_ingest_token(
    name: str = Path(..., max_length=64),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> OkOut:
    """Revoke the tenant's active ingest token ``name``."""
    svc.ingest_tokens.revoke(principal, tenant, name)
    return OkOut()


# ---------------------------------------------------------------- users of the tenant
@router.get("/tenants/{tenant}/users", response_model=list[UserOut])
def list_tenant_users(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[UserOut]:
    """Users holding a role in the tenant (only their roles there are shown)."""
    return [UserOut.of(u) for u in svc.users.list(principal, tenant)]


@router.post("/tenants/{tenant}/users", response_model=UserOut, status_code=201)
def create_tenant_user(
    body: TenantUserCreateBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Create a user with roles in the tenant (tenant administrators appoint up to their own rights)."""
    user = svc.users.create(
        principal, body.username, tenant=tenant, password=body.password, display_name=body.display_name,
        grants=[Grant(r, tenant) for r in body.roles],
    )  # fmt: skip
    return UserOut.of(user)


@router.get("/tenants/{tenant}/users/{username}", response_model=UserOut)
def get_tenant_user(
    username: str = Path(..., max_length=64),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """A user of the tenant."""
    return UserOut.of(svc.users.get(principal, username, tenant))


@router.patch("/tenants/{tenant}/users/{username}", response_model=UserOut)
def patch_tenant_user(
    body: UserPatchBody,
    username: str = Path(..., max_length=64),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Disable/enable a user whose roles are all in this tenant, or reset their password."""
    return UserOut.of(svc.users.update(principal, username, tenant, password=body.password, disabled=body.disabled))


@router.post("/tenants/{tenant}/users/{username}/roles", response_model=UserOut)
def grant_tenant_role(
    body: TenantRoleBody,
    username: str = Path(..., max_length=64),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Give a user of the tenant another role in it."""
    return UserOut.of(svc.users.grant(principal, username, Grant(body.role, tenant), tenant))


@router.delete("/tenants/{tenant}/users/{username}/roles/{role}", response_model=UserOut)
def revoke_tenant_role(
    role: str = Path(..., max_length=32),
    username: str = Path(..., max_length=64),
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Take a role in the tenant away from a user."""
    return UserOut.of(svc.users.revoke(principal, username, Grant(role, tenant), tenant))


# ---------------------------------------------------------------- events
@router.post("/tenants/{tenant}/events/query", response_model=QueryOut)
def query_events(
    body: QueryBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> QueryOut:
    """One read-only SQL statement over the view ``events`` holding only this tenant's events."""
    for bound in (body.since, body.until):
        if bound is not None and bound.tzinfo is None:
            raise ValidationError("since/until need a time zone")
    result = svc.events.query(principal, tenant, body.sql, limit=body.limit, since=body.since, until=body.until)
    return QueryOut(columns=result.columns, rows=result.rows, truncated=result.truncated)


# ---------------------------------------------------------------- dead letters
@router.get("/tenants/{tenant}/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(
    tenant: str = TenantPath,
    status: str | None = Query("pending", max_length=16),
    after_id: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> list[DeadLetterOut]:
    """The tenant's dead letters, oldest first (page with ``after_id``)."""
    return [DeadLetterOut.of(d) for d in svc.dead_letters.list(principal, tenant, status, after_id, limit)]


@router.get("/tenants/{tenant}/dead-letters/{letter_id}", response_model=DeadLetterOut)
def get_dead_letter(
    letter_id: int,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> DeadLetterOut:
    """One of the tenant's dead letters."""
    return DeadLetterOut.of(svc.dead_letters.get(principal, tenant, letter_id))


@router.get(
    "/tenants/{tenant}/dead-letters/{letter_id}/payload",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the exact refused bytes"}},
)
def get_dead_letter_payload(
    letter_id: int,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> Response:
    """The exact bytes that were refused."""
    return Response(svc.dead_letters.payload(principal, tenant, letter_id), media_type="application/octet-stream")


@router.post("/tenants/{tenant}/dead-letters/discard", response_model=CountOut)
def discard_dead_letters(
    body: IdsBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> CountOut:
    """Mark dead letters of the tenant discarded (all ids must be the tenant's)."""
    return CountOut(changed=svc.dead_letters.discard(principal, tenant, body.ids))


# ---------------------------------------------------------------- audit
@router.get("/tenants/{tenant}/audit", response_model=list[AuditRecordOut])
def tenant_audit(
    tenant: str = TenantPath,
    after_seq: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10_000),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> list[AuditRecordOut]:
    """The tenant's audit records in chain order (page with ``after_seq``)."""
    return [AuditRecordOut.of(r) for r in svc.audit.list(principal, tenant, after_seq, limit)]


@router.get(
    "/tenants/{tenant}/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one audit record per line"}},
)
def tenant_audit_export(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> StreamingResponse:
    """Every audit record of the tenant as NDJSON (checked before streaming starts)."""
    first = svc.audit.list(principal, tenant, 0, 10_000)
    return StreamingResponse(audit_lines(svc, principal, tenant, first), media_type="application/x-ndjson")


def audit_lines(svc: Services, principal: Principal, tenant: str | None, first: list) -> Iterator[bytes]:
    """NDJSON lines of the audit records, page after page."""
    page = first
    while page:
        for record in page:
            yield orjson.dumps(AuditRecordOut.of(record).model_dump(mode="json")) + b"\n"
        page = svc.audit.list(principal, tenant, page[-1].seq, 10_000)
