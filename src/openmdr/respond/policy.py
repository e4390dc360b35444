"""The tenant's delegated authority: which actions the platform may run unattended, on what, and when.

An :class:`AuthorityPolicy` is plain data (kept versioned in the response store, edited by a
tenant admin).  :func:`evaluate` is a pure function from a policy and one :class:`ActionContext`
to a :class:`Decision` -- ``run`` (inside authority), ``approve`` (a person must say yes within
a timeout, then the request escalates) or ``deny`` -- with the reason in words.  The order of
the checks is fixed and documented in ``docs/response.md``:

1. the allow-list: a target on it is never touched, whatever any rule says;
   then protected targets (:mod:`.guards`): operating-system files are never quarantined or
   blocked, critical system processes never killed, network devices never acted on by EDR;
2. blocks of tenant-internal addresses are refused (isolate the host instead);
3. the first matching rule decides (actions, asset classes, minimum severity and confidence,
   working or off hours in the tenant's time zone); no match falls back to ``default_mode``;
4. never-automatic classes (domain controllers and network devices by default) turn ``run`` into ``approve``;
5. assets of a two-person criticality (``critical`` by default) never run unattended and need
   two distinct approvers.

The planner adds a blast-radius limit per case: at most ``max_unattended_hosts`` distinct hosts
are acted on unattended; actions on further hosts of the same case need approval.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from openmdr.models.action import ACTION_CATALOGUE, VERDICTS
from openmdr.models.alert import SEVERITIES, severity_rank
from openmdr.models.tenant import ASSET_CLASSES, CRITICALITY_LEVELS, TenantInfo
from openmdr.respond import guards

#: Classes a rule can name besides the inventory's asset classes.
EXTRA_CLASSES: tuple[str, ...] = ("unknown", "account", "privileged_account", "indicator")
#: Every class a rule may name.
POLICY_CLASSES: tuple[str, ...] = (*ASSET_CLASSES, *EXTRA_CLASSES)
#: Public DNS resolvers every network uses: blocking one breaks name resolution (the default allow-list).
PUBLIC_RESOLVERS: tuple[str, ...] = (
    "8.8.8.8/32", "8.8.4.4/32", "1.1.1.1/32", "1.0.0.1/32", "9.9.9.9/32", "149.112.112.112/32",
    "208.67.222.222/32", "208.67.220.220/32", "2001:4860:4860::8888/128", "2001:4860:4860::8844/128",
    "2606:4700:4700::1111/128", "2606:4700:4700::1001/128",
)  # fmt: skip
#: When a rule applies, in the tenant's local time.
HOURS: tuple[str, ...] = ("any", "working", "off_hours")


class PolicyError(ValueError):
    """A policy document that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class AllowList:
    """What no action may touch: networks/addresses, domains (with subdomains), hosts, users, hashes, URLs."""

    networks: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()

    def match(
        self, target_type: str, value: str, asset: str | None = None, asset_ips: Sequence[str] = ()
    ) -> str | None:
        """Why ``value`` (or the asset it runs on) is allow-listed, or None."""
        if asset is not None and _host_in(asset, self.hosts):
            return f"host {asset} is on the allow-list"
        for ip in asset_ips:
            if _ip_in(ip, self.networks):
                return f"host {asset} address {ip} is on the allow-list"
        if target_type == "ip" and _ip_in(value, self.networks):
            return f"address {value} is on the allow-list"
        if target_type == "host" and _host_in(value, self.hosts):
            return f"host {value} is on the allow-list"
        if target_type == "domain" and _domain_in(value, self.domains):
            return f"domain {value} is on the allow-list"
        if target_type == "user" and _user_in(value, self.users):
            return f"account {value} is on the allow-list"
        if target_type == "hash" and value.lower() in {h.lower() for h in self.hashes}:
            return f"hash {value} is on the allow-list"
        if target_type == "url":
            host = urlsplit(value if "://" in value else f"http://{value}").hostname or ""
            if _domain_in(host, self.domains) or _ip_in(host, self.networks):
                return f"URL host {host} is on the allow-list"
            if any(value.startswith(u) for u in self.urls):
                return f"URL {value} is on the allow-list"
        return None


