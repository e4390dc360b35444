"""The permission model: roles grant permissions within one tenant or provider-wide.

A :class:`Principal` is who is asking (a user through a console session or an API
token, or the local operator on the command line) with the role assignments they hold.
Every service call names the permission it needs and the tenant it touches;
:func:`require` refuses unless one of the principal's assignments grants that
permission *in that tenant* (a tenant assignment) or everywhere (a provider-wide one).
Objects that belong to no tenant (the tenant list itself, the global rule library, the
whole audit trail, users across tenants) are reached with ``tenant=None`` and need a
provider-wide assignment.  An API token can narrow its user further to a set of
permissions and to one tenant; it never widens them.

This module is pure: no I/O, so the same checks run in the HTTP layer and in the
services below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from openmdr.store.identity import ROLES, Grant

#: Every permission, ``<object>:<verb>``.
PERMISSIONS: tuple[str, ...] = (
    "tenant:read", "tenant:write",
    "user:read", "user:write",
    "token:read", "token:write",
    "asset:read", "asset:write",
    "event:read",
    "deadletter:read", "deadletter:write",
    "audit:read",
    "alert:read", "alert:write",
    "case:read", "case:write",
    "rule:read", "rule:write",
    "override:read", "override:write",
    "response:read", "response:approve", "response:act",
    "indicator:read", "indicator:write",
    "metrics:read",
)  # fmt: skip
_READS = frozenset(p for p in PERMISSIONS if p.endswith(":read"))

#: What each role may do wherever it is held.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "provider_admin": frozenset(PERMISSIONS),
    "soc_analyst": frozenset({
        "tenant:read", "asset:read", "event:read", "deadletter:read", "alert:read", "alert:write", "case:read",
        "case:write", "rule:read", "override:read", "response:read", "response:act", "indicator:read",
        "indicator:write", "metrics:read",
    }),
    "detection_engineer": frozenset({
        "tenant:read", "event:read", "alert:read", "case:read", "rule:read", "rule:write", "override:read",
        "override:write", "indicator:read", "indicator:write", "metrics:read",
    }),
    "tenant_admin": _READS | {
        "user:write", "token:write", "asset:write", "deadletter:write", "alert:write", "case:write",
        "response:approve",
    },
    "tenant_analyst": frozenset({
        "tenant:read", "asset:read", "event:read", "deadletter:read", "alert:read", "alert:write", "case:read",
        "case:write", "rule:read", "override:read", "response:read", "indicator:read",
    }),
    "auditor": _READS,
    "customer_viewer": frozenset({"tenant:read", "asset:read", "alert:read", "case:read", "response:read"}),
}  # fmt: skip
assert set(ROLE_PERMISSIONS) == set(ROLES), "every role needs its permissions"


class PermissionDeniedError(PermissionError):
    """The principal lacks the permission for this tenant (or provider-wide)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a name (the audit actor) and the role assignments in force.

    ``scopes`` (from an API token) limits the permissions; ``token_tenant`` limits the
    tenants.  ``via`` says how the principal authenticated (``session``, ``token``, ``cli``).
    """

    name: str
    grants: frozenset[Grant] = field(default_factory=frozenset)
    scopes: frozenset[str] | None = None
    token_tenant: str | None = None
    via: str = "session"

    @property
    def actor(self) -> str:
        """The audit actor of this principal's changes."""
        return self.name if self.via == "cli" else f"user:{self.name}"

    @classmethod
    def operator(cls, name: str = "cli") -> Principal:
        """The local operator: provider-wide administrator (whoever can open the database directly)."""
        return cls(name=name, grants=frozenset({Grant("provider_admin", None)}), via="cli")

    def permissions(self, tenant: str | None) -> frozenset[str]:
        """The permissions this principal has on ``tenant`` (None: on provider-wide objects)."""
        if self.token_tenant is not None and tenant != self.token_tenant:
            return frozenset()
        held: set[str] = set()
        for g in self.grants:
            if g.tenant is None or (tenant is not None and g.tenant == tenant):
                held |= ROLE_PERMISSIONS[g.role]
        if self.scopes is not None:
            held &= self.scopes
        return frozenset(held)

    def can(self, permission: str, tenant: str | None) -> bool:
        """Whether :meth:`permissions` of ``tenant`` include ``permission``."""
        return permission in self.permissions(tenant)

    def is_provider(self, permission: str) -> bool:
        """Whether the principal holds ``permission`` provider-wide (so on every tenant)."""
        return self.can(permission, None)

    def tenants_with(self, permission: str, all_tenants: Iterable[str]) -> list[str]:
        """The tenants among ``all_tenants`` on which the principal holds ``permission``."""
        return [t for t in all_tenants if self.can(permission, t)]


def require(principal: Principal, permission: str, tenant: str | None) -> None:
    """Refuse with :class:`PermissionDeniedError` unless ``principal`` may ``permission`` on ``tenant``."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if not principal.can(permission, tenant):
        where = f"tenant {tenant!r}" if tenant is not None else "provider-wide"
        raise PermissionDeniedError(f"{principal.name} may not {permission} ({where})")


def may_grant(principal: Principal, grant: Grant) -> bool:
    """Whether ``principal`` may give ``grant``: user:write there and every permission the role carries.

    No one hands out more than they hold, so a tenant admin can appoint tenant analysts,
    auditors and viewers in their tenant, but never a provider role.
    """
    held = principal.permissions(grant.tenant)
    return "user:write" in held and ROLE_PERMISSIONS[grant.role] <= held
