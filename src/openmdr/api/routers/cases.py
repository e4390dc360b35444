"""Cases (with timeline), alerts, and the SOC's cross-tenant case queue."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query, Request

from openmdr.api.deps import COMMON_RESPONSES, current_principal
from openmdr.api.domain import CaseWork, SuppressionWork
from openmdr.api.domain_schemas import (
    AlertOut,
    AssignBody,
    CaseOut,
    CaseSummaryOut,
    MergeBody,
    NoteBody,
    ReasonBody,
    ResolveBody,
    SlaOutReport,
    SplitBody,
    SuppressionBody,
    SuppressionOut,
    TimelineOut,
)
from openmdr.api.rbac import Principal
from openmdr.api.schemas import OkOut
from openmdr.store.errors import ValidationError

router = APIRouter(prefix="/api/v1", tags=["cases"], responses=COMMON_RESPONSES)
TenantPath = Path(..., max_length=64)
CasePath = Path(..., max_length=32)


async def case_work(request: Request) -> CaseWork:
    """The case service of this app."""
    return request.app.state.domain["cases"]


def _filters(status: str | None, open_only: bool, min_severity: str | None, assignee: str | None, limit: int,
             offset: int) -> dict[str, object]:  # fmt: skip
    return {"status": status, "open_only": open_only, "min_severity": min_severity, "assignee": assignee,
            "limit": limit, "offset": offset}  # fmt: skip


@router.get("/cases", response_model=list[CaseSummaryOut])
def case_queue(
    status: str | None = Query(None, max_length=16),
    open_only: bool = False,
    min_severity: str | None = Query(None, max_length=16),
    assignee: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> list[CaseSummaryOut]:
    """One queue over every tenant whose cases the caller may read, by priority then recency."""
    rows = work.queue(principal, **_filters(status, open_only, min_severity, assignee, limit, offset))
    return [CaseSummaryOut.of(r) for r in rows]


@router.get("/tenants/{tenant}/cases", response_model=list[CaseSummaryOut])
def list_cases(
    tenant: str = TenantPath,
    status: str | None = Query(None, max_length=16),
    open_only: bool = False,
    min_severity: str | None = Query(None, max_length=16),
    assignee: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> list[CaseSummaryOut]:
    """The tenant's cases, by priority then recency (summaries; the full case is per case)."""
    rows = work.list(principal, tenant, **_filters(status, open_only, min_severity, assignee, limit, offset))
    return [CaseSummaryOut.of(r) for r in rows]


