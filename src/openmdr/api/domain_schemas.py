"""Bodies of the case, alert, response, rule and indicator routes (read from the stages' values)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _FromAttrs(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ObservableOut(_FromAttrs):
    """One thing seen in a case."""

    type: str
    value: str
    internal: bool
    role: str | None


class NoteOut(_FromAttrs):
    """An analyst's note."""

    author: str
    time: datetime
    text: str


class SlaOut(_FromAttrs):
    """The SLA timestamps of a case."""

    first_event_at: datetime | None
    detected_at: datetime | None
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None


class CaseOut(_FromAttrs):
    """A case: one attack as the analyst works it, with why its alerts were grouped."""

    case_id: str
    tenant: str
    title: str
    severity: str
    status: str
    resolution: str | None
    priority: int
    risk_score: float
    assignee: str | None
    alert_ids: list[str]
    observables: list[ObservableOut]
    entities: dict[str, list[str]]
    tactics: list[str]
    techniques: list[str]
    sources: list[str]
    reasons: list[str]
    notes: list[NoteOut]
    sla: SlaOut
    created_at: datetime | None
    updated_at: datetime | None
    merged_into: str | None
    links: list[dict[str, Any]]


class CaseSummaryOut(BaseModel):
    """A case in a list: what the queue shows (the full case, alerts and timeline are per case)."""

    case_id: str
    tenant: str
    title: str
    severity: str
    status: str
    resolution: str | None
    priority: int
    risk_score: float
    assignee: str | None
    alert_count: int
    tactics: list[str]
    sources: list[str]
    created_at: datetime
    updated_at: datetime
    first_event_at: datetime | None
    detected_at: datetime | None
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> CaseSummaryOut:
        """From a row of the case store."""
        data = row.data or {}
        return cls(
            case_id=row.case_id, tenant=row.tenant, title=row.title, severity=row.severity, status=row.status,
            resolution=row.resolution, priority=row.priority, risk_score=row.risk_score, assignee=row.assignee,
            alert_count=row.alert_count, tactics=list(data.get("tactics", [])), sources=list(data.get("sources", [])),
            created_at=row.created_at, updated_at=row.updated_at, first_event_at=row.first_event_at,
            detected_at=row.detected_at, acknowledged_at=row.acknowledged_at, contained_at=row.contained_at,
            resolved_at=row.resolved_at,
        )  # fmt: skip


class AlertOut(BaseModel):
    """An alert with its triage: risk, channel, dedup count, status and case."""

    alert_id: str
    tenant: str
    rule_id: str
    title: str
    severity: str
    source: str
    confidence: float
    author: str | None
    description: str | None
    attack: list[str]
    tactics: list[str]
    entities: dict[str, Any]
    event_count: int
    first_seen: datetime
    last_seen: datetime
    evidence: list[str]
    explanation: str | None
    references: list[str]
    tags: list[str]
    details: dict[str, Any]
    risk_score: float
    channel: str
    dedup_count: int
    status: str
    case_id: str | None
    suppression_id: int | None
    received_at: datetime

    @classmethod
    def of(cls, stored: Any) -> AlertOut:
        """From a stored alert of the alert store."""
        a = stored.alert
        return cls(
            alert_id=a.alert_id, tenant=a.tenant, rule_id=a.rule_id, title=a.title, severity=a.severity,
            source=a.source, confidence=a.confidence, author=a.author, description=a.description,
            attack=list(a.attack), tactics=list(a.tactics), entities=dict(a.entities), event_count=a.event_count,
            first_seen=a.first_seen, last_seen=a.last_seen, evidence=list(a.evidence), explanation=a.explanation,
            references=list(a.references), tags=list(a.tags), details=dict(a.details), risk_score=stored.risk_score,
            channel=stored.channel, dedup_count=stored.dedup_count, status=stored.status, case_id=stored.case_id,
            suppression_id=stored.suppression_id, received_at=stored.received_at,
        )  # fmt: skip


