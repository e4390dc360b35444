"""The lab relay over real loopback HTTP, driven by the real webhook connectors and the response service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from openmdr.cli.common import UserError
from openmdr.cli.main import app
from openmdr.models import AssetInfo, TenantInfo
from openmdr.models.action import ActionRecord
from openmdr.respond.clock import ManualClock
from openmdr.respond.config import CONFIG_ENV, load_response_config
from openmdr.respond.connectors.base import ConnectorError, ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from openmdr.respond.connectors.webhook import WebhookSender
from openmdr.respond.relay import LabRelay, account_key, write_response_config
from openmdr.respond.service import ResponseService
from openmdr.runtime import Platform
from openmdr.store.state import StateStore
from tests.respond.cases import c2_case, credential_alerts, credential_case

SECRET = "relay-test-secret"
FAST = RetryPolicy(attempts=3, base_delay=0.5, attempt_timeout=5)


@pytest.fixture()
def relay() -> Iterator[LabRelay]:
    """A relay with one shared secret on a free loopback port."""
    with LabRelay(SECRET) as running:
        yield running


def service_via_file(
    state: StateStore, relay: LabRelay, tmp_path: Path, clock: ManualClock, secret: str = SECRET
) -> tuple[ResponseService, list[float]]:
    """A response service whose connectors come from the configuration file the relay helper writes."""
    path = write_response_config(tmp_path / "response.toml", ["acme", "globex"], relay.url, "LAB_RELAY_SECRET")
    config = load_response_config(path, {"LAB_RELAY_SECRET": secret})
    assert config.problems == []
    sleeps: list[float] = []
    return ResponseService(state, config.connectors, clock, retry=FAST, sleep=sleeps.append), sleeps


def signed_post(url: str, payload: dict[str, Any] | bytes, delivery: str | None, event: str | None,
                secret: str = SECRET, ts: int | None = None) -> httpx.Response:  # fmt: skip
    """POST a body signed like :class:`WebhookSender` does, with headers left out when None."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    stamp = int(time.time()) if ts is None else ts
    headers = {SIGNATURE_HEADER: sign(secret.encode(), stamp, body), TIMESTAMP_HEADER: str(stamp)}
    if delivery is not None:
        headers[DELIVERY_HEADER] = delivery
    if event is not None:
        headers[EVENT_HEADER] = event
    return httpx.post(url, content=body, headers=headers)


def isolate_payload(tenant: str, host: str, action_id: str) -> dict[str, Any]:
    """The body :class:`WebhookEdrConnector` sends to isolate ``host``."""
    return {"operation": "isolate_host", "tenant": tenant, "action_id": action_id, "host": host, "process": None,
            "file": None, "case_id": None, "prior": None}  # fmt: skip


def test_isolation_runs_through_the_relay_and_rollback_lifts_it(
    sqlite_tenants: StateStore, relay: LabRelay, tmp_path: Path, clock: ManualClock
) -> None:
    svc, _ = service_via_file(sqlite_tenants, relay, tmp_path, clock)
    result = svc.on_case(c2_case(clock()))
    isolate = next(r for r in result.actions if r.kind == "isolate_host")
    assert isolate.status == "executed" and isolate.connector == "edr-webhook" and result.contained
    assert isolate.outcome["prior"] == {"isolated": False}
    held = relay.state("acme")["isolated_hosts"]
    assert list(held) == ["ber-ws-007"] and held["ber-ws-007"]["action_id"] == isolate.action_id
    assert held["ber-ws-007"]["case_id"] == "case-c2"
    rolled = svc.rollback("acme", isolate.action_id, "analyst", "false positive")
    assert rolled.status == "rolled_back"
    assert relay.state("acme")["isolated_hosts"] == {}
    events = [(e["event"], e["status"]) for e in relay.journal("acme")]
    assert events == [("edr.isolate_host", 200), ("edr.unisolate_host", 200)]
    view = httpx.get(f"{relay.url}/state/acme").json()
    assert view["isolated_hosts"] == {} and view["deliveries"] == 2


