"""The whole MDR story on generated telemetry: what ``openmdr demo`` runs and the end-to-end test proves.

:func:`run_story` generates a multi-tenant week with labelled attack chains, provisions the
tenants, and replays the week in time order through the real platform at an accelerated
clock: ingest -> normalize/enrich -> lake -> Sigma + indicators + analytics -> cases ->
response under each tenant's delegated authority.  The people of an MDR service are
simulated explicitly and only where a person acts: a SOC analyst acknowledges high and
critical cases after ``ack_after``, a customer approves actions that need approval after
``approve_after`` (after the policy's timeout has escalated them), and the analyst
confirms the contained high/critical cases as true positives in a review at the end of
the week (``resolve_after`` None; recorded telemetry keeps showing an isolated host's
traffic, which live containment would have cut, so an earlier confirmation would only
split each attack into a resolved case and a recurrence), which feeds the learning loop
(indicators shared provider-wide, retro-hunt over every tenant).
Nothing consults the ground truth while the story runs; :func:`score_chains` compares
the outcome with ``labels.json`` afterwards.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from openmdr.bus import TOPIC_ALERTS
from openmdr.generator import GeneratorConfig, generate, telemetry_paths
from openmdr.measure import SlaReport, sla_report
from openmdr.models import Case, TenantInfo
from openmdr.replay import ParsedTelemetry, ReplayReport, SimClock, parse_paths, replay
from openmdr.respond.relay import LabRelay
from openmdr.runtime import Platform

ANALYST = "analyst@soc.openmdr (simulated)"
#: Action statuses that mean something was done to a system.
ACTED = frozenset({"executed", "rolled_back"})
PENDING = frozenset({"awaiting_approval", "escalated"})


@dataclass(slots=True)
class StoryConfig:
    """The story's knobs: what to generate, how fast the replay steps, when the simulated people act."""

    tenants: int = 3
    days: int = 7
    seed: int = 7
    scale: float = 1.0
    window: timedelta = timedelta(minutes=30)
    ack_after: timedelta = timedelta(minutes=10)
    approve_after: timedelta = timedelta(minutes=25)
    resolve_after: timedelta | None = None
    retro_hunt_days: int = 14


@dataclass(slots=True)
class TenantOutcome:
    """What the story did for one tenant."""

    tenant: TenantInfo
    events_stored: int = 0
    rejected: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    cases: list[Case] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    automatic: int = 0
    approved: int = 0
    awaiting: int = 0
    indicators_shared: int = 0
    retro_hunt_hits: int = 0
    sla: SlaReport | None = None


@dataclass(slots=True)
class ChainOutcome:
    """How one labelled attack chain fared: detected, in how many cases, contained, how fast."""

    chain_id: str
    tenant: str
    name: str
    events: int
    case_ids: list[str]
    detected: bool
    contained: bool
    purity: float | None
    completeness: float
    first_event: datetime
    detected_at: datetime | None
    contained_at: datetime | None

    @property
    def time_to_detect_s(self) -> float | None:
        """Seconds from the chain's first event to its case's detection."""
        return None if self.detected_at is None else (self.detected_at - self.first_event).total_seconds()


@dataclass(slots=True)
class StoryReport:
    """Everything the demo prints and the end-to-end test asserts."""

    out: Path
    config: StoryConfig
    tenants: list[TenantOutcome]
    replay: ReplayReport
    chains: list[ChainOutcome] = field(default_factory=list)
    benign_contained: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    relay_state: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- the simulated people
