"""Permission-checked services over the other stages: cases and alerts, response, rules, indicators.

Each class wraps the stage's own service or store (``openmdr.correlate.CaseService``,
``openmdr.respond.ResponseService``, ``openmdr.store.rules.RuleStore``,
``openmdr.store.intel.IntelStore``) and adds what the API needs on top: the permission
check for the tenant first, the principal as the audited actor, and cross-tenant reads
only for callers holding the permission on every tenant they see.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from openmdr.api.rbac import Principal, require
from openmdr.store.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from openmdr.correlate import CaseService
    from openmdr.correlate.timeline import Timeline
    from openmdr.correlate.triage import Suppression
    from openmdr.intel.learning import LearningLoop
    from openmdr.models import Case
    from openmdr.models.action import ActionRecord
    from openmdr.models.indicator import Indicator
    from openmdr.respond import ResponseService
    from openmdr.store.alerts import StoredAlert
    from openmdr.store.intel import IntelStore, Proposal
    from openmdr.store.response import PolicyVersion
    from openmdr.store.rules import ExceptionInfo, RuleSetInfo, RuleStore
    from openmdr.store.state import StateStore

#: Most cases or alerts one list returns.
MAX_LIST = 1000


class CaseWork:
    """Cases (with timeline) and alerts of a tenant, and the cross-tenant case queue."""

    def __init__(self, cases: CaseService, state: StateStore) -> None:
        self.cases = cases
        self.state = state

    def list(self, principal: Principal, tenant: str, **filters: Any) -> builtins.list[Any]:
        """The tenant's cases by priority then recency, as summary rows (one query; details per case)."""
        require(principal, "case:read", tenant)
        return self._rows(tenant, _case_filters(filters))

    def queue(self, principal: Principal, **filters: Any) -> builtins.list[Any]:
        """One queue across every tenant whose cases the caller may read (the SOC's view), as summary rows."""
        filters = _case_filters(filters)
        if principal.is_provider("case:read"):
            return self._rows(None, filters)
        tenants = principal.tenants_with("case:read", [t.name for t in self.state.list_tenants()])
        if not tenants:
            require(principal, "case:read", None)
        limit, offset = filters.pop("limit"), filters.pop("offset")
        merged = [r for t in tenants for r in self._rows(t, {**filters, "limit": limit + offset, "offset": 0})]
        merged.sort(key=lambda r: (r.priority, -r.updated_at.timestamp(), -r.id))
        return merged[offset : offset + limit]

    def _rows(self, tenant: str | None, filters: dict[str, Any]) -> builtins.list[Any]:
        """Case rows from the case store (``tenant`` None: every tenant, for provider-wide readers only)."""
        from openmdr.models.case import CASE_STATUSES

        status = filters.get("status")
        if status is not None and status not in CASE_STATUSES:
            raise ValidationError(f"unknown status {status!r}; one of {', '.join(CASE_STATUSES)}")
        with self.state.transaction() as conn:
            return self.cases.case_store.list(conn, tenant, **filters)

    def get(self, principal: Principal, tenant: str, case_id: str) -> Case:
        """One of the tenant's cases."""
        require(principal, "case:read", tenant)
        case = self.cases.get(tenant, case_id)
        if case is None:
            raise NotFoundError(f"tenant {tenant!r} has no case {case_id!r}")
        return case

    def sla(self, principal: Principal, tenant: str) -> Any:
        """The tenant's SLA figures (MTTD, MTTR, time to acknowledge/contain/resolve, off-hours share)."""
        from openmdr.measure.sla import sla_report

        require(principal, "case:read", tenant)
        info = self.state.get_tenant(tenant)
        if info is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        return sla_report(info, self.cases.list(tenant, limit=10_000))

    def timeline(self, principal: Principal, tenant: str, case_id: str, with_events: bool) -> Timeline:
        """The case's ATT&CK-ordered kill-chain timeline."""
        require(principal, "case:read", tenant)
        if with_events:
            require(principal, "event:read", tenant)
        timeline = self.cases.timeline(tenant, case_id, with_events=with_events)
        if timeline is None:
            raise NotFoundError(f"tenant {tenant!r} has no case {case_id!r}")
        return timeline

    def acknowledge(self, principal: Principal, tenant: str, case_id: str) -> Case:
        """Take the case (new -> acknowledged)."""
        require(principal, "case:write", tenant)
        return self.cases.acknowledge(tenant, case_id, principal.actor)

    def resolve(self, principal: Principal, tenant: str, case_id: str, resolution: str) -> Case:
        """Close the case with a resolution."""
        require(principal, "case:write", tenant)
        return self.cases.resolve(tenant, case_id, resolution, principal.actor)

    def reopen(self, principal: Principal, tenant: str, case_id: str, reason: str | None) -> Case:
        """Reopen a resolved case."""
        require(principal, "case:write", tenant)
        return self.cases.reopen(tenant, case_id, principal.actor, reason)

    def assign(self, principal: Principal, tenant: str, case_id: str, assignee: str | None) -> Case:
        """Give the case to someone (None unassigns)."""
        require(principal, "case:write", tenant)
        return self.cases.assign(tenant, case_id, assignee, principal.actor)

    def note(self, principal: Principal, tenant: str, case_id: str, text: str) -> Case:
        """Add an analyst note."""
        require(principal, "case:write", tenant)
        return self.cases.add_note(tenant, case_id, text, principal.actor)

    def merge(self, principal: Principal, tenant: str, case_ids: Sequence[str]) -> Case:
        """Merge the tenant's cases into the first one (ids of other tenants are not found)."""
        require(principal, "case:write", tenant)
        return self.cases.merge(tenant, case_ids, principal.actor)

    def split(self, principal: Principal, tenant: str, case_id: str, alert_ids: Sequence[str]) -> Case:
        """Move some of a case's alerts into a new case."""
        require(principal, "case:write", tenant)
        return self.cases.split(tenant, case_id, alert_ids, principal.actor)

    def alerts(self, principal: Principal, tenant: str, **filters: Any) -> builtins.list[StoredAlert]:
        """The tenant's alerts, newest first."""
        require(principal, "alert:read", tenant)
        return self.cases.list_alerts(tenant, **_bounded(filters))

    def alert(self, principal: Principal, tenant: str, alert_id: str) -> StoredAlert:
        """One of the tenant's alerts with its triage."""
        require(principal, "alert:read", tenant)
        found = self.cases.get_alert(tenant, alert_id)
        if found is None:
            raise NotFoundError(f"tenant {tenant!r} has no alert {alert_id!r}")
        return found