@dataclass(frozen=True, slots=True)
class AuthorityRule:
    """One line of authority: for these actions on these classes under these conditions, ``mode``.

    Empty ``actions``/``classes`` match every action/class.  ``hours`` is ``any``,
    ``working`` or ``off_hours`` (tenant-local).  ``approval_timeout_minutes`` overrides the
    policy's timeout for approvals this rule asks for.
    """

    name: str
    mode: str
    actions: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    min_severity: str | None = None
    min_confidence: float | None = None
    hours: str = "any"
    approval_timeout_minutes: int | None = None

    def matches(self, ctx: ActionContext) -> bool:
        """True when every condition of this rule holds for ``ctx``."""
        if self.actions and ctx.kind not in self.actions:
            return False
        if self.classes and ctx.asset_class not in self.classes:
            return False
        if self.min_severity is not None and severity_rank(ctx.severity) < severity_rank(self.min_severity):
            return False
        if self.min_confidence is not None and ctx.confidence < self.min_confidence:
            return False
        if self.hours == "working" and not ctx.working_time:
            return False
        return not (self.hours == "off_hours" and ctx.working_time)


@dataclass(frozen=True, slots=True)
class AuthorityPolicy:
    """A tenant's delegated authority (see the module docstring for how it is applied)."""

    rules: tuple[AuthorityRule, ...] = ()
    default_mode: str = "approve"
    approval_timeout_minutes: int = 15
    escalation_chain: tuple[str, ...] = ("soc-duty-manager",)
    escalation_timeout_minutes: int = 15
    never_automatic: tuple[str, ...] = ("domain_controller", "network")
    two_person_criticality: tuple[str, ...] = ("critical",)
    privileged_accounts: tuple[str, ...] = ("adm-*", "adm.*", "*-adm", "a-*", "admin*", "administrator", "svc_*")
    allow_list: AllowList = field(default_factory=AllowList)
    block_expiry_hours: int = 72
    max_unattended_hosts: int = 5
    # added to the built-in lists of :mod:`.guards`, which always apply
    protected_paths: tuple[str, ...] = ()
    protected_images: tuple[str, ...] = ()
    critical_processes: tuple[str, ...] = ()
    network_devices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The policy as a JSON/YAML-ready document (the stored and edited form)."""
        doc: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "rules":
                doc["rules"] = [_rule_dict(r) for r in value]
            elif f.name == "allow_list":
                doc["allow_list"] = {a.name: list(getattr(value, a.name)) for a in fields(AllowList)}
            elif isinstance(value, tuple):
                doc[f.name] = list(value)
            else:
                doc[f.name] = value
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AuthorityPolicy:
        """Parse and validate a policy document; raises :class:`PolicyError` with every problem."""
        return parse_policy(doc)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What the policy needs to know about one requested action.

    ``asset_class`` is the inventory class for host actions (``unknown`` when the host is
    not in the inventory), ``account``/``privileged_account`` for account actions and
    ``indicator`` for blocks.  ``target_internal`` marks tenant-internal addresses.
    """

    kind: str
    target: str
    target_type: str
    asset_class: str
    severity: str
    confidence: float
    working_time: bool
    criticality: str | None = None
    asset: str | None = None
    asset_ips: tuple[str, ...] = ()
    target_internal: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one action, why, and what approval it needs."""

    verdict: str
    reason: str
    rule: str | None = None
    approvals_required: int = 0
    approval_timeout_minutes: int | None = None


def protected_reason(policy: AuthorityPolicy, ctx: ActionContext, hash_images: Sequence[str] = ()) -> str | None:
    """Why no rule may ever allow ``ctx`` (an operating-system file, a critical process, a network device), or None.

    ``hash_images`` are the process images the case's alerts pair a hash target with; without them
    a hash cannot be recognised here (the planner passes them).
    """
    host = ctx.asset or (ctx.target if ctx.target_type == "host" else None)
    if ctx.kind in guards.HOST_KINDS and host:
        why = guards.network_device(host, ctx.asset_class, (*guards.DEFAULT_NETWORK_DEVICES, *policy.network_devices))
        if why is not None:
            return f"{why}: network devices are never isolated or acted on through an EDR agent"
    if ctx.kind in guards.FILE_KINDS:
        paths = (*guards.DEFAULT_PROTECTED_PATHS, *policy.protected_paths)
        names = (*guards.DEFAULT_PROTECTED_IMAGES, *policy.protected_images)
        if ctx.target_type == "hash" or (ctx.kind == "quarantine_file" and _looks_like_hash(ctx.target)):
            why = guards.protected_hash(ctx.target, hash_images, paths, names)
        else:
            why = guards.protected_file(ctx.target, paths, names)
        if why is not None:
            return f"{why}: quarantining or blocking it breaks every machine (kill the process instead)"
    if ctx.kind == "kill_process":
        return guards.critical_process(ctx.target, (*guards.DEFAULT_CRITICAL_PROCESSES, *policy.critical_processes))
    return None


def _looks_like_hash(value: str) -> bool:
    return len(value) in (32, 40, 64) and all(c in "0123456789abcdefABCDEF" for c in value)


def evaluate(policy: AuthorityPolicy, ctx: ActionContext) -> Decision:
    """Decide whether ``ctx`` may run unattended, needs approval, or is refused (pure)."""
    listed = policy.allow_list.match(ctx.target_type, ctx.target, ctx.asset, ctx.asset_ips)
    if listed:
        return Decision("deny", f"allow-list: {listed}", "allow_list")
    protected = protected_reason(policy, ctx)
    if protected:
        return Decision("deny", f"protected: {protected}", "protected")
    if ctx.target_internal and ACTION_CATALOGUE[ctx.kind].scope == "indicator":
        return Decision("deny", f"{ctx.target} is a tenant-internal address: isolate the host instead", "internal")
    rule = next((r for r in policy.rules if r.matches(ctx)), None)
    if rule is None:
        verdict, reason, name, timeout = policy.default_mode, "no rule matched: policy default", None, None
    else:
        verdict, name, timeout = rule.mode, rule.name, rule.approval_timeout_minutes
        reason = f"rule {rule.name!r}"
    if verdict == "deny":
        return Decision("deny", f"{reason}: denied", name)
    if verdict == "run" and ctx.asset_class in policy.never_automatic:
        verdict, reason = "approve", f"{reason}; {ctx.asset_class} is never automatic"
    two_person = ctx.criticality is not None and ctx.criticality in policy.two_person_criticality
    if two_person:
        if verdict == "run":
            reason = f"{reason}; {ctx.criticality} asset is never automatic"
        verdict, reason = "approve", f"{reason}; two-person approval for a {ctx.criticality} asset"
    if verdict == "run":
        return Decision("run", f"{reason}: inside authority", name)
    return Decision(
        "approve", f"{reason}: approval required", name, 2 if two_person else 1,
        timeout if timeout is not None else policy.approval_timeout_minutes,
    )  # fmt: skip


def is_working_time(tenant: TenantInfo, at: datetime) -> bool:
    """True when ``at`` falls inside the tenant's working hours and days, in its own time zone."""
    local = at.astimezone(ZoneInfo(tenant.timezone)) if at.tzinfo else at.replace(tzinfo=UTC)
    start, end = tenant.working_hours
    return local.weekday() in tenant.working_days and start <= local.hour < end


