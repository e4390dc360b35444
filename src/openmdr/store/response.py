"""Response state: authority policies (versioned), actions, approvals, block lists and connector state.

Every change is written together with its audit record in one transaction, and every audit
record of an action decision names the policy version that decided it.  Every read and write
names the tenant and filters on it: an action, approval or block of another tenant is never
returned or changed, however its id was obtained.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from openmdr.models.action import PENDING_STATUSES, ActionRecord
from openmdr.respond.policy import AuthorityPolicy, default_policy, parse_policy
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.schema import BigId, UTCDateTime, metadata
from openmdr.store.state import StateStore

#: Block-list kinds (one External Dynamic List per tenant and kind).
BLOCK_KINDS: tuple[str, ...] = ("ip", "domain", "url", "hash")
#: Prefix of EDL access tokens (helps secret scanners).
EDL_TOKEN_PREFIX = "omdr_edl_"

response_policies = Table(
    "response_policies",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=True),
    UniqueConstraint("tenant", "version"),
)

response_actions = Table(
    "response_actions",
    metadata,
    Column("action_id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("case_id", String(128), nullable=True),
    Column("playbook", String(128), nullable=True),
    Column("step", Integer, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("dedupe_key", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("asset", String(255), nullable=True),
    Column("asset_class", String(32), nullable=True),
    Column("criticality", String(16), nullable=True),
    Column("params", JSON, nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("approvals", JSON, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("escalation_level", Integer, nullable=False),
    Column("executed_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("connector", String(64), nullable=True),
    Column("outcome", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("rollback_of", String(40), nullable=True),
    Column("rolled_back_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Index(None, "tenant", "status"),
    Index(None, "tenant", "case_id"),
    Index(None, "tenant", "dedupe_key"),
    Index(None, "status", "deadline_at"),
)

response_approvals = Table(
    "response_approvals",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("action_id", String(40), nullable=False),
    Column("approver", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("comment", Text, nullable=True),
    UniqueConstraint("action_id", "approver"),
    Index(None, "tenant", "action_id"),
)

response_blocklist = Table(
    "response_blocklist",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_key", String(64), nullable=False),
    Column("action_id", String(40), nullable=True),
    Column("case_id", String(128), nullable=True),
    Column("reason", Text, nullable=True),
    Column("added_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("removed_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant", "kind", "value_key"),
    Index(None, "tenant", "kind", "removed_at"),
)

response_connector_state = Table(
    "response_connector_state",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "connector", "key"),
)


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One stored version of a tenant's authority policy (version 0 is the built-in default)."""

    tenant: str
    version: int
    policy: AuthorityPolicy
    created_at: datetime | None
    created_by: str
    comment: str | None


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One entry of a tenant's block list."""

    tenant: str
    kind: str
    value: str
    added_at: datetime
    expires_at: datetime | None
    removed_at: datetime | None
    action_id: str | None
    case_id: str | None
    reason: str | None

    def active(self, now: datetime) -> bool:
        """Blocked at ``now``: not removed and not expired."""
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's approve/deny of one action."""

    tenant: str
    action_id: str
    approver: str
    decision: str
    at: datetime
    comment: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def block_value_key(kind: str, value: str) -> str:
    """The case-insensitive identity of a block-list value (hashes, domains and addresses ignore case)."""
    norm = value.strip() if kind == "url" else value.strip().lower().rstrip(".")
    return hashlib.sha256(f"{kind}\x1f{norm}".encode()).hexdigest()


