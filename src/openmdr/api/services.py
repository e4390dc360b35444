"""The service layer: every operation of the API, with its permission check and tenant scope.

Routers (:mod:`openmdr.api.routers`) only translate HTTP to these calls; the CLI and the
console call the same functions.  Each method takes the :class:`~openmdr.api.rbac.Principal`
first and refuses with :class:`~openmdr.api.rbac.PermissionDeniedError` before touching
any data, so a caller without the permission learns nothing, with or without HTTP.
Tenant-owned data is always read and written through store calls that filter on the
tenant; cross-tenant listings exist only for provider-wide holders of the permission,
and are built from per-tenant calls over the tenants the principal may read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from openmdr.api.rbac import PERMISSIONS, PermissionDeniedError, Principal, may_grant, require
from openmdr.models import AssetInfo, TenantInfo
from openmdr.store.audit import AuditRecord, AuditVerification
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.identity import ApiTokenInfo, Grant, IdentityStore, NewSession, UserInfo
from openmdr.store.lake import EventLake
from openmdr.store.state import DeadLetter, IngestTokenInfo, StateStore

#: Most rows an event query returns (``truncated`` says when there were more).
MAX_QUERY_ROWS = 10_000


class TenantService:
    """Tenants: the list a principal may see, and their settings."""

    def __init__(self, state: StateStore, identity: IdentityStore) -> None:
        self.state = state
        self.identity = identity

    def list(self, principal: Principal) -> list[TenantInfo]:
        """The tenants the principal may read (all of them for a provider-wide reader)."""
        every = self.state.list_tenants()
        return [t for t in every if principal.can("tenant:read", t.name)]

    def get(self, principal: Principal, tenant: str) -> TenantInfo:
        """One tenant the principal may read."""
        require(principal, "tenant:read", tenant)
        info = self.state.get_tenant(tenant)
        if info is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        return info

    def create(self, principal: Principal, info: TenantInfo) -> TenantInfo:
        """Create a tenant (provider-wide tenant:write)."""
        require(principal, "tenant:write", None)
        return self.state.create_tenant(info, principal.actor)

    def update(self, principal: Principal, info: TenantInfo) -> TenantInfo:
        """Replace a tenant's settings."""
        require(principal, "tenant:write", info.name)
        return self.state.update_tenant(info, principal.actor)

    def delete(self, principal: Principal, tenant: str) -> None:
        """Delete a tenant (provider-wide); its role assignments go first so a namesake inherits none."""
        require(principal, "tenant:write", None)
        if self.state.get_tenant(tenant) is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        self.identity.drop_tenant_grants(tenant, principal.actor)
        self.state.delete_tenant(tenant, principal.actor)


