"""The response service: plan a case's response, act inside authority, queue the rest, time out and escalate.

This is what the pipeline calls (``on_case`` for every new or updated case, ``tick`` on a
timer) and what analysts and tenant approvers drive (``approve``, ``deny``, ``rollback``).
Core decisions are the pure functions of :mod:`.policy` and :mod:`.planner`; this class adds
the store, the connectors, notifications and the clock.  It never imports the case service:
containment is reported through ``on_contained`` and the returned :class:`ResponseResult`.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from openmdr.models.action import ACTION_CATALOGUE, PENDING_STATUSES, ActionRecord
from openmdr.models.alert import Alert
from openmdr.models.case import Case
from openmdr.respond.connectors.base import ConnectorRegistry, RetryPolicy, call_with_retry
from openmdr.respond.connectors.blocklist import BlockListConnector
from openmdr.respond.planner import AssetIndex, PlanItem, ResponsePlan, build_plan, case_confidence, context_from
from openmdr.respond.playbook import PlaybookSet, builtin_playbooks
from openmdr.respond.policy import AuthorityPolicy, evaluate
from openmdr.store.errors import ConflictError, NotFoundError, ValidationError
from openmdr.store.response import PolicyVersion, ResponseStore
from openmdr.store.state import StateStore


class Notifier(Protocol):
    """Delivers one notification (a webhook, chat, ticketing); returns (delivered, error)."""

    def notify(self, event: str, payload: dict[str, Any], delivery_id: str) -> tuple[bool, str | None]:
        """Send ``payload`` as ``event``; never raises for delivery failures."""
        ...


@dataclass(slots=True)
class Containment:
    """Whether a case counts as contained by response, since when, and what is still open."""

    contained: bool
    contained_at: datetime | None
    executed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResponseResult:
    """What ``on_case`` did: the plan, the action records (new or already existing), containment."""

    plan: ResponsePlan
    actions: list[ActionRecord]
    containment: Containment
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def contained(self) -> bool:
        """True when the case counts as contained."""
        return self.containment.contained


class ResponseService:
    """Response under delegated authority for every tenant of one state store.

    ``connectors`` routes action kinds to real systems (the block-list connector over this
    store is added for every tenant when missing); ``clock`` returns the current UTC time
    (tests pass a controllable one); ``notifiers`` maps channel names (playbook ``notify``
    targets, escalation-chain entries, ``approvals``) to notifiers, ``default`` catching the
    rest; ``on_contained(tenant, case_id, at)`` is called once when a case becomes contained;
    ``alerts_for(tenant, case_id)`` supplies a case's alerts when the caller passes none: their
    confidence, which accounts they show compromised and which images their hashes belong to
    (see :mod:`.evidence`; without alerts no account is acted on).
    """

    def __init__(
        self,
        state: StateStore,
        connectors: ConnectorRegistry | None = None,
        clock: Callable[[], datetime] | None = None,
        playbooks: PlaybookSet | None = None,
        notifiers: Mapping[str, Notifier] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_contained: Callable[[str, str, datetime], None] | None = None,
        publish: Callable[[ActionRecord], None] | None = None,
        actor: str = "response",
        alerts_for: Callable[[str, str], Sequence[Alert]] | None = None,
    ) -> None:
        self.state = state
        self.store = ResponseStore(state)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.connectors = connectors or ConnectorRegistry()
        if not any(isinstance(c, BlockListConnector) for c in self.connectors.shared):
            self.connectors.add(BlockListConnector(self.store, self.clock))
        self.playbooks = playbooks if playbooks is not None else builtin_playbooks()
        self.notifiers = dict(notifiers or {})
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.on_contained = on_contained
        self.publish = publish
        self.actor = actor
        self.alerts_for = alerts_for

    # ---------------------------------------------------------------- policy
    def get_policy(self, tenant: str) -> PolicyVersion:
        """The tenant's current authority policy and its version."""
        return self.store.get_policy(tenant)

    def set_policy(self, tenant: str, policy: AuthorityPolicy, actor: str, comment: str | None = None) -> PolicyVersion:
        """Store a new policy version for the tenant (audited); actions decided later cite it."""
        return self.store.set_policy(tenant, policy, actor, comment, at=self.clock())

    # ---------------------------------------------------------------- planning and acting
    def plan(
        self, case: Case, alerts: Sequence[Alert] = (), confidence: float | None = None, dry_run: bool = False
    ) -> ResponsePlan:
        """What would run for ``case`` now, and why (reads the store, changes nothing)."""
        tenant = self.state.get_tenant(case.tenant)
        if tenant is None:
            raise NotFoundError(f"unknown tenant {case.tenant!r}")
        policy = self.store.get_policy(case.tenant)
        index = AssetIndex(self.state.list_assets(case.tenant))
        if not alerts and self.alerts_for is not None:
            alerts = self.alerts_for(case.tenant, case.case_id)
        conf = case_confidence(alerts, confidence)
        return build_plan(case, self.playbooks.matching(case, conf), policy.policy, policy.version, tenant, index,
                          self.clock(), conf, dry_run, alerts)  # fmt: skip

    def on_case(
        self, case: Case, alerts: Sequence[Alert] = (), confidence: float | None = None, dry_run: bool = False
    ) -> ResponseResult:
        """Plan the response to ``case``, run what is inside authority, queue the rest for approval.

        Idempotent: an action already waiting, running or in effect for the same kind and
        target is returned instead of being requested again.  Dry runs store ``planned``
        records (audited) and execute nothing.
        """
        plan = self.plan(case, alerts, confidence, dry_run)
        records: list[ActionRecord] = []
        notes: list[dict[str, Any]] = []
        for item in plan.items:
            if item.skipped is not None and (item.skipped.startswith("invalid ") or item.guard == "protected"):
                self._report_skipped(case, plan, item)
            if item.skipped is not None or item.gate:
                continue
            if item.notify is not None:
                notes.append(self._notify_step(case, plan, item))
                continue
            records.append(self._request(case, plan, item))
        return ResponseResult(plan, records, self._check_containment(case.tenant, case.case_id), notes)

    def _report_skipped(self, case: Case, plan: ResponsePlan, item: PlanItem) -> None:
        """Audit a target that cannot (invalid) or must not (protected) be acted on, once per case, step and value."""
        protected = item.guard == "protected"
        where = f"\x1f{item.asset or ''}" if protected else ""
        digest = hashlib.sha256(f"{item.playbook}\x1f{item.step}\x1f{item.target}{where}".encode()).hexdigest()[:32]
        key = f"{case.case_id}:{digest}"
        namespace = "protected_targets" if protected else "invalid_targets"
        if self.store.get_connector_state(case.tenant, namespace, key) is not None:
            return
        self.store.set_connector_state(case.tenant, namespace, key, {"reason": item.skipped}, self.actor)
        details: dict[str, Any] = {"kind": item.kind, "reason": item.skipped, "playbook": item.playbook,
                                   "policy_version": plan.policy_version}  # fmt: skip
        if protected:
            details.update(target=item.target, asset=item.asset, dry_run=item.dry_run)
        event = "response.target.protected" if protected else "response.target.invalid"
        self.state.audit(self.actor, event, case.tenant, case.case_id, details)

    def _request(self, case: Case, plan: ResponsePlan, item: PlanItem) -> ActionRecord:
        assert item.kind is not None and item.target is not None and item.decision is not None
        if not item.dry_run:
            existing = self.store.find_existing_action(case.tenant, item.dedupe_key, case.case_id)
            if existing is not None:
                return existing
        now = self.clock()
        d = item.decision
        record = ActionRecord(
            action_id=uuid.uuid4().hex, tenant=case.tenant, kind=item.kind, target=item.target, status="planned",
            verdict=d.verdict, reason=d.reason, policy_version=plan.policy_version, case_id=case.case_id,
            playbook=item.playbook, step=item.step, asset=item.asset, asset_class=item.asset_class,
            criticality=item.criticality, params=dict(item.params), approvals_required=d.approvals_required,
            requested_at=now, updated_at=now, dry_run=item.dry_run,
        )  # fmt: skip
        details = {"rule": d.rule, "asset": item.asset, "asset_class": item.asset_class,
                   "criticality": item.criticality, "confidence": plan.confidence,
                   "working_time": plan.working_time}  # fmt: skip
        if item.dry_run:
            self.store.insert_action(record, item.dedupe_key, self.actor, "response.action.dry_run", details)
            return self._emit(record)
        if d.verdict == "deny":
            record.status = "denied"
            self.store.insert_action(record, item.dedupe_key, self.actor, "response.action.denied", details)
            return self._emit(record)
        if d.verdict == "approve":
            record.status = "awaiting_approval"
            record.deadline_at = now + timedelta(minutes=d.approval_timeout_minutes or 15)
            details["deadline_at"] = record.deadline_at.isoformat()
            details["approvals_required"] = d.approvals_required
            self.store.insert_action(record, item.dedupe_key, self.actor, "response.action.awaiting_approval", details)
            self._notify_action(record, "approvals", "response.approval_requested")
            return self._emit(record)
        record.status = "executing"
        self.store.insert_action(record, item.dedupe_key, self.actor, "response.action.allowed", details)
        return self._execute(record, self.actor)

    def _execute(self, record: ActionRecord, actor: str, recheck: bool = True) -> ActionRecord:
        """Run an action (status ``executing``) through its connector with retries; record the outcome."""
        if recheck:
            current = self.store.get_policy(record.tenant)
            ctx = context_from(record.kind, record.target, record.asset, record.params.get("context") or {})
            decision = evaluate(current.policy, ctx)
            if decision.verdict == "deny":
                record.status, record.verdict, record.updated_at = "denied", "deny", self.clock()
                record.reason = f"{decision.reason} (re-checked at execution against policy v{current.version})"
                record.policy_version = current.version
                self.store.update_action(record, actor, "response.action.denied", {"rechecked": True},
                                         expect_status=["executing"])  # fmt: skip
                return self._emit(record)
        connector = self.connectors.for_kind(record.tenant, record.kind)
        no_agent = ACTION_CATALOGUE[record.kind].scope == "host" and record.params.get("has_edr") is False
        if connector is None or no_agent:
            record.status, record.updated_at = "failed", self.clock()
            record.error = (f"the inventory says {record.asset} has no EDR agent: contain it by hand or at the network"
                            if no_agent else f"no connector runs {record.kind} for tenant {record.tenant}")  # fmt: skip
            self.store.update_action(record, actor, "response.action.failed", {"error": record.error},
                                     expect_status=["executing"])  # fmt: skip
            return self._emit(record)
        outcome = call_with_retry(lambda: connector.execute(record), self.retry, self.sleep)
        record.attempts += outcome.attempts
        record.connector = connector.name
        record.updated_at = self.clock()
        details: dict[str, Any] = {"connector": connector.name, "attempts": outcome.attempts,
                                   "attempt_errors": outcome.errors}  # fmt: skip
        if outcome.ok:
            result = outcome.value
            record.status, record.executed_at, record.error = "executed", record.updated_at, None
            record.outcome = {**record.outcome, "details": result.details, "prior": result.prior}
            details["details"] = result.details
            self.store.update_action(record, actor, "response.action.executed", details, expect_status=["executing"])
        else:
            record.status, record.error = "failed", str(outcome.error)
            details["error"] = record.error
            self.store.update_action(record, actor, "response.action.failed", details, expect_status=["executing"])
            self._notify_action(record, "default", "response.action_failed")
        return self._emit(record)

    # ---------------------------------------------------------------- approvals
    def approve(self, tenant: str, action_id: str, approver: str, comment: str | None = None) -> ActionRecord:
        """Record ``approver``'s approval; once enough distinct people approved, the action runs.

        Raises :class:`NotFoundError` for an action of another tenant and :class:`ConflictError`
        when the action no longer waits or this person already decided on it.
        """
        approver = _check_person(approver, self.actor)
        record, ready = self.store.record_approval(tenant, action_id, approver, "approve", self.clock(), comment)
        if not ready:
            return self._emit(record)
        record = self._execute(record, approver)
        self._after_change(record)
        return record

    def deny(self, tenant: str, action_id: str, approver: str, reason: str | None = None) -> ActionRecord:
        """Record that ``approver`` refused the action: it will not run."""
        approver = _check_person(approver, self.actor)
        record, _ = self.store.record_approval(tenant, action_id, approver, "deny", self.clock(), reason)
        self._after_change(record)
        return self._emit(record)

    def tick(self, now: datetime | None = None) -> list[ActionRecord]:
        """Escalate overdue approvals along the escalation chain, expire them at its end; expire blocks.

        Call it on a timer (the pipeline) or from tests with a controllable clock.  Each
        escalation notifies the next contact and gives it ``escalation_timeout_minutes``.
        """
        now = now or self.clock()
        changed: list[ActionRecord] = []
        for record in self.store.overdue_actions(now):
            policy = self._policy_version(record.tenant, record.policy_version).policy
            chain = policy.escalation_chain
            record.updated_at = now
            if record.escalation_level < len(chain):
                contact = chain[record.escalation_level]
                record.escalation_level += 1
                record.status = "escalated"
                record.deadline_at = now + timedelta(minutes=policy.escalation_timeout_minutes)
                self.store.update_action(record, self.actor, "response.action.escalated",
                                         {"escalated_to": contact, "level": record.escalation_level,
                                          "deadline_at": record.deadline_at.isoformat()},
                                         expect_status=list(PENDING_STATUSES))  # fmt: skip
                self._notify_action(record, contact, "response.approval_escalated")
            else:
                record.status = "expired"
                record.error = f"no approval by {record.deadline_at.isoformat() if record.deadline_at else 'deadline'}"
                level = {"level": record.escalation_level}
                self.store.update_action(record, self.actor, "response.action.expired", level,
                                         expect_status=list(PENDING_STATUSES))  # fmt: skip
                self._after_change(record)
            changed.append(self._emit(record))
        self.store.expire_blocks(now, self.actor)
        return changed

    # ---------------------------------------------------------------- rollback
    def rollback(self, tenant: str, action_id: str, actor: str, reason: str | None = None) -> ActionRecord:
        """Undo an executed action by running its reverse with the state the action found before.

        Returns the original record (``rolled_back`` on success; unchanged, with the reverse
        action's error, on failure).  Irreversible kinds (kill process, revoke sessions) raise
        :class:`ConflictError`.
        """
        actor = _check_person(actor, "")
        record = self.store.get_action(tenant, action_id)
        if record.status != "executed":
            raise ConflictError(f"action {action_id} is {record.status}; only executed actions can be rolled back")
        reverse_kind = ACTION_CATALOGUE[record.kind].reverse
        if reverse_kind is None:
            raise ConflictError(f"{record.kind} cannot be undone (the process or sessions are gone)")
        now = self.clock()
        policy = self.store.get_policy(tenant)
        reverse = ActionRecord(
            action_id=uuid.uuid4().hex, tenant=tenant, kind=reverse_kind, target=record.target, status="executing",
            verdict="run", reason=f"rollback of {record.action_id} by {actor}" + (f": {reason}" if reason else ""),
            policy_version=policy.version, case_id=record.case_id, playbook=record.playbook, step=record.step,
            asset=record.asset, asset_class=record.asset_class, criticality=record.criticality,
            params={"prior": (record.outcome or {}).get("prior"), "context": record.params.get("context")},
            requested_at=now, updated_at=now, rollback_of=record.action_id,
        )  # fmt: skip
        self.store.insert_action(reverse, f"rollback:{record.action_id}:{reverse.action_id}"[:64], actor,
                                 "response.rollback.requested", {"original": record.action_id})  # fmt: skip
        reverse = self._execute(reverse, actor, recheck=False)
        if reverse.status == "executed":
            record.status, record.rolled_back_at, record.updated_at = "rolled_back", reverse.executed_at, self.clock()
            record.outcome = {**record.outcome, "rollback_action": reverse.action_id}
            self.store.update_action(record, actor, "response.action.rolled_back",
                                     {"rollback_action": reverse.action_id, "reason": reason},
                                     expect_status=["executed"])  # fmt: skip
        else:
            record.error = f"rollback failed: {reverse.error}"
        return self._emit(record)

    # ---------------------------------------------------------------- reading
    def get_action(self, tenant: str, action_id: str) -> ActionRecord:
        """One of the tenant's actions."""
        return self.store.get_action(tenant, action_id)

    def list_actions(
        self, tenant: str, case_id: str | None = None, status: str | Sequence[str] | None = None, limit: int = 500
    ) -> list[ActionRecord]:
        """The tenant's actions, oldest first."""
        return self.store.list_actions(tenant, case_id, status, limit)

    def containment(self, tenant: str, case_id: str) -> Containment:
        """Whether the case counts as contained (see :func:`containment_of`)."""
        return containment_of(self.store.list_actions(tenant, case_id=case_id, limit=10_000))

    # ---------------------------------------------------------------- internals
    def _policy_version(self, tenant: str, version: int) -> PolicyVersion:
        try:
            return self.store.get_policy_version(tenant, version)
        except NotFoundError:
            return self.store.get_policy(tenant)

    def _after_change(self, record: ActionRecord) -> None:
        if record.case_id is not None and not record.dry_run:
            self._check_containment(record.tenant, record.case_id)

    def _check_containment(self, tenant: str, case_id: str) -> Containment:
        result = self.containment(tenant, case_id)
        if not result.contained or result.contained_at is None:
            return result
        key = f"case:{case_id}"
        if self.store.get_connector_state(tenant, "containment", key) is None:
            at = result.contained_at
            self.store.set_connector_state(tenant, "containment", key, {"contained_at": at.isoformat()}, self.actor)
            self.state.audit(self.actor, "response.case.contained", tenant, case_id,
                             {"contained_at": at.isoformat(), "actions": result.executed})  # fmt: skip
            if self.on_contained is not None:
                self.on_contained(tenant, case_id, at)
        return result

    def _notify_step(self, case: Case, plan: ResponsePlan, item: PlanItem) -> dict[str, Any]:
        values = _template_values(case, plan)
        message = (item.message or "{title}").format_map(_SafeDict(values))
        payload = {"tenant": case.tenant, "case_id": case.case_id, "playbook": item.playbook, "message": message,
                   "severity": case.severity, "dry_run": item.dry_run}  # fmt: skip
        channel = item.notify or "default"
        key = f"{case.case_id}:{item.playbook}:{item.step}"
        if item.dry_run:
            delivered, error = False, "dry run: not sent"
        elif self.store.get_connector_state(case.tenant, "notifications", key) is not None:
            return {"channel": channel, "delivered": True, "error": None, "message": message, "repeat": True}
        else:
            delivered, error = self._send(channel, "response.notification", payload, f"{case.tenant}:{key}")
            if delivered:  # sent once per case and step; a failed one is tried again on the next update
                self.store.set_connector_state(case.tenant, "notifications", key, {"channel": channel}, self.actor)
        self.state.audit(self.actor, "response.notification", case.tenant, case.case_id,
                         {"channel": channel, "delivered": delivered, "error": error, "message": message,
                          "playbook": item.playbook, "policy_version": plan.policy_version},
                         time=self.clock())  # fmt: skip
        return {"channel": channel, "delivered": delivered, "error": error, "message": message}

    def _notify_action(self, record: ActionRecord, channel: str, event: str) -> None:
        payload = {"tenant": record.tenant, "case_id": record.case_id, "action": record.to_json_dict()}
        delivered, error = self._send(channel, event, payload, f"{record.action_id}:{event}:{record.escalation_level}")
        details = {"channel": channel, "event": event, "delivered": delivered, "error": error}
        self.store.audit_action(replace(record), self.actor, "response.notification", details)

    def _send(self, channel: str, event: str, payload: dict[str, Any], delivery_id: str) -> tuple[bool, str | None]:
        notifier = self.notifiers.get(channel) or self.notifiers.get("default")
        if notifier is None:
            return False, f"no notifier configured for channel {channel!r}"
        try:
            return notifier.notify(event, payload, delivery_id)
        except Exception as exc:  # a broken notifier must not stop containment
            return False, f"{type(exc).__name__}: {exc}"

    def _emit(self, record: ActionRecord) -> ActionRecord:
        if self.publish is not None:
            self.publish(record)
        return record


