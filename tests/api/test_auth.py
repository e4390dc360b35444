"""Identities: passwords, console sessions with CSRF, API tokens, rate limits (time moved by a fake clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openmdr.store.identity import AuthenticationError, Grant, IdentityStore, RateLimitedError, api_tokens, users
from openmdr.store.state import StateStore

from .conftest import PASSWORD, FakeClock, World, sqlite_only, tenant_user


def _login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


@sqlite_only
def test_secrets_are_hashed_at_rest(base_world: World) -> None:
    """Passwords are argon2id hashes; API token secrets are never stored."""
    state: StateStore = base_world.platform.state
    with state.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(sa.select(users.c.password_hash))]
        stored = " ".join(str(tuple(r)) for r in conn.execute(sa.select(api_tokens)))
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in " ".join(hashes)
    for secret in base_world.tokens.values():
        assert secret not in stored


@sqlite_only
def test_session_cookie_and_csrf(client: TestClient, base_world: World) -> None:
    """A console session reads freely; every change needs the CSRF token; logout ends it."""
    user = tenant_user("tenant_admin", "alpha")
    set_cookie = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD}).headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()
    csrf = _login(client, user)
    cookie = client.cookies.get("omdr_session")
    assert cookie and cookie.startswith("omdr_s_")
    assert client.get("/api/v1/me").json()["username"] == user
    body = [{"hostname": "new-host"}]
    assert client.put("/api/v1/tenants/alpha/assets", json=body).status_code == 403
    assert client.put("/api/v1/tenants/alpha/assets", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.put("/api/v1/tenants/alpha/assets", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.set("omdr_session", cookie)
    assert client.get("/api/v1/me").status_code == 401


@sqlite_only
def test_session_expires_when_idle_and_at_lifetime(client: TestClient, base_world: World, clock: FakeClock) -> None:
    """An idle session ends after the idle timeout; an active one at its lifetime."""
    user = tenant_user("tenant_analyst", "alpha")
    _login(client, user)
    clock.advance(minutes=50)
    assert client.get("/api/v1/me").status_code == 200
    clock.advance(minutes=61)
    assert client.get("/api/v1/me").status_code == 401
    _login(client, user)
    for _ in range(13):
        clock.advance(minutes=59)
        client.get("/api/v1/me")
    assert client.get("/api/v1/me").status_code == 401


@sqlite_only
def test_login_rate_limit_per_user(client: TestClient, base_world: World, clock: FakeClock) -> None:
    """Five failures lock the user name for the window, even for the right password; then it opens again."""
    user = tenant_user("auditor", "alpha")
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"username": user, "password": "wrong password!"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    clock.advance(minutes=16)
    _login(client, user)
    failures = [
        a for a in base_world.platform.state.list_audit(None, provider_wide=True) if a.action == "auth.login_failed"
    ]
    assert len(failures) == 5 and failures[0].details["reason"] == "wrong password"


@sqlite_only
def test_login_rate_limit_per_client(client: TestClient, base_world: World, clock: FakeClock) -> None:
    """Spraying many user names from one client is stopped too (unknown names count alike)."""
    for i in range(20):
        client.post("/api/v1/auth/login", json={"username": f"nobody{i}", "password": "whatever pass"})
    r = client.post("/api/v1/auth/login", json={"username": tenant_user("auditor", "bravo"), "password": PASSWORD})
    assert r.status_code == 429
    clock.advance(minutes=16)
    _login(client, tenant_user("auditor", "bravo"))


@sqlite_only
def test_bad_bearer_tokens_are_rate_limited(client: TestClient, base_world: World, clock: FakeClock) -> None:
    """Guessing API tokens counts against the client like failed logins."""
    for _ in range(20):
        assert client.get("/api/v1/me", headers={"Authorization": "Bearer omdr_at_guess"}).status_code == 401
    assert client.get("/api/v1/me", headers=base_world.headers("root")).status_code == 429
    clock.advance(minutes=16)
    assert client.get("/api/v1/me", headers=base_world.headers("root")).status_code == 200


def test_api_token_scopes_expiry_and_revocation(client: TestClient, base_world: World, clock: FakeClock) -> None:
    """A token narrows its user's rights, expires, and stops working once revoked."""
    identity: IdentityStore = base_world.identity
    user = tenant_user("tenant_admin", "alpha")
    _, secret = identity.create_api_token(user, "reader", "test", expires_at=clock() + timedelta(days=1),
                                          scopes=["asset:read"])  # fmt: skip
    h = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/tenants/alpha/assets", headers=h).status_code == 200
    assert client.put("/api/v1/tenants/alpha/assets", json=[{"hostname": "x"}], headers=h).status_code == 403
    assert client.get("/api/v1/tenants/alpha/users", headers=h).status_code == 403
    assert client.post("/api/v1/me/tokens", json={"name": "more"}, headers=h).status_code == 403
    clock.advance(days=2)
    assert client.get("/api/v1/tenants/alpha/assets", headers=h).status_code == 401
    full = base_world.headers(user)
    token_id = next(t.id for t in identity.list_api_tokens(user) if t.name == "t")
    assert client.delete(f"/api/v1/me/tokens/{token_id}", headers=full).status_code == 200
    assert client.get("/api/v1/me", headers=full).status_code == 401
    actions = [a.action for a in base_world.platform.state.list_audit(None, provider_wide=True)]
    assert "api_token.create" in actions and "api_token.revoke" in actions