def test_a_host_isolated_before_stays_isolated_after_rollback(
    sqlite_tenants: StateStore, relay: LabRelay, tmp_path: Path, clock: ManualClock
) -> None:
    console = signed_post(relay.edr_url("acme"), isolate_payload("acme", "BER-WS-007", "console-1"), "console-1",
                          "edr.isolate_host")  # fmt: skip
    assert console.status_code == 200 and console.json()["prior"] == {"isolated": False}
    svc, _ = service_via_file(sqlite_tenants, relay, tmp_path, clock)
    isolate = next(r for r in svc.on_case(c2_case(clock())).actions if r.kind == "isolate_host")
    assert isolate.status == "executed" and isolate.outcome["prior"] == {"isolated": True}
    assert svc.rollback("acme", isolate.action_id, "analyst").status == "rolled_back"
    held = relay.state("acme")["isolated_hosts"]
    assert held["ber-ws-007"]["action_id"] == "console-1"  # the console's isolation is left in place


def test_account_actions_disable_revoke_and_rollback_restores_the_prior_state(
    sqlite_tenants: StateStore, relay: LabRelay, tmp_path: Path, clock: ManualClock
) -> None:
    svc, _ = service_via_file(sqlite_tenants, relay, tmp_path, clock)
    actions = {
        (r.kind, r.target): r
        for r in svc.on_case(credential_case(clock()), credential_alerts(clock()), confidence=0.9).actions
    }
    disable = actions[("disable_account", "l.mueller")]
    assert disable.status == "executed" and disable.outcome["prior"] == {"disabled": False}
    assert actions[("revoke_sessions", "l.mueller")].status == "executed"
    assert actions[("kill_process", "procdump64.exe")].status == "executed"
    state = relay.state("acme")
    assert set(state["disabled_accounts"]) == {"l.mueller"}
    assert state["revoked_sessions"]["l.mueller"]["revocations"] == 1
    assert [(k["host"], k["process"]) for k in state["killed_processes"]] == [("ber-ws-007", "procdump64.exe")]
    assert svc.rollback("acme", disable.action_id, "analyst").status == "rolled_back"
    assert relay.state("acme")["disabled_accounts"] == {}
    # an account that was already disabled stays disabled when the disable is rolled back
    sender = WebhookSender(relay.actions_url("acme"), SECRET)
    body = {"tenant": "acme", "action_id": "idp-1", "kind": "disable_account", "target": "CORP\\A.Schmidt",
            "asset": None, "params": {}, "case_id": None, "rollback_of": None}  # fmt: skip
    assert sender.send("action.disable_account", body, "idp-1").body["prior"] == {"disabled": False}
    again = sender.send("action.disable_account", {**body, "action_id": "a-2"}, "a-2").body
    assert again["prior"] == {"disabled": True}
    undo = {**body, "action_id": "a-3", "kind": "enable_account", "rollback_of": "a-2",
            "params": {"prior": again["prior"]}}  # fmt: skip
    assert sender.send("action.enable_account", undo, "a-3").body["details"]["left_disabled"] is True
    assert set(relay.state("acme")["disabled_accounts"]) == {"a.schmidt"}
    assert account_key("a.schmidt@corp.acme.example") == account_key("CORP\\A.Schmidt") == "a.schmidt"


