"""Declarative playbooks: when they apply to a case (trigger), and what they do (steps).

A playbook is a YAML document (see ``respond/playbooks/*.yml`` and ``docs/response.md``)::

    name: c2-beacon
    title: Contain a host beaconing to command and control
    trigger:                        # every listed condition must hold; lists mean "any of"
      techniques: [T1071, T1573]    # ATT&CK ids, a parent matches its sub-techniques
      min_severity: medium
    steps:
      - action: isolate_host
        targets: {type: host, role: victim}
      - action: block_ip
        targets: {type: ip, internal: false}
        expires_hours: 72
      - notify: soc
        message: "{title}: host isolated"
      - wait_for_approval: {timeout_minutes: 30}    # every later action needs a person
      - action: disable_account
        targets: {type: user}
        when: {min_severity: high}

Parsing is strict (:class:`PlaybookError` lists every problem) and matching is pure, so a
playbook can be tested against hand-built cases without a database.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from openmdr.models.action import ACTION_CATALOGUE, CONTAINMENT_ACTIONS
from openmdr.models.alert import SEVERITIES, severity_rank
from openmdr.models.case import OBSERVABLE_TYPES, Case, Observable
from openmdr.respond.evidence import EVIDENCE_ROLES

#: Observable types a ``hash`` target selects.
HASH_TYPES: tuple[str, ...] = ("hash_md5", "hash_sha1", "hash_sha256")


class PlaybookError(ValueError):
    """A playbook document that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Condition:
    """Conditions on a case; all given ones must hold (each list means any of its items).

    ``any_of`` holds when at least one of its sub-conditions holds.
    """

    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    min_severity: str | None = None
    min_confidence: float | None = None
    any_of: tuple[Condition, ...] = ()

    def holds(self, case: Case, confidence: float) -> bool:
        """True when ``case`` (seen with ``confidence``) satisfies every condition."""
        if self.techniques and not any(
            t == w or t.startswith(w + ".") for t in case.techniques for w in self.techniques
        ):
            return False
        if self.tactics and not {t.lower() for t in case.tactics} & {t.lower() for t in self.tactics}:
            return False
        if self.sources and not any(fnmatch.fnmatchcase(s, p) for s in case.sources for p in self.sources):
            return False
        if self.titles and not any(fnmatch.fnmatch(case.title.lower(), p.lower()) for p in self.titles):
            return False
        if self.observables:
            present = {o.type for o in case.observables} | {k for k, v in case.entities.items() if v}
            if not any(_type_present(t, present) for t in self.observables):
                return False
        if self.min_severity is not None and severity_rank(case.severity) < severity_rank(self.min_severity):
            return False
        if self.min_confidence is not None and confidence < self.min_confidence:
            return False
        return not self.any_of or any(c.holds(case, confidence) for c in self.any_of)


@dataclass(frozen=True, slots=True)
class TargetSelector:
    """Which of a case's observables a step acts on: by type, optionally role(s) and internal flag.

    ``evidence`` (accounts only) keeps the users the case's alerts give one of these roles
    (:data:`~openmdr.respond.evidence.EVIDENCE_ROLES`, e.g. ``[compromised, actor]``); the planner
    applies it and says for every other user why it is not acted on.  ``not_roles`` (YAML
    ``not_role``) leaves out observables with one of these roles, e.g. a process that is only
    the *parent* of what the alerts saw, or a process known only by its command line.
    """

    type: str
    roles: tuple[str, ...] = ()
    internal: bool | None = None
    evidence: tuple[str, ...] = ()
    not_roles: tuple[str, ...] = ()

    def select(self, case: Case) -> list[Observable]:
        """The matching observables of ``case`` (entities count as observables without a role), unique."""
        types = HASH_TYPES if self.type == "hash" else (self.type,)
        found: dict[tuple[str, str], Observable] = {}
        for o in case.observables:
            role_ok = (not self.roles or o.role in self.roles) and o.role not in self.not_roles
            if o.type in types and role_ok and (self.internal is None or o.internal == self.internal):
                found.setdefault((self.type, o.value.lower()), o)
        if not self.roles and self.internal is None:
            entity_key = {"ip": ("src_ip", "dst_ip")}.get(self.type, (self.type,))
            for key in entity_key:
                for value in case.entities.get(key, []):
                    found.setdefault((self.type, str(value).lower()), Observable(self.type, str(value)))
        return list(found.values())


