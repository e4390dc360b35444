"""The global rule library, each tenant's overrides and exceptions, and indicators."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from openmdr.api.deps import COMMON_RESPONSES, current_principal
from openmdr.api.domain import IndicatorWork, RuleWork
from openmdr.api.domain_schemas import (
    ApprovedOut,
    ApproveProposalsBody,
    ExceptionBody,
    ExceptionOut,
    IndicatorOut,
    OverrideBody,
    OverridesOut,
    ProposalOut,
    RejectBody,
    RuleInstallBody,
    RuleSetOut,
)
from openmdr.api.rbac import Principal
from openmdr.api.schemas import OkOut

router = APIRouter(prefix="/api/v1", tags=["rules"], responses=COMMON_RESPONSES)
TenantPath = Path(..., max_length=64)


async def rule_work(request: Request) -> RuleWork:
    """The rule store of this app."""
    return request.app.state.domain["rules"]


async def indicator_work(request: Request) -> IndicatorWork:
    """The indicator store of this app."""
    return request.app.state.domain["indicators"]


@router.get("/rules/versions", response_model=list[RuleSetOut])
def rule_versions(principal: Principal = Depends(current_principal), work: RuleWork = Depends(rule_work)) -> list:
    """Every installed version of the global rule library (provider-wide rule:read)."""
    return [RuleSetOut.model_validate(v) for v in work.versions(principal)]


@router.post("/rules/versions", response_model=RuleSetOut, status_code=201)
def install_rules(
    body: RuleInstallBody, principal: Principal = Depends(current_principal), work: RuleWork = Depends(rule_work)
) -> RuleSetOut:
    """Install Sigma rule files as the next library version and activate it (audited)."""
    files = [(f.path, f.text) for f in body.files]
    return RuleSetOut.model_validate(work.install(principal, files, body.source))


@router.post("/rules/versions/{version}/activate", response_model=RuleSetOut)
def activate_rules(
    version: int, principal: Principal = Depends(current_principal), work: RuleWork = Depends(rule_work)
) -> RuleSetOut:
    """Make an installed version the active one (roll back or forward)."""
    return RuleSetOut.model_validate(work.activate(principal, version))


@router.get("/tenants/{tenant}/rules/overrides", response_model=OverridesOut)
def get_overrides(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), work: RuleWork = Depends(rule_work)
) -> OverridesOut:
    """The tenant's disabled rules, severity overrides and exceptions."""
    overrides, exceptions = work.overrides(principal, tenant)
    return OverridesOut(disabled=sorted(overrides.disabled), severity=dict(overrides.severity),
                        exceptions=[ExceptionOut.model_validate(e) for e in exceptions])  # fmt: skip


@router.put("/tenants/{tenant}/rules/overrides/{rule_id}", response_model=OkOut)
def set_override(
    body: OverrideBody,
    tenant: str = TenantPath,
    rule_id: str = Path(..., max_length=200),
    principal: Principal = Depends(current_principal),
    work: RuleWork = Depends(rule_work),
) -> OkOut:
    """Enable/disable one rule for the tenant and/or override its severity (audited)."""
    work.set_override(principal, tenant, rule_id, body.enabled, body.severity, body.reset_severity)
    return OkOut()


@router.post("/tenants/{tenant}/rules/exceptions", response_model=ExceptionOut, status_code=201)
def add_exception(
    body: ExceptionBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: RuleWork = Depends(rule_work),
) -> ExceptionOut:
    """Add a Sigma-filter exception for the tenant (validated by compiling it)."""
    return ExceptionOut.model_validate(work.add_exception(principal, tenant, body.filter))


@router.delete("/tenants/{tenant}/rules/exceptions/{exception_id}", response_model=OkOut)
def remove_exception(
    exception_id: int,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: RuleWork = Depends(rule_work),
) -> OkOut:
    """Remove one of the tenant's exceptions."""
    work.remove_exception(principal, tenant, exception_id)
    return OkOut()


@router.get("/indicators", response_model=list[IndicatorOut])
def provider_indicators(
    kind: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> list[IndicatorOut]:
    """The provider-wide (shared) indicators."""
    return [IndicatorOut.model_validate(i) for i in work.list(principal, None, kind, limit, offset)]


@router.get("/tenants/{tenant}/indicators", response_model=list[IndicatorOut])
def tenant_indicators(
    tenant: str = TenantPath,
    kind: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> list[IndicatorOut]:
    """Indicators the tenant's detection uses: its own and the shared ones."""
    return [IndicatorOut.model_validate(i) for i in work.list(principal, tenant, kind, limit, offset)]


@router.get("/tenants/{tenant}/indicators/{indicator_id}", response_model=IndicatorOut)
def tenant_indicator(
    tenant: str = TenantPath,
    indicator_id: str = Path(..., max_length=64),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> IndicatorOut:
    """One indicator visible to the tenant."""
    return IndicatorOut.model_validate(work.get(principal, tenant, indicator_id))


@router.post("/tenants/{tenant}/indicators/{indicator_id}/retire", response_model=OkOut)
def retire_tenant_indicator(
    tenant: str = TenantPath,
    indicator_id: str = Path(..., max_length=64),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> OkOut:
    """Retire one of the tenant's own indicators now (shared ones are the provider's); the record stays."""
    work.retire(principal, tenant, indicator_id)
    return OkOut()


@router.get("/tenants/{tenant}/intel/proposals", response_model=list[ProposalOut])
def list_proposals(
    tenant: str = TenantPath,
    status: str | None = Query(None, max_length=16),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> list[ProposalOut]:
    """Observables of the tenant's resolved cases proposed for sharing (sanitized: no internal values)."""
    return [ProposalOut.model_validate(p) for p in work.proposals(principal, tenant, status)]


@router.post("/tenants/{tenant}/intel/proposals/approve", response_model=ApprovedOut)
def approve_proposals(
    body: ApproveProposalsBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> ApprovedOut:
    """Share pending proposals with every tenant (and retro-hunt them); audited."""
    proposals, shared = work.approve(principal, tenant, body.proposal_ids, body.tlp)
    return ApprovedOut(proposals=[ProposalOut.model_validate(p) for p in proposals], shared=shared)


@router.post("/tenants/{tenant}/intel/proposals/{proposal_id}/reject", response_model=ProposalOut)
def reject_proposal(
    body: RejectBody,
    tenant: str = TenantPath,
    proposal_id: str = Path(..., max_length=64),
    principal: Principal = Depends(current_principal),
    work: IndicatorWork = Depends(indicator_work),
) -> ProposalOut:
    """Decline a pending proposal."""
    return ProposalOut.model_validate(work.reject(principal, tenant, proposal_id, body.reason))