class SimulatedPeople:
    """The SOC analyst and the customers' approvers, acting on a fixed schedule of simulated time."""

    def __init__(self, platform: Platform, tenants: list[TenantInfo], config: StoryConfig) -> None:
        self.platform = platform
        self.tenants = {t.name: t for t in tenants}
        self.config = config
        self.shared: list[dict[str, Any]] = []
        self.approved = Counter[str]()

    def act(self, now: datetime) -> None:
        """One round: timers, acknowledgements, approvals, confirmations (in that order)."""
        response, cases = self.platform.response, self.platform.cases
        self.platform.flow.drain()  # the window's batches of every tenant, detected together
        response.tick(now)
        for name, info in self.tenants.items():
            for case in cases.list(name, open_only=True, limit=1000):
                detected = case.sla.detected_at
                if detected is None or case.severity not in ("high", "critical"):
                    continue
                if case.status == "new" and detected + self.config.ack_after <= now:
                    cases.acknowledge(name, case.case_id, ANALYST, at=now)
                contained = case.sla.contained_at
                wait = self.config.resolve_after
                if contained is not None and wait is not None and contained + wait <= now:
                    self._confirm(info, case.case_id, now)
            for action in response.list_actions(name, status=sorted(PENDING)):
                if action.requested_at is not None and action.requested_at + self.config.approve_after <= now:
                    self._approve(name, action)

    def review(self, now: datetime) -> None:
        """The end-of-week review: every contained high/critical case is confirmed a true positive."""
        for name, info in self.tenants.items():
            for case in self.platform.cases.list(name, open_only=True, limit=1000):
                if case.sla.contained_at is not None and case.severity in ("high", "critical"):
                    self._confirm(info, case.case_id, now)

    def _approve(self, tenant: str, action: Any) -> None:
        approvers = [f"security-lead@{tenant} (simulated)", f"ciso@{tenant} (simulated)"]
        for approver in approvers[: max(1, action.approvals_required)]:
            if approver in action.approvals:
                continue
            record = self.platform.response.approve(tenant, action.action_id, approver, "approved in the demo")
            self.approved[tenant] += 1
            if record.status not in PENDING:
                break

    def _confirm(self, tenant: TenantInfo, case_id: str, now: datetime) -> None:
        case = self.platform.cases.resolve(tenant.name, case_id, "true_positive", ANALYST, at=now)
        result = self.platform.learning.on_case_resolved(case, tenant)
        self.shared.append({
            "tenant": tenant.name, "case_id": case_id, "shared": [f"{i.type}:{i.value}" for i in result.shared],
            "withheld": len(result.withheld),
            "held_for_review": [f"{w.type}:{w.value}" for w in result.held_for_review],
            "retro_hunt_alerts": len(result.alerts),
            "retro_hunt_tenants": sorted({a.tenant for a in result.alerts}),
        })  # fmt: skip
        if result.alerts:
            self.platform.bus.publish(TOPIC_ALERTS, [a.to_json_dict() for a in result.alerts])


# ---------------------------------------------------------------- the story
def provision(platform: Platform, out: Path) -> list[TenantInfo]:
    """Create or update the generated tenants and import their asset inventories."""
    rows = orjson.loads((out / "tenants.json").read_bytes())
    tenants: list[TenantInfo] = []
    for row in rows:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k in TenantInfo.__slots__}
        info = TenantInfo(**values)
        if platform.state.get_tenant(info.name) is None:
            platform.state.create_tenant(info, actor="demo")
        else:
            platform.state.update_tenant(info, actor="demo")
        platform.state.import_assets_csv(info.name, out / info.name / "assets.csv", actor="demo")
        # onboarding: the tenant's VPN client pool and NAT egress addresses are known, not shadow IT
        known = [row[key] for key in ("vpn_pool",) if row.get(key)] + [f"{ip}/32" for ip in row.get("egress_ips", [])]
        if known:
            platform.analytics.configure_tenant(info.name, {"shadow_it": {"ignore_cidrs": known}})
        tenants.append(platform.state.get_tenant(info.name) or info)
    platform.pipeline.refresh()
    return tenants


