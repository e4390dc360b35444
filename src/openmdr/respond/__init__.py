"""Response under delegated authority: playbooks, the tenant's authority policy, connectors, approvals.

Entry point for the pipeline: :class:`ResponseService` (``on_case``, ``approve``, ``deny``,
``tick``, ``rollback``, ``list_actions``).  Pure parts: :mod:`.policy` (evaluate an action
against the policy), :mod:`.playbook` (YAML playbooks), :mod:`.planner` (case -> plan).
Connectors in :mod:`.connectors`; the firewall block lists over HTTP in :mod:`.edl`.
Names are imported lazily so the response store can use the policy module without a cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ResponseService": "openmdr.respond.service",
    "ResponseResult": "openmdr.respond.service",
    "Containment": "openmdr.respond.service",
    "containment_of": "openmdr.respond.service",
    "AuthorityPolicy": "openmdr.respond.policy",
    "AuthorityRule": "openmdr.respond.policy",
    "AllowList": "openmdr.respond.policy",
    "default_policy": "openmdr.respond.policy",
    "evaluate": "openmdr.respond.policy",
    "PlaybookSet": "openmdr.respond.playbook",
    "builtin_playbooks": "openmdr.respond.playbook",
    "load_playbook_dir": "openmdr.respond.playbook",
    "ResponsePlan": "openmdr.respond.planner",
    "ManualClock": "openmdr.respond.clock",
    "ConnectorRegistry": "openmdr.respond.connectors.base",
    "RetryPolicy": "openmdr.respond.connectors.base",
    "create_edl_router": "openmdr.respond.edl",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'openmdr.respond' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
