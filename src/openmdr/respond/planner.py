"""Turn a case into a response plan: which playbook steps apply, on which targets, and what the policy says.

:func:`build_plan` is pure: case, its alerts, playbooks, policy, tenant, inventory, time and confidence in;
a :class:`ResponsePlan` out, with one :class:`PlanItem` per (step, target) and the policy's
:class:`~openmdr.respond.policy.Decision` for each.  ``openmdr respond plan`` prints it; the
service stores and executes it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from openmdr.models.action import ACTION_CATALOGUE
from openmdr.models.alert import Alert
from openmdr.models.case import Case, Observable
from openmdr.models.tenant import AssetInfo, TenantInfo
from openmdr.respond.evidence import CaseEvidence, case_evidence, short_host
from openmdr.respond.playbook import Playbook, Step
from openmdr.respond.policy import (
    ActionContext,
    AuthorityPolicy,
    Decision,
    evaluate,
    is_privileged_account,
    is_working_time,
    protected_reason,
)

#: Confidence assumed when neither the caller nor any alert gives one (the Alert default).
DEFAULT_CONFIDENCE = 0.7


@dataclass(slots=True)
class PlanItem:
    """One step of one playbook applied to one target (or a notification, gate or skipped step)."""

    playbook: str
    step: int
    kind: str | None = None
    target: str | None = None
    asset: str | None = None
    asset_class: str | None = None
    criticality: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    notify: str | None = None
    message: str | None = None
    gate: bool = False
    skipped: str | None = None
    dry_run: bool = False
    guard: str | None = None  # "protected" when a protected-target guard skipped it, "evidence" for accounts

    @property
    def dedupe_key(self) -> str:
        """Identity of the action across playbooks and repeated runs: kind, target and host."""
        parts = (self.kind or "", (self.target or "").lower(), (self.asset or "").lower())
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(slots=True)
class ResponsePlan:
    """What would run for a case and why: the items, the policy version, the time and confidence used."""

    tenant: str
    case_id: str
    policy_version: int
    at: datetime
    confidence: float
    working_time: bool
    playbooks: list[str] = field(default_factory=list)
    items: list[PlanItem] = field(default_factory=list)

    @property
    def actions(self) -> list[PlanItem]:
        """The items that are actions (not notifications, gates or skipped steps)."""
        return [i for i in self.items if i.kind is not None and i.skipped is None]


class AssetIndex:
    """A tenant's inventory looked up by hostname, short name or address."""

    def __init__(self, assets: Sequence[AssetInfo]) -> None:
        self._by_key: dict[str, AssetInfo] = {}
        for a in assets:
            self._by_key.setdefault(a.hostname.lower(), a)
            self._by_key.setdefault(a.hostname.lower().split(".", 1)[0], a)
            for ip in a.ips:
                self._by_key.setdefault(ip, a)

    def find(self, host: str) -> AssetInfo | None:
        """The inventory entry for ``host`` (FQDN, short name or IP), or None."""
        key = host.lower()
        return self._by_key.get(key) or self._by_key.get(key.split(".", 1)[0])


def case_confidence(alerts: Sequence[Alert] = (), confidence: float | None = None) -> float:
    """The confidence response acts on: the given one, else the highest alert confidence, else the default."""
    if confidence is not None:
        return confidence
    if alerts:
        return max(a.confidence for a in alerts)
    return DEFAULT_CONFIDENCE


def build_plan(
    case: Case,
    playbooks: Sequence[Playbook],
    policy: AuthorityPolicy,
    policy_version: int,
    tenant: TenantInfo,
    assets: AssetIndex,
    at: datetime,
    confidence: float,
    dry_run: bool = False,
    alerts: Sequence[Alert] = (),
) -> ResponsePlan:
    """Apply every matching playbook's steps to the case's observables and decide each against the policy.

    ``alerts`` are the case's alerts: they say which accounts are compromised (see
    :mod:`.evidence`) and which process images a hash belongs to (the protected-binaries guard).
    """
    working = is_working_time(tenant, at)
    evidence = case_evidence(case, alerts)
    plan = ResponsePlan(case.tenant, case.case_id, policy_version, at, confidence, working)
    seen: set[str] = set()
    explained: set[tuple[str, str]] = set()
    unattended_hosts: set[str] = set()
    for playbook in playbooks:
        if not playbook.applies(case, confidence):
            continue
        plan.playbooks.append(playbook.name)
        gate: int | None = None  # approval timeout (minutes) once a wait_for_approval step was passed
        for step in playbook.steps:
            base = PlanItem(playbook.name, step.index, dry_run=dry_run or playbook.dry_run)
            if step.when is not None and not step.when.holds(case, confidence):
                base.kind, base.skipped = step.action, "step condition not met"
                plan.items.append(base)
                continue
            if step.wait_for_approval:
                gate = step.approval_timeout_minutes or policy.approval_timeout_minutes
                base.gate, base.params = True, {"timeout_minutes": gate}
                plan.items.append(base)
                continue
            if step.notify is not None:
                base.notify, base.message = step.notify, step.message
                plan.items.append(base)
                continue
            items = _action_items(case, step, base, policy, tenant, assets, at, confidence, working, gate, evidence)
            if not items:
                base.kind, base.skipped = (
                    step.action,
                    f"no {ACTION_CATALOGUE[step.action or ''].target_type} in the case",
                )
                plan.items.append(base)
            for item in items:
                if item.dedupe_key in seen:
                    continue
                if item.skipped is not None:  # explained once, but another playbook may still act on it
                    if (item.dedupe_key, item.skipped) not in explained:
                        explained.add((item.dedupe_key, item.skipped))
                        plan.items.append(item)
                    continue
                seen.add(item.dedupe_key)
                _limit_blast_radius(item, policy, unattended_hosts)
                plan.items.append(item)
    return plan


