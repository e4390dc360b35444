"""Provider-wide routes: every user, every dead letter, the whole audit trail and its verification.

These are the only routes that read across tenants; each needs the permission held
provider-wide (a tenant role never suffices).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from openmdr.api.deps import COMMON_RESPONSES, Services, current_principal, services
from openmdr.api.rbac import Principal
from openmdr.api.routers.tenants import audit_lines
from openmdr.api.schemas import (
    ApiTokenOut,
    AuditRecordOut,
    AuditVerifyOut,
    DeadLetterOut,
    GrantBody,
    OkOut,
    UserCreateBody,
    UserOut,
    UserPatchBody,
)
from openmdr.store.identity import Grant

router = APIRouter(prefix="/api/v1", tags=["provider"], responses=COMMON_RESPONSES)
UserPath = Path(..., max_length=64)


@router.get("/users", response_model=list[UserOut])
def list_users(principal: Principal = Depends(current_principal), svc: Services = Depends(services)) -> list[UserOut]:
    """Every user with every role (provider-wide user:read)."""
    return [UserOut.of(u) for u in svc.users.list(principal, None)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserCreateBody, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> UserOut:
    """Create a user with roles anywhere (provider administrators)."""
    user = svc.users.create(
        principal, body.username, tenant=None, password=body.password, display_name=body.display_name,
        grants=[g.to_grant() for g in body.grants],
    )  # fmt: skip
    return UserOut.of(user)


@router.get("/users/{username}", response_model=UserOut)
def get_user(
    username: str = UserPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> UserOut:
    """One user with every role."""
    return UserOut.of(svc.users.get(principal, username, None))


@router.patch("/users/{username}", response_model=UserOut)
def patch_user(
    body: UserPatchBody,
    username: str = UserPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Disable/enable a user or reset their password."""
    return UserOut.of(svc.users.update(principal, username, None, password=body.password, disabled=body.disabled))


@router.post("/users/{username}/roles", response_model=UserOut)
def grant_role(
    body: GrantBody,
    username: str = UserPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Give a user a role in a tenant or provider-wide."""
    return UserOut.of(svc.users.grant(principal, username, body.to_grant(), None))


@router.delete("/users/{username}/roles/{role}", response_model=UserOut)
def revoke_role(
    role: str = Path(..., max_length=32),
    username: str = UserPath,
    tenant: str | None = Query(None, max_length=64, description="the tenant of the role; omit for provider-wide"),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> UserOut:
    """Take a role away from a user."""
    return UserOut.of(svc.users.revoke(principal, username, Grant(role, tenant), None))


@router.get("/users/{username}/tokens", response_model=list[ApiTokenOut])
def list_user_tokens(
    username: str = UserPath, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[ApiTokenOut]:
    """A user's API tokens (provider-wide token:read)."""
    return [ApiTokenOut.of(t) for t in svc.users.list_tokens(principal, username)]


@router.delete("/users/{username}/tokens/{token_id}", response_model=OkOut)
def revoke_user_token(
    token_id: int,
    username: str = UserPath,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> OkOut:
    """Revoke a user's API token (provider-wide token:write)."""
    svc.users.revoke_token(principal, username, token_id)
    return OkOut()


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def list_all_dead_letters(
    status: str | None = Query("pending", max_length=16),
    after_id: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> list[DeadLetterOut]:
    """Every dead letter, including input no tenant could be decided for (provider-wide)."""
    return [DeadLetterOut.of(d) for d in svc.dead_letters.list(principal, None, status, after_id, limit)]


@router.get("/audit", response_model=list[AuditRecordOut])
def list_audit(
    after_seq: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10_000),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> list[AuditRecordOut]:
    """The whole audit trail in chain order (provider-wide audit:read)."""
    return [AuditRecordOut.of(r) for r in svc.audit.list(principal, None, after_seq, limit)]


@router.get("/audit/verify", response_model=AuditVerifyOut)
def verify_audit(
    principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> AuditVerifyOut:
    """Recompute the hash chain: ``ok``, or the first record edited, deleted or reordered."""
    return AuditVerifyOut.of(svc.audit.verify(principal))


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one audit record per line"}},
)
def export_audit(
    principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> StreamingResponse:
    """The whole audit trail as NDJSON, re-verifiable offline with the rules in docs/api.md."""
    first = svc.audit.list(principal, None, 0, 10_000)
    return StreamingResponse(audit_lines(svc, principal, None, first), media_type="application/x-ndjson")