def test_quarantine_and_restore_through_the_edr_contract(relay: LabRelay) -> None:
    edr = WebhookEdrConnector(WebhookSender(relay.edr_url("acme"), SECRET))

    def run(kind: str, action_id: str, prior: dict[str, Any] | None = None) -> dict[str, Any] | None:
        record = ActionRecord(action_id, "acme", kind, r"C:\Users\Public\svc.exe", "executing", "run", "test", 0,
                              asset="BER-WS-007", params={"prior": prior} if prior is not None else {})  # fmt: skip
        return edr.execute(record).prior

    first = run("quarantine_file", "q-1")
    assert first == {"quarantined": False}
    assert list(relay.state("acme")["quarantined_files"]) == [r"ber-ws-007|C:\Users\Public\svc.exe"]
    second = run("quarantine_file", "q-2")
    assert second == {"quarantined": True}
    run("restore_file", "q-3", second)  # rolling back the second leaves the first quarantine in place
    assert len(relay.state("acme")["quarantined_files"]) == 1
    run("restore_file", "q-4", first)
    assert relay.state("acme")["quarantined_files"] == {}
    with pytest.raises(ConnectorError, match="needs the host"):  # the contract refuses before sending
        edr.execute(ActionRecord("q-5", "acme", "kill_process", "x.exe", "executing", "run", "test", 0))


def test_wrong_missing_and_stale_signatures_are_refused_without_retry(
    sqlite_tenants: StateStore, relay: LabRelay, tmp_path: Path, clock: ManualClock
) -> None:
    svc, sleeps = service_via_file(sqlite_tenants, relay, tmp_path, clock, secret="not-the-relay-secret")
    isolate = next(r for r in svc.on_case(c2_case(clock())).actions if r.kind == "isolate_host")
    assert isolate.status == "failed" and isolate.attempts == 1 and sleeps == []  # 401 is not retried
    assert "401" in (isolate.error or "")
    url, payload = relay.edr_url("acme"), isolate_payload("acme", "BER-WS-007", "x-1")
    stale = WebhookSender(url, SECRET, clock=lambda: time.time() - 3600)
    with pytest.raises(ConnectorError) as refused:
        stale.send("edr.isolate_host", payload, "x-1")
    assert not refused.value.retryable and "401" in str(refused.value)
    body = orjson.dumps(payload)
    assert httpx.post(url, content=body, headers={DELIVERY_HEADER: "x-1"}).status_code == 401
    ts = int(time.time())
    tampered = {SIGNATURE_HEADER: sign(SECRET.encode(), ts, body), TIMESTAMP_HEADER: str(ts), DELIVERY_HEADER: "x-1",
                EVENT_HEADER: "edr.isolate_host"}  # fmt: skip
    other = orjson.dumps(isolate_payload("acme", "ACME-DC01", "x-1"))
    assert httpx.post(url, content=other, headers=tampered).status_code == 401
    assert relay.state("acme")["isolated_hosts"] == {}
    assert relay.core.counters["refused"] == 4 and relay.core.counters["accepted"] == 0


def test_malformed_requests_get_a_non_retryable_4xx(relay: LabRelay) -> None:
    url = relay.edr_url("acme")
    good = isolate_payload("acme", "BER-WS-007", "m-1")
    assert signed_post(url, b"not json", "m-1", "edr.isolate_host").status_code == 400
    assert signed_post(url, b"[1, 2]", "m-1", "edr.isolate_host").status_code == 400
    assert signed_post(url, good, None, "edr.isolate_host").status_code == 400  # no delivery id
    assert signed_post(url, good, "m-1", "edr.kill_process").status_code == 400  # event and body disagree
    assert signed_post(url, {**good, "host": " "}, "m-1", "edr.isolate_host").status_code == 422
    wipe = {**good, "operation": "wipe_host"}
    assert signed_post(url, wipe, "m-1", "edr.wipe_host").status_code == 422
    grant = {"tenant": "acme", "action_id": "m-2", "kind": "grant_admin", "target": "x"}
    assert signed_post(relay.actions_url("acme"), grant, "m-2", "action.grant_admin").status_code == 422
    assert relay.state("acme")["isolated_hosts"] == {} and relay.core.counters["refused"] == 7
    refused = relay.journal("acme")
    assert len(refused) == 7 and all(400 <= e["status"] < 500 and e["outcome"] != "ok" for e in refused)


