"""Request and response bodies of the REST API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from openmdr.models import AssetInfo, TenantInfo
from openmdr.store.audit import AuditRecord, AuditVerification
from openmdr.store.identity import ApiTokenInfo, Grant, UserInfo
from openmdr.store.state import DeadLetter, IngestTokenInfo


class ErrorOut(BaseModel):
    """Every refusal: what was wrong, in words."""

    detail: Any


class OkOut(BaseModel):
    """A change that returns nothing else."""

    ok: bool = True


class TenantBody(BaseModel):
    """A tenant's settings (the name is the key everywhere and cannot change)."""

    name: str = Field(max_length=64)
    display_name: str = Field("", max_length=200)
    timezone: str = Field("UTC", max_length=64)
    working_hours: list[int] = Field(default_factory=lambda: [8, 18], min_length=2, max_length=2)
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], max_length=7)
    networks: list[str] = Field(default_factory=list, max_length=1000)
    domains: list[str] = Field(default_factory=list, max_length=1000)
    retention_days: int | None = None

    def to_info(self) -> TenantInfo:
        """The model value."""
        return TenantInfo(
            self.name, self.display_name or self.name, self.timezone, tuple(self.working_hours),
            tuple(self.working_days), tuple(self.networks), tuple(self.domains), self.retention_days,
        )  # fmt: skip

    @classmethod
    def of(cls, t: TenantInfo) -> TenantBody:
        """From the model value."""
        return cls(name=t.name, display_name=t.display_name, timezone=t.timezone, working_hours=list(t.working_hours),
                   working_days=list(t.working_days), networks=list(t.networks), domains=list(t.domains),
                   retention_days=t.retention_days)  # fmt: skip


class AssetBody(BaseModel):
    """One asset of a tenant's inventory."""

    hostname: str = Field(max_length=255)
    ips: list[str] = Field(default_factory=list, max_length=1000)
    owner: str | None = Field(None, max_length=200)
    criticality: str = "medium"
    asset_class: str = "workstation"
    has_edr: bool = False
    tags: list[str] = Field(default_factory=list, max_length=100)

    def to_info(self) -> AssetInfo:
        """The model value."""
        return AssetInfo(self.hostname, tuple(self.ips), self.owner, self.criticality, self.asset_class,
                         self.has_edr, tuple(self.tags))  # fmt: skip

    @classmethod
    def of(cls, a: AssetInfo) -> AssetBody:
        """From the model value."""
        return cls(hostname=a.hostname, ips=list(a.ips), owner=a.owner, criticality=a.criticality,
                   asset_class=a.asset_class, has_edr=a.has_edr, tags=list(a.tags))  # fmt: skip


class UpsertOut(BaseModel):
    """How many items were stored."""

    stored: int


class GrantBody(BaseModel):
    """A role, within a tenant or provider-wide (``tenant`` null)."""

    role: str = Field(max_length=32)
    tenant: str | None = Field(None, max_length=64)

    def to_grant(self) -> Grant:
        """The store value."""
        return Grant(self.role, self.tenant)


class TenantRoleBody(BaseModel):
    """A role within the tenant of the route."""

    role: str = Field(max_length=32)


class UserOut(BaseModel):
    """A user (never a password hash)."""

    username: str
    display_name: str
    disabled: bool
    created_at: datetime
    has_password: bool
    grants: list[GrantBody]

    @classmethod
    def of(cls, u: UserInfo) -> UserOut:
        """From the store value."""
        grants = [GrantBody(role=g.role, tenant=g.tenant) for g in u.grants]
        return cls(username=u.username, display_name=u.display_name, disabled=u.disabled, created_at=u.created_at,
                   has_password=u.has_password, grants=grants)  # fmt: skip


class UserCreateBody(BaseModel):
    """A new user: name, optional password (else they cannot sign in until one is set), roles."""

    username: str = Field(max_length=64)
    display_name: str = Field("", max_length=200)
    password: str | None = Field(None, max_length=1024)
    grants: list[GrantBody] = Field(default_factory=list, max_length=100)


class TenantUserCreateBody(BaseModel):
    """A new user of the route's tenant with their roles there."""

    username: str = Field(max_length=64)
    display_name: str = Field("", max_length=200)
    password: str | None = Field(None, max_length=1024)
    roles: list[str] = Field(min_length=1, max_length=10)


class UserPatchBody(BaseModel):
    """Disable/enable a user or reset their password."""

    disabled: bool | None = None
    password: str | None = Field(None, max_length=1024)