def containment_of(actions: Sequence[ActionRecord]) -> Containment:
    """A case is contained when a containment action executed and none is still waiting, running or failed.

    Dry runs, rollbacks, denied, rejected and expired actions do not count either way;
    ``contained_at`` is when the last executed containment action completed.
    """
    relevant = [a for a in actions if not a.dry_run and a.rollback_of is None and ACTION_CATALOGUE[a.kind].containment]
    executed = [a for a in relevant if a.status in ("executed", "rolled_back") and a.executed_at is not None]
    pending = [a.action_id for a in relevant if a.status in (*PENDING_STATUSES, "executing")]
    failed = [a.action_id for a in relevant if a.status == "failed"]
    contained = bool(executed) and not pending and not failed
    at = max(a.executed_at for a in executed if a.executed_at) if contained else None
    return Containment(contained, at, [a.action_id for a in executed], pending, failed)


def _check_person(name: str, automation: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("an approver/actor needs a name of 1-200 characters")
    if automation and name == automation:
        raise ValidationError(f"{name!r} is the automation itself; approvals come from people")
    return name


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _template_values(case: Case, plan: ResponsePlan) -> dict[str, Any]:
    def values(*types: str) -> str:
        found = sorted({o.value for o in case.observables if o.type in types})
        return ", ".join(found) or "-"

    return {
        "title": case.title, "severity": case.severity, "case_id": case.case_id, "tenant": case.tenant,
        "hosts": values("host"), "users": values("user"), "ips": values("ip"), "domains": values("domain"),
        "playbooks": ", ".join(plan.playbooks), "policy_version": plan.policy_version,
    }  # fmt: skip