def is_privileged_account(policy: AuthorityPolicy, account: str) -> bool:
    """True when ``account`` (``DOMAIN\\user`` or ``user@domain`` forms too) matches a privileged pattern."""
    name = account.rsplit("\\", 1)[-1].split("@", 1)[0].lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in policy.privileged_accounts)


def default_policy() -> AuthorityPolicy:
    """The policy a new tenant starts with.

    Workstations are isolated (and processes killed, files quarantined) unattended for
    medium or worse cases with confidence 0.6+; external indicators of high cases are blocked
    unattended; ordinary accounts are disabled unattended off hours when nobody could
    approve (approval during working hours); servers need approval within 15 minutes, then
    escalate; domain controllers and network devices are never automatic; critical assets and privileged
    accounts need two approvers; public resolvers are never blocked.
    """
    return AuthorityPolicy(
        rules=(
            AuthorityRule("servers need approval", "approve", classes=("server",), approval_timeout_minutes=15),
            AuthorityRule(
                "contain workstations",
                "run",
                actions=("isolate_host", "kill_process", "quarantine_file"),
                classes=("workstation",),
                min_severity="medium",
                min_confidence=0.6,
            ),
            AuthorityRule(
                "block external indicators",
                "run",
                actions=("block_ip", "block_domain", "block_url", "block_hash"),
                classes=("indicator",),
                min_severity="high",
                min_confidence=0.7,
            ),
            AuthorityRule(
                "disable accounts off hours",
                "run",
                actions=("disable_account", "revoke_sessions"),
                classes=("account",),
                min_severity="high",
                min_confidence=0.8,
                hours="off_hours",
            ),
        ),
        allow_list=AllowList(networks=PUBLIC_RESOLVERS),
    )