class LoginBody(BaseModel):
    """Console sign-in."""

    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class LoginOut(BaseModel):
    """The session: the CSRF token to send as ``X-CSRF-Token`` on every change, and its end."""

    username: str
    csrf_token: str
    expires_at: datetime


class PasswordChangeBody(BaseModel):
    """Own password change."""

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class MeOut(BaseModel):
    """Who the caller is and what they may do."""

    username: str
    via: str
    grants: list[GrantBody]
    provider_permissions: list[str]
    tenant_permissions: dict[str, list[str]]
    token_scopes: list[str] | None
    token_tenant: str | None


class ApiTokenBody(BaseModel):
    """A new API token: a name, its lifetime, optionally fewer permissions and one tenant."""

    name: str = Field(max_length=64)
    expires_in_days: int = Field(90, ge=1, le=366)
    scopes: list[str] | None = Field(None, max_length=100)
    tenant: str | None = Field(None, max_length=64)


class ApiTokenOut(BaseModel):
    """An API token as listed (never its secret)."""

    id: int
    username: str
    name: str
    scopes: list[str] | None
    tenant: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: ApiTokenInfo) -> ApiTokenOut:
        """From the store value."""
        return cls(id=t.id, username=t.username, name=t.name, scopes=list(t.scopes) if t.scopes is not None else None,
                   tenant=t.tenant, created_at=t.created_at, created_by=t.created_by, expires_at=t.expires_at,
                   revoked_at=t.revoked_at, last_used_at=t.last_used_at)  # fmt: skip


class NewApiTokenOut(BaseModel):
    """A created API token with its secret: shown this once, stored only hashed."""

    token: ApiTokenOut
    secret: str


class IngestTokenBody(BaseModel):
    """A new ingest token of the tenant."""

    name: str = Field(max_length=64)
    expires_at: datetime | None = None


class IngestTokenOut(BaseModel):
    """An ingest token as listed (never its secret)."""

    tenant: str
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: IngestTokenInfo) -> IngestTokenOut:
        """From the store value."""
        return cls(tenant=t.tenant, name=t.name, created_at=t.created_at, created_by=t.created_by,
                   expires_at=t.expires_at, revoked_at=t.revoked_at)  # fmt: skip


class NewIngestTokenOut(BaseModel):
    """A created ingest token's secret (shown once)."""

    tenant: str
    name: str
    secret: str


class QueryBody(BaseModel):
    """One read-only SQL statement over the view ``events`` of the tenant."""

    sql: str = Field(max_length=100_000)
    limit: int = Field(1000, ge=1, le=10_000)
    since: datetime | None = None
    until: datetime | None = None


class QueryOut(BaseModel):
    """Rows of an event query; ``truncated`` when more rows matched than ``limit``."""

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


class DeadLetterOut(BaseModel):
    """A kept rejection (the payload is its own route)."""

    id: int
    tenant: str | None
    reason: str
    origin: str
    format: str | None
    stage: str
    received_at: datetime
    stored_at: datetime
    size: int
    payload_sha256: str
    context: dict[str, Any] | None
    status: str
    replay_count: int

    @classmethod
    def of(cls, d: DeadLetter) -> DeadLetterOut:
        """From the store value."""
        return cls(id=d.id, tenant=d.tenant, reason=d.reason, origin=d.origin, format=d.format, stage=d.stage,
                   received_at=d.received_at, stored_at=d.stored_at, size=d.size, payload_sha256=d.payload_sha256,
                   context=d.context, status=d.status, replay_count=d.replay_count)  # fmt: skip


class IdsBody(BaseModel):
    """A set of ids."""

    ids: list[int] = Field(min_length=1, max_length=10_000)


class CountOut(BaseModel):
    """How many items changed."""

    changed: int


class AuditRecordOut(BaseModel):
    """One audit record with its chain hashes (anyone can re-verify them, see docs/api.md)."""

    seq: int
    time: datetime
    actor: str
    action: str
    tenant: str | None
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, r: AuditRecord) -> AuditRecordOut:
        """From the store value."""
        return cls(seq=r.seq, time=r.time, actor=r.actor, action=r.action, tenant=r.tenant, target=r.target,
                   details=r.details, prev_hash=r.prev_hash, hash=r.hash)  # fmt: skip


class AuditVerifyOut(BaseModel):
    """Outcome of re-computing the audit chain."""

    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None
    head_hash: str | None

    @classmethod
    def of(cls, v: AuditVerification) -> AuditVerifyOut:
        """From the store value."""
        return cls(ok=v.ok, records=v.records, first_bad_seq=v.first_bad_seq, problem=v.problem,
                   head_hash=v.head_hash)  # fmt: skip