def _limit_blast_radius(item: PlanItem, policy: AuthorityPolicy, hosts: set[str]) -> None:
    """Past ``max_unattended_hosts`` distinct hosts in one case, host actions need approval."""
    d = item.decision
    if d is None or d.verdict != "run" or item.kind is None or ACTION_CATALOGUE[item.kind].scope != "host":
        return
    host = (item.asset or item.target or "").lower()
    if host in hosts or len(hosts) < policy.max_unattended_hosts:
        hosts.add(host)
        return
    item.decision = Decision(
        "approve", f"{d.reason}; blast-radius limit: more than {policy.max_unattended_hosts} hosts in one case",
        d.rule, 1, policy.approval_timeout_minutes,
    )  # fmt: skip


def _action_items(
    case: Case,
    step: Step,
    base: PlanItem,
    policy: AuthorityPolicy,
    tenant: TenantInfo,
    assets: AssetIndex,
    at: datetime,
    confidence: float,
    working: bool,
    gate: int | None,
    evidence: CaseEvidence,
) -> list[PlanItem]:
    assert step.action is not None and step.targets is not None
    spec = ACTION_CATALOGUE[step.action]
    targets = step.targets.select(case)
    out: list[PlanItem] = []
    if step.targets.evidence:
        targets, passed = _by_evidence(targets, step.targets.evidence, evidence)
        for value, why in passed:
            out.append(PlanItem(base.playbook, base.step, step.action, value, dry_run=base.dry_run, skipped=why,
                                guard="evidence"))  # fmt: skip
    pairs: list[tuple[Observable, str | None]]
    if spec.scope == "host" and spec.target_type != "host":
        hosts = step.on_hosts.select(case) if step.on_hosts is not None else []
        pairs = []
        for t in targets:
            seen_on = evidence.hosts_of(t.value)  # where the alerts saw it; unknown: every host of the step
            on = [h for h in hosts if not seen_on or short_host(h.value) in seen_on]
            pairs += [(t, h.value) for h in on]
            if seen_on and hosts and not on:
                out.append(PlanItem(base.playbook, base.step, step.action, t.value, dry_run=base.dry_run,
                                    skipped=f"not acted on: the alerts saw it only on {', '.join(sorted(seen_on))}, "
                                    "which this step does not act on", guard="evidence"))  # fmt: skip
    elif spec.target_type == "host":
        pairs = [(t, t.value) for t in targets]
    else:
        pairs = [(t, None) for t in targets]
    for target, host in pairs:
        item = PlanItem(base.playbook, base.step, step.action, target.value, dry_run=base.dry_run)
        problem = invalid_target(spec.target_type, target.value)
        if problem is not None:
            item.skipped = problem
            out.append(item)
            continue
        asset_ips: tuple[str, ...] = ()
        internal = False
        if spec.scope == "host":
            found = assets.find(host or target.value)
            item.asset = found.hostname if found else host
            item.asset_class = found.asset_class if found else "unknown"
            item.criticality = found.criticality if found else None
            asset_ips = tuple(found.ips) if found else ()
            item.params["has_edr"] = found.has_edr if found else None
        elif spec.scope == "account":
            if step.targets.evidence:
                item.params["evidence"] = evidence.explain(target.value, step.targets.evidence)
            privileged = is_privileged_account(policy, target.value)
            item.asset_class = "privileged_account" if privileged else "account"
            item.criticality = "critical" if privileged else None
        else:
            item.asset_class = "indicator"
            minor = evidence.not_blockable(target.value) if spec.target_type == "ip" else None
            if minor is not None:
                item.skipped, item.guard = f"not acted on: {minor}", "evidence"
                out.append(item)
                continue
            internal = target.internal or _is_internal(spec.target_type, target.value, tenant)
            hours = step.expires_hours or policy.block_expiry_hours
            item.params["expires_at"] = (at + timedelta(hours=hours)).isoformat()
        target_type = "hash" if spec.target_type == "hash" else spec.target_type
        ctx = ActionContext(
            kind=step.action, target=target.value, target_type=target_type, asset_class=item.asset_class or "unknown",
            severity=case.severity, confidence=confidence, working_time=working, criticality=item.criticality,
            asset=item.asset if spec.scope == "host" else None, asset_ips=asset_ips, target_internal=internal,
        )  # fmt: skip
        protected = protected_reason(policy, ctx, sorted(evidence.hash_images.get(target.value.lower(), ())))
        if protected is not None:
            item.skipped, item.guard = f"protected: {protected}", "protected"
            out.append(item)
            continue
        decision = evaluate(policy, ctx)
        if gate is not None and decision.verdict == "run":
            decision = Decision("approve", f"{decision.reason}; the playbook waits for approval here", decision.rule,
                                max(1, decision.approvals_required), gate)  # fmt: skip
        item.decision = decision
        item.params["context"] = context_dict(ctx)
        out.append(item)
    return out


