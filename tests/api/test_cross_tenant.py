"""The cross-tenant matrix: for every route and every role of tenant alpha, nothing of bravo is read or changed.

Every route of the API is listed in :data:`ROUTES` with the attacks on it: naming bravo
in the path, guessing bravo's ids under alpha's path, filters and bulk bodies carrying
bravo's ids, exports, and SQL that tries to open bravo's lake files.  The test fails
when a route exists that the matrix does not cover, when any attack answers 2xx with
bravo's data or is not refused, and when anything of bravo differs afterwards.  A
positive control (bravo's own admin and the provider admin reading the same URLs)
shows the URLs are real.  It runs on SQLite and PostgreSQL (``state_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openmdr.store.identity import ROLES
from openmdr.store.rules import RuleStore

from .conftest import PASSWORD, World, sqlite_only, tenant_user

A, B = "alpha", "bravo"
ADMIN = "tenant_admin"
#: Strings only bravo's data contains (its events, assets, owners, tokens, users).
MARKERS = ("marker-bravo", "host-bravo", "owner-bravo", "edge-bravo", ".bravo")
#: Routes that are not tenant data: service probes and the ingest endpoint (the token decides the tenant;
#: tests/ingest covers it), sign-in/out and own password (they touch only the caller).
EXEMPT = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/v1/ingest"), ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/me/password"),
}  # fmt: skip


@dataclass(frozen=True)
class Attack:
    """One request an alpha user sends; ``must_refuse`` means any 2xx is a violation."""

    method: str
    url: str
    body: Any = None
    must_refuse: bool = True


AttackBuilder = Callable[[World], list[Attack]]


def _letter(w: World) -> int:
    return w.letters[B][0]


def _bravo_user() -> str:
    return tenant_user("tenant_admin", B)


def _bravo_token_id(w: World) -> int:
    return w.identity.list_api_tokens(_bravo_user())[0].id


def _tenant_body(name: str) -> dict[str, Any]:
    return {"name": name, "display_name": "pwned", "networks": ["0.0.0.0/0"]}


def _both(path: str, method: str = "GET", body: Any = None, alpha_refuse: bool = False) -> list[Attack]:
    """The route under bravo's path (refused) and under alpha's (allowed, but must not show bravo)."""
    return [Attack(method, path.format(t=B), body), Attack(method, path.format(t=A), body, must_refuse=alpha_refuse)]


T = "/api/v1/tenants/{t}"
ROUTES: dict[tuple[str, str], AttackBuilder] = {
    ("GET", "/api/v1/tenants"): lambda w: [Attack("GET", "/api/v1/tenants", must_refuse=False)],
    ("POST", "/api/v1/tenants"): lambda w: [Attack("POST", "/api/v1/tenants", _tenant_body("evil"))],
    ("GET", "/api/v1/tenants/{tenant}"): lambda w: [Attack("GET", f"/api/v1/tenants/{B}")],
    ("PUT", "/api/v1/tenants/{tenant}"): lambda w: [
        Attack("PUT", f"/api/v1/tenants/{B}", _tenant_body(B)),
        Attack("PUT", f"/api/v1/tenants/{A}", _tenant_body(B)),  # body names bravo under alpha's path
    ],
    ("DELETE", "/api/v1/tenants/{tenant}"): lambda w: [Attack("DELETE", f"/api/v1/tenants/{B}")],
    ("GET", "/api/v1/tenants/{tenant}/assets"): lambda w: _both(T + "/assets"),
    ("PUT", "/api/v1/tenants/{tenant}/assets"): lambda w: [
        Attack("PUT", f"/api/v1/tenants/{B}/assets", [{"hostname": "host-bravo", "owner": "evil"}]),
    ],
    ("GET", "/api/v1/tenants/{tenant}/assets/{hostname}"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/assets/host-bravo"),
        Attack("GET", f"/api/v1/tenants/{A}/assets/host-bravo"),
    ],
    ("DELETE", "/api/v1/tenants/{tenant}/assets/{hostname}"): lambda w: [
        Attack("DELETE", f"/api/v1/tenants/{B}/assets/host-bravo"),
        Attack("DELETE", f"/api/v1/tenants/{A}/assets/host-bravo"),
    ],
    ("GET", "/api/v1/tenants/{tenant}/ingest-tokens"): lambda w: _both(T + "/ingest-tokens"),
    ("POST", "/api/v1/tenants/{tenant}/ingest-tokens"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/ingest-tokens", {"name": "evil"}),
    ],
    ("DELETE", "/api/v1/tenants/{tenant}/ingest-tokens/{name}"): lambda w: [
        Attack("DELETE", f"/api/v1/tenants/{B}/ingest-tokens/edge-bravo"),
        Attack("DELETE", f"/api/v1/tenants/{A}/ingest-tokens/edge-bravo"),
    ],
    ("GET", "/api/v1/tenants/{tenant}/users"): lambda w: _both(T + "/users"),
    ("POST", "/api/v1/tenants/{tenant}/users"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/users", {"username": "evil", "password": PASSWORD, "roles": [ADMIN]}),
    ],
    ("GET", "/api/v1/tenants/{tenant}/users/{username}"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/users/{_bravo_user()}"),
        Attack("GET", f"/api/v1/tenants/{A}/users/{_bravo_user()}"),
    ],
    ("PATCH", "/api/v1/tenants/{tenant}/users/{username}"): lambda w: [
        Attack("PATCH", f"/api/v1/tenants/{B}/users/{_bravo_user()}", {"disabled": True}),
        Attack("PATCH", f"/api/v1/tenants/{A}/users/{_bravo_user()}", {"password": "x" * 20}),
    ],
    ("POST", "/api/v1/tenants/{tenant}/users/{username}/roles"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/users/{tenant_user('customer_viewer', B)}/roles", {"role": ADMIN}),
        Attack("POST", f"/api/v1/tenants/{A}/users/{_bravo_user()}/roles", {"role": "customer_viewer"}),
    ],
    ("DELETE", "/api/v1/tenants/{tenant}/users/{username}/roles/{role}"): lambda w: [
        Attack("DELETE", f"/api/v1/tenants/{B}/users/{_bravo_user()}/roles/tenant_admin"),
        Attack("DELETE", f"/api/v1/tenants/{A}/users/{_bravo_user()}/roles/tenant_admin"),
    ],
    ("POST", "/api/v1/tenants/{tenant}/events/query"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/events/query", {"sql": "SELECT * FROM events"}),
        Attack("POST", f"/api/v1/tenants/{A}/events/query", {"sql": "SELECT * FROM events"}, must_refuse=False),
        Attack(
            "POST",
            f"/api/v1/tenants/{A}/events/query",
            {"sql": f"SELECT * FROM read_parquet('{w.platform.lake.tenant_dir(B)}/*/*.parquet')"},
        ),
        Attack(
            "POST",
            f"/api/v1/tenants/{A}/events/query",
            {"sql": "SELECT * FROM read_parquet('../tenant=bravo/*/*.parquet')"},
        ),
    ],
    ("GET", "/api/v1/tenants/{tenant}/dead-letters"): lambda w: [
        *_both(T + "/dead-letters"),
        Attack("GET", f"/api/v1/tenants/{A}/dead-letters?after_id=0&status=pending&limit=1000", must_refuse=False),
    ],
    ("GET", "/api/v1/tenants/{tenant}/dead-letters/{letter_id}"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/dead-letters/{_letter(w)}"),
        Attack("GET", f"/api/v1/tenants/{A}/dead-letters/{_letter(w)}"),
    ],
    ("GET", "/api/v1/tenants/{tenant}/dead-letters/{letter_id}/payload"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/dead-letters/{_letter(w)}/payload"),
        Attack("GET", f"/api/v1/tenants/{A}/dead-letters/{_letter(w)}/payload"),
    ],
    ("POST", "/api/v1/tenants/{tenant}/dead-letters/discard"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/dead-letters/discard", {"ids": w.letters[B]}),
        Attack("POST", f"/api/v1/tenants/{A}/dead-letters/discard", {"ids": w.letters[B]}),
        Attack("POST", f"/api/v1/tenants/{A}/dead-letters/discard", {"ids": w.letters[A] + w.letters[B]}),
    ],
    ("GET", "/api/v1/tenants/{tenant}/audit"): lambda w: _both(T + "/audit"),
    ("GET", "/api/v1/tenants/{tenant}/audit/export"): lambda w: _both(T + "/audit/export"),
    ("GET", "/api/v1/me"): lambda w: [Attack("GET", "/api/v1/me", must_refuse=False)],
    ("GET", "/api/v1/me/tokens"): lambda w: [Attack("GET", "/api/v1/me/tokens", must_refuse=False)],
    ("POST", "/api/v1/me/tokens"): lambda w: [Attack("POST", "/api/v1/me/tokens", {"name": "x", "tenant": B})],
    ("DELETE", "/api/v1/me/tokens/{token_id}"): lambda w: [Attack("DELETE", f"/api/v1/me/tokens/{_bravo_token_id(w)}")],
    # provider-wide routes: a tenant role never reaches them
    ("GET", "/api/v1/users"): lambda w: [Attack("GET", "/api/v1/users")],
    ("POST", "/api/v1/users"): lambda w: [
        Attack("POST", "/api/v1/users", {"username": "evil", "grants": [{"role": "tenant_admin", "tenant": B}]}),
    ],
    ("GET", "/api/v1/users/{username}"): lambda w: [Attack("GET", f"/api/v1/users/{_bravo_user()}")],
    ("PATCH", "/api/v1/users/{username}"): lambda w: [
        Attack("PATCH", f"/api/v1/users/{_bravo_user()}", {"disabled": True}),
    ],
    ("POST", "/api/v1/users/{username}/roles"): lambda w: [
        Attack("POST", f"/api/v1/users/{_bravo_user()}/roles", {"role": "customer_viewer", "tenant": A}),
        Attack("POST", f"/api/v1/users/{tenant_user('tenant_admin', A)}/roles", {"role": "tenant_admin", "tenant": B}),
    ],
    ("DELETE", "/api/v1/users/{username}/roles/{role}"): lambda w: [
        Attack("DELETE", f"/api/v1/users/{_bravo_user()}/roles/tenant_admin?tenant={B}"),
    ],
    ("GET", "/api/v1/users/{username}/tokens"): lambda w: [Attack("GET", f"/api/v1/users/{_bravo_user()}/tokens")],
    ("DELETE", "/api/v1/users/{username}/tokens/{token_id}"): lambda w: [
        Attack("DELETE", f"/api/v1/users/{_bravo_user()}/tokens/{_bravo_token_id(w)}"),
    ],
    ("GET", "/api/v1/dead-letters"): lambda w: [Attack("GET", "/api/v1/dead-letters")],
    ("GET", "/api/v1/audit"): lambda w: [Attack("GET", "/api/v1/audit")],
    ("GET", "/api/v1/audit/verify"): lambda w: [Attack("GET", "/api/v1/audit/verify")],
    ("GET", "/api/v1/audit/export"): lambda w: [Attack("GET", "/api/v1/audit/export")],
    ("GET", "/metrics"): lambda w: [Attack("GET", "/metrics")],
    # cases and alerts
    ("GET", "/api/v1/cases"): lambda w: [
        Attack("GET", "/api/v1/cases?limit=1000", must_refuse=False),
        Attack("GET", "/api/v1/cases?open_only=true&min_severity=low", must_refuse=False),
    ],
    ("GET", "/api/v1/tenants/{tenant}/cases"): lambda w: _both(T + "/cases"),
    ("POST", "/api/v1/tenants/{tenant}/cases/merge"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/cases/merge", {"case_ids": w.cases[B] * 2}),
        Attack("POST", f"/api/v1/tenants/{A}/cases/merge", {"case_ids": [w.cases[A][0], w.cases[B][0]]}),
    ],
    ("GET", "/api/v1/tenants/{tenant}/cases/{case_id}"): lambda w: _case_attacks(w, "GET", ""),
    ("GET", "/api/v1/tenants/{tenant}/cases/{case_id}/timeline"): lambda w: [
        *_case_attacks(w, "GET", "/timeline"),
        *_case_attacks(w, "GET", "/timeline?with_events=true"),
    ],
    ("GET", "/api/v1/tenants/{tenant}/cases/{case_id}/alerts"): lambda w: _case_attacks(w, "GET", "/alerts"),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/acknowledge"): lambda w: _case_attacks(
        w, "POST", "/acknowledge"
    ),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/resolve"): lambda w: _case_attacks(
        w, "POST", "/resolve", {"resolution": "benign"}
    ),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/reopen"): lambda w: _case_attacks(w, "POST", "/reopen", {}),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/assign"): lambda w: _case_attacks(
        w, "POST", "/assign", {"assignee": "mallory"}
    ),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/notes"): lambda w: _case_attacks(
        w, "POST", "/notes", {"text": "pwned"}
    ),
    ("POST", "/api/v1/tenants/{tenant}/cases/{case_id}/split"): lambda w: _case_attacks(
        w, "POST", "/split", {"alert_ids": w.alerts[B][:1]}
    ),
    ("GET", "/api/v1/tenants/{tenant}/alerts"): lambda w: [
        *_both(T + "/alerts"),
        Attack("GET", f"/api/v1/tenants/{A}/alerts?case_id={w.cases[B][0]}", must_refuse=False),
        Attack("GET", f"/api/v1/tenants/{A}/alerts?rule_id=rule-bravo-1&limit=1000", must_refuse=False),
    ],
    ("GET", "/api/v1/tenants/{tenant}/alerts/{alert_id}"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/alerts/{w.alerts[B][0]}"),
        Attack("GET", f"/api/v1/tenants/{A}/alerts/{w.alerts[B][0]}"),
    ],
    # response
    ("GET", "/api/v1/tenants/{tenant}/actions"): lambda w: [
        *_both(T + "/actions"),
        Attack("GET", f"/api/v1/tenants/{A}/actions?case_id={w.cases[B][0]}", must_refuse=False),
    ],
    ("GET", "/api/v1/tenants/{tenant}/actions/{action_id}"): lambda w: _action_attacks("GET", ""),
    ("POST", "/api/v1/tenants/{tenant}/actions/{action_id}/approve"): lambda w: _action_attacks("POST", "/approve", {}),
    ("POST", "/api/v1/tenants/{tenant}/actions/{action_id}/deny"): lambda w: _action_attacks("POST", "/deny", {}),
    ("POST", "/api/v1/tenants/{tenant}/actions/{action_id}/rollback"): lambda w: _action_attacks(
        "POST", "/rollback", {}
    ),
    ("GET", "/api/v1/tenants/{tenant}/cases/{case_id}/response-plan"): lambda w: _case_attacks(
        w, "GET", "/response-plan"
    ),
    ("GET", "/api/v1/tenants/{tenant}/response-policy"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/response-policy")
    ],
    ("PUT", "/api/v1/tenants/{tenant}/response-policy"): lambda w: [
        Attack("PUT", f"/api/v1/tenants/{B}/response-policy", {"policy": {"rules": []}}),
    ],
    # rules and indicators
    ("GET", "/api/v1/rules/versions"): lambda w: [Attack("GET", "/api/v1/rules/versions")],
    ("POST", "/api/v1/rules/versions"): lambda w: [
        Attack("POST", "/api/v1/rules/versions", {"files": [{"path": "x.yml", "text": "title: x"}]}),
    ],
    ("POST", "/api/v1/rules/versions/{version}/activate"): lambda w: [
        Attack("POST", "/api/v1/rules/versions/1/activate")
    ],
    ("GET", "/api/v1/tenants/{tenant}/rules/overrides"): lambda w: _both(T + "/rules/overrides"),
    ("PUT", "/api/v1/tenants/{tenant}/rules/overrides/{rule_id}"): lambda w: [
        Attack("PUT", f"/api/v1/tenants/{B}/rules/overrides/rule-bravo-0", {"enabled": True}),
    ],
    ("POST", "/api/v1/tenants/{tenant}/rules/exceptions"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/rules/exceptions", {"filter": "title: x"}),
    ],
    ("DELETE", "/api/v1/tenants/{tenant}/rules/exceptions/{exception_id}"): lambda w: [
        Attack("DELETE", f"/api/v1/tenants/{B}/rules/exceptions/{w.exceptions[B]}"),
        Attack("DELETE", f"/api/v1/tenants/{A}/rules/exceptions/{w.exceptions[B]}"),
    ],
    ("GET", "/api/v1/indicators"): lambda w: [Attack("GET", "/api/v1/indicators")],
    ("GET", "/api/v1/tenants/{tenant}/sla"): lambda w: _both(T + "/sla"),
    ("GET", "/api/v1/tenants/{tenant}/suppressions"): lambda w: _both(T + "/suppressions"),
    ("POST", "/api/v1/tenants/{tenant}/suppressions"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/suppressions", {"reason": "evil", "source": "sigma"}),
    ],
    ("POST", "/api/v1/tenants/{tenant}/suppressions/{suppression_id}/revoke"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{t}/suppressions/{w.suppressions[B]}/revoke") for t in (B, A)
    ],
    ("GET", "/api/v1/tenants/{tenant}/intel/proposals"): lambda w: _both(T + "/intel/proposals"),
    ("POST", "/api/v1/tenants/{tenant}/intel/proposals/approve"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{t}/intel/proposals/approve", {"proposal_ids": [w.proposals[B]]})
        for t in (B, A)
    ],
    ("POST", "/api/v1/tenants/{tenant}/intel/proposals/{proposal_id}/reject"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{t}/intel/proposals/{w.proposals[B]}/reject", {"reason": "no"}) for t in (B, A)
    ],
    ("GET", "/api/v1/tenants/{tenant}/indicators"): lambda w: _both(T + "/indicators"),
    ("GET", "/api/v1/tenants/{tenant}/indicators/{indicator_id}"): lambda w: [
        Attack("GET", f"/api/v1/tenants/{B}/indicators/{w.indicators[B]}"),
        Attack("GET", f"/api/v1/tenants/{A}/indicators/{w.indicators[B]}"),
    ],
    ("POST", "/api/v1/tenants/{tenant}/indicators/{indicator_id}/retire"): lambda w: [
        Attack("POST", f"/api/v1/tenants/{B}/indicators/{w.indicators[B]}/retire"),
        Attack("POST", f"/api/v1/tenants/{A}/indicators/{w.indicators[B]}/retire"),
    ],
}


def _case_attacks(w: World, method: str, suffix: str, body: Any = None) -> list[Attack]:
    """Bravo's case under bravo's path and under alpha's (id guessing)."""
    case = w.cases[B][0]
    return [Attack(method, f"/api/v1/tenants/{t}/cases/{case}{suffix}", body) for t in (B, A)]


