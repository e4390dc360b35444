"""Account disable/enable over LDAP (ldap3): OpenLDAP password-policy lock or Active Directory flag.

``mode="openldap"`` locks an account the way the ppolicy overlay enforces: the operational
attribute ``pwdAccountLockedTime`` set to ``000001010000Z`` (locked until an administrator
unlocks it), so binds as that account fail; enabling deletes the attribute.
``mode="ad"`` sets or clears the ACCOUNTDISABLE bit (0x2) of ``userAccountControl``.
Both report whether the account was already disabled, and a rollback restores exactly that.
"""

from __future__ import annotations

from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError, LDAPSocketReceiveError
from ldap3.utils.conv import escape_filter_chars

from openmdr.models.action import ActionRecord
from openmdr.respond.connectors.base import ConnectorError, ConnectorResult

#: The ppolicy value that locks an account until an administrator unlocks it.
PERMANENT_LOCK = "000001010000Z"
#: Active Directory's "account disabled" flag in ``userAccountControl``.
AD_ACCOUNTDISABLE = 0x2


def ad_control_value(current: int, disabled: bool) -> int:
    """The ``userAccountControl`` value with the ACCOUNTDISABLE bit set (``disabled``) or cleared."""
    return current | AD_ACCOUNTDISABLE if disabled else current & ~AD_ACCOUNTDISABLE


class LdapAccountConnector:
    """Disables and re-enables directory accounts of one tenant's directory."""

    kinds = frozenset({"disable_account", "enable_account"})

    def __init__(
        self,
        url: str,
        bind_dn: str,
        password: str,
        base_dn: str,
        user_attribute: str = "uid",
        mode: str = "openldap",
        timeout: float = 10.0,
        name: str = "ldap",
    ) -> None:
        if mode not in ("openldap", "ad"):
            raise ValueError("mode must be 'openldap' or 'ad'")
        self.url, self.bind_dn, self.password, self.base_dn = url, bind_dn, password, base_dn
        self.user_attribute, self.mode, self.timeout, self.name = user_attribute, mode, timeout, name

    def execute(self, action: ActionRecord) -> ConnectorResult:
        """Disable or enable the account named by ``action.target`` (``DOMAIN\\user`` and ``user@dom`` accepted)."""
        account = action.target.rsplit("\\", 1)[-1].split("@", 1)[0]
        disable = action.kind == "disable_account"
        if action.rollback_of is not None and not disable:
            prior = action.params.get("prior") or {}
            if prior.get("disabled"):
                return ConnectorResult({"account": account, "left_disabled": True, "reason": "it was disabled before"})
        try:
            with self._connect() as conn:
                dn, disabled_now, control = self._find(conn, account)
                if disabled_now == disable:
                    return ConnectorResult({"dn": dn, "changed": False}, {"disabled": disabled_now})
                changes = self._changes(disable, control)
                if not conn.modify(dn, changes):
                    raise ConnectorError(f"LDAP modify of {dn} refused: {conn.result.get('description')} "
                                         f"{conn.result.get('message')}", retryable=False)  # fmt: skip
                return ConnectorResult({"dn": dn, "changed": True}, {"disabled": disabled_now})
        except (LDAPSocketOpenError, LDAPSocketReceiveError) as exc:
            raise ConnectorError(f"LDAP server {self.url} unreachable: {exc}") from None
        except LDAPException as exc:
            raise ConnectorError(f"LDAP error: {type(exc).__name__}: {exc}", retryable=False) from None

    def is_disabled(self, account: str) -> bool:
        """Whether the directory currently has ``account`` disabled (used by checks and tests)."""
        with self._connect() as conn:
            return self._find(conn, account)[1]

    def _connect(self) -> ldap3.Connection:
        server = ldap3.Server(self.url, connect_timeout=self.timeout, get_info=ldap3.NONE)
        try:
            return ldap3.Connection(server, self.bind_dn, self.password, auto_bind=True, receive_timeout=self.timeout,
                                    raise_exceptions=False)  # fmt: skip
        except ldap3.core.exceptions.LDAPBindError as exc:
            raise ConnectorError(f"LDAP bind as {self.bind_dn} refused: {exc}", retryable=False) from None

    def _find(self, conn: ldap3.Connection, account: str) -> tuple[str, bool, int]:
        attr = "pwdAccountLockedTime" if self.mode == "openldap" else "userAccountControl"
        flt = f"({self.user_attribute}={escape_filter_chars(account)})"
        conn.search(self.base_dn, flt, ldap3.SUBTREE, attributes=[attr], size_limit=2)
        entries = list(conn.entries)
        if not entries:
            raise ConnectorError(f"account {account!r} not found under {self.base_dn}", retryable=False)
        if len(entries) > 1:
            raise ConnectorError(f"account {account!r} is ambiguous under {self.base_dn}", retryable=False)
        entry = entries[0]
        values: Any = entry[attr].values if attr in entry else []
        if self.mode == "openldap":
            return entry.entry_dn, bool(values), 0
        control = int(values[0]) if values else 0
        return entry.entry_dn, bool(control & AD_ACCOUNTDISABLE), control

    def _changes(self, disable: bool, control: int) -> dict[str, list[tuple[str, list[Any]]]]:
        if self.mode == "ad":
            return {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(ad_control_value(control, disable))])]}
        if disable:
            return {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [PERMANENT_LOCK])]}
        return {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}