class SuppressionWork:
    """A tenant's alert suppressions: silence matching alerts until they expire, with a reason (audited)."""

    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    def list(self, principal: Principal, tenant: str, active_only: bool) -> builtins.list[Suppression]:
        """The tenant's suppressions."""
        require(principal, "alert:read", tenant)
        return self.cases.list_suppressions(tenant, active_only)

    def add(self, principal: Principal, tenant: str, reason: str, **match: Any) -> Suppression:
        """Silence the tenant's alerts that match ``rule_id``/``source``/``entities`` until ``expires_at``."""
        require(principal, "alert:write", tenant)
        expires = match.get("expires_at")
        if expires is not None and expires.tzinfo is None:
            raise ValidationError("expires_at needs a time zone")
        return self.cases.add_suppression(tenant, reason, principal.actor, **match)

    def revoke(self, principal: Principal, tenant: str, suppression_id: int) -> None:
        """End one of the tenant's suppressions now."""
        require(principal, "alert:write", tenant)
        self.cases.revoke_suppression(tenant, suppression_id, principal.actor)


def _case_filters(filters: dict[str, Any]) -> dict[str, Any]:
    out = _bounded(filters)
    out["open_only"] = bool(out.get("open_only", False))
    return out


def _bounded(filters: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in filters.items() if v is not None}
    out["limit"] = max(1, min(int(out.get("limit", 100)), MAX_LIST))
    out["offset"] = max(0, int(out.get("offset", 0)))
    return out


