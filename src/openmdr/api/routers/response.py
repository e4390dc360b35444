"""Response actions of a tenant: list, approve, deny, roll back; the delegated-authority policy."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from openmdr.api.deps import COMMON_RESPONSES, current_principal
from openmdr.api.domain import ResponseWork
from openmdr.api.domain_schemas import ActionOut, PlanOut, PolicyBody, PolicyOut, ReasonBody
from openmdr.api.rbac import Principal

router = APIRouter(prefix="/api/v1", tags=["response"], responses=COMMON_RESPONSES)
TenantPath = Path(..., max_length=64)
ActionPath = Path(..., max_length=64)


async def response_work(request: Request) -> ResponseWork:
    """The response service of this app."""
    return request.app.state.domain["response"]


@router.get("/tenants/{tenant}/actions", response_model=list[ActionOut])
def list_actions(
    tenant: str = TenantPath,
    case_id: str | None = Query(None, max_length=32),
    status: str | None = Query(None, max_length=32),
    limit: int = Query(500, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> list[ActionOut]:
    """The tenant's response actions (planned, waiting, executed, rolled back...), oldest first."""
    return [ActionOut.model_validate(a) for a in work.list(principal, tenant, case_id, status, limit)]


@router.get("/tenants/{tenant}/actions/{action_id}", response_model=ActionOut)
def get_action(
    tenant: str = TenantPath,
    action_id: str = ActionPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> ActionOut:
    """One of the tenant's actions."""
    return ActionOut.model_validate(work.get(principal, tenant, action_id))


@router.post("/tenants/{tenant}/actions/{action_id}/approve", response_model=ActionOut)
def approve_action(
    body: ReasonBody,
    tenant: str = TenantPath,
    action_id: str = ActionPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> ActionOut:
    """Approve a waiting action (it runs once enough distinct people approved)."""
    return ActionOut.model_validate(work.approve(principal, tenant, action_id, body.reason))


@router.post("/tenants/{tenant}/actions/{action_id}/deny", response_model=ActionOut)
def deny_action(
    body: ReasonBody,
    tenant: str = TenantPath,
    action_id: str = ActionPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> ActionOut:
    """Refuse a waiting action."""
    return ActionOut.model_validate(work.deny(principal, tenant, action_id, body.reason))


@router.post("/tenants/{tenant}/actions/{action_id}/rollback", response_model=ActionOut)
def rollback_action(
    body: ReasonBody,
    tenant: str = TenantPath,
    action_id: str = ActionPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> ActionOut:
    """Undo an executed action."""
    return ActionOut.model_validate(work.rollback(principal, tenant, action_id, body.reason))


@router.get("/tenants/{tenant}/cases/{case_id}/response-plan", response_model=PlanOut)
def response_plan(
    request: Request,
    tenant: str = TenantPath,
    case_id: str = Path(..., max_length=32),
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> PlanOut:
    """What would run for the case now under the tenant's delegated authority, and why."""
    cases = request.app.state.domain["cases"].cases
    return PlanOut.of(work.plan(principal, tenant, case_id, cases))


@router.get("/tenants/{tenant}/response-policy", response_model=PolicyOut)
def get_policy(
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> PolicyOut:
    """The tenant's current delegated-authority policy."""
    return PolicyOut.of(work.policy(principal, tenant))


@router.put("/tenants/{tenant}/response-policy", response_model=PolicyOut)
def set_policy(
    body: PolicyBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: ResponseWork = Depends(response_work),
) -> PolicyOut:
    """Store a new version of the tenant's delegated-authority policy (audited)."""
    return PolicyOut.of(work.set_policy(principal, tenant, body.policy, body.comment))