def _action_attacks(method: str, suffix: str, body: Any = None) -> list[Attack]:
    """Bravo's action under bravo's path and under alpha's (id guessing)."""
    return [Attack(method, f"/api/v1/tenants/{t}/actions/act-bravo{suffix}", body) for t in (B, A)]


#: Attackers: every role held in alpha, and a provider admin's token limited to alpha.
ATTACKERS = [tenant_user(r, A) for r in ROLES if r != "provider_admin"] + ["root.alpha-token"]


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path) of the published OpenAPI document."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def bravo_snapshot(w: World) -> dict[str, Any]:
    """Everything of bravo an attack could change."""
    state = w.platform.state
    users = w.identity.list_users(B)
    return {
        "tenant": state.get_tenant(B),
        "assets": state.list_assets(B),
        "ingest_tokens": [(t.name, t.revoked_at) for t in state.list_ingest_tokens(B)],
        "users": [(u.username, u.disabled, u.grants) for u in users],
        "api_tokens": [(t.id, t.revoked_at) for u in users for t in w.identity.list_api_tokens(u.username)],
        "letters": [(d.id, d.status) for d in state.list_dead_letters(B, None)],
        "audit": len(state.list_audit(B, limit=100_000)),
        "tenants": [t.name for t in state.list_tenants()],
        "cases": [(c.case_id, c.status, c.assignee, c.alert_ids, len(c.notes), c.merged_into)
                  for c in w.platform.cases.list(B, limit=1000)],
        "alerts": [(a.alert.alert_id, a.case_id, a.status) for a in w.platform.cases.list_alerts(B, limit=1000)],
        "actions": [(a.action_id, a.status, a.approvals) for a in w.platform.response.list_actions(B)],
        "policy": w.platform.response.get_policy(B).version,
        "overrides": RuleStore(state).overrides(B),
        "exceptions": [e.id for e in RuleStore(state).exceptions(B)],
        "indicators": [(i.id, i.expires_at) for i in w.platform.intel.list_indicators(B, own_only=True)],
        "proposals": [(p.id, p.status) for p in w.platform.intel.list_proposals(B)],
        "suppressions": [(s.id, s.revoked_at) for s in w.platform.cases.list_suppressions(B)],
    }  # fmt: skip


