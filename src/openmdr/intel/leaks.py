"""Leaked-credential monitoring: find our tenants' identities in leak feeds and say what to do.

A leak feed is JSON lines or CSV with an ``email`` or ``username`` per record, plus
``source``, ``date`` and optionally ``password_hash`` (:func:`parse_leak_feed`; bad records
are kept with their reason and line).  :class:`LeakMonitor` matches the identities of a
feed against every tenant at once: an e-mail address matches the tenant whose domains
(or a parent of its domain) it belongs to; a bare user name matches a tenant where that
user has been seen (the lake's ``user`` column, domain prefixes stripped).  Each new leaked
identity yields one alert (source ``ioc``, rule ``intel.leaked_credential``) recommending a
forced password reset and revoking sessions, tagged ``playbook:leaked_credential`` so the
response engine can run its playbook.  The password hash itself is never stored or alerted.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.intel.index import StringIndex, as_string_array
from openmdr.models.alert import Alert
from openmdr.models.record import Rejection
from openmdr.models.tenant import TenantInfo
from openmdr.store.errors import QueryError
from openmdr.store.intel import IntelStore
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore

#: Rule id of leaked-credential alerts.
LEAK_RULE_ID = "intel.leaked_credential"
#: The response playbook a leak alert asks for (also as the tag ``playbook:<name>``).
LEAK_PLAYBOOK = "leaked_credential"
#: What to do about a leaked credential, in order.
RECOMMENDED_ACTIONS: tuple[str, ...] = ("force_password_reset", "revoke_sessions")


@dataclass(frozen=True, slots=True)
class LeakRecord:
    """One identity of a leak feed."""

    identity: str  # lower-cased e-mail address or user name
    source: str
    leaked_at: datetime | None
    password_hash_present: bool
    origin: str

    @property
    def is_email(self) -> bool:
        """True for an e-mail address (else a bare user name)."""
        return "@" in self.identity


@dataclass(slots=True)
class LeakReport:
    """What importing a leak feed found."""

    records: int = 0
    matched: int = 0
    new: int = 0
    alerts: list[Alert] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    by_tenant: dict[str, int] = field(default_factory=dict)


def _parse_date(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _record(row: dict[str, Any], default_source: str, origin: str) -> LeakRecord:
    identity = str(row.get("email") or row.get("username") or row.get("user") or "").strip().lower()
    if not identity or len(identity) > 320 or any(c.isspace() for c in identity):
        raise ValueError("record has no usable email or username")
    if identity.count("@") > 1 or identity.startswith("@") or identity.endswith("@"):
        raise ValueError(f"malformed e-mail address {identity!r}")
    return LeakRecord(
        identity=identity,
        source=str(row.get("source") or default_source)[:200],
        leaked_at=_parse_date(row.get("date") or row.get("leaked_at")),
        password_hash_present=bool(row.get("password_hash")),
        origin=origin,
    )


def parse_leak_feed(
    data: str | bytes, origin: str = "leak-feed", source: str = "leak-feed"
) -> tuple[list[LeakRecord], list[Rejection]]:
    """Records of a JSON-lines or CSV leak feed, and the lines refused (with reason and origin)."""
    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
    records: list[LeakRecord] = []
    rejected: list[Rejection] = []
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        lines = text.splitlines()
        if stripped.startswith("["):
            try:
                items = orjson.loads(text)
                lines = [orjson.dumps(i).decode() for i in items]
            except orjson.JSONDecodeError as exc:
                return [], [Rejection(text[:200].encode(), f"not JSON: {exc}", origin, "leak-json", stage="intel")]
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{origin}:{n}"
            try:
                row = orjson.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("line is not a JSON object")
                records.append(_record(row, source, where))
            except (orjson.JSONDecodeError, ValueError) as exc:
                rejected.append(Rejection(line.encode(), str(exc), where, "leak-json", stage="intel"))
        return records, rejected
    reader = csv.DictReader(io.StringIO(text))
    for n, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{origin}:{n}"
        try:
            records.append(_record(row, source, where))
        except ValueError as exc:
            rejected.append(Rejection(orjson.dumps(raw), str(exc), where, "leak-csv", stage="intel"))
    return records, rejected


def known_users(lake: EventLake, tenant: str) -> list[str]:
    """Distinct user names seen in ``tenant``'s events, lower-cased, with ``DOMAIN\\`` prefixes stripped."""
    if not lake.files(tenant):
        return []
    try:
        table = lake.query(
            tenant,
            "SELECT DISTINCT lower(regexp_replace(\"user\", '^.*\\\\', '')) AS u "
            'FROM events WHERE "user" IS NOT NULL',
        )
    except QueryError:
        return []
    return [u for u in table.column("u").to_pylist() if u]


