"""Connector and notifier configuration: which real systems a tenant's response reaches.

Read from a TOML file (``data_dir/response.toml`` by default, or ``OPENMDR_RESPONSE_CONFIG``).
Secrets never live in the file: it names the environment variables that hold them::

    [notifiers.default]                      # also: soc, customer, approvals, escalation contacts
    url = "https://soar.example/hooks/openmdr"
    secret_env = "OPENMDR_SOC_WEBHOOK_SECRET"

    [tenants.acme.edr]                       # isolate/kill/quarantine through the EDR contract
    type = "webhook"
    url = "https://edr-relay.acme.example/openmdr"
    secret_env = "ACME_EDR_SECRET"

    [tenants.acme.ldap]                      # disable/enable accounts
    url = "ldaps://dc01.corp.acme.example"
    bind_dn = "CN=svc_openmdr,OU=Service,DC=corp,DC=acme,DC=example"
    password_env = "ACME_LDAP_PASSWORD"
    base_dn = "DC=corp,DC=acme,DC=example"
    user_attribute = "sAMAccountName"
    mode = "ad"

    [tenants.acme.webhook_actions]           # kinds handled by a SOAR/IdP automation
    url = "https://soar.example/hooks/acme"
    secret_env = "ACME_SOAR_SECRET"
    kinds = ["revoke_sessions"]

Problems (missing variables, unknown keys) are collected and reported, never raised one by one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmdr.models.action import ACTION_CATALOGUE
from openmdr.respond.connectors.base import ConnectorRegistry
from openmdr.respond.connectors.edr import WebhookEdrConnector
from openmdr.respond.connectors.ldap import LdapAccountConnector
from openmdr.respond.connectors.webhook import WebhookActionConnector, WebhookNotifier, WebhookSender

#: Environment variable naming the response configuration file.
CONFIG_ENV = "OPENMDR_RESPONSE_CONFIG"


@dataclass(slots=True)
class ResponseConfig:
    """The connectors and notifiers built from a configuration file, with its problems."""

    connectors: ConnectorRegistry = field(default_factory=ConnectorRegistry)
    notifiers: dict[str, WebhookNotifier] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    source: str | None = None


def config_path(data_dir: Path) -> Path:
    """The configuration file in effect: ``$OPENMDR_RESPONSE_CONFIG`` or ``data_dir/response.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else data_dir / "response.toml"


def load_response_config(path: Path | None, env: Mapping[str, str] | None = None) -> ResponseConfig:
    """Build connectors and notifiers from ``path`` (a missing file means none are configured)."""
    out = ResponseConfig(source=str(path) if path else None)
    if path is None or not path.is_file():
        return out
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        out.problems.append(f"{path}: {exc}")
        return out
    return build_response_config(doc, env if env is not None else os.environ, str(path))


def build_response_config(doc: Mapping[str, Any], env: Mapping[str, str], source: str = "<config>") -> ResponseConfig:
    """Build connectors and notifiers from a parsed configuration document."""
    out = ResponseConfig(source=source)
    for key in doc:
        if key not in ("notifiers", "tenants"):
            out.problems.append(f"unknown section {key!r}")
    for channel, raw in (doc.get("notifiers") or {}).items():
        sender = _sender(raw, env, f"notifiers.{channel}", out.problems)
        if sender is not None:
            out.notifiers[str(channel)] = WebhookNotifier(sender)
    for tenant, sections in (doc.get("tenants") or {}).items():
        for name, raw in (sections or {}).items():
            where = f"tenants.{tenant}.{name}"
            if name == "edr":
                if raw.get("type", "webhook") != "webhook":
                    out.problems.append(f"{where}: type {raw.get('type')!r} is not built in; register it in code")
                    continue
                sender = _sender(raw, env, where, out.problems, extra={"type"})
                if sender is not None:
                    out.connectors.add(WebhookEdrConnector(sender), tenant)
            elif name == "ldap":
                connector = _ldap(raw, env, where, out.problems)
                if connector is not None:
                    out.connectors.add(connector, tenant)
            elif name == "webhook_actions":
                kinds = [str(k) for k in raw.get("kinds") or []]
                bad = [k for k in kinds if k not in ACTION_CATALOGUE]
                if bad or not kinds:
                    out.problems.append(f"{where}: kinds must list action kinds (bad: {bad})")
                    continue
                sender = _sender(raw, env, where, out.problems, extra={"kinds"})
                if sender is not None:
                    out.connectors.add(WebhookActionConnector(f"webhook:{tenant}", sender, kinds), tenant)
            else:
                out.problems.append(f"{where}: unknown connector section")
    return out


def _secret(raw: Mapping[str, Any], key: str, env: Mapping[str, str], where: str, problems: list[str]) -> str | None:
    var = raw.get(key)
    if not var:
        problems.append(f"{where}: {key} (the environment variable holding the secret) is required")
        return None
    value = env.get(str(var))
    if not value:
        problems.append(f"{where}: environment variable {var} is not set")
        return None
    return value


def _sender(
    raw: Mapping[str, Any], env: Mapping[str, str], where: str, problems: list[str], extra: set[str] | None = None
) -> WebhookSender | None:
    known = {"url", "secret_env", "timeout"} | (extra or set())
    problems.extend(f"{where}: unknown key {k!r}" for k in raw if k not in known)
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append(f"{where}: url must be an http(s) URL")
        return None
    secret = _secret(raw, "secret_env", env, where, problems)
    if secret is None:
        return None
    return WebhookSender(url, secret, timeout=float(raw.get("timeout", 10.0)))


def _ldap(
    raw: Mapping[str, Any], env: Mapping[str, str], where: str, problems: list[str]
) -> LdapAccountConnector | None:
    known = {"url", "bind_dn", "password_env", "base_dn", "user_attribute", "mode", "timeout"}
    problems.extend(f"{where}: unknown key {k!r}" for k in raw if k not in known)
    missing = [k for k in ("url", "bind_dn", "base_dn") if not raw.get(k)]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
        return None
    password = _secret(raw, "password_env", env, where, problems)
    if password is None:
        return None
    try:
        return LdapAccountConnector(
            str(raw["url"]), str(raw["bind_dn"]), password, str(raw["base_dn"]),
            user_attribute=str(raw.get("user_attribute", "uid")), mode=str(raw.get("mode", "openldap")),
            timeout=float(raw.get("timeout", 10.0)),
        )  # fmt: skip
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