class SuppressionOut(_FromAttrs):
    """A tenant's rule silencing matching alerts until it expires."""

    id: int
    tenant: str
    reason: str
    created_by: str
    created_at: datetime
    rule_id: str | None
    source: str | None
    entities: dict[str, str]
    expires_at: datetime | None
    revoked_at: datetime | None
    hits: int


class SuppressionBody(BaseModel):
    """What to silence (at least one of rule, source, entities), why, and until when."""

    reason: str = Field(min_length=1, max_length=2000)
    rule_id: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=100)
    entities: dict[str, str] | None = Field(None, max_length=20)
    expires_at: datetime | None = None


class TimelineEntryOut(_FromAttrs):
    """One line of a case timeline: an alert or an evidence event."""

    time: datetime
    kind: str
    title: str
    tactics: list[list[str]] = Field(description="(tactic id, name) pairs in kill-chain order")
    techniques: list[list[str]] = Field(description="(technique id, name) pairs")
    severity: str | None
    source: str | None
    channel: str | None
    alert_id: str | None
    event_id: str | None
    entities: dict[str, Any]
    count: int


class StageOut(_FromAttrs):
    """A kill-chain stage the case reached."""

    tactic_id: str
    name: str
    first_seen: datetime
    last_seen: datetime
    alerts: int


class TimelineOut(_FromAttrs):
    """A case's story in time order and its progression through the kill chain."""

    tenant: str
    case_id: str
    entries: list[TimelineEntryOut]
    progression: list[StageOut]
    attack_version: str
    events_missing: int


class ResolveBody(BaseModel):
    """How the case ended."""

    resolution: str = Field(max_length=32)


class ReasonBody(BaseModel):
    """An optional reason or comment."""

    reason: str | None = Field(None, max_length=2000)


class AssignBody(BaseModel):
    """Who works the case (null unassigns)."""

    assignee: str | None = Field(None, max_length=200)


class NoteBody(BaseModel):
    """An analyst note."""

    text: str = Field(max_length=20_000)


class MergeBody(BaseModel):
    """Cases to merge; the first one keeps them all."""

    case_ids: list[str] = Field(min_length=2, max_length=100)


class SplitBody(BaseModel):
    """Alerts to move out of a case into a new one."""

    alert_ids: list[str] = Field(min_length=1, max_length=10_000)


class ActionOut(_FromAttrs):
    """A response action: what was requested, what the policy decided, what happened."""

    action_id: str
    tenant: str
    kind: str
    target: str
    status: str
    verdict: str
    reason: str
    policy_version: int
    case_id: str | None
    playbook: str | None
    step: int | None
    asset: str | None
    asset_class: str | None
    criticality: str | None
    params: dict[str, Any]
    approvals_required: int
    approvals: list[str]
    requested_at: datetime | None
    deadline_at: datetime | None
    escalation_level: int
    executed_at: datetime | None
    attempts: int
    connector: str | None
    outcome: dict[str, Any]
    error: str | None
    rollback_of: str | None
    rolled_back_at: datetime | None
    updated_at: datetime | None
    dry_run: bool


class PlanOut(BaseModel):
    """What would run for a case now and why: the playbooks and each step's decision under the policy."""

    tenant: str
    case_id: str
    policy_version: int
    at: datetime
    confidence: float
    working_time: bool
    playbooks: list[str]
    items: list[dict[str, Any]]

    @classmethod
    def of(cls, plan: Any) -> PlanOut:
        """From a response plan (items as plain data)."""
        import dataclasses

        from openmdr.api.services import json_value

        items = [json_value(dataclasses.asdict(i)) for i in plan.items]
        return cls(tenant=plan.tenant, case_id=plan.case_id, policy_version=plan.policy_version, at=plan.at,
                   confidence=plan.confidence, working_time=plan.working_time, playbooks=list(plan.playbooks),
                   items=items)  # fmt: skip