class ResponseWork:
    """Response actions, approvals, rollbacks and the delegated-authority policy of a tenant."""

    def __init__(self, response: ResponseService) -> None:
        self.response = response

    def list(
        self, principal: Principal, tenant: str, case_id: str | None, status: str | None, limit: int
    ) -> builtins.list[ActionRecord]:
        """The tenant's response actions, oldest first."""
        require(principal, "response:read", tenant)
        return self.response.list_actions(tenant, case_id, status, max(1, min(limit, MAX_LIST)))

    def get(self, principal: Principal, tenant: str, action_id: str) -> ActionRecord:
        """One of the tenant's actions."""
        require(principal, "response:read", tenant)
        return self.response.get_action(tenant, action_id)

    def approve(self, principal: Principal, tenant: str, action_id: str, comment: str | None) -> ActionRecord:
        """Approve a waiting action as this person (two-person rule counts distinct people)."""
        require(principal, "response:approve", tenant)
        return self.response.approve(tenant, action_id, principal.name, comment)

    def deny(self, principal: Principal, tenant: str, action_id: str, reason: str | None) -> ActionRecord:
        """Refuse a waiting action."""
        require(principal, "response:approve", tenant)
        return self.response.deny(tenant, action_id, principal.name, reason)

    def rollback(self, principal: Principal, tenant: str, action_id: str, reason: str | None) -> ActionRecord:
        """Undo an executed action."""
        require(principal, "response:act", tenant)
        return self.response.rollback(tenant, action_id, principal.name, reason)

    def plan(self, principal: Principal, tenant: str, case_id: str, cases: CaseService) -> Any:
        """What would run for the case now under the tenant's policy, and why (changes nothing)."""
        require(principal, "response:read", tenant)
        require(principal, "case:read", tenant)
        case = cases.get(tenant, case_id)
        if case is None:
            raise NotFoundError(f"tenant {tenant!r} has no case {case_id!r}")
        return self.response.plan(case, cases.alerts(tenant, case_id))

    def policy(self, principal: Principal, tenant: str) -> PolicyVersion:
        """The tenant's current authority policy."""
        require(principal, "response:read", tenant)
        return self.response.get_policy(tenant)

    def set_policy(self, principal: Principal, tenant: str, document: dict[str, Any], comment: str | None) -> Any:
        """Store a new authority policy version (who approves actions decides what runs unattended)."""
        from openmdr.respond.policy import PolicyError, parse_policy

        require(principal, "response:approve", tenant)
        if self.response.state.get_tenant(tenant) is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        try:
            policy = parse_policy(document)
        except PolicyError as exc:
            raise ValidationError(str(exc)) from None
        return self.response.set_policy(tenant, policy, principal.actor, comment)