class UserService:
    """Users, their roles and their API tokens, as seen from a tenant or provider-wide."""

    def __init__(self, identity: IdentityStore) -> None:
        self.identity = identity

    # ---- reading
    def list(self, principal: Principal, tenant: str | None) -> list[UserInfo]:
        """Users holding a role in ``tenant`` (only those roles shown), or every user (provider-wide)."""
        require(principal, "user:read", tenant)
        return self.identity.list_users(tenant)

    def get(self, principal: Principal, username: str, tenant: str | None) -> UserInfo:
        """One user as seen from ``tenant`` (only if they hold a role there) or provider-wide."""
        require(principal, "user:read", tenant)
        user = self.identity.get_user(username, tenant)
        if user is None:
            raise NotFoundError(f"unknown user {username!r}")
        return user

    # ---- changing
    def create(
        self,
        principal: Principal,
        username: str,
        *,
        tenant: str | None,
        password: str | None,
        display_name: str = "",
        grants: Sequence[Grant] = (),
    ) -> UserInfo:
        """Create a user.  From a tenant, every grant must be in that tenant and the user gets at least one."""
        require(principal, "user:write", tenant)
        if tenant is not None:
            if not grants:
                raise ValidationError("a user created for a tenant needs a role in it")
            if any(g.tenant != tenant for g in grants):
                raise PermissionDeniedError("a tenant's user can only be given roles in that tenant")
        for g in grants:
            if not may_grant(principal, g):
                raise PermissionDeniedError(f"{principal.name} may not grant {g.role} ({g.tenant or 'provider-wide'})")
        user = self.identity.create_user(
            username, principal.actor, display_name=display_name, password=password, grants=grants
        )
        return _visible(user, tenant)

    def _managed(self, principal: Principal, username: str, tenant: str | None) -> UserInfo:
        """The target user, if the principal manages them: provider-wide, or every role they hold is in ``tenant``."""
        require(principal, "user:write", tenant)
        user = self.identity.get_user(username)
        if user is None or (tenant is not None and all(g.tenant != tenant for g in user.grants)):
            raise NotFoundError(f"unknown user {username!r}")
        if tenant is not None and any(g.tenant != tenant for g in user.grants):
            raise PermissionDeniedError(
                f"{username} holds roles outside {tenant}: a provider administrator manages them"
            )
        return user

    def set_password(self, principal: Principal, username: str, password: str, tenant: str | None) -> None:
        """Reset a managed user's password (ends their sessions)."""
        self._managed(principal, username, tenant)
        self.identity.set_password(username, password, principal.actor)

    def set_disabled(self, principal: Principal, username: str, disabled: bool, tenant: str | None) -> UserInfo:
        """Disable or enable a managed user."""
        self._managed(principal, username, tenant)
        if disabled and username == principal.name and principal.via != "cli":
            raise ValidationError("you cannot disable yourself")
        self.identity.set_disabled(username, disabled, principal.actor)
        return self.get(principal, username, tenant)

    def update(
        self,
        principal: Principal,
        username: str,
        tenant: str | None,
        *,
        password: str | None = None,
        disabled: bool | None = None,
    ) -> UserInfo:
        """Apply a user patch (password reset first, then disable/enable); ``None`` leaves a part as it is.

        The tenant and provider user routes both answer a PATCH with this, so they keep the same order
        and the same checks; returns the user as the route may see them.
        """
        if password is not None:
            self.set_password(principal, username, password, tenant)
        if disabled is not None:
            self.set_disabled(principal, username, disabled, tenant)
        return self.get(principal, username, tenant)

    def _check_role_change(
        self, principal: Principal, username: str, grant: Grant, via_tenant: str | None, verb: str
    ) -> None:
        """Refuse a grant or revoke (``verb``) the principal may not make through this route.

        A tenant route changes roles in its own tenant only, and only of users already in it; the
        provider route reaches every user, so it needs provider-wide ``user:write``; and nobody
        hands out (or takes away) a role above what ``may_grant`` allows them.
        """
        if via_tenant is not None and grant.tenant != via_tenant:
            raise PermissionDeniedError(f"a tenant route {verb}s roles in its own tenant only")
        require(principal, "user:write", grant.tenant)
        if via_tenant is None:  # the provider route reaches every user: provider-wide only
            require(principal, "user:write", None)
        if via_tenant is not None and self.identity.get_user(username, via_tenant) is None:
            raise NotFoundError(f"unknown user {username!r}")
        if not may_grant(principal, grant):
            raise PermissionDeniedError(
                f"{principal.name} may not {verb} {grant.role} ({grant.tenant or 'provider-wide'})"
            )

    def grant(self, principal: Principal, username: str, grant: Grant, via_tenant: str | None) -> UserInfo:
        """Give a role; from a tenant route only in that tenant and only to users already in it."""
        self._check_role_change(principal, username, grant, via_tenant, "grant")
        return _visible(self.identity.grant(username, grant, principal.actor), via_tenant)

    def revoke(self, principal: Principal, username: str, grant: Grant, via_tenant: str | None) -> UserInfo:
        """Take a role away (the same rules as granting it)."""
        self._check_role_change(principal, username, grant, via_tenant, "revoke")
        return _visible(self.identity.revoke(username, grant, principal.actor), via_tenant)

    # ---- API tokens
    def create_token(
        self,
        principal: Principal,
        username: str,
        name: str,
        *,
        expires_in: timedelta,
        scopes: Sequence[str] | None,
        tenant: str | None,
    ) -> tuple[ApiTokenInfo, str]:
        """Create an API token: one's own (any user), or another user's (provider-wide token:write)."""
        self._token_owner(principal, username, "token:write")
        if scopes is not None:
            unknown = sorted(set(scopes) - set(PERMISSIONS))
            if unknown:
                raise ValidationError(f"unknown permissions {', '.join(unknown)}")
        if tenant is not None and not principal.permissions(tenant):
            raise PermissionDeniedError(f"{principal.name} holds no role in tenant {tenant!r}")
        if principal.via == "token" and username == principal.name:
            raise PermissionDeniedError("an API token cannot create API tokens: sign in")
        return self.identity.create_api_token(
            username, name, principal.actor, expires_at=self.identity.now() + expires_in, scopes=scopes, tenant=tenant
        )

    def list_tokens(self, principal: Principal, username: str) -> list[ApiTokenInfo]:
        """One's own API tokens, or another user's (provider-wide token:read)."""
        self._token_owner(principal, username, "token:read")
        return self.identity.list_api_tokens(username)

    def revoke_token(self, principal: Principal, username: str, token_id: int) -> None:
        """Revoke one's own token, or another user's (provider-wide token:write)."""
        self._token_owner(principal, username, "token:write")
        self.identity.revoke_api_token(username, token_id, principal.actor)

    def _token_owner(self, principal: Principal, username: str, permission: str) -> None:
        if username == principal.name and principal.via != "cli":
            return
        require(principal, permission, None)
        if self.identity.get_user(username) is None:
            raise NotFoundError(f"unknown user {username!r}")