def _by_evidence(
    users: list[Observable], wanted: Sequence[str], evidence: CaseEvidence
) -> tuple[list[Observable], list[tuple[str, str]]]:
    """Split a step's users into those the alerts give a wanted role and, with the reason, the others."""
    keep: list[Observable] = []
    passed: list[tuple[str, str]] = []
    for user in users:
        roles = evidence.roles(user.value)
        if roles & set(wanted):
            keep.append(user)
            continue
        if not evidence.alerts and not roles:
            why = "no alerts of the case are at hand to show it compromised"
        elif roles:
            why = evidence.explain(user.value)
        else:
            why = "no alert of the case names it"
        passed.append((user.value, f"not acted on: no evidence that {user.value} is {' or '.join(wanted)}: {why}"))
    return keep, passed


_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:")


def invalid_target(target_type: str, value: str) -> str | None:
    """Why ``value`` cannot be acted on as a ``target_type`` (None when it can).

    Block-list values end up one per line in firewall lists, so anything with whitespace or
    that does not parse as its type is refused rather than published.
    """
    if not value or len(value) > 2048:
        return f"invalid {target_type}: empty or longer than 2048 characters"
    if target_type in ("process", "file", "user"):
        return None  # handed to an EDR or directory API as a value, where spaces are legitimate
    if any(c.isspace() for c in value):
        return f"invalid {target_type} {value[:80]!r}: contains whitespace"
    problem: str | None = None
    if target_type == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            problem = "not an address"
    elif target_type in ("domain", "host"):
        if not set(value) <= _HOST_CHARS or value.startswith((".", "-")) or ".." in value:
            problem = "not a host name"
    elif target_type == "hash":
        if len(value) not in (32, 40, 64) or not set(value) <= _HEX:
            problem = "not an MD5, SHA-1 or SHA-256 in hex"
    elif target_type == "url" and not urlsplit(value if "://" in value else f"http://{value}").hostname:
        problem = "no host"
    return None if problem is None else f"invalid {target_type} {value[:80]!r}: {problem}"


def context_dict(ctx: ActionContext) -> dict[str, Any]:
    """The policy inputs of an action, kept on the record so the policy can be re-checked at execution."""
    return {
        "target_type": ctx.target_type, "asset_class": ctx.asset_class, "severity": ctx.severity,
        "confidence": ctx.confidence, "working_time": ctx.working_time, "criticality": ctx.criticality,
        "asset_ips": list(ctx.asset_ips), "target_internal": ctx.target_internal,
    }  # fmt: skip


def context_from(kind: str, target: str, asset: str | None, data: Mapping[str, Any]) -> ActionContext:
    """Rebuild the :class:`ActionContext` of a stored action from :func:`context_dict` data."""
    return ActionContext(
        kind=kind, target=target, target_type=str(data.get("target_type", "")),
        asset_class=str(data.get("asset_class", "unknown")), severity=str(data.get("severity", "medium")),
        confidence=float(data.get("confidence", DEFAULT_CONFIDENCE)), working_time=bool(data.get("working_time")),
        criticality=data.get("criticality"), asset=asset if ACTION_CATALOGUE[kind].scope == "host" else None,
        asset_ips=tuple(data.get("asset_ips") or ()), target_internal=bool(data.get("target_internal")),
    )  # fmt: skip


def _is_internal(target_type: str, value: str, tenant: TenantInfo) -> bool:
    """True for addresses inside the tenant's networks or not publicly routable, and the tenant's own domains."""
    if target_type == "ip":
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        if not addr.is_global:
            return True
        return any(addr in ipaddress.ip_network(n, strict=False) for n in tenant.networks)
    if target_type == "domain":
        d = value.lower().rstrip(".")
        return any(d == x.lower() or d.endswith("." + x.lower()) for x in tenant.domains)
    return False