# ---------------------------------------------------------------- parsing
_RULE_KEYS = {f.name for f in fields(AuthorityRule)}
_ALLOW_KEYS = {f.name for f in fields(AllowList)}
_LIST_KEYS = ("escalation_chain", "never_automatic", "two_person_criticality", "privileged_accounts",
              "protected_paths", "protected_images", "critical_processes", "network_devices")  # fmt: skip


def parse_policy(doc: Mapping[str, Any]) -> AuthorityPolicy:
    """Validate a policy document (from YAML/JSON) into an :class:`AuthorityPolicy`."""
    if not isinstance(doc, Mapping):
        raise PolicyError(["a policy must be a mapping"])
    problems: list[str] = []
    base = AuthorityPolicy()
    known = {f.name for f in fields(AuthorityPolicy)}
    problems += [f"unknown policy key {k!r}" for k in doc if k not in known]
    values: dict[str, Any] = {}
    rules: list[AuthorityRule] = []
    for i, raw in enumerate(doc.get("rules") or []):
        rule = _parse_rule(raw, i, problems)
        if rule is not None:
            rules.append(rule)
    values["rules"] = tuple(rules)
    for key in ("default_mode",):
        if key in doc:
            values[key] = str(doc[key])
            if values[key] not in VERDICTS:
                problems.append(f"{key} must be one of {', '.join(VERDICTS)}")
    for key in ("approval_timeout_minutes", "escalation_timeout_minutes", "block_expiry_hours", "max_unattended_hosts"):
        if key in doc:
            values[key] = _positive_int(doc[key], key, problems)
    for key in _LIST_KEYS:
        if key in doc:
            values[key] = _str_tuple(doc[key], key, problems)
    for c in values.get("never_automatic", ()):
        if c not in POLICY_CLASSES:
            problems.append(f"never_automatic: unknown class {c!r}")
    for c in values.get("two_person_criticality", ()):
        if c not in CRITICALITY_LEVELS:
            problems.append(f"two_person_criticality: unknown criticality {c!r}")
    if "allow_list" in doc:
        raw_allow = doc["allow_list"] or {}
        if not isinstance(raw_allow, Mapping):
            problems.append("allow_list must be a mapping")
        else:
            problems += [f"allow_list: unknown key {k!r}" for k in raw_allow if k not in _ALLOW_KEYS]
            allow = {k: _str_tuple(raw_allow.get(k) or [], f"allow_list.{k}", problems) for k in _ALLOW_KEYS}
            nets: list[str] = []
            for n in allow["networks"]:
                try:
                    nets.append(str(ipaddress.ip_network(n, strict=False)))
                except ValueError:
                    problems.append(f"allow_list.networks: bad network {n!r}")
            allow["networks"] = tuple(nets)
            values["allow_list"] = AllowList(**allow)
    if problems:
        raise PolicyError(problems)
    return replace(base, **values)