class AuthService:
    """Console sign-in and sign-out; own password change."""

    def __init__(self, identity: IdentityStore) -> None:
        self.identity = identity

    def login(self, username: str, password: str, client: str) -> NewSession:
        """Check the password under the rate limits and open a console session."""
        return self.identity.login(username, password, client)

    def change_own_password(self, principal: Principal, current: str, new: str, client: str) -> None:
        """Change one's own password after proving the current one (sessions end)."""
        if principal.via == "cli":
            raise ValidationError("the operator has no password")
        self.identity.authenticate(principal.name, current, client)
        self.identity.set_password(principal.name, new, principal.actor)


def principal_for(user: UserInfo, via: str, token: ApiTokenInfo | None = None) -> Principal:
    """The principal of an authenticated user (narrowed by the token's scopes and tenant)."""
    return Principal(
        name=user.username,
        grants=frozenset(user.grants),
        scopes=frozenset(token.scopes) if token is not None and token.scopes is not None else None,
        token_tenant=token.tenant if token is not None else None,
        via=via,
    )


class IngestTokenService:
    """Per-tenant ingest credentials of the HTTP ingest endpoint."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def list(self, principal: Principal, tenant: str) -> list[IngestTokenInfo]:
        """The tenant's ingest tokens (never their secrets)."""
        require(principal, "token:read", tenant)
        return self.state.list_ingest_tokens(tenant)

    def create(self, principal: Principal, tenant: str, name: str, expires_at: datetime | None) -> str:
        """Create an ingest token and return its secret (shown once)."""
        require(principal, "token:write", tenant)
        return self.state.create_ingest_token(tenant, name, principal.actor, expires_at)

    def revoke(self, principal: Principal, tenant: str, name: str) -> None:
        """Revoke the tenant's active ingest token ``name``."""
        require(principal, "token:write", tenant)
        self.state.revoke_ingest_token(tenant, name, principal.actor)