class LeakMonitor:
    """Matches leak feeds against every tenant's domains and users, stores new leaks, raises alerts."""

    def __init__(
        self,
        state: StateStore,
        lake: EventLake,
        clock: Callable[[], datetime] | None = None,
        store: IntelStore | None = None,
    ) -> None:
        self.state = state
        self.lake = lake
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = store or IntelStore(state)

    def import_feed(
        self, records: Sequence[LeakRecord], actor: str = "leak-monitor", tenants: Sequence[TenantInfo] | None = None
    ) -> LeakReport:
        """Match ``records`` against ``tenants`` (default: every tenant), store what is new, alert on it."""
        report = LeakReport(records=len(records))
        infos = list(tenants) if tenants is not None else self.state.list_tenants()
        if not records or not infos:
            return report
        identities = pa.array([r.identity for r in records], pa.string())
        hits: list[tuple[int, int, bool]] = []  # (record, tenant, known user)
        # Domains: the part after '@', probed with its parent domains against every tenant's domains.
        domain_values, domain_members = [], []
        user_values, user_members = [], []
        for t, info in enumerate(infos):
            for d in info.domains:
                domain_values.append(d.lower().strip("."))
                domain_members.append(t)
            for u in known_users(self.lake, info.name):
                user_values.append(u)
                user_members.append(t)
                if "@" in u:
                    user_values.append(u.split("@", 1)[0])
                    user_members.append(t)
        at_domain = pc.struct_field(pc.extract_regex(identities, r"@(?P<d>[^@]+)$"), "d")
        local = pc.if_else(
            pc.match_substring(identities, "@"),
            pc.struct_field(pc.extract_regex(identities, r"^(?P<l>[^@]+)@"), "l"),
            identities,
        )
        user_pairs: set[tuple[int, int]] = set()
        if user_values:
            users = StringIndex.build(user_values, np.array(user_members, dtype=np.int64))
            for column in (identities, as_string_array(local)):
                rows, members = users.lookup(column)
                user_pairs.update(zip(rows.tolist(), members.tolist(), strict=True))
        if domain_values:
            domains = StringIndex.build(domain_values, np.array(domain_members, dtype=np.int64))
            rows, members = domains.lookup_suffixes(as_string_array(at_domain))
            for r, t in sorted(set(zip(rows.tolist(), members.tolist(), strict=True))):
                hits.append((r, t, (r, t) in user_pairs))
        for r, t in sorted(user_pairs):
            if not records[r].is_email:
                hits.append((r, t, True))
        report.matched = len(hits)
        by_tenant: dict[int, list[tuple[LeakRecord, bool]]] = {}
        for r, t, known in hits:
            by_tenant.setdefault(t, []).append((records[r], known))
        now = self.clock()
        for t, items in sorted(by_tenant.items()):
            info = infos[t]
            alerts = {}
            rows = []
            for rec, known in items:
                alert = leak_alert(info.name, rec, known, now)
                alerts[(rec.identity, rec.source)] = alert
                rows.append(
                    {
                        "identity": rec.identity,
                        "source": rec.source,
                        "leaked_at": rec.leaked_at,
                        "password_hash_present": rec.password_hash_present,
                        "known_user": known,
                        "alert_id": alert.alert_id,
                    }
                )
            fresh = self.store.add_leaks(info.name, rows, actor)
            for leak in fresh:
                report.alerts.append(alerts[(leak.identity, leak.source)])
            report.new += len(fresh)
            report.by_tenant[info.name] = len(fresh)
        return report

    def import_file(self, path: Path | str, source: str | None = None, actor: str = "leak-monitor") -> LeakReport:
        """Parse and import a leak feed file."""
        path = Path(path)
        records, rejected = parse_leak_feed(path.read_bytes(), str(path), source or path.stem)
        report = self.import_feed(records, actor)
        report.rejected = rejected
        return report


def leak_alert(tenant: str, record: LeakRecord, known_user: bool, now: datetime) -> Alert:
    """The alert for one leaked identity of ``tenant``: what leaked, where, and what to do."""
    severity = (
        "high"
        if record.password_hash_present and known_user
        else "medium"
        if known_user or record.password_hash_present
        else "low"
    )
    when = record.leaked_at or now
    return Alert(
        tenant=tenant,
        rule_id=LEAK_RULE_ID,
        title=f"Leaked credential: {record.identity}",
        severity=severity,
        source="ioc",
        first_seen=when,
        last_seen=when,
        description="A tenant identity appears in a credential leak feed.",
        attack=["T1078"],
        tactics=["initial-access"],
        entities={"user": [record.identity]},
        event_count=1,
        evidence=[],
        confidence=0.9 if record.password_hash_present else 0.6,
        explanation=(
            f"{record.identity} is listed in leak source {record.source!r}"
            + (" with a password hash" if record.password_hash_present else "")
            + ("; the user is active in this tenant" if known_user else "")
        ),
        tags=["ioc", "leaked_credential", f"playbook:{LEAK_PLAYBOOK}"],
        details={
            "leak": {
                "identity": record.identity,
                "source": record.source,
                "leaked_at": record.leaked_at.isoformat() if record.leaked_at else None,
                "password_hash_present": record.password_hash_present,
                "known_user": known_user,
            },
            "recommended_actions": list(RECOMMENDED_ACTIONS),
            "playbook": LEAK_PLAYBOOK,
        },
        alert_id=hashlib.blake2b(
            f"{tenant}\x1f{LEAK_RULE_ID}\x1f{record.identity}\x1f{record.source}".encode(), digest_size=16
        ).hexdigest(),
    )