def run_story(
    platform: Platform,
    out: Path,
    config: StoryConfig | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> StoryReport:
    """Generate, provision, replay and measure; ``platform`` must run on a :class:`SimClock`.

    ``on_stage(text)`` announces each stage, ``on_progress(done, total)`` counts replayed events.
    """
    config = config or StoryConfig()
    clock = platform.clock
    if not isinstance(clock, SimClock):
        raise ValueError("run_story needs a Platform built with a SimClock (Platform(settings, clock=SimClock(...)))")
    announce = on_stage or (lambda _text: None)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    announce("generating a week of multi-tenant telemetry with hidden attack chains")
    generate(out, GeneratorConfig(tenants=config.tenants, days=config.days, seed=config.seed, scale=config.scale))
    seconds["generate"] = time.perf_counter() - started
    tenants = provision(platform, out)
    mark = time.perf_counter()
    announce("reading and parsing every tenant's telemetry")
    parsed: list[ParsedTelemetry] = [parse_paths(t.name, telemetry_paths(out, t.name)) for t in tenants]
    seconds["parse"] = time.perf_counter() - mark
    total = sum(len(p.events) for p in parsed)
    first = min(p.events[0].time for p in parsed if p.events)
    clock.start_at(first)  # the replayed week is "now" from here on, whatever the wall clock says
    people = SimulatedPeople(platform, tenants, config)
    platform.pipeline  # noqa: B018  (attach the detection flow before the first batch)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    mark = time.perf_counter()
    announce("replaying the week through ingest -> detection -> cases -> response at an accelerated clock")

    def window_done(now: datetime) -> None:
        people.act(now)
        platform.flow.hold()

    # The customers' EDR and identity provider: the lab relay answers the signed webhooks of the
    # EDR and account-action contracts over loopback HTTP (tenant connectors configured in
    # response.toml still take precedence).
    with LabRelay(secrets.token_hex(32)) as relay:
        relay.register(platform.response.connectors)
        platform.flow.hold()
        report = replay(platform.pipeline, parsed, clock, config.window, on_window=window_done, on_progress=progress)
        platform.flow.drain()
        platform.flow.flush()
        for _ in range(4):  # let the last approvals and escalations play out
            clock.advance_to(clock.now + config.window)
            people.act(clock.now)
        if config.resolve_after is None:
            people.review(clock.now)
        for _ in range(2):  # the retro-hunts' cases meet the analyst and the response engine
            clock.advance_to(clock.now + config.window)
            people.act(clock.now)
        relay_state = {t.name: relay.state(t.name) for t in tenants}
    seconds["replay"] = time.perf_counter() - mark
    outcomes = [_tenant_outcome(platform, info, report, people) for info in tenants]
    story = StoryReport(out, config, outcomes, report, shared=people.shared, relay_state=relay_state)
    labels_path = out / "labels.json"
    if labels_path.is_file():
        story.chains, story.benign_contained = score_chains(platform, out, orjson.loads(labels_path.read_bytes()))
    seconds["total"] = time.perf_counter() - started
    story.seconds = seconds
    return story


def _tenant_outcome(
    platform: Platform, info: TenantInfo, replayed: ReplayReport, people: SimulatedPeople
) -> TenantOutcome:
    ingest = replayed.by_tenant.get(info.name)
    outcome = TenantOutcome(info)
    if ingest is not None:
        outcome.events_stored, outcome.rejected = ingest.stored, ingest.rejected
    outcome.cases = platform.cases.list(info.name, limit=10_000)
    for case in outcome.cases:
        for alert in platform.cases.alerts(info.name, case.case_id):
            outcome.alerts[alert.source.split(":", 1)[0]] += 1
    for action in platform.response.list_actions(info.name, limit=100_000):
        outcome.actions[action.status] += 1
        if action.status in ACTED and not action.approvals:
            outcome.automatic += 1
        elif action.status in ACTED:
            outcome.approved += 1
        elif action.status in PENDING:
            outcome.awaiting += 1
    outcome.indicators_shared = sum(len(s["shared"]) for s in people.shared if s["tenant"] == info.name)
    outcome.retro_hunt_hits = sum(
        1 for case in outcome.cases if any(link.get("type") == "retro_hunt" for link in case.links)
    ) or sum(1 for s in people.shared for t in s["retro_hunt_tenants"] if t == info.name)
    outcome.sla = sla_report(info, outcome.cases)
    return outcome


# ---------------------------------------------------------------- ground truth
def score_chains(
    platform: Platform, out: Path, labels: list[dict[str, Any]]
) -> tuple[list[ChainOutcome], list[dict[str, Any]]]:
    """Compare cases and actions with the generator's labels: per chain, and benign things contained."""
    outcomes: list[ChainOutcome] = []
    chain_targets: dict[str, set[str]] = {}
    for chain in labels:
        tenant = chain["tenant"]
        origins = [
            f"{out / tenant / rec['file']}:{rec['offset']}" for step in chain["steps"] for rec in step["records"]
        ]
        step_of: dict[str, str] = {}
        ids = _event_ids_by_origin(platform, tenant, origins)
        for step in chain["steps"]:
            for rec in step["records"]:
                event_id = ids.get(f"{out / tenant / rec['file']}:{rec['offset']}")
                if event_id:
                    step_of[event_id] = step["id"]
        targets = chain_targets.setdefault(tenant, set())
        targets.update(h["name"].lower() for h in chain["hosts"])
        targets.update(h.get("fqdn", "").lower() for h in chain["hosts"])
        targets.update(h["ip"] for h in chain["hosts"])
        targets.update(u.lower() if isinstance(u, str) else str(u) for u in chain.get("users", []))
        targets.update(chain["external"]["ips"])
        targets.update(chain["external"]["domains"])
        touched: dict[str, tuple[int, int, set[str]]] = {}
        for case in platform.cases.list(tenant, limit=10_000):
            alerts = platform.cases.alerts(tenant, case.case_id)
            hits = [a for a in alerts if step_of.keys() & set(a.evidence)]
            if hits:
                steps = {step_of[e] for a in hits for e in a.evidence if e in step_of}
                touched[case.case_id] = (len(hits), len(alerts), steps)
        case_ids = sorted(touched, key=lambda c: -touched[c][0])
        cases = [platform.cases.get(tenant, c) for c in case_ids]
        main = cases[0] if cases else None
        expected = [s["id"] for s in chain["steps"] if s["rules"] or s["analytics"]]
        covered = set().union(*(touched[c][2] for c in case_ids)) if case_ids else set()
        outcomes.append(ChainOutcome(
            chain_id=chain["id"], tenant=tenant, name=chain["name"], events=len(step_of), case_ids=case_ids,
            detected=bool(case_ids), contained=bool(main and main.sla.contained_at),
            purity=(touched[case_ids[0]][0] / touched[case_ids[0]][1]) if case_ids else None,
            completeness=len(covered & set(expected)) / len(expected) if expected else 1.0,
            first_event=datetime.fromisoformat(chain["first_event"].replace("Z", "+00:00")),
            detected_at=main.sla.detected_at if main else None, contained_at=main.sla.contained_at if main else None,
        ))  # fmt: skip
    benign: list[dict[str, Any]] = []
    for tenant in {c["tenant"] for c in labels} | {t.name for t in platform.state.list_tenants()}:
        targets = chain_targets.get(tenant, set())
        for action in platform.response.list_actions(tenant, limit=100_000):
            if action.status not in ACTED:
                continue
            # host-scoped actions (kill a process, quarantine a file) act on their asset
            value = str(action.asset or action.target).lower()
            if not any(value == t or value.split(".")[0] == t for t in targets):
                benign.append({"tenant": tenant, "kind": action.kind, "target": action.target, "case": action.case_id})
    return outcomes, benign


def _event_ids_by_origin(platform: Platform, tenant: str, origins: list[str]) -> dict[str, str]:
    if not origins:
        return {}
    placeholders = ", ".join("?" for _ in origins)
    table = platform.lake.query(
        tenant, f"SELECT origin, event_id FROM events WHERE origin IN ({placeholders})", list(origins)
    )
    return dict(zip(table.column("origin").to_pylist(), table.column("event_id").to_pylist(), strict=True))