@sqlite_only
def test_token_created_in_a_session_is_shown_once(client: TestClient, base_world: World) -> None:
    """POST /me/tokens returns the secret; listing never does."""
    csrf = _login(client, tenant_user("tenant_analyst", "alpha"))
    r = client.post("/api/v1/me/tokens", json={"name": "ci", "scopes": ["case:read"], "tenant": "alpha"},
                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert r.status_code == 201
    secret = r.json()["secret"]
    assert secret.startswith("omdr_at_") and secret not in client.get("/api/v1/me/tokens").text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert me["token_scopes"] == ["case:read"] and me["tenant_permissions"] == {"alpha": ["case:read"]}
    bad = client.post("/api/v1/me/tokens", json={"name": "x", "scopes": ["root:all"]}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400


@sqlite_only
def test_disabled_user_and_password_change(client: TestClient, base_world: World) -> None:
    """Disabling a user stops their tokens and sign-in; a password change ends sessions."""
    root = base_world.headers("root")
    viewer = tenant_user("customer_viewer", "alpha")
    assert client.patch(f"/api/v1/users/{viewer}", json={"disabled": True}, headers=root).status_code == 200
    assert client.get("/api/v1/me", headers=base_world.headers(viewer)).status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": viewer, "password": PASSWORD})
    assert r.status_code == 401
    analyst = tenant_user("tenant_analyst", "bravo")
    csrf = _login(client, analyst)
    new = "another long passphrase"
    r = client.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": new},
                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert r.status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    _login(client, analyst, new)


def test_identity_store_refuses_directly(base_world: World, clock: FakeClock) -> None:
    """Without HTTP: wrong passwords raise, the limit holds, unknown roles are refused."""
    identity = base_world.identity
    with pytest.raises(AuthenticationError):
        identity.authenticate("root", "not the password", "cli")
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            identity.authenticate("root", "not the password", "cli")
    with pytest.raises(RateLimitedError):
        identity.authenticate("root", PASSWORD, "cli")
    with pytest.raises(ValueError, match="unknown role"):
        identity.grant("root", Grant("superuser"), "test")
    with pytest.raises(ValueError, match="within one tenant"):
        identity.grant("root", Grant("tenant_admin"), "test")
    with pytest.raises(ValueError, match="provider-wide"):
        identity.grant("root", Grant("provider_admin", "alpha"), "test")
    with pytest.raises(ValueError, match="12 to 1024"):
        identity.create_user("shorty", "test", password="short")