@router.post("/tenants/{tenant}/cases/merge", response_model=CaseOut)
def merge_cases(
    body: MergeBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Merge the tenant's cases into the first one given."""
    return CaseOut.model_validate(work.merge(principal, tenant, body.case_ids))


@router.get("/tenants/{tenant}/sla", response_model=SlaOutReport)
def tenant_sla(
    tenant: str = TenantPath, principal: Principal = Depends(current_principal), work: CaseWork = Depends(case_work)
) -> SlaOutReport:
    """The tenant's SLA figures: MTTD, MTTR, time to acknowledge/contain/resolve, off-hours share."""
    return SlaOutReport(**work.sla(principal, tenant).to_dict())


@router.get("/tenants/{tenant}/cases/{case_id}", response_model=CaseOut)
def get_case(
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """One case with its alert ids, observables, grouping reasons, notes and SLA clock."""
    return CaseOut.model_validate(work.get(principal, tenant, case_id))


@router.get("/tenants/{tenant}/cases/{case_id}/timeline", response_model=TimelineOut)
def case_timeline(
    tenant: str = TenantPath,
    case_id: str = CasePath,
    with_events: bool = Query(False, description="add the evidence events from the lake (needs event:read)"),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> TimelineOut:
    """The case's ATT&CK-ordered kill-chain timeline."""
    return TimelineOut.model_validate(work.timeline(principal, tenant, case_id, with_events))


@router.get("/tenants/{tenant}/cases/{case_id}/alerts", response_model=list[AlertOut])
def case_alerts(
    tenant: str = TenantPath,
    case_id: str = CasePath,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> list[AlertOut]:
    """The alerts of one of the tenant's cases."""
    work.get(principal, tenant, case_id)
    return [AlertOut.of(a) for a in work.alerts(principal, tenant, case_id=case_id, limit=limit)]


@router.post("/tenants/{tenant}/cases/{case_id}/acknowledge", response_model=CaseOut)
def acknowledge_case(
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Take the case (stamps the acknowledged SLA time)."""
    return CaseOut.model_validate(work.acknowledge(principal, tenant, case_id))


@router.post("/tenants/{tenant}/cases/{case_id}/resolve", response_model=CaseOut)
def resolve_case(
    body: ResolveBody,
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Close the case as true_positive, false_positive or benign."""
    return CaseOut.model_validate(work.resolve(principal, tenant, case_id, body.resolution))


@router.post("/tenants/{tenant}/cases/{case_id}/reopen", response_model=CaseOut)
def reopen_case(
    body: ReasonBody,
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Reopen a resolved case."""
    return CaseOut.model_validate(work.reopen(principal, tenant, case_id, body.reason))


@router.post("/tenants/{tenant}/cases/{case_id}/assign", response_model=CaseOut)
def assign_case(
    body: AssignBody,
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Give the case to an analyst (null unassigns)."""
    return CaseOut.model_validate(work.assign(principal, tenant, case_id, body.assignee))


@router.post("/tenants/{tenant}/cases/{case_id}/notes", response_model=CaseOut)
def note_case(
    body: NoteBody,
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Add an analyst note."""
    return CaseOut.model_validate(work.note(principal, tenant, case_id, body.text))


@router.post("/tenants/{tenant}/cases/{case_id}/split", response_model=CaseOut)
def split_case(
    body: SplitBody,
    tenant: str = TenantPath,
    case_id: str = CasePath,
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> CaseOut:
    """Move some of the case's alerts into a new case (returned)."""
    return CaseOut.model_validate(work.split(principal, tenant, case_id, body.alert_ids))


@router.get("/tenants/{tenant}/alerts", response_model=list[AlertOut])
def list_alerts(
    tenant: str = TenantPath,
    case_id: str | None = Query(None, max_length=32),
    status: str | None = Query(None, max_length=16),
    min_severity: str | None = Query(None, max_length=16),
    rule_id: str | None = Query(None, max_length=200),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> list[AlertOut]:
    """The tenant's alerts, newest first."""
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ValidationError("since/until need a time zone")
    found = work.alerts(principal, tenant, case_id=case_id, status=status, min_severity=min_severity,
                        rule_id=rule_id, since=since, until=until, limit=limit, offset=offset)  # fmt: skip
    return [AlertOut.of(a) for a in found]


@router.get("/tenants/{tenant}/alerts/{alert_id}", response_model=AlertOut)
def get_alert(
    tenant: str = TenantPath,
    alert_id: str = Path(..., max_length=64),
    principal: Principal = Depends(current_principal),
    work: CaseWork = Depends(case_work),
) -> AlertOut:
    """One of the tenant's alerts with its triage."""
    return AlertOut.of(work.alert(principal, tenant, alert_id))


async def suppression_work(request: Request) -> SuppressionWork:
    """The suppression service of this app."""
    return request.app.state.domain["suppressions"]


@router.get("/tenants/{tenant}/suppressions", response_model=list[SuppressionOut])
def list_suppressions(
    tenant: str = TenantPath,
    active_only: bool = False,
    principal: Principal = Depends(current_principal),
    work: SuppressionWork = Depends(suppression_work),
) -> list[SuppressionOut]:
    """The tenant's alert suppressions."""
    return [SuppressionOut.model_validate(s) for s in work.list(principal, tenant, active_only)]


@router.post("/tenants/{tenant}/suppressions", response_model=SuppressionOut, status_code=201)
def add_suppression(
    body: SuppressionBody,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: SuppressionWork = Depends(suppression_work),
) -> SuppressionOut:
    """Silence the tenant's matching alerts until ``expires_at`` (audited with the reason)."""
    added = work.add(principal, tenant, body.reason, rule_id=body.rule_id, source=body.source,
                     entities=body.entities, expires_at=body.expires_at)  # fmt: skip
    return SuppressionOut.model_validate(added)


@router.post("/tenants/{tenant}/suppressions/{suppression_id}/revoke", response_model=OkOut)
def revoke_suppression(
    suppression_id: int,
    tenant: str = TenantPath,
    principal: Principal = Depends(current_principal),
    work: SuppressionWork = Depends(suppression_work),
) -> OkOut:
    """End one of the tenant's suppressions now."""
    work.revoke(principal, tenant, suppression_id)
    return OkOut()
