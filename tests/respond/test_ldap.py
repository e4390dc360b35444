"""The LDAP connector against a real slapd: disabling an account makes its binds fail, enabling restores them."""

from __future__ import annotations

import ldap3
import pytest

from openmdr.models.action import ActionRecord
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.base import ConnectorError, ConnectorRegistry, RetryPolicy
from openmdr.respond.connectors.ldap import AD_ACCOUNTDISABLE, LdapAccountConnector, ad_control_value
from openmdr.respond.service import ResponseService
from openmdr.store.state import StateStore
from tests.respond.cases import credential_alerts, credential_case
from tests.respond.conftest import Slapd


def add_user(slapd: Slapd, uid: str, password: str) -> str:
    dn = f"uid={uid},{slapd.people_dn}"
    conn = ldap3.Connection(ldap3.Server(slapd.url), slapd.admin_dn, slapd.admin_password, auto_bind=True)
    conn.delete(dn)
    assert conn.add(dn, ["inetOrgPerson"], {"uid": uid, "cn": uid, "sn": uid, "userPassword": password}), conn.result
    conn.unbind()
    return dn


def can_bind(slapd: Slapd, dn: str, password: str) -> bool:
    conn = ldap3.Connection(ldap3.Server(slapd.url), dn, password)
    ok = bool(conn.bind())
    conn.unbind()
    return ok


def connector(slapd: Slapd, password: str | None = None) -> LdapAccountConnector:
    return LdapAccountConnector(slapd.url, slapd.admin_dn, password or slapd.admin_password, slapd.base_dn, timeout=5)


def action(kind: str, target: str, **kw: object) -> ActionRecord:
    return ActionRecord("a" * 32, "acme", kind, target, "executing", "run", "test", 0, **kw)  # type: ignore[arg-type]


def test_disable_and_enable_really_change_the_directory(slapd: Slapd) -> None:
    dn = add_user(slapd, "l.mueller", "Sommer2026!")
    ldap = connector(slapd)
    assert can_bind(slapd, dn, "Sommer2026!")
    result = ldap.execute(action("disable_account", "CORP\\l.mueller"))
    assert result.prior == {"disabled": False} and result.details["changed"] is True
    assert ldap.is_disabled("l.mueller") and not can_bind(slapd, dn, "Sommer2026!")
    again = ldap.execute(action("disable_account", "l.mueller@acme.example"))  # idempotent
    assert again.details["changed"] is False and again.prior == {"disabled": True}
    ldap.execute(action("enable_account", "l.mueller"))
    assert not ldap.is_disabled("l.mueller") and can_bind(slapd, dn, "Sommer2026!")


def test_errors_are_classified(slapd: Slapd) -> None:
    with pytest.raises(ConnectorError, match="not found") as missing:
        connector(slapd).execute(action("disable_account", "nobody"))
    assert not missing.value.retryable
    with pytest.raises(ConnectorError, match="refused") as refused:
        connector(slapd, password="wrong").execute(action("disable_account", "l.mueller"))
    assert not refused.value.retryable
    port = int(slapd.url.rsplit(":", 1)[1])
    dead = LdapAccountConnector(f"ldap://127.0.0.1:{port + 1}", slapd.admin_dn, "x", slapd.base_dn, timeout=1)
    with pytest.raises(ConnectorError, match="unreachable") as down:
        dead.execute(action("disable_account", "l.mueller"))
    assert down.value.retryable


def test_filter_injection_is_escaped(slapd: Slapd) -> None:
    add_user(slapd, "victim", "pw-victim-1")
    with pytest.raises(ConnectorError, match="not found"):
        connector(slapd).execute(action("disable_account", "*"))
    assert not connector(slapd).is_disabled("victim")


def test_ad_flag_arithmetic() -> None:
    assert ad_control_value(0x200, True) == 0x202
    assert ad_control_value(0x202, False) == 0x200
    assert ad_control_value(0x202, True) == 0x202 and AD_ACCOUNTDISABLE == 2


def test_service_disables_off_hours_and_rollback_re_enables(
    slapd: Slapd, sqlite_tenants: StateStore, clock: ManualClock
) -> None:
    dn = add_user(slapd, "l.mueller", "Sommer2026!")
    registry = ConnectorRegistry()
    registry.add(connector(slapd), "acme")
    svc = ResponseService(sqlite_tenants, registry, clock, retry=RetryPolicy(attempts=2, base_delay=0.01),
                          sleep=lambda s: None)  # fmt: skip
    records = svc.on_case(credential_case(clock()), credential_alerts(clock()), confidence=0.9).actions
    disable = next(r for r in records if r.kind == "disable_account" and r.target == "l.mueller")
    admin = next(r for r in records if r.kind == "disable_account" and r.target.endswith("adm-l.mueller"))
    assert disable.status == "executed" and disable.connector == "ldap"
    assert admin.status == "awaiting_approval" and admin.approvals_required == 2  # privileged: two people
    assert not can_bind(slapd, dn, "Sommer2026!")
    svc.rollback("acme", disable.action_id, "analyst", "user confirmed it was them")
    assert can_bind(slapd, dn, "Sommer2026!")


def test_rollback_keeps_an_account_that_was_disabled_before(
    slapd: Slapd, sqlite_tenants: StateStore, clock: ManualClock
) -> None:
    dn = add_user(slapd, "l.mueller", "Sommer2026!")
    connector(slapd).execute(action("disable_account", "l.mueller"))  # disabled by the helpdesk earlier
    registry = ConnectorRegistry()
    registry.add(connector(slapd), "acme")
    svc = ResponseService(sqlite_tenants, registry, clock, sleep=lambda s: None)
    disable = next(r for r in svc.on_case(credential_case(clock()), credential_alerts(clock()), confidence=0.9).actions
                   if r.kind == "disable_account" and r.target == "l.mueller")  # fmt: skip
    assert disable.outcome["prior"] == {"disabled": True}
    svc.rollback("acme", disable.action_id, "analyst")
    assert not can_bind(slapd, dn, "Sommer2026!")
