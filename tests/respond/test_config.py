"""Connector configuration from TOML: secrets from the environment, every problem reported."""

from __future__ import annotations

from pathlib import Path

from openmdr.respond.config import build_response_config, load_response_config
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.ldap import LdapAccountConnector
from openmdr.respond.connectors.webhook import WebhookActionConnector

DOC = {
    "notifiers": {"default": {"url": "https://soar.example/hook", "secret_env": "SOC_SECRET"}},
    "tenants": {
        "acme": {
            "edr": {"type": "webhook", "url": "https://edr.acme.example/hook", "secret_env": "ACME_EDR"},
            "ldap": {"url": "ldaps://dc01", "bind_dn": "cn=svc", "password_env": "ACME_LDAP", "base_dn": "dc=acme",
                     "user_attribute": "sAMAccountName", "mode": "ad"},
            "webhook_actions": {"url": "https://soar.example/acme", "secret_env": "SOC_SECRET",
                                "kinds": ["revoke_sessions"]},
        },
        "globex": {"edr": {"type": "crowdstrike"}, "ldap": {"url": "ldap://x"}, "firewall": {}},
    },
}  # fmt: skip
ENV = {"SOC_SECRET": "s1", "ACME_EDR": "s2", "ACME_LDAP": "pw"}


def test_connectors_are_routed_per_tenant_and_problems_collected() -> None:
    config = build_response_config(DOC, ENV)
    reg = config.connectors
    assert isinstance(reg.for_kind("acme", "isolate_host"), WebhookEdrConnector)
    ldap = reg.for_kind("acme", "disable_account")
    assert isinstance(ldap, LdapAccountConnector) and ldap.mode == "ad" and ldap.password == "pw"
    assert isinstance(reg.for_kind("acme", "revoke_sessions"), WebhookActionConnector)
    assert reg.for_kind("globex", "isolate_host") is None  # acme's EDR never serves globex
    assert set(config.notifiers) == {"default"}
    text = "\n".join(config.problems)
    assert "'crowdstrike' is not built in" in text and "missing bind_dn, base_dn" in text
    assert "tenants.globex.firewall: unknown connector section" in text


def test_missing_secret_and_missing_file(tmp_path: Path) -> None:
    config = build_response_config(DOC, {"SOC_SECRET": "s1"})
    assert any("ACME_EDR is not set" in p for p in config.problems)
    assert config.connectors.for_kind("acme", "isolate_host") is None
    assert load_response_config(tmp_path / "none.toml").problems == []
    broken = tmp_path / "broken.toml"
    broken.write_text("[tenants\n")
    assert load_response_config(broken).problems