def _parse_rule(raw: Any, i: int, problems: list[str]) -> AuthorityRule | None:
    where = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a mapping")
        return None
    problems += [f"{where}: unknown key {k!r}" for k in raw if k not in _RULE_KEYS]
    mode = str(raw.get("mode", ""))
    if mode not in VERDICTS:
        problems.append(f"{where}: mode must be one of {', '.join(VERDICTS)}")
    actions = _str_tuple(raw.get("actions") or [], f"{where}.actions", problems)
    problems += [f"{where}: unknown action {a!r}" for a in actions if a not in ACTION_CATALOGUE]
    classes = _str_tuple(raw.get("classes") or [], f"{where}.classes", problems)
    problems += [f"{where}: unknown class {c!r}" for c in classes if c not in POLICY_CLASSES]
    sev = raw.get("min_severity")
    if sev is not None and sev not in SEVERITIES:
        problems.append(f"{where}: min_severity must be one of {', '.join(SEVERITIES)}")
    conf = raw.get("min_confidence")
    if conf is not None and (not isinstance(conf, int | float) or not 0 <= conf <= 1):
        problems.append(f"{where}: min_confidence must be a number from 0 to 1")
    hours = str(raw.get("hours", "any"))
    if hours not in HOURS:
        problems.append(f"{where}: hours must be one of {', '.join(HOURS)}")
    timeout = raw.get("approval_timeout_minutes")
    return AuthorityRule(
        name=str(raw.get("name") or f"rule {i + 1}"), mode=mode, actions=actions, classes=classes,
        min_severity=sev, min_confidence=float(conf) if isinstance(conf, int | float) else None, hours=hours,
        approval_timeout_minutes=None if timeout is None else _positive_int(timeout, f"{where}.timeout", problems),
    )  # fmt: skip


def _rule_dict(rule: AuthorityRule) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rule.name, "mode": rule.mode}
    for key in ("actions", "classes"):
        if getattr(rule, key):
            out[key] = list(getattr(rule, key))
    for key in ("min_severity", "min_confidence", "approval_timeout_minutes"):
        if getattr(rule, key) is not None:
            out[key] = getattr(rule, key)
    if rule.hours != "any":
        out["hours"] = rule.hours
    return out


def _str_tuple(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where} must be a list of strings")
        return ()
    return tuple(value)


def _positive_int(value: Any, where: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{where} must be a positive whole number")
        return 1
    return value


@functools.lru_cache(maxsize=1024)
def _parsed_networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _ip_in(value: str, networks: tuple[str, ...]) -> bool:
    if not networks:
        return False
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return any(addr in n for n in _parsed_networks(networks))


def _host_in(host: str, hosts: Sequence[str]) -> bool:
    short = host.lower().split(".", 1)[0]
    return any(h.lower() in (host.lower(), short) for h in hosts)


def _domain_in(domain: str, domains: Sequence[str]) -> bool:
    d = domain.lower().rstrip(".")
    return any(d == x.lower().lstrip("*.") or d.endswith("." + x.lower().lstrip("*.")) for x in domains)


def _user_in(user: str, users: Sequence[str]) -> bool:
    name = user.rsplit("\\", 1)[-1].split("@", 1)[0].lower()
    return any(u.lower() in (user.lower(), name) for u in users)