def test_a_replayed_delivery_changes_nothing(relay: LabRelay) -> None:
    sender = WebhookSender(relay.edr_url("acme"), SECRET)
    first = sender.send("edr.isolate_host", isolate_payload("acme", "BER-WS-007", "d-1"), "d-1").body
    unisolate = {**isolate_payload("acme", "BER-WS-007", "d-2"), "operation": "unisolate_host"}
    sender.send("edr.unisolate_host", unisolate, "d-2")
    assert relay.state("acme")["isolated_hosts"] == {}
    replay = sender.send("edr.isolate_host", isolate_payload("acme", "BER-WS-007", "d-1"), "d-1").body
    assert replay == first and relay.state("acme")["isolated_hosts"] == {}  # same answer, state untouched
    assert [e["replay"] for e in relay.journal("acme")] == [False, False, True]
    reused = signed_post(relay.edr_url("acme"), isolate_payload("acme", "ACME-FS01", "d-1"), "d-1",
                         "edr.isolate_host")  # fmt: skip
    assert reused.status_code == 409 and relay.state("acme")["isolated_hosts"] == {}


def test_tenants_are_separate(sqlite_tenants: StateStore, tmp_path: Path, clock: ManualClock) -> None:
    secrets = {"acme": "acme-secret", "globex": "globex-secret"}
    with LabRelay(tenant_secrets=secrets, tenants=["acme", "globex"]) as relay:
        registry = ConnectorRegistry()
        relay.register(registry, ["acme", "globex"])
        svc = ResponseService(sqlite_tenants, registry, clock, retry=FAST, sleep=lambda s: None)
        assert next(r for r in svc.on_case(c2_case(clock())).actions if r.kind == "isolate_host").status == "executed"
        glx = next(r for r in svc.on_case(c2_case(clock(), "globex", "NYC-WS-007", "case-glx")).actions
                   if r.kind == "isolate_host")  # fmt: skip
        assert glx.status == "executed"
        assert list(relay.state("acme")["isolated_hosts"]) == ["ber-ws-007"]
        assert list(relay.state("globex")["isolated_hosts"]) == ["nyc-ws-007"]
        # globex's secret cannot act on acme, a body naming another tenant is refused, unknown tenants too
        payload = isolate_payload("acme", "ACME-FS01", "t-1")
        as_globex = signed_post(relay.edr_url("acme"), payload, "t-1", "edr.isolate_host", secrets["globex"])
        assert as_globex.status_code == 401
        smuggled = signed_post(relay.edr_url("globex"), payload, "t-1", "edr.isolate_host", secrets["globex"])
        assert smuggled.status_code == 403
        unknown = signed_post(relay.edr_url("initech"), isolate_payload("initech", "X", "t-2"), "t-2",
                              "edr.isolate_host", secrets["acme"])  # fmt: skip
        assert unknown.status_code == 404
        assert list(relay.state("acme")["isolated_hosts"]) == ["ber-ws-007"]
        assert list(relay.state("globex")["isolated_hosts"]) == ["nyc-ws-007"]
        assert relay.state("initech")["isolated_hosts"] == {}
        assert [(e["tenant"], e["status"]) for e in relay.journal("globex")] == [("globex", 200), ("globex", 403)]


def test_shared_routing_serves_every_tenant_by_the_body(
    sqlite_tenants: StateStore, relay: LabRelay, clock: ManualClock
) -> None:
    svc = ResponseService(sqlite_tenants, None, clock, retry=FAST, sleep=lambda s: None)
    relay.register(svc.connectors)  # no tenant list: one shared pair of connectors, as the demo wires it
    assert svc.on_case(c2_case(clock())).contained
    assert svc.on_case(c2_case(clock(), "globex", "NYC-WS-007", "case-glx")).contained
    assert list(relay.state("acme")["isolated_hosts"]) == ["ber-ws-007"]
    assert list(relay.state("globex")["isolated_hosts"]) == ["nyc-ws-007"]
    assert {e["tenant"] for e in relay.journal()} == {"acme", "globex"}
    nameless = signed_post(f"{relay.url}/edr", {**isolate_payload("acme", "X", "n-1"), "tenant": None}, "n-1",
                           "edr.isolate_host")  # fmt: skip
    assert nameless.status_code == 403