def bravo_markers(w: World) -> tuple[str, ...]:
    """Everything that identifies bravo's data: the fixed markers and bravo's case, alert and indicator ids."""
    return (*MARKERS, *w.cases[B], *w.alerts[B], w.indicators[B], w.proposals[B], "act-bravo")


def judge(who: str, attack: Attack, status: int, text: str, anonymous: bool, markers: tuple[str, ...]) -> str | None:
    """The violation this answer is, if any."""
    ok = 200 <= status < 300
    if anonymous and status != 401:
        return f"{who} {attack.method} {attack.url}: {status}, expected 401"
    if ok and attack.must_refuse:
        return f"{who} {attack.method} {attack.url}: {status} (not refused)"
    if not ok and status not in (400, 401, 403, 404):
        return f"{who} {attack.method} {attack.url}: unexpected {status}"
    if ok and any(m in text for m in markers):
        return f"{who} {attack.method} {attack.url}: bravo data in the answer"
    return None


async def _run_attacks(app: FastAPI, world: World) -> tuple[int, list[str]]:
    """Every attack of every attacker (and anonymously) in one event loop, straight into the ASGI app."""
    attempts, violations = 0, []
    markers = bravo_markers(world)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for attacker in [*ATTACKERS, None]:
            headers = world.headers(attacker) if attacker else {}
            for build in ROUTES.values():
                for attack in build(world):
                    attempts += 1
                    response = await client.request(attack.method, attack.url, json=attack.body, headers=headers)
                    who, anonymous = attacker or "anonymous", attacker is None
                    found = judge(who, attack, response.status_code, response.text, anonymous, markers)
                    if found:
                        violations.append(found)
    return attempts, violations