@dataclass(frozen=True, slots=True)
class Step:
    """One playbook step: exactly one of an action, a notification, or an approval gate."""

    index: int
    action: str | None = None
    targets: TargetSelector | None = None
    on_hosts: TargetSelector | None = None
    expires_hours: int | None = None
    notify: str | None = None
    message: str | None = None
    wait_for_approval: bool = False
    approval_timeout_minutes: int | None = None
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class Playbook:
    """A named trigger and its steps; ``dry_run`` playbooks plan and audit but never act."""

    name: str
    title: str
    trigger: Condition
    steps: tuple[Step, ...]
    description: str = ""
    dry_run: bool = False
    source: str = ""

    def applies(self, case: Case, confidence: float) -> bool:
        """True when the trigger holds for ``case``."""
        return self.trigger.holds(case, confidence)


@dataclass(slots=True)
class PlaybookSet:
    """The playbooks a service runs, in order, with the problems of the ones that failed to load."""

    playbooks: list[Playbook] = field(default_factory=list)
    problems: list[PlaybookError] = field(default_factory=list)

    def matching(self, case: Case, confidence: float) -> list[Playbook]:
        """The playbooks whose trigger holds for ``case``."""
        return [p for p in self.playbooks if p.applies(case, confidence)]

    def get(self, name: str) -> Playbook | None:
        """The playbook called ``name``."""
        return next((p for p in self.playbooks if p.name == name), None)