def test_state_file_survives_a_restart_and_a_corrupt_one_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "relay-state.json"
    payload = isolate_payload("acme", "BER-WS-007", "s-1")
    with LabRelay(SECRET, state_file=path) as relay:
        WebhookSender(relay.edr_url("acme"), SECRET).send("edr.isolate_host", payload, "s-1")
    with LabRelay(SECRET, state_file=path) as relay:
        assert list(relay.state("acme")["isolated_hosts"]) == ["ber-ws-007"]
        replay = WebhookSender(relay.edr_url("acme"), SECRET).send("edr.isolate_host", payload, "s-1")
        assert replay.body["prior"] == {"isolated": False}  # the first answer, remembered across the restart
        assert relay.core.counters["replayed"] == 1
    path.write_text("{not json")
    with LabRelay(SECRET, state_file=path) as relay:
        assert relay.state("acme")["isolated_hosts"] == {}
        assert len(relay.core.problems) == 1 and "unreadable" in relay.core.problems[0]
        assert httpx.get(f"{relay.url}/healthz").json()["problems"] == relay.core.problems
    assert [p.name.startswith("relay-state.json.corrupt-") for p in tmp_path.iterdir()].count(True) == 1


def test_read_endpoints_need_the_token_when_one_is_set() -> None:
    with LabRelay(SECRET, read_token="let-me-read") as relay:
        WebhookSender(relay.edr_url("acme"), SECRET).send("edr.isolate_host",
                                                          isolate_payload("acme", "WS-1", "r-1"), "r-1")  # fmt: skip
        assert httpx.get(f"{relay.url}/state/acme").status_code == 401
        assert httpx.get(f"{relay.url}/journal", headers={"Authorization": "Bearer nope"}).status_code == 401
        auth = {"Authorization": "Bearer let-me-read"}
        assert list(httpx.get(f"{relay.url}/state", headers=auth).json()) == ["acme"]
        journal = httpx.get(f"{relay.url}/journal", params={"tenant": "acme"}, headers=auth).json()
        assert [(e["event"], e["delivery"]) for e in journal] == [("edr.isolate_host", "r-1")]
        assert httpx.get(f"{relay.url}/healthz").json()["counters"]["accepted"] == 1


def test_the_platform_contains_through_the_relay_from_its_configuration_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's wiring: a configuration file naming the relay, the secret in the environment, Platform.response."""
    monkeypatch.delenv("OPENMDR_DATABASE_URL", raising=False)
    monkeypatch.setenv("OPENMDR_LAB_RELAY_SECRET", SECRET)
    with LabRelay(SECRET) as relay:
        path = write_response_config(tmp_path / "lab" / "response.toml", ["acme"], relay.url)
        monkeypatch.setenv(CONFIG_ENV, str(path))
        with pytest.raises(FileExistsError):
            write_response_config(path, ["acme"], relay.url)
        platform = Platform.from_data_dir(tmp_path / "data")
        try:
            platform.state.create_tenant(TenantInfo("acme", "ACME", "Europe/Berlin", (8, 17), (0, 1, 2, 3, 4),
                                                    ("10.10.0.0/16",), ("acme.example",)), "test")  # fmt: skip
            platform.state.upsert_assets("acme", [AssetInfo("BER-WS-007", ("10.10.10.27",), "l.mueller", "low",
                                                            "workstation", True)], "test")  # fmt: skip
            result = platform.response.on_case(c2_case(platform.clock()))
            assert next(r for r in result.actions if r.kind == "isolate_host").status == "executed"
        finally:
            platform.close()
        assert list(relay.state("acme")["isolated_hosts"]) == ["ber-ws-007"]


def test_relay_serve_needs_the_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENMDR_LAB_RELAY_SECRET", raising=False)
    result = CliRunner().invoke(app, ["relay", "serve", "--port", "0"])
    assert isinstance(result.exception, UserError) and "OPENMDR_LAB_RELAY_SECRET" in str(result.exception)
