"""What a case's alerts say about its accounts and files: who is compromised, who only was a target.

Case observables list every user, host, process and hash any alert of the case mentioned, without
saying what part each played.  Acting on all of them is wrong: a password-spraying case lists every
sprayed victim, a ransomware case lists the hashes of Windows' own tools.  :func:`case_evidence`
reads the case's alerts (pure, no I/O) and returns, per account, the roles the alerts give it and
why, and, per hash, the process images the alerts pair it with.  The planner selects accounts by
these roles (``targets: {type: user, evidence: [compromised, actor]}``) and the protected-binaries
guard refuses hashes of operating-system images.

Roles of an account (:data:`EVIDENCE_ROLES`):

- ``compromised``: logged on successfully after a run of failures (``logon_after_failures``);
- ``actor``: ran the malicious activity (the user of an endpoint alert with process activity or a
  host-log Sigma hit, or the ``actor`` who made an account change);
- ``logon``: a successful logon an analytic found anomalous (new country, off hours, first seen);
- ``subject``: the account an account-change alert changed (created, added to a group);
- ``target``: only the target of failed logons (spraying, brute force): never evidence of compromise;
- ``mentioned``: named by an alert that says nothing more.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openmdr.models.alert import Alert
from openmdr.models.case import Case

#: Account roles, strongest evidence first.
EVIDENCE_ROLES: tuple[str, ...] = ("compromised", "actor", "logon", "subject", "target", "mentioned")
#: The roles that count as evidence that an account is in the attacker's hands.
COMPROMISE_ROLES: tuple[str, ...] = ("compromised", "actor")

_PROCESS_KEYS = ("process", "command_line", "parent_process")
_FAILURE_WORDS = ("password_spray", "brute", "spray", "failed_logon", "logon_failure")
_ACCOUNT_CHANGE = ("T1098", "T1136", "T1531")


@dataclass(frozen=True, slots=True)
class AccountEvidence:
    """One role an alert gives an account, and why in words."""

    role: str
    reason: str
    alert_id: str = ""


@dataclass(slots=True)
class CaseEvidence:
    """Per account (normalized name) its evidence; per hash (lower-case) the images alerts pair it with.

    ``object_hosts`` maps a process, command line, file or hash (lower-case) to the short names of
    the hosts the alerts saw it on, so a process is killed where it ran, not on every host of the case.
    """

    accounts: dict[str, list[AccountEvidence]] = field(default_factory=dict)
    hash_images: dict[str, set[str]] = field(default_factory=dict)
    object_hosts: dict[str, set[str]] = field(default_factory=dict)
    alerts: int = 0
    #: addresses some alert gives a part (beacon or logon source, exfiltration receiver, indicator match)
    ip_roles: set[str] = field(default_factory=set)
    #: addresses an outbound-volume alert lists only as minor destinations, with why
    minor_ips: dict[str, str] = field(default_factory=dict)

    def not_blockable(self, ip: str) -> str | None:
        """Why the alerts say ``ip`` is not part of the attack (a minor destination of a volume alert), or None."""
        key = ip.strip().lower()
        return None if key in self.ip_roles else self.minor_ips.get(key)

    def hosts_of(self, value: str) -> set[str]:
        """Short host names (lower case) the alerts saw ``value`` (a process, file or hash) on; empty if none."""
        return self.object_hosts.get(value.strip().lower(), set())

    def roles(self, account: str) -> set[str]:
        """The roles the case's alerts give ``account`` (any spelling: ``DOMAIN\\user``, ``user@domain``)."""
        return {e.role for e in self.accounts.get(account_key(account), [])}

    def explain(self, account: str, roles: Iterable[str] | None = None) -> str:
        """The reasons for ``account``'s roles (only ``roles`` when given), joined for a plan line."""
        wanted = set(roles) if roles is not None else None
        found = [e.reason for e in self.accounts.get(account_key(account), []) if wanted is None or e.role in wanted]
        return "; ".join(dict.fromkeys(found))

    def add(self, account: str, role: str, reason: str, alert_id: str = "") -> None:
        """Record that ``account`` plays ``role`` (duplicates of the same reason are kept once)."""
        if not account:
            return
        items = self.accounts.setdefault(account_key(account), [])
        if not any(e.role == role and e.reason == reason for e in items):
            items.append(AccountEvidence(role, reason, alert_id))


def account_key(account: str) -> str:
    """An account's name without ``DOMAIN\\`` or ``@domain``, lower-case: how alerts and directories match."""
    return account.strip().rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def short_host(host: str) -> str:
    """A host's short name, lower case (alerts and observables spell FQDNs and cases differently)."""
    return host.strip().lower().split(".", 1)[0]