class AssetService:
    """A tenant's asset inventory."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def list(self, principal: Principal, tenant: str) -> list[AssetInfo]:
        """The tenant's assets."""
        require(principal, "asset:read", tenant)
        return self.state.list_assets(tenant)

    def get(self, principal: Principal, tenant: str, hostname: str) -> AssetInfo:
        """One asset of the tenant."""
        require(principal, "asset:read", tenant)
        asset = self.state.get_asset(tenant, hostname)
        if asset is None:
            raise NotFoundError(f"tenant {tenant!r} has no asset {hostname!r}")
        return asset

    def upsert(self, principal: Principal, tenant: str, items: Sequence[AssetInfo]) -> int:
        """Insert or update assets of the tenant (matched by hostname)."""
        require(principal, "asset:write", tenant)
        return self.state.upsert_assets(tenant, items, principal.actor, source="api")

    def delete(self, principal: Principal, tenant: str, hostname: str) -> None:
        """Remove an asset of the tenant."""
        require(principal, "asset:write", tenant)
        self.state.delete_asset(tenant, hostname, principal.actor)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of an event query as JSON-ready values."""

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


class EventService:
    """Read-only SQL over one tenant's events in the lake."""

    def __init__(self, state: StateStore, lake: EventLake) -> None:
        self.state = state
        self.lake = lake

    def query(
        self,
        principal: Principal,
        tenant: str,
        sql: str,
        *,
        limit: int = 1000,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> QueryResult:
        """Run one read-only statement over the view ``events`` of ``tenant`` only."""
        require(principal, "event:read", tenant)
        if self.state.get_tenant(tenant) is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        limit = max(1, min(limit, MAX_QUERY_ROWS))
        table = self.lake.query(tenant, sql, since=since, until=until)
        return QueryResult(table.column_names, arrow_rows(table.slice(0, limit)), table.num_rows > limit)


def arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    """An Arrow table as JSON-ready rows (times as ISO 8601, bytes as hex, NaN as None)."""
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]


def json_value(value: Any) -> Any:
    """A Python value from Arrow as plain JSON data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # Arrow map -> key/value pairs
            return {str(k): json_value(v) for k, v in value}
        return [json_value(v) for v in value]
    return str(value)


class DeadLetterService:
    """Rejected input kept with its reason: a tenant's own, or all of them provider-wide."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def list(
        self, principal: Principal, tenant: str | None, status: str | None, after_id: int, limit: int
    ) -> list[DeadLetter]:
        """The tenant's dead letters, or every dead letter (also those of no tenant) provider-wide."""
        require(principal, "deadletter:read", tenant)
        return self.state.list_dead_letters(tenant, status, limit=max(1, min(limit, 1000)), after_id=after_id)

    def get(self, principal: Principal, tenant: str, letter_id: int) -> DeadLetter:
        """One of the tenant's dead letters."""
        require(principal, "deadletter:read", tenant)
        return self.state.get_dead_letter(letter_id, tenant)

    def payload(self, principal: Principal, tenant: str, letter_id: int) -> bytes:
        """The exact bytes of one of the tenant's dead letters."""
        require(principal, "deadletter:read", tenant)
        return self.state.get_dead_letter_payload(letter_id, tenant)

    def discard(self, principal: Principal, tenant: str, ids: Sequence[int]) -> int:
        """Mark the tenant's dead letters discarded; an id of another tenant is refused as unknown."""
        require(principal, "deadletter:write", tenant)
        for letter_id in ids:
            self.state.get_dead_letter(letter_id, tenant)
        return self.state.mark_dead_letters(list(ids), "discarded", principal.actor)


class AuditService:
    """The tamper-evident audit trail: a tenant's records, the whole trail and its verification."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def list(self, principal: Principal, tenant: str | None, after_seq: int, limit: int) -> list[AuditRecord]:
        """The tenant's audit records, or (provider-wide) the whole trail, in chain order."""
        require(principal, "audit:read", tenant)
        limit = max(1, min(limit, 10_000))
        if tenant is None:
            return self.state.list_audit(None, after_seq, limit, provider_wide=True)
        return self.state.list_audit(tenant, after_seq, limit)

    def verify(self, principal: Principal) -> AuditVerification:
        """Recompute the whole chain (provider-wide audit readers only: it reads every tenant's records)."""
        require(principal, "audit:read", None)
        return self.state.verify_audit()


def _visible(user: UserInfo, tenant: str | None) -> UserInfo:
    """The user with only ``tenant``'s roles when seen from a tenant."""
    if tenant is None:
        return user
    grants = tuple(g for g in user.grants if g.tenant == tenant)
    return UserInfo(user.username, user.display_name, user.disabled, user.created_at, grants, user.has_password)
