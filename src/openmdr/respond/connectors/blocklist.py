"""Block-list connector: block/unblock IPs, domains, URLs and hashes on the tenant's External Dynamic Lists.

The lists live in the response store; :mod:`openmdr.respond.edl` serves them over HTTP to the
tenant's firewalls (Palo Alto EDL, FortiGate external threat feed, pfSense URL table alias),
which poll them.  Each entry has an expiry (``params["expires_at"]``, else the policy's
default), so a block that is never rolled back still ends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from openmdr.models.action import ActionRecord
from openmdr.respond.connectors.base import ConnectorError, ConnectorResult
from openmdr.store.response import BlockEntry, ResponseStore

_KIND_LIST = {
    "block_ip": "ip", "unblock_ip": "ip", "block_domain": "domain", "unblock_domain": "domain",
    "block_url": "url", "unblock_url": "url", "block_hash": "hash", "unblock_hash": "hash",
}  # fmt: skip


class BlockListConnector:
    """Writes the tenant's block lists in the response store (shared by every tenant, scoped by data)."""

    name = "blocklist"
    kinds = frozenset(_KIND_LIST)

    def __init__(self, store: ResponseStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def execute(self, action: ActionRecord) -> ConnectorResult:
        """Add (``block_*``) or remove (``unblock_*``) the target; a rollback restores the prior entry."""
        kind = _KIND_LIST.get(action.kind)
        if kind is None:
            raise ConnectorError(f"blocklist does not run {action.kind}", retryable=False)
        if not action.target or any(c.isspace() for c in action.target):
            raise ConnectorError(f"refusing to publish {action.target[:80]!r}: block-list values have no whitespace",
                                 retryable=False)  # fmt: skip
        now = self.clock()
        actor = f"response:{action.action_id}"
        if action.kind.startswith("block_"):
            raw = action.params.get("expires_at")
            expires = datetime.fromisoformat(raw) if isinstance(raw, str) else None
            before = self.store.upsert_block(action.tenant, kind, action.target, actor, now, expires,
                                             action.action_id, action.case_id, action.reason)  # fmt: skip
            return ConnectorResult(
                {"list": kind, "expires_at": expires.isoformat() if expires else None},
                {"entry": _entry_dict(before) if before is not None and before.active(now) else None},
            )
        if action.rollback_of is not None:
            prior = action.params.get("prior") or {}
            entry = _entry_from(prior.get("entry"), action.tenant, kind, action.target)
            self.store.restore_block(action.tenant, entry, kind, action.target, actor, now)
            return ConnectorResult({"list": kind, "restored": entry is not None})
        before = self.store.remove_block(action.tenant, kind, action.target, actor, now)
        return ConnectorResult({"list": kind, "was_blocked": bool(before and before.active(now))},
                               {"entry": _entry_dict(before) if before is not None else None})  # fmt: skip


def _entry_dict(entry: BlockEntry) -> dict[str, Any]:
    return {
        "added_at": entry.added_at.isoformat(),
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        "removed_at": entry.removed_at.isoformat() if entry.removed_at else None, "action_id": entry.action_id,
        "case_id": entry.case_id, "reason": entry.reason,
    }  # fmt: skip


def _entry_from(data: Any, tenant: str, kind: str, value: str) -> BlockEntry | None:
    if not isinstance(data, dict):
        return None

    def ts(key: str) -> datetime | None:
        return datetime.fromisoformat(data[key]) if data.get(key) else None

    return BlockEntry(tenant, kind, value, ts("added_at") or datetime.now(UTC), ts("expires_at"), ts("removed_at"),
                      data.get("action_id"), data.get("case_id"), data.get("reason"))  # fmt: skip
