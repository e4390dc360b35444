"""The case, alert, response, rule and indicator routes do their job for the roles meant to use them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import EXCEPTION, World, sqlite_only, tenant_user


@sqlite_only
def test_case_work_through_the_api(client: TestClient, world: World) -> None:
    """An analyst lists, reads, acknowledges, notes and resolves a case; each step is audited as them."""
    analyst = tenant_user("tenant_analyst", "alpha")
    h = world.headers(analyst)
    case_id = world.cases["alpha"][0]
    listed = client.get("/api/v1/tenants/alpha/cases?open_only=true", headers=h).json()
    assert [c["case_id"] for c in listed] == [case_id] and listed[0]["alert_count"] == 3
    case = client.get(f"/api/v1/tenants/alpha/cases/{case_id}", headers=h).json()
    assert sorted(case["alert_ids"]) == sorted(world.alerts["alpha"])
    timeline = client.get(f"/api/v1/tenants/alpha/cases/{case_id}/timeline", headers=h).json()
    assert {e["alert_id"] for e in timeline["entries"]} == set(world.alerts["alpha"])
    assert (
        client.post(f"/api/v1/tenants/alpha/cases/{case_id}/acknowledge", headers=h).json()["status"] == "acknowledged"
    )
    client.post(f"/api/v1/tenants/alpha/cases/{case_id}/notes", json={"text": "looked at it"}, headers=h)
    resolved = client.post(f"/api/v1/tenants/alpha/cases/{case_id}/resolve", json={"resolution": "benign"}, headers=h)
    assert resolved.json()["status"] == "resolved" and resolved.json()["notes"][0]["author"] == f"user:{analyst}"
    bad = client.post(f"/api/v1/tenants/alpha/cases/{case_id}/resolve", json={"resolution": "maybe"}, headers=h)
    assert bad.status_code in (400, 409)
    actions = [a.action for a in world.platform.state.list_audit("alpha") if a.actor == f"user:{analyst}"]
    assert actions == ["case.acknowledge", "case.note", "case.resolve"]
    sla = client.get("/api/v1/tenants/alpha/sla", headers=h).json()
    assert sla["cases"] == 1 and sla["by_status"] == {"resolved": 1}
    alerts = client.get(f"/api/v1/tenants/alpha/alerts?case_id={case_id}", headers=h).json()
    assert {a["alert_id"] for a in alerts} == set(world.alerts["alpha"]) and alerts[0]["case_id"] == case_id


@sqlite_only
def test_response_approval_and_policy(client: TestClient, world: World) -> None:
    """The customer's admin approves a waiting action; a viewer may only read it."""
    viewer = world.headers(tenant_user("customer_viewer", "alpha"))
    assert client.get("/api/v1/tenants/alpha/actions/act-alpha", headers=viewer).json()["status"] == "awaiting_approval"
    assert client.post("/api/v1/tenants/alpha/actions/act-alpha/approve", json={}, headers=viewer).status_code == 403
    admin = tenant_user("tenant_admin", "alpha")
    approved = client.post("/api/v1/tenants/alpha/actions/act-alpha/approve", json={"reason": "ok"},
                           headers=world.headers(admin)).json()  # fmt: skip
    assert admin in approved["approvals"] and approved["status"] != "awaiting_approval"
    policy = client.get("/api/v1/tenants/alpha/response-policy", headers=viewer).json()
    assert policy["tenant"] == "alpha"
    put = client.put("/api/v1/tenants/alpha/response-policy", json={"policy": policy["policy"], "comment": "same"},
                     headers=world.headers(admin))  # fmt: skip
    assert put.status_code == 200 and put.json()["version"] == policy["version"] + 1


@sqlite_only
def test_rules_overrides_and_indicators(client: TestClient, world: World) -> None:
    """A tenant's detection engineer overrides rules for it; the library itself is provider-wide."""
    engineer = world.headers(tenant_user("detection_engineer", "alpha"))
    r = client.put("/api/v1/tenants/alpha/rules/overrides/rule-x", json={"enabled": False, "severity": "low"},
                   headers=engineer)  # fmt: skip
    assert r.status_code == 200
    overrides = client.get("/api/v1/tenants/alpha/rules/overrides", headers=engineer).json()
    assert "rule-x" in overrides["disabled"] and overrides["severity"] == {"rule-x": "low"}
    bad = client.post("/api/v1/tenants/alpha/rules/exceptions", json={"filter": "title: [unclosed"}, headers=engineer)
    assert bad.status_code == 400
    added = client.post("/api/v1/tenants/alpha/rules/exceptions", json={"filter": EXCEPTION.format(tenant="x")},
                        headers=engineer)  # fmt: skip
    assert added.status_code == 201
    assert client.get("/api/v1/rules/versions", headers=engineer).status_code == 403
    root = world.headers("root")
    rule = "title: t\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: windows}\n"
    rule += "detection: {sel: {EventID: 1}, condition: sel}\n"
    detection = world.platform.detection  # the running detection of this process
    installed = client.post("/api/v1/rules/versions", json={"files": [{"path": "r.yml", "text": rule}]}, headers=root)
    assert installed.status_code == 201 and installed.json()["active"] is True
    assert detection.library_version == installed.json()["version"]  # switched at once, no restart
    assert [m.id for m in detection.engine.ruleset.metas] == ["11111111-1111-4111-8111-111111111111"]
    indicator = world.indicators["alpha"]
    listed = client.get("/api/v1/tenants/alpha/indicators", headers=engineer).json()
    assert [i["id"] for i in listed] == [indicator]
    assert client.post(f"/api/v1/tenants/alpha/indicators/{indicator}/retire", headers=engineer).status_code == 200
    proposals = client.get("/api/v1/tenants/alpha/intel/proposals", headers=engineer).json()
    assert [p["status"] for p in proposals] == ["proposed"]
    rejected = client.post(f"/api/v1/tenants/alpha/intel/proposals/{proposals[0]['id']}/reject",
                           json={"reason": "internal"}, headers=engineer)  # fmt: skip
    assert rejected.json()["status"] == "rejected"


@sqlite_only
def test_suppressions(client: TestClient, world: World) -> None:
    """An analyst silences a noisy rule with a reason and ends it; a viewer can only read."""
    analyst = world.headers(tenant_user("tenant_analyst", "alpha"))
    viewer = world.headers(tenant_user("customer_viewer", "alpha"))
    body = {"reason": "patch window", "rule_id": "rule-noisy", "expires_at": "2030-01-01T00:00:00Z"}
    assert client.post("/api/v1/tenants/alpha/suppressions", json=body, headers=viewer).status_code == 403
    added = client.post("/api/v1/tenants/alpha/suppressions", json=body, headers=analyst)
    assert added.status_code == 201 and added.json()["created_by"].endswith("tenant-analyst.alpha")
    naive = client.post("/api/v1/tenants/alpha/suppressions", json={**body, "expires_at": "2030-01-01T00:00:00"},
                        headers=analyst)  # fmt: skip
    assert naive.status_code == 400
    sid = added.json()["id"]
    assert client.post(f"/api/v1/tenants/alpha/suppressions/{sid}/revoke", headers=analyst).status_code == 200
    listed = client.get("/api/v1/tenants/alpha/suppressions", headers=viewer).json()
    assert any(s["id"] == sid and s["revoked_at"] for s in listed)
    active = client.get("/api/v1/tenants/alpha/suppressions?active_only=true", headers=viewer).json()
    assert sid not in {s["id"] for s in active}