# ---------------------------------------------------------------- loading
def parse_playbook(doc: Any, source: str = "<playbook>") -> Playbook:
    """Validate one playbook document; raises :class:`PlaybookError` with every problem."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        raise PlaybookError(source, ["a playbook must be a mapping"])
    known = {"name", "title", "description", "trigger", "steps", "dry_run"}
    problems += [f"unknown key {k!r}" for k in doc if k not in known]
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name is required")
    trigger = _parse_condition(doc.get("trigger") or {}, "trigger", problems)
    raw_steps = doc.get("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("steps must be a non-empty list")
    else:
        for i, raw in enumerate(raw_steps):
            step = _parse_step(raw, i, problems)
            if step is not None:
                steps.append(step)
    if problems:
        raise PlaybookError(source, problems)
    return Playbook(
        name=str(name), title=str(doc.get("title") or name), trigger=trigger, steps=tuple(steps),
        description=str(doc.get("description") or ""), dry_run=bool(doc.get("dry_run", False)), source=source,
    )  # fmt: skip


def load_playbooks(texts: Iterable[tuple[str, str]]) -> PlaybookSet:
    """Parse ``(source, yaml_text)`` pairs; bad ones are kept in ``problems`` with their reasons, never raised."""
    out = PlaybookSet()
    names: set[str] = set()
    for source, text in texts:
        try:
            doc = yaml.safe_load(text)
            playbook = parse_playbook(doc, source)
        except yaml.YAMLError as exc:
            out.problems.append(PlaybookError(source, [f"not valid YAML: {exc}"]))
            continue
        except PlaybookError as exc:
            out.problems.append(exc)
            continue
        if playbook.name in names:
            out.problems.append(PlaybookError(source, [f"duplicate playbook name {playbook.name!r}"]))
            continue
        names.add(playbook.name)
        out.playbooks.append(playbook)
    return out


def builtin_playbooks() -> PlaybookSet:
    """The playbooks shipped in ``openmdr/respond/playbooks`` (credential theft, C2, ransomware, brute force)."""
    folder = resources.files("openmdr.respond") / "playbooks"
    files = sorted((p for p in folder.iterdir() if p.name.endswith((".yml", ".yaml"))), key=lambda p: p.name)
    return load_playbooks((f"builtin:{p.name}", p.read_text(encoding="utf-8")) for p in files)


def load_playbook_dir(path: Path) -> PlaybookSet:
    """Every ``*.yml``/``*.yaml`` playbook in a folder, by file name."""
    files = sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
    return load_playbooks((str(p), p.read_text(encoding="utf-8")) for p in files)


def _parse_step(raw: Any, i: int, problems: list[str]) -> Step | None:
    where = f"steps[{i}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a mapping")
        return None
    kinds = [k for k in ("action", "notify", "wait_for_approval") if k in raw]
    if len(kinds) != 1:
        problems.append(f"{where} needs exactly one of action, notify, wait_for_approval")
        return None
    when = _parse_condition(raw["when"], f"{where}.when", problems) if "when" in raw else None
    if kinds[0] == "notify":
        _unknown(raw, {"notify", "message", "when"}, where, problems)
        return Step(i, notify=str(raw["notify"]), message=str(raw.get("message") or "{title}"), when=when)
    if kinds[0] == "wait_for_approval":
        _unknown(raw, {"wait_for_approval", "when"}, where, problems)
        gate = raw["wait_for_approval"] or {}
        timeout = gate.get("timeout_minutes") if isinstance(gate, Mapping) else None
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            problems.append(f"{where}: timeout_minutes must be a positive whole number")
            timeout = None
        return Step(i, wait_for_approval=True, approval_timeout_minutes=timeout, when=when)
    _unknown(raw, {"action", "targets", "on_hosts", "expires_hours", "when"}, where, problems)
    action = str(raw["action"])
    if action not in CONTAINMENT_ACTIONS:
        problems.append(f"{where}: unknown action {action!r}; playbooks may run {', '.join(CONTAINMENT_ACTIONS)}")
        return None
    spec = ACTION_CATALOGUE[action]
    targets = _parse_selector(raw.get("targets") or {"type": spec.target_type}, spec.target_type, where, problems)
    on_hosts = None
    if spec.scope == "host" and spec.target_type != "host":
        on_hosts = _parse_selector(raw.get("on_hosts") or {"type": "host"}, "host", f"{where}.on_hosts", problems)
    expires = raw.get("expires_hours")
    if expires is not None and (not isinstance(expires, int) or expires <= 0):
        problems.append(f"{where}: expires_hours must be a positive whole number")
        expires = None
    return Step(i, action=action, targets=targets, on_hosts=on_hosts, expires_hours=expires, when=when)


def _parse_selector(raw: Any, expected: str, where: str, problems: list[str]) -> TargetSelector | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}.targets must be a mapping")
        return None
    _unknown(raw, {"type", "role", "not_role", "internal", "evidence"}, f"{where}.targets", problems)
    typ = str(raw.get("type") or expected)
    allowed = {expected} | ({"hash", *HASH_TYPES} if expected == "hash" else set())
    if typ not in allowed:
        problems.append(f"{where}.targets: type must be {expected!r} for this action, got {typ!r}")
    roles = raw.get("role") or ()
    roles = (roles,) if isinstance(roles, str) else tuple(str(r) for r in roles)
    not_roles = raw.get("not_role") or ()
    not_roles = (not_roles,) if isinstance(not_roles, str) else tuple(str(r) for r in not_roles)
    internal = raw.get("internal")
    if internal is not None and not isinstance(internal, bool):
        problems.append(f"{where}.targets: internal must be true or false")
        internal = None
    evidence = raw.get("evidence") or ()
    evidence = (evidence,) if isinstance(evidence, str) else tuple(str(e) for e in evidence)
    if evidence and typ != "user":
        problems.append(f"{where}.targets: evidence applies to user targets only")
    problems += [f"{where}.targets: unknown evidence {e!r}; one of {', '.join(EVIDENCE_ROLES)}"
                 for e in evidence if e not in EVIDENCE_ROLES]  # fmt: skip
    return TargetSelector(typ, roles, internal, evidence, not_roles)


def _parse_condition(raw: Any, where: str, problems: list[str]) -> Condition:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a mapping")
        return Condition()
    known = {"techniques", "tactics", "sources", "titles", "observables", "min_severity", "min_confidence", "any_of"}
    _unknown(raw, known, where, problems)

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key) or ()
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}.{key} must be a list of strings")
            return ()
        return tuple(value)

    sev = raw.get("min_severity")
    if sev is not None and sev not in SEVERITIES:
        problems.append(f"{where}.min_severity must be one of {', '.join(SEVERITIES)}")
        sev = None
    conf = raw.get("min_confidence")
    if conf is not None and (not isinstance(conf, int | float) or not 0 <= conf <= 1):
        problems.append(f"{where}.min_confidence must be a number from 0 to 1")
        conf = None
    observables = strings("observables")
    for t in observables:
        if t != "hash" and t not in OBSERVABLE_TYPES:
            problems.append(f"{where}.observables: unknown type {t!r}")
    any_of = raw.get("any_of") or []
    if not isinstance(any_of, list):
        problems.append(f"{where}.any_of must be a list")
        any_of = []
    return Condition(
        techniques=strings("techniques"), tactics=strings("tactics"), sources=strings("sources"),
        titles=strings("titles"), observables=observables, min_severity=sev,
        min_confidence=float(conf) if conf is not None else None,
        any_of=tuple(_parse_condition(c, f"{where}.any_of[{j}]", problems) for j, c in enumerate(any_of)),
    )  # fmt: skip


def _unknown(raw: Mapping[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    problems.extend(f"{where}: unknown key {k!r}" for k in raw if k not in known)


def _type_present(wanted: str, present: set[str]) -> bool:
    if wanted == "hash":
        return bool(present & {*HASH_TYPES, "hash"})
    return wanted in present