class ResponseStore:
    """Policies, actions, approvals, block lists and connector state in the state store."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    # ---------------------------------------------------------------- policies
    def get_policy(self, tenant: str) -> PolicyVersion:
        """The tenant's current authority policy (the built-in default, version 0, until one is set)."""
        with self.state.transaction() as conn:
            self.state.tenant_id(conn, tenant)
            row = conn.execute(
                sa.select(response_policies).where(response_policies.c.tenant == tenant)
                .order_by(response_policies.c.version.desc()).limit(1)
            ).first()  # fmt: skip
        if row is None:
            return PolicyVersion(tenant, 0, default_policy(), None, "built-in", "default policy")
        return _row_policy(row)

    def get_policy_version(self, tenant: str, version: int) -> PolicyVersion:
        """One stored version of the tenant's policy (0 is the built-in default)."""
        if version == 0:
            return PolicyVersion(tenant, 0, default_policy(), None, "built-in", "default policy")
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(response_policies).where(
                    response_policies.c.tenant == tenant, response_policies.c.version == version
                )
            ).first()
        if row is None:
            raise NotFoundError(f"tenant {tenant!r} has no policy version {version}")
        return _row_policy(row)

    def policy_history(self, tenant: str) -> list[PolicyVersion]:
        """Every stored version of the tenant's policy, newest first."""
        with self.state.transaction() as conn:
            rows = conn.execute(
                sa.select(response_policies).where(response_policies.c.tenant == tenant)
                .order_by(response_policies.c.version.desc())
            ).all()  # fmt: skip
        return [_row_policy(r) for r in rows]

    def set_policy(
        self, tenant: str, policy: AuthorityPolicy, actor: str, comment: str | None = None, at: datetime | None = None
    ) -> PolicyVersion:
        """Store a new version of the tenant's policy (audited with the whole document)."""
        doc = policy.to_dict()
        parse_policy(doc)  # the stored form must read back
        when = at or _now()
        try:
            with self.state.transaction() as conn:
                self.state.tenant_id(conn, tenant)
                current = conn.execute(
                    sa.select(sa.func.max(response_policies.c.version)).where(response_policies.c.tenant == tenant)
                ).scalar()
                version = int(current or 0) + 1
                conn.execute(response_policies.insert().values(
                    tenant=tenant, version=version, document=orjson.dumps(doc).decode(), created_at=when,
                    created_by=actor, comment=comment,
                ))  # fmt: skip
                self.state.append_audit(conn, actor, "response.policy.set", tenant, f"policy:v{version}",
                                        {"version": version, "comment": comment, "policy": doc}, time=when)  # fmt: skip
        except IntegrityError:
            raise ConflictError(f"tenant {tenant!r}: the policy was changed concurrently, try again") from None
        return PolicyVersion(tenant, version, policy, when, actor, comment)

    # ---------------------------------------------------------------- actions
    def insert_action(
        self, record: ActionRecord, dedupe_key: str, actor: str, event: str, details: dict[str, Any]
    ) -> ActionRecord:
        """Store a new action record with its audit record (``event`` such as ``response.action.allowed``)."""
        with self.state.transaction() as conn:
            self.state.tenant_id(conn, record.tenant)
            conn.execute(response_actions.insert().values(**_action_values(record), dedupe_key=dedupe_key))
            self._audit_action(conn, record, actor, event, details)
        return record

    def update_action(
        self,
        record: ActionRecord,
        actor: str,
        event: str,
        details: dict[str, Any],
        expect_status: Sequence[str] | None = None,
    ) -> ActionRecord:
        """Write the record's new state with its audit record.

        With ``expect_status`` the write happens only if the stored status is one of them
        (so two people approving at once cannot both execute); otherwise
        :class:`ConflictError`.
        """
        values = _action_values(record)
        values.pop("action_id")
        values.pop("tenant")
        with self.state.transaction() as conn:
            query = response_actions.update().where(
                response_actions.c.action_id == record.action_id, response_actions.c.tenant == record.tenant
            )
            if expect_status is not None:
                query = query.where(response_actions.c.status.in_(list(expect_status)))
            if conn.execute(query.values(**values)).rowcount != 1:
                raise ConflictError(f"action {record.action_id} changed meanwhile or is not in a state for {event}")
            self._audit_action(conn, record, actor, event, details)
        return record

    def record_approval(
        self,
        tenant: str,
        action_id: str,
        approver: str,
        decision: str,
        at: datetime,
        comment: str | None = None,
    ) -> tuple[ActionRecord, bool]:
        """Store one person's approve/deny of a waiting action and its resulting state, atomically.

        The action row is locked first (a no-op update: the row lock on PostgreSQL, the write
        lock on SQLite), so concurrent approvals are counted one after the other and none is lost.
        A person decides on an action once (the two-person rule counts distinct people).
        Returns the record and whether it is now approved by enough people to execute
        (its status is then ``executing``); a deny makes it ``rejected``.
        """
        if decision not in ("approve", "deny"):
            raise ValidationError("decision must be approve or deny")
        try:
            with self.state.transaction() as conn:
                mine = (response_actions.c.action_id == action_id, response_actions.c.tenant == tenant)
                # a no-op write first takes the row lock (PostgreSQL) or the write lock (SQLite) before reading
                conn.execute(response_actions.update().where(*mine).values(status=response_actions.c.status))
                row = conn.execute(sa.select(response_actions).where(*mine)).first()
                if row is None:
                    raise NotFoundError(f"tenant {tenant!r} has no action {action_id!r}")
                record = _row_action(row)
                if record.status not in PENDING_STATUSES:
                    raise ConflictError(f"action {action_id} is {record.status}, not waiting for approval")
                conn.execute(response_approvals.insert().values(
                    tenant=tenant, action_id=action_id, approver=approver, decision=decision, at=at, comment=comment,
                ))  # fmt: skip
                record.updated_at = at
                ready = False
                if decision == "deny":
                    record.status = "rejected"
                    record.error = f"rejected by {approver}" + (f": {comment}" if comment else "")
                    event = "response.action.rejected"
                else:
                    record.approvals = [
                        r.approver for r in conn.execute(
                            sa.select(response_approvals.c.approver).where(
                                response_approvals.c.tenant == tenant, response_approvals.c.action_id == action_id,
                                response_approvals.c.decision == "approve",
                            ).order_by(response_approvals.c.at, response_approvals.c.id)
                        )
                    ]  # fmt: skip
                    ready = len(record.approvals) >= max(1, record.approvals_required)
                    record.status = "executing" if ready else record.status
                    event = "response.action.approved" if ready else "response.action.approval_recorded"
                values = _action_values(record)
                values.pop("action_id")
                values.pop("tenant")
                conn.execute(response_actions.update().where(
                    response_actions.c.action_id == action_id, response_actions.c.tenant == tenant
                ).values(**values))  # fmt: skip
                details = {"decision": decision, "comment": comment, "approvals": list(record.approvals)}
                self._audit_action(conn, record, approver, event, details)
        except IntegrityError:
            raise ConflictError(
                f"{approver} already decided on action {action_id}; a second, different person must approve"
            ) from None
        return record, ready

    def get_action(self, tenant: str, action_id: str) -> ActionRecord:
        """One action of ``tenant`` (raises :class:`NotFoundError`, also for another tenant's id)."""
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(response_actions).where(
                    response_actions.c.action_id == action_id, response_actions.c.tenant == tenant
                )
            ).first()
        if row is None:
            raise NotFoundError(f"tenant {tenant!r} has no action {action_id!r}")
        return _row_action(row)

    def list_actions(
        self,
        tenant: str,
        case_id: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[ActionRecord]:
        """The tenant's actions, oldest first, optionally of one case and/or status(es)."""
        query = sa.select(response_actions).where(response_actions.c.tenant == tenant)
        if case_id is not None:
            query = query.where(response_actions.c.case_id == case_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(response_actions.c.status.in_(statuses))
        query = query.order_by(response_actions.c.requested_at, response_actions.c.action_id).limit(limit)
        with self.state.transaction() as conn:
            return [_row_action(r) for r in conn.execute(query)]

    def find_existing_action(self, tenant: str, dedupe_key: str, case_id: str | None) -> ActionRecord | None:
        """The action a new request for the same kind and target should reuse, if any.

        Within the same case every earlier decision stands (denied, rejected, expired and
        rolled-back actions are not asked again; failed ones are retried); across cases an
        action that is waiting, running or in effect is shared.  Dry runs never count.
        """
        live = [*PENDING_STATUSES, "executing", "executed"]
        same_case = sa.and_(response_actions.c.case_id == case_id, response_actions.c.status != "failed")
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(response_actions).where(
                    response_actions.c.tenant == tenant, response_actions.c.dedupe_key == dedupe_key,
                    response_actions.c.dry_run.is_(False), response_actions.c.rollback_of.is_(None),
                    sa.or_(response_actions.c.status.in_(live), same_case) if case_id is not None
                    else response_actions.c.status.in_(live),
                ).order_by(response_actions.c.requested_at.desc()).limit(1)
            ).first()  # fmt: skip
        return None if row is None else _row_action(row)

    def overdue_actions(self, now: datetime, tenant: str | None = None) -> list[ActionRecord]:
        """Actions waiting for approval whose deadline has passed (all tenants unless one is named)."""
        query = sa.select(response_actions).where(
            response_actions.c.status.in_(list(PENDING_STATUSES)), response_actions.c.deadline_at <= now
        )
        if tenant is not None:
            query = query.where(response_actions.c.tenant == tenant)
        with self.state.transaction() as conn:
            return [_row_action(r) for r in conn.execute(query.order_by(response_actions.c.deadline_at))]

    def approvals(self, tenant: str, action_id: str) -> list[Approval]:
        """Who decided on an action of ``tenant``, in order."""
        with self.state.transaction() as conn:
            rows = conn.execute(
                sa.select(response_approvals).where(
                    response_approvals.c.tenant == tenant, response_approvals.c.action_id == action_id
                ).order_by(response_approvals.c.at, response_approvals.c.id)
            ).all()  # fmt: skip
        return [Approval(r.tenant, r.action_id, r.approver, r.decision, r.at, r.comment) for r in rows]

    def audit_action(self, record: ActionRecord, actor: str, event: str, details: dict[str, Any]) -> None:
        """Audit something about an action that changes no row (a notification sent, an attempt failed)."""
        with self.state.transaction() as conn:
            self._audit_action(conn, record, actor, event, details)

    def _audit_action(
        self, conn: Connection, record: ActionRecord, actor: str, event: str, details: dict[str, Any]
    ) -> None:
        body = {
            "action_id": record.action_id, "kind": record.kind, "status": record.status,
            "verdict": record.verdict, "reason": record.reason, "policy_version": record.policy_version,
            "case_id": record.case_id, "playbook": record.playbook, "dry_run": record.dry_run, **details,
        }  # fmt: skip
        self.state.append_audit(conn, actor, event, record.tenant, f"{record.kind}:{record.target}", body,
                                time=record.updated_at)  # fmt: skip

    # ---------------------------------------------------------------- block lists
    def upsert_block(
        self,
        tenant: str,
        kind: str,
        value: str,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
        action_id: str | None = None,
        case_id: str | None = None,
        reason: str | None = None,
    ) -> BlockEntry | None:
        """Block ``value`` (idempotent: blocking again extends the expiry); returns the entry as it was."""
        _check_kind(kind)
        key = block_value_key(kind, value)
        with self.state.transaction() as conn:
            self.state.tenant_id(conn, tenant)
            row = conn.execute(sa.select(response_blocklist).where(*_block_match(tenant, kind, key))).first()
            before = None if row is None else _row_block(row)
            values = {"value": value.strip(), "action_id": action_id, "case_id": case_id, "reason": reason,
                      "expires_at": expires_at, "removed_at": None}  # fmt: skip
            if row is None:
                conn.execute(response_blocklist.insert().values(tenant=tenant, kind=kind, value_key=key, added_at=at,
                                                                **values))  # fmt: skip
            else:
                if before is not None and before.active(at):
                    values.pop("action_id")  # the first action that blocked it stays the owner
                    values["expires_at"] = _later(before.expires_at, expires_at)
                else:
                    values["added_at"] = at
                conn.execute(response_blocklist.update().where(response_blocklist.c.id == row.id).values(**values))
            self.state.append_audit(conn, actor, "response.block.add", tenant, f"{kind}:{value}",
                                    {"expires_at": expires_at.isoformat() if expires_at else None,
                                     "action_id": action_id, "case_id": case_id}, time=at)  # fmt: skip
        return before

    def remove_block(self, tenant: str, kind: str, value: str, actor: str, at: datetime) -> BlockEntry | None:
        """Unblock ``value`` (idempotent); returns the entry as it was."""
        _check_kind(kind)
        key = block_value_key(kind, value)
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(response_blocklist).where(*_block_match(tenant, kind, key))).first()
            if row is None:
                return None
            before = _row_block(row)
            if row.removed_at is None:
                conn.execute(response_blocklist.update().where(response_blocklist.c.id == row.id).values(removed_at=at))
                self.state.append_audit(conn, actor, "response.block.remove", tenant, f"{kind}:{value}", {}, time=at)
        return before

    def restore_block(
        self, tenant: str, entry: BlockEntry | None, kind: str, value: str, actor: str, at: datetime
    ) -> None:
        """Put a block-list entry back as it was before an action (rollback); ``None`` means it did not exist."""
        key = block_value_key(kind, value)
        with self.state.transaction() as conn:
            cond = _block_match(tenant, kind, key)
            if entry is None:
                conn.execute(response_blocklist.update().where(*cond).values(removed_at=at))
            else:
                conn.execute(response_blocklist.update().where(*cond).values(
                    expires_at=entry.expires_at, removed_at=entry.removed_at, added_at=entry.added_at,
                    action_id=entry.action_id, case_id=entry.case_id, reason=entry.reason,
                ))  # fmt: skip
            self.state.append_audit(conn, actor, "response.block.restore", tenant, f"{kind}:{value}",
                                    {"existed": entry is not None}, time=at)  # fmt: skip

    def list_blocks(self, tenant: str, kind: str | None = None, now: datetime | None = None) -> list[BlockEntry]:
        """The tenant's block-list entries; with ``now``, only those in force at that time."""
        query = sa.select(response_blocklist).where(response_blocklist.c.tenant == tenant)
        if kind is not None:
            _check_kind(kind)
            query = query.where(response_blocklist.c.kind == kind)
        if now is not None:
            query = query.where(
                response_blocklist.c.removed_at.is_(None),
                sa.or_(response_blocklist.c.expires_at.is_(None), response_blocklist.c.expires_at > now),
            )
        with self.state.transaction() as conn:
            rows = conn.execute(query.order_by(response_blocklist.c.kind, response_blocklist.c.added_at,
                                               response_blocklist.c.id)).all()  # fmt: skip
        return [_row_block(r) for r in rows]

    def expire_blocks(self, now: datetime, actor: str = "response") -> list[BlockEntry]:
        """Mark entries whose expiry has passed as removed (they already left the EDLs at expiry); audited."""
        with self.state.transaction() as conn:
            rows = conn.execute(
                sa.select(response_blocklist).where(
                    response_blocklist.c.removed_at.is_(None), response_blocklist.c.expires_at <= now
                )
            ).all()
            for r in rows:
                conn.execute(response_blocklist.update().where(response_blocklist.c.id == r.id).values(removed_at=now))
                details = {"expires_at": r.expires_at.isoformat(), "action_id": r.action_id}
                self.state.append_audit(conn, actor, "response.block.expired", r.tenant, f"{r.kind}:{r.value}",
                                        details, time=now)  # fmt: skip
        return [_row_block(r) for r in rows]

    # ---------------------------------------------------------------- connector state
    def get_connector_state(self, tenant: str, connector: str, key: str) -> Any:
        """A connector's saved value for ``tenant`` (None when unset)."""
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(response_connector_state.c.value).where(
                    response_connector_state.c.tenant == tenant, response_connector_state.c.connector == connector,
                    response_connector_state.c.key == key,
                )
            ).first()  # fmt: skip
        return None if row is None else row.value

    def set_connector_state(self, tenant: str, connector: str, key: str, value: Any, actor: str) -> None:
        """Save a connector's value for ``tenant`` (audited, value not copied into the trail)."""
        with self.state.transaction() as conn:
            self.state.tenant_id(conn, tenant)
            cond = (response_connector_state.c.tenant == tenant, response_connector_state.c.connector == connector,
                    response_connector_state.c.key == key)  # fmt: skip
            updated = conn.execute(
                response_connector_state.update().where(*cond).values(value=value, updated_at=_now())
            )
            if updated.rowcount == 0:
                conn.execute(response_connector_state.insert().values(
                    tenant=tenant, connector=connector, key=key, value=value, updated_at=_now()))  # fmt: skip
            self.state.append_audit(conn, actor, "response.connector.state", tenant, f"{connector}:{key}", {})

    def create_edl_token(self, tenant: str, actor: str) -> str:
        """A new secret for the tenant's EDL URLs (replaces the previous one; shown once, stored hashed)."""
        secret = EDL_TOKEN_PREFIX + secrets.token_urlsafe(24)
        self.set_connector_state(tenant, "edl", "token_sha256", hashlib.sha256(secret.encode()).hexdigest(), actor)
        return secret

    def check_edl_token(self, tenant: str, secret: str) -> bool:
        """True when ``secret`` is the tenant's current EDL token (constant-time comparison)."""
        if not secret or len(secret) > 256:
            return False
        stored = self.get_connector_state(tenant, "edl", "token_sha256")
        if not isinstance(stored, str):
            return False
        return hmac.compare_digest(stored, hashlib.sha256(secret.encode()).hexdigest())


