"""The permission model: pure checks, service-layer refusals without HTTP, role rights within a tenant."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openmdr.api.rbac import PERMISSIONS, ROLE_PERMISSIONS, PermissionDeniedError, Principal, may_grant, require
from openmdr.api.services import AssetService, AuditService, EventService, TenantService, UserService
from openmdr.models import AssetInfo, TenantInfo
from openmdr.store.identity import ROLES, Grant

from .conftest import PASSWORD, World, sqlite_only, tenant_user

VIEWER = "customer_viewer"


def _p(*grants: Grant, **kw: object) -> Principal:
    return Principal("someone", frozenset(grants), **kw)  # type: ignore[arg-type]


def test_permissions_are_scoped_to_the_tenant_of_the_grant() -> None:
    """A tenant grant acts only in its tenant; a provider-wide grant everywhere and on provider objects."""
    analyst = _p(Grant("tenant_analyst", "alpha"))
    assert analyst.can("case:read", "alpha") and not analyst.can("case:read", "bravo")
    assert not analyst.can("case:read", None)
    soc = _p(Grant("soc_analyst", "alpha"), Grant("soc_analyst", "bravo"))
    assert soc.tenants_with("case:write", ["alpha", "bravo", "charlie"]) == ["alpha", "bravo"]
    admin = _p(Grant("provider_admin"))
    assert admin.can("tenant:write", None) and admin.can("user:write", "anything")
    narrowed = _p(Grant("provider_admin"), scopes=frozenset({"case:read"}), token_tenant="alpha")
    assert narrowed.permissions("alpha") == {"case:read"} and narrowed.permissions("bravo") == frozenset()
    assert narrowed.permissions(None) == frozenset()
    with pytest.raises(ValueError, match="unknown permission"):
        require(admin, "case:delete_everything", "alpha")


def test_role_table_is_complete_and_read_only_roles_write_nothing() -> None:
    """Every role has permissions from the catalogue; auditor and customer viewer only read."""
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    for perms in ROLE_PERMISSIONS.values():
        assert perms <= set(PERMISSIONS)
    for role in ("auditor", "customer_viewer"):
        assert all(p.endswith(":read") for p in ROLE_PERMISSIONS[role])
    assert "audit:read" in ROLE_PERMISSIONS["auditor"]
    assert "audit:read" not in ROLE_PERMISSIONS["customer_viewer"]


def test_no_one_grants_more_than_they_hold() -> None:
    """A tenant admin appoints tenant roles in their tenant only, never provider roles."""
    admin = _p(Grant("tenant_admin", "alpha"))
    assert may_grant(admin, Grant("tenant_analyst", "alpha"))
    assert may_grant(admin, Grant("auditor", "alpha"))
    assert not may_grant(admin, Grant("tenant_analyst", "bravo"))
    assert not may_grant(admin, Grant("soc_analyst", "alpha"))
    assert not may_grant(admin, Grant("provider_admin"))
    assert not may_grant(_p(Grant("tenant_analyst", "alpha")), Grant("customer_viewer", "alpha"))


@sqlite_only
def test_service_layer_refuses_without_http(base_world: World) -> None:
    """Service calls check the principal themselves: the HTTP layer is not the only gate."""
    world = base_world
    state, identity = world.platform.state, world.identity
    viewer = _p(Grant("customer_viewer", "alpha"))
    assets = AssetService(state)
    assert [a.hostname for a in assets.list(viewer, "alpha")] == ["host-alpha"]
    with pytest.raises(PermissionDeniedError):
        assets.upsert(viewer, "alpha", [AssetInfo("evil")])
    with pytest.raises(PermissionDeniedError):
        assets.list(viewer, "bravo")
    with pytest.raises(PermissionDeniedError):
        EventService(state, world.platform.lake).query(viewer, "alpha", "SELECT * FROM events")
    with pytest.raises(PermissionDeniedError):
        AuditService(state).list(viewer, "alpha", 0, 10)
    with pytest.raises(PermissionDeniedError):
        AuditService(state).verify(_p(Grant("auditor", "alpha")))
    with pytest.raises(PermissionDeniedError):
        TenantService(state, identity).create(_p(Grant("tenant_admin", "alpha")), TenantInfo("evil"))
    with pytest.raises(PermissionDeniedError):
        UserService(identity).grant(_p(Grant("tenant_admin", "alpha")), "root", Grant("provider_admin"), None)
    assert state.get_tenant("evil") is None
    assert [a.hostname for a in state.list_assets("alpha")] == ["host-alpha"]


#: What each role may do among the probes below, in its own tenant.
ALLOWED = {
    "tenant_admin": {"assets_write", "users_write", "audit", "events", "tokens_write", "case_write", "policy"},
    "tenant_analyst": {"events", "case_write"},
    "auditor": {"audit", "events"},
    "customer_viewer": set(),
    "detection_engineer": {"events"},
    "soc_analyst": {"events", "case_write"},
}


@sqlite_only
def test_each_role_within_its_own_tenant(client: TestClient, base_world: World) -> None:
    """What each role may and may not do in its own tenant, through HTTP."""
    for role, allowed in ALLOWED.items():
        _probe_role(client, base_world, role, allowed)


def _probe_role(client: TestClient, world: World, role: str, allowed: set[str]) -> None:
    h = world.headers(tenant_user(role, "alpha"))
    probes = {
        "assets_write": client.put("/api/v1/tenants/alpha/assets", json=[{"hostname": f"h-{role}"}], headers=h),
        "users_write": client.post("/api/v1/tenants/alpha/users", headers=h,
                                   json={"username": f"new-{role}", "password": PASSWORD, "roles": [VIEWER]}),
        "audit": client.get("/api/v1/tenants/alpha/audit", headers=h),
        "events": client.post("/api/v1/tenants/alpha/events/query", json={"sql": "SELECT count(*) AS n FROM events"},
                              headers=h),
        "tokens_write": client.post("/api/v1/tenants/alpha/ingest-tokens", json={"name": f"t-{role}"}, headers=h),
        "case_write": client.post("/api/v1/tenants/alpha/cases/no-such-case/notes", json={"text": "x"}, headers=h),
        "policy": client.put("/api/v1/tenants/alpha/response-policy", json={"policy": {}}, headers=h),
    }  # fmt: skip
    got = {name for name, r in probes.items() if r.status_code in (200, 201, 404)}  # 404: allowed, case unknown
    refused = {name for name, r in probes.items() if r.status_code == 403}
    assert got == allowed, (role, {n: r.status_code for n, r in probes.items()})
    assert refused == set(probes) - allowed, role
    assert client.get("/api/v1/tenants/alpha", headers=h).status_code == 200


@sqlite_only
def test_tenant_admin_cannot_escalate(client: TestClient, base_world: World) -> None:
    """A tenant admin cannot appoint a provider role, nor take over a user of several tenants."""
    world = base_world
    h = world.headers(tenant_user("tenant_admin", "alpha"))
    analyst = tenant_user("tenant_analyst", "alpha")
    r = client.post(f"/api/v1/tenants/alpha/users/{analyst}/roles", json={"role": "soc_analyst"}, headers=h)
    assert r.status_code == 403
    r = client.post("/api/v1/tenants/alpha/users", headers=h,
                    json={"username": "sneaky", "password": PASSWORD, "roles": ["provider_admin"]})  # fmt: skip
    assert r.status_code in (400, 403)
    world.identity.grant(analyst, Grant("tenant_analyst", "bravo"), "test")
    r = client.patch(f"/api/v1/tenants/alpha/users/{analyst}", json={"disabled": True}, headers=h)
    assert r.status_code == 403
    r = client.post(f"/api/v1/tenants/alpha/users/{analyst}/roles", json={"role": "auditor"}, headers=h)
    assert r.status_code == 200 and {g["tenant"] for g in r.json()["grants"]} == {"alpha"}
    grants = [a for a in world.platform.state.list_audit("alpha") if a.action == "role.grant"]
    assert grants[-1].target == analyst and grants[-1].details == {"role": "auditor"}