def case_evidence(case: Case, alerts: Sequence[Alert] = ()) -> CaseEvidence:
    """Read the roles of a case's accounts and the images of its hashes from its alerts (pure).

    An observable whose ``role`` is already one of :data:`EVIDENCE_ROLES` (set upstream) counts too.
    """
    out = CaseEvidence(alerts=len(alerts))
    for alert in alerts:
        _read_alert(alert, out)
    for o in case.observables:
        if o.type == "user" and o.role in EVIDENCE_ROLES:
            out.add(o.value, o.role, f"the case marks it {o.role}")
    return out


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value if v is not None and str(v)]
    return [str(value)] if str(value) else []


def _listed(value: Any) -> list[str]:
    """A details value that holds a list, possibly as its Python/JSON text (``"['a', 'b']"``)."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return []
    return _values(value)


def _read_alert(alert: Alert, out: CaseEvidence) -> None:
    ents = alert.entities or {}
    users = _values(ents.get("user"))
    attack = [t.upper() for t in alert.attack]
    name = f"{alert.source} {alert.rule_id}".lower()
    quoted = f"alert '{alert.title}'"
    for h in _values(ents.get("hash")):
        images = _values(ents.get("process"))
        if images:
            out.hash_images.setdefault(h.lower(), set()).update(images)
    _read_addresses(alert, out)
    hosts_seen = {short_host(h) for h in _values(ents.get("host"))}
    if hosts_seen:
        for key in (*_PROCESS_KEYS, "file", "hash"):
            for v in _values(ents.get(key)):
                out.object_hosts.setdefault(v.strip().lower(), set()).update(hosts_seen)
    if "logon_after_failures" in name or (_has(attack, "T1110") and _has(attack, "T1078")):
        source = ", ".join(_values(ents.get("src_ip"))) or "one source"
        failures = alert.details.get("failures")
        count = f"{failures} failed logons" if failures else "failed logons"
        for u in users:
            out.add(u, "compromised", f"logged on successfully after {count} from {source} ({quoted})", alert.alert_id)
        for u in _listed(alert.details.get("other_party")):
            out.add(u, "target", f"a target of the failed logons ({quoted})", alert.alert_id)
        return
    if any(w in name for w in _FAILURE_WORDS) or _has(attack, "T1110"):
        for u in {*users, *_listed(alert.details.get("users"))}:
            out.add(u, "target", f"only a target of failed logons ({quoted})", alert.alert_id)
        return
    hosts = ", ".join(_values(ents.get("host"))) or "a host"
    if any(ents.get(k) for k in _PROCESS_KEYS):
        what = ", ".join(_values(ents.get("process")) or _values(ents.get("command_line"))) or "a process"
        for u in users:
            out.add(u, "actor", f"ran {what} on {hosts} ({quoted})", alert.alert_id)
        return
    if _has(attack, *_ACCOUNT_CHANGE):
        for u in users:
            out.add(u, "subject", f"the account changed ({quoted})", alert.alert_id)
        for u in _values(alert.details.get("actor")):
            out.add(u, "actor", f"made the account change ({quoted})", alert.alert_id)
        return
    if alert.source == "sigma" and ents.get("host"):
        for u in users:
            out.add(u, "actor", f"the account of the activity on {hosts} ({quoted})", alert.alert_id)
        return
    role = "logon" if _has(attack, "T1078") or "logon" in name else "mentioned"
    reason = "a successful logon flagged as anomalous" if role == "logon" else "named by the alert"
    for u in users:
        out.add(u, role, f"{reason} ({quoted})", alert.alert_id)


#: Share of an outbound-volume alert's bytes below which a destination is not the exfiltration receiver.
MINOR_SHARE = 0.05


def _read_addresses(alert: Alert, out: CaseEvidence) -> None:
    """Addresses of one alert: all have a part, except the minor destinations of an outbound-volume alert."""
    ents = alert.entities or {}
    volumes: dict[str, float] = {}
    name = f"{alert.source} {alert.rule_id}".lower()
    top = alert.details.get("top_destinations") if ("exfil" in name or "volume" in name) else None
    if isinstance(top, str):
        try:
            top = ast.literal_eval(top)
        except (ValueError, SyntaxError):
            top = None
    if isinstance(top, list):
        for row in top:
            if isinstance(row, dict) and row.get("dst_ip") is not None:
                try:
                    volumes[str(row["dst_ip"]).lower()] = float(row.get("bytes") or 0)
                except (TypeError, ValueError):
                    continue
    total = sum(volumes.values())
    for key in ("src_ip", "dst_ip"):
        for ip in _values(ents.get(key)):
            k = ip.strip().lower()
            share = volumes[k] / total if key == "dst_ip" and total > 0 and k in volumes else None
            if share is not None and share < MINOR_SHARE:
                out.minor_ips.setdefault(k, f"it received only {share:.2%} of the outbound volume in alert "
                                           f"'{alert.title}': a normal destination, not the receiver")  # fmt: skip
            else:
                out.ip_roles.add(k)


def _has(attack: Sequence[str], *wanted: str) -> bool:
    return any(t == w or t.startswith(w + ".") for t in attack for w in wanted)