@sqlite_only
def test_matrix_covers_every_route(client: TestClient) -> None:
    """A new route must be added to the matrix (or exempted with a reason)."""
    served = app_routes(client)
    assert served - EXEMPT - set(ROUTES) == set(), "routes missing from the cross-tenant matrix"
    assert set(ROUTES) - served == set(), "matrix lists routes that no longer exist"


def test_no_role_of_alpha_reads_or_changes_bravo(app: FastAPI, world: World) -> None:
    """Every attack of every alpha role is refused or returns nothing of bravo; bravo is unchanged."""
    before = bravo_snapshot(world)
    attempts, violations = asyncio.run(_run_attacks(app, world))
    assert attempts > len(ROUTES) * len(ATTACKERS)
    assert violations == [], "\n".join(violations)
    assert bravo_snapshot(world) == before
    _bravo_reads_its_own(TestClient(app), world)


@sqlite_only
def test_id_guessing_answers_like_a_missing_id(client: TestClient, world: World) -> None:
    """Under alpha's path, bravo's ids are indistinguishable from ids that do not exist."""
    headers = world.headers(tenant_user("tenant_admin", A))
    missing_letter = max(world.letters[A] + world.letters[B]) + 1000
    pairs = [
        (f"/api/v1/tenants/{A}/dead-letters/{_letter(world)}", f"/api/v1/tenants/{A}/dead-letters/{missing_letter}"),
        (f"/api/v1/tenants/{A}/assets/host-bravo", f"/api/v1/tenants/{A}/assets/host-nowhere"),
        (f"/api/v1/tenants/{A}/users/{_bravo_user()}", f"/api/v1/tenants/{A}/users/nobody"),
    ]
    for guessed, missing in pairs:
        a, b = client.get(guessed, headers=headers), client.get(missing, headers=headers)
        assert a.status_code == b.status_code == 404
    # a tenant one may not read answers 403 whether it exists or not: no existence oracle
    assert client.get(f"/api/v1/tenants/{B}", headers=headers).status_code == 403
    assert client.get("/api/v1/tenants/no-such", headers=headers).status_code == 403