class PolicyOut(BaseModel):
    """A version of a tenant's delegated-authority policy."""

    tenant: str
    version: int
    policy: dict[str, Any]
    created_at: datetime | None
    created_by: str
    comment: str | None

    @classmethod
    def of(cls, v: Any) -> PolicyOut:
        """From a stored policy version."""
        return cls(tenant=v.tenant, version=v.version, policy=v.policy.to_dict(), created_at=v.created_at,
                   created_by=v.created_by, comment=v.comment)  # fmt: skip


class PolicyBody(BaseModel):
    """A new authority policy document (see docs/response.md) and why it changes."""

    policy: dict[str, Any]
    comment: str | None = Field(None, max_length=2000)


class RuleSetOut(_FromAttrs):
    """One installed version of the global rule library."""

    version: int
    source: str
    content_hash: str
    rule_files: int
    active: bool
    installed_at: datetime
    installed_by: str


class RuleFileBody(BaseModel):
    """One Sigma rule file."""

    path: str = Field(max_length=2000)
    text: str = Field(max_length=1_000_000)


class RuleInstallBody(BaseModel):
    """Rule files to install as the next library version."""

    source: str = Field("api", max_length=2000)
    files: list[RuleFileBody] = Field(min_length=1, max_length=10_000)


class ExceptionOut(_FromAttrs):
    """A tenant's exception: a Sigma filter alerts must pass."""

    id: int
    tenant: str
    title: str
    filter: str
    created_at: datetime
    created_by: str


class ExceptionBody(BaseModel):
    """A Sigma filter document (YAML)."""

    filter: str = Field(max_length=100_000)


class OverridesOut(BaseModel):
    """A tenant's rule overrides: disabled rules, severity changes, exceptions."""

    disabled: list[str]
    severity: dict[str, str]
    exceptions: list[ExceptionOut]


class OverrideBody(BaseModel):
    """Enable/disable a rule for the tenant and/or set its severity (``reset_severity`` restores it)."""

    enabled: bool | None = None
    severity: str | None = Field(None, max_length=16)
    reset_severity: bool = False


class ProposalOut(_FromAttrs):
    """An observable of a resolved case proposed for sharing with every tenant, and its decision."""

    id: str
    tenant: str
    case_id: str
    type: str
    value: str
    tlp: str
    confidence: int
    status: str
    reason: str | None
    indicator_id: str | None
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


class ApproveProposalsBody(BaseModel):
    """Pending proposals to share, optionally at another TLP."""

    proposal_ids: list[str] = Field(min_length=1, max_length=1000)
    tlp: str | None = Field(None, max_length=16)


class ApprovedOut(BaseModel):
    """The decided proposals and how many indicators were shared."""

    proposals: list[ProposalOut]
    shared: int


class RejectBody(BaseModel):
    """Why a proposal is not shared."""

    reason: str = Field(min_length=1, max_length=2000)


class SlaOutReport(BaseModel):
    """A tenant's SLA figures in seconds (MTTD, MTTR, ...) and case counts."""

    tenant: str
    cases: int
    open_cases: int
    by_status: dict[str, int]
    by_resolution: dict[str, int]
    time_to_detect: dict[str, float | int | None]
    time_to_acknowledge: dict[str, float | int | None]
    time_to_contain: dict[str, float | int | None]
    time_to_resolve: dict[str, float | int | None]
    mttd_s: float | None
    mttr_s: float | None
    detections: int
    off_hours_detections: int
    off_hours_share: float | None


class IndicatorOut(_FromAttrs):
    """An indicator with its scope (tenant null: shared provider-wide), provenance and lifetime."""

    id: str
    type: str
    value: str
    tenant: str | None
    source: str
    confidence: int
    tlp: str
    tags: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    expires_at: datetime | None
    description: str | None
    origin: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None
