"""Response actions: the catalogue of what the platform can do to contain an attack, and one action's record.

Every containment action has a reverse (isolate/unisolate, quarantine/restore, disable/enable,
block/unblock) so an analyst can roll it back; killing a process and revoking sessions cannot be
undone and say so (``reversible=False``).  :class:`ActionRecord` is what the response store keeps,
the audit trail refers to and the bus carries on ``TOPIC_ACTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One kind of action: what it acts on, which capability runs it and what undoes it.

    ``target_type`` is the observable type it takes (``host``, ``user``, ``ip``, ...);
    ``scope`` is how the authority policy classifies its target: ``host`` (the asset's
    class and criticality from the inventory), ``account`` (privileged or not) or
    ``indicator`` (an external address, domain, URL or hash blocked at the edge).
    """

    kind: str
    target_type: str
    scope: str
    reverse: str | None
    containment: bool
    description: str

    @property
    def reversible(self) -> bool:
        """True when a rollback action exists."""
        return self.reverse is not None


_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("isolate_host", "host", "host", "unisolate_host", True, "cut the host off the network (EDR)"),
    ActionSpec("unisolate_host", "host", "host", None, False, "reconnect an isolated host (EDR)"),
    ActionSpec("kill_process", "process", "host", None, True, "terminate a process on a host (EDR)"),
    ActionSpec("quarantine_file", "file", "host", "restore_file", True, "move a file into EDR quarantine"),
    ActionSpec("restore_file", "file", "host", None, False, "restore a quarantined file"),
    ActionSpec("disable_account", "user", "account", "enable_account", True, "disable a directory account (LDAP)"),
    ActionSpec("enable_account", "user", "account", None, False, "re-enable a directory account (LDAP)"),
    ActionSpec("revoke_sessions", "user", "account", None, True, "revoke an account's sessions and tokens"),
    ActionSpec("block_ip", "ip", "indicator", "unblock_ip", True, "publish an address on the firewall block list"),
    ActionSpec("unblock_ip", "ip", "indicator", None, False, "remove an address from the block list"),
    ActionSpec("block_domain", "domain", "indicator", "unblock_domain", True, "block a domain (DNS/proxy list)"),
    ActionSpec("unblock_domain", "domain", "indicator", None, False, "remove a domain from the block list"),
    ActionSpec("block_url", "url", "indicator", "unblock_url", True, "block a URL (proxy/firewall list)"),
    ActionSpec("unblock_url", "url", "indicator", None, False, "remove a URL from the block list"),
    ActionSpec("block_hash", "hash", "indicator", "unblock_hash", True, "block a file hash (EDR/firewall list)"),
    ActionSpec("unblock_hash", "hash", "indicator", None, False, "remove a hash from the block list"),
)

#: Every action kind by name.
ACTION_CATALOGUE: dict[str, ActionSpec] = {s.kind: s for s in _SPECS}
#: The kinds a playbook may request (reverse actions are only run by rollback).
CONTAINMENT_ACTIONS: tuple[str, ...] = tuple(s.kind for s in _SPECS if s.containment)

#: Lifecycle of an action record.
#: ``planned`` (dry run, never executed), ``denied`` (outside authority), ``awaiting_approval``,
#: ``escalated`` (approval overdue, next contact asked), ``expired`` (nobody approved in time),
#: ``rejected`` (a person said no), ``executing``, ``executed``, ``failed``, ``rolled_back``.
ACTION_STATUSES: tuple[str, ...] = (
    "planned", "denied", "awaiting_approval", "escalated", "expired", "rejected", "executing", "executed",
    "failed", "rolled_back",
)  # fmt: skip
#: Statuses in which an action still waits for a person.
PENDING_STATUSES: frozenset[str] = frozenset({"awaiting_approval", "escalated"})
#: Statuses after which nothing more happens to an action (except rollback of ``executed``).
FINAL_STATUSES: frozenset[str] = frozenset({"planned", "denied", "expired", "rejected", "failed", "rolled_back"})
#: Policy verdicts.
VERDICTS: tuple[str, ...] = ("run", "approve", "deny")


@dataclass(slots=True)
class ActionRecord:
    """One requested action, what the authority policy decided about it and what happened.

    ``target`` is the value acted on (hostname, account, address, ...); ``asset`` the host
    it runs on for host-scoped actions.  ``policy_version`` is the version of the tenant's
    authority policy that decided ``verdict``; ``approvals`` the distinct people who
    approved (two are needed when ``approvals_required`` is 2).  ``outcome`` holds what
    the connector reported, including the state before the action (``prior``) that a
    rollback restores.
    """

    action_id: str
    tenant: str
    kind: str
    target: str
    status: str
    verdict: str
    reason: str
    policy_version: int
    case_id: str | None = None
    playbook: str | None = None
    step: int | None = None
    asset: str | None = None
    asset_class: str | None = None
    criticality: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    approvals_required: int = 0
    approvals: list[str] = field(default_factory=list)
    requested_at: datetime | None = None
    deadline_at: datetime | None = None
    escalation_level: int = 0
    executed_at: datetime | None = None
    attempts: int = 0
    connector: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    rollback_of: str | None = None
    rolled_back_at: datetime | None = None
    updated_at: datetime | None = None
    dry_run: bool = False

    @property
    def spec(self) -> ActionSpec:
        """The catalogue entry of this action's kind."""
        return ACTION_CATALOGUE[self.kind]

    @property
    def pending(self) -> bool:
        """True while the action waits for approval."""
        return self.status in PENDING_STATUSES

    def to_json_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (times as ISO 8601 strings)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out