def _bravo_reads_its_own(client: TestClient, world: World) -> None:
    """Positive control: the URLs of the matrix are real, bravo's admin and the provider admin get bravo's data."""
    for reader in (tenant_user("tenant_admin", B), "root"):
        headers = world.headers(reader)
        case = world.cases[B][0]
        paths = ("assets", "assets/host-bravo", "ingest-tokens", "users", f"dead-letters/{_letter(world)}/payload",
                 "audit/export", "cases", f"cases/{case}", f"cases/{case}/timeline", f"cases/{case}/alerts", "alerts",
                 f"alerts/{world.alerts[B][0]}", "actions", "actions/act-bravo", f"cases/{case}/response-plan",
                 "rules/overrides", "indicators", "intel/proposals", "suppressions",
                 f"indicators/{world.indicators[B]}")  # fmt: skip
        for path in paths:
            url = f"/api/v1/tenants/{B}/{path}"
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (reader, url, response.text)
            assert any(m in response.text for m in (*MARKERS, case)), (reader, url)
        sla = client.get(f"/api/v1/tenants/{B}/sla", headers=headers).json()
        assert sla["tenant"] == B and sla["cases"] == len(world.cases[B])
        rows = client.post(f"/api/v1/tenants/{B}/events/query", json={"sql": "SELECT message FROM events"},
                           headers=headers).json()["rows"]  # fmt: skip
        assert {"message": "marker-bravo"} in rows


@sqlite_only
def test_provider_routes_serve_provider_roles(client: TestClient, world: World) -> None:
    """Cross-tenant reads exist for provider-wide roles on the routes meant for them."""
    root = world.headers("root")
    users = {u["username"] for u in client.get("/api/v1/users", headers=root).json()}
    assert {tenant_user("tenant_admin", A), _bravo_user()} <= users
    tenants = {
        r["tenant"] for r in client.get("/api/v1/audit?limit=10000", headers=world.headers("auditor.all")).json()
    }
    assert {A, B} <= tenants
    queue = {c["tenant"] for c in client.get("/api/v1/cases", headers=world.headers("soc.all")).json()}
    assert queue == {A, B}
    soc = {t["name"] for t in client.get("/api/v1/tenants", headers=world.headers("soc.all")).json()}
    assert soc == {A, B}
    assert client.get("/api/v1/users", headers=world.headers("soc.all")).status_code == 403
    assert client.get("/api/v1/audit/verify", headers=world.headers("auditor.all")).json()["ok"] is True