def _check_kind(kind: str) -> None:
    if kind not in BLOCK_KINDS:
        raise ValidationError(f"block-list kind must be one of {', '.join(BLOCK_KINDS)}")


def _block_match(tenant: str, kind: str, key: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The WHERE conditions picking the tenant's one block-list row for ``kind`` and normalised value ``key``.

    Adding, removing and restoring a block all address the row this way, always within the tenant.
    """
    return (
        response_blocklist.c.tenant == tenant,
        response_blocklist.c.kind == kind,
        response_blocklist.c.value_key == key,
    )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return None
    return max(a, b)


def _row_policy(row: Any) -> PolicyVersion:
    return PolicyVersion(row.tenant, int(row.version), parse_policy(orjson.loads(row.document)), row.created_at,
                         row.created_by, row.comment)  # fmt: skip


def _row_block(row: Any) -> BlockEntry:
    return BlockEntry(row.tenant, row.kind, row.value, row.added_at, row.expires_at, row.removed_at, row.action_id,
                      row.case_id, row.reason)  # fmt: skip


_ACTION_FIELDS = (
    "action_id", "tenant", "case_id", "playbook", "step", "kind", "target", "status", "verdict", "reason",
    "policy_version", "asset", "asset_class", "criticality", "params", "approvals_required", "approvals",
    "requested_at", "deadline_at", "escalation_level", "executed_at", "attempts", "connector", "outcome", "error",
    "rollback_of", "rolled_back_at", "updated_at", "dry_run",
)  # fmt: skip


def _action_values(record: ActionRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _ACTION_FIELDS}
    values["params"] = orjson.loads(orjson.dumps(record.params, default=str))
    values["outcome"] = orjson.loads(orjson.dumps(record.outcome, default=str))
    values["approvals"] = list(record.approvals)
    values["updated_at"] = record.updated_at or _now()
    values["requested_at"] = record.requested_at or values["updated_at"]
    return values


def _row_action(row: Any) -> ActionRecord:
    values = {name: getattr(row, name) for name in _ACTION_FIELDS}
    values["params"] = dict(values["params"] or {})
    values["outcome"] = dict(values["outcome"] or {})
    values["approvals"] = list(values["approvals"] or [])
    values["dry_run"] = bool(values["dry_run"])
    return ActionRecord(**values)