class RuleWork:
    """The global rule library (provider-wide) and each tenant's overrides and exceptions."""

    def __init__(
        self,
        rules: RuleStore,
        on_overrides_changed: Callable[[str], None] | None = None,
        on_library_changed: Callable[[], None] | None = None,
    ) -> None:
        self.rules = rules
        self.on_overrides_changed = on_overrides_changed
        self.on_library_changed = on_library_changed

    def _changed(self, tenant: str) -> None:
        """Let the running detection apply the tenant's new overrides from its next batch."""
        if self.on_overrides_changed is not None:
            self.on_overrides_changed(tenant)

    def versions(self, principal: Principal) -> builtins.list[RuleSetInfo]:
        """Every installed library version."""
        require(principal, "rule:read", None)
        return self.rules.versions()

    def install(self, principal: Principal, files: Sequence[tuple[str, str]], source: str) -> RuleSetInfo:
        """Install rule files as the next library version and activate it."""
        from openmdr.detect.rules import library_from_texts

        require(principal, "rule:write", None)
        installed = self.rules.install(library_from_texts(files), source, principal.actor)
        self._library_changed()
        return installed

    def activate(self, principal: Principal, version: int) -> RuleSetInfo:
        """Roll the active library back or forward to an installed version."""
        require(principal, "rule:write", None)
        active = self.rules.activate(version, principal.actor)
        self._library_changed()
        return active

    def _library_changed(self) -> None:
        """Let the running detection switch to the newly active library before its next batch."""
        if self.on_library_changed is not None:
            self.on_library_changed()

    def overrides(self, principal: Principal, tenant: str) -> tuple[Any, builtins.list[ExceptionInfo]]:
        """The tenant's overrides (disabled rules, severities) and exceptions."""
        require(principal, "override:read", tenant)
        return self.rules.overrides(tenant), self.rules.exceptions(tenant)

    def set_override(
        self, principal: Principal, tenant: str, rule_id: str, enabled: bool | None, severity: str | None, reset: bool
    ) -> None:
        """Enable/disable a rule for the tenant and/or override (or reset) its severity."""
        require(principal, "override:write", tenant)
        if enabled is not None:
            self.rules.set_enabled(tenant, rule_id, enabled, principal.actor)
        if severity is not None or reset:
            self.rules.set_severity(tenant, rule_id, severity, principal.actor)
        self._changed(tenant)

    def add_exception(self, principal: Principal, tenant: str, filter_yaml: str) -> ExceptionInfo:
        """Add a Sigma-filter exception for the tenant."""
        import yaml

        require(principal, "override:write", tenant)
        try:
            added = self.rules.add_exception(tenant, filter_yaml, principal.actor)
        except yaml.YAMLError as exc:  # the filter parser lets YAML syntax errors through
            raise ValidationError(f"the filter is not valid YAML: {exc}") from None
        self._changed(tenant)
        return added

    def remove_exception(self, principal: Principal, tenant: str, exception_id: int) -> None:
        """Remove one of the tenant's exceptions."""
        require(principal, "override:write", tenant)
        self.rules.remove_exception(tenant, exception_id, principal.actor)
        self._changed(tenant)


class IndicatorWork:
    """Indicators visible to a tenant (its own and the shared ones), the provider-wide set, and sharing proposals."""

    def __init__(self, intel: IntelStore, learning: Callable[[], LearningLoop] | None = None) -> None:
        self.intel = intel
        self._learning = learning

    def proposals(self, principal: Principal, tenant: str, status: str | None) -> builtins.list[Proposal]:
        """Observables of the tenant's resolved cases proposed for sharing, and what became of them."""
        require(principal, "indicator:read", tenant)
        return self.intel.list_proposals(tenant, status)

    def approve(
        self, principal: Principal, tenant: str, proposal_ids: Sequence[str], tlp: str | None
    ) -> tuple[builtins.list[Proposal], int]:
        """Share the tenant's pending proposals (retro-hunted in every tenant); returns them and how many were shared.

        The retro-hunt's alerts belong to the tenants they were found in and are not returned here.
        """
        require(principal, "indicator:write", tenant)
        if self._learning is None:
            raise NotFoundError("the learning loop is not part of this build")
        result = self._learning().approve(tenant, proposal_ids, principal.actor, tlp)
        return result.proposals, len(result.shared)

    def reject(self, principal: Principal, tenant: str, proposal_id: str, reason: str) -> Proposal:
        """Decline one of the tenant's pending proposals."""
        require(principal, "indicator:write", tenant)
        return self.intel.decide_proposal(tenant, proposal_id, "rejected", principal.actor, reason=reason)

    def list(
        self, principal: Principal, tenant: str | None, kind: str | None, limit: int, offset: int
    ) -> builtins.list[Indicator]:
        """Indicators visible to ``tenant`` (None: the provider-wide ones, for provider roles)."""
        require(principal, "indicator:read", tenant)
        return self.intel.list_indicators(tenant, kind=kind, limit=max(1, min(limit, MAX_LIST)), offset=offset)

    def get(self, principal: Principal, tenant: str | None, indicator_id: str) -> Indicator:
        """One indicator visible to ``tenant``."""
        require(principal, "indicator:read", tenant)
        return self.intel.get_indicator(indicator_id, tenant)

    def retire(self, principal: Principal, tenant: str | None, indicator_id: str) -> None:
        """Expire an indicator of the tenant's own scope now (None: a provider-wide one); it stops matching."""
        require(principal, "indicator:write", tenant)
        self.intel.retire_indicator(indicator_id, principal.actor, tenant)
