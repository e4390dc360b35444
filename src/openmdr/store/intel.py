"""Threat-intelligence state: indicators, feeds, allow-lists, sharing proposals, retro-hunts, leaks.

Tables live on :data:`openmdr.store.schema.metadata` and are created by the migration
``0007_intel``.  :class:`IntelStore` is the only code that reads or writes them; every change
runs in one transaction with its audit record.

Scope: an indicator or allow-list entry has ``tenant`` NULL (provider-wide, ``scope`` ``'*'``)
or one tenant's name (``scope`` = that name).  Reads for a tenant return provider-wide rows
plus that tenant's own rows, never another tenant's; proposals and leaked credentials are
tenant-owned and every call names the tenant.  Indicator ids are derived from scope, type
and value, so guessing an id never reaches another tenant's row: the scope is checked too.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, Column, Index, Integer, SmallInteger, String, Table, Text
from sqlalchemy.engine import Connection

from openmdr.models.indicator import (
    INDICATOR_TYPES,
    TLP_LEVELS,
    Indicator,
    IndicatorError,
    normalize_tlp,
    normalize_value,
    tlp_rank,
    url_host,
)
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.schema import UTCDateTime, metadata
from openmdr.store.state import StateStore

#: Scope key of provider-wide rows (tenant names cannot contain ``*``).
GLOBAL_SCOPE = "*"
#: Statuses of a sharing proposal.
PROPOSAL_STATUSES: tuple[str, ...] = ("proposed", "shared", "rejected")
_CHUNK = 500

intel_indicators = Table(
    "intel_indicators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("tenant", String(64), nullable=True),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("source", String(200), nullable=False),
    Column("confidence", SmallInteger, nullable=False),
    Column("tlp", String(16), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("first_seen", UTCDateTime, nullable=True),
    Column("last_seen", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("description", Text, nullable=True),
    Column("origin", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False),
    Index(None, "scope", "type"),
    Index(None, "updated_at"),
    Index(None, "revision"),
)

intel_allowlist = Table(
    "intel_allowlist",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("tenant", String(64), nullable=True),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "scope"),
)

intel_sources = Table(
    "intel_sources",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=True),
    Column("collection", String(200), nullable=True),
    Column("default_tlp", String(16), nullable=False),
    Column("default_confidence", SmallInteger, nullable=False),
    Column("last_pulled_at", UTCDateTime, nullable=True),
    Column("indicators", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

intel_proposals = Table(
    "intel_proposals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("case_id", String(100), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("tlp", String(16), nullable=False),
    Column("confidence", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("indicator_id", String(36), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Index(None, "tenant", "status"),
)

intel_retrohunts = Table(
    "intel_retrohunts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("trigger", String(200), nullable=False),
    Column("indicator_ids", JSON, nullable=False),
    Column("days", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("tenants", Integer, nullable=False),
    Column("files", Integer, nullable=False),
    Column("rows_matched", Integer, nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("by_tenant", JSON, nullable=False),
)

intel_leaked_credentials = Table(
    "intel_leaked_credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("identity", String(320), nullable=False),
    Column("source", String(200), nullable=False),
    Column("leaked_at", UTCDateTime, nullable=True),
    Column("password_hash_present", Boolean, nullable=False),
    Column("known_user", Boolean, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("alert_id", String(32), nullable=True),
    Index(None, "tenant", "identity"),
)

# One row: bumped by every change of indicators or allow-lists, so matchers know when to rebuild
# with a primary-key read (counting a million rows on every event batch would not do).
intel_revision = Table(
    "intel_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
)

_NS = uuid.UUID("0b5c4f7e-3c55-4b0e-8a57-5f7d2a9c6e21")


#: Rows of :data:`intel_revision`: one counter for indicators, one for allow-lists.
_INDICATORS_REV, _ALLOW_REV = 1, 2


def _bump(conn: Connection, row: int = _INDICATORS_REV) -> int:
    """Increment one revision counter inside the caller's transaction (locks the row) and return it."""
    conn.execute(
        intel_revision.update().where(intel_revision.c.id == row).values(revision=intel_revision.c.revision + 1)
    )
    return int(conn.execute(sa.select(intel_revision.c.revision).where(intel_revision.c.id == row)).scalar_one())


def _now() -> datetime:
    return datetime.now(UTC)


def _scope(tenant: str | None) -> str:
    return tenant if tenant else GLOBAL_SCOPE


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """An allow-listed value: never alerted or blocked on, provider-wide or for one tenant."""

    id: str
    tenant: str | None
    type: str
    value: str
    reason: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IntelSource:
    """A feed or origin of indicators and where we last pulled it."""

    name: str
    kind: str
    url: str | None
    collection: str | None
    default_tlp: str
    default_confidence: int
    last_pulled_at: datetime | None
    indicators: int


@dataclass(frozen=True, slots=True)
class Proposal:
    """An observable of a resolved case proposed for sharing, and what became of it."""

    id: str
    tenant: str
    case_id: str
    type: str
    value: str
    tlp: str
    confidence: int
    status: str
    reason: str | None
    indicator_id: str | None
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class RetroHuntRun:
    """The record of one retro-hunt: what was hunted, how far back, what it found per tenant."""

    id: str
    trigger: str
    indicator_ids: list[str]
    days: int
    started_at: datetime
    finished_at: datetime
    tenants: int
    files: int
    rows_matched: int
    alerts: int
    by_tenant: dict[str, int]


@dataclass(frozen=True, slots=True)
class LeakedCredential:
    """One tenant identity found in a leak feed."""

    id: str
    tenant: str
    identity: str
    source: str
    leaked_at: datetime | None
    password_hash_present: bool
    known_user: bool
    imported_at: datetime
    alert_id: str | None


@dataclass(slots=True)
class UpsertReport:
    """What an indicator import changed."""

    added: int = 0
    updated: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (value, reason)
    ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MatchingColumns:
    """Every active indicator as parallel columns (what the matcher is built from)."""

    ids: list[str]
    tenants: list[str | None]
    types: list[str]
    values: list[str]
    confidences: list[int]
    tlps: list[str]
    last_seen: list[datetime | None]
    expires_at: list[datetime | None]
    revision: int = 0

    def __len__(self) -> int:
        return len(self.ids)


def _row_indicator(row: Any) -> Indicator:
    ind = Indicator.__new__(Indicator)
    ind.type = row.type
    ind.value = row.value
    ind.tenant = row.tenant
    ind.source = row.source
    ind.confidence = int(row.confidence)
    ind.tlp = row.tlp
    ind.tags = list(row.tags or [])
    ind.first_seen = row.first_seen
    ind.last_seen = row.last_seen
    ind.expires_at = row.expires_at
    ind.description = row.description
    ind.origin = row.origin
    ind.created_at = row.created_at
    ind.updated_at = row.updated_at
    ind.id = row.id
    return ind


def _indicator_values(ind: Indicator, now: datetime) -> dict[str, Any]:
    return {
        "id": ind.id,
        "scope": _scope(ind.tenant),
        "tenant": ind.tenant,
        "type": ind.type,
        "value": ind.value,
        "source": ind.source[:200],
        "confidence": ind.confidence,
        "tlp": ind.tlp,
        "tags": sorted(set(ind.tags)),
        "first_seen": ind.first_seen or now,
        "last_seen": ind.last_seen or ind.first_seen or now,
        "expires_at": ind.expires_at,
        "description": ind.description,
        "origin": ind.origin,
        "created_at": ind.created_at or now,
        "updated_at": now,
    }


def _merge(old: Any, new: Indicator, now: datetime) -> dict[str, Any]:
    """An existing indicator seen again: widest lifetime, highest confidence, union of tags."""
    first = (
        min(t for t in (old.first_seen, new.first_seen) if t is not None) if (old.first_seen or new.first_seen) else now
    )
    lasts = [t for t in (old.last_seen, new.last_seen) if t is not None]
    expires = None if old.expires_at is None or new.expires_at is None else max(old.expires_at, new.expires_at)
    return {
        "confidence": max(int(old.confidence), new.confidence),
        "tlp": old.tlp if tlp_rank(old.tlp) >= tlp_rank(new.tlp) else new.tlp,
        "tags": sorted(set(old.tags or []) | set(new.tags)),
        "first_seen": first,
        "last_seen": max(lasts) if lasts else now,
        "expires_at": expires,
        "description": old.description or new.description,
        "origin": old.origin or new.origin,
        "updated_at": now,
    }


def value_allowed(kind: str, value: str, entries: Iterable[tuple[str, str]]) -> bool:
    """True when ``(kind, value)`` is covered by one of the allow entries ``(type, value)``.

    Addresses fall under an allowed address or network, domains (and URL hosts) under an
    allowed domain or any parent of it; everything else matches exactly.
    """
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    net: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    host: str | None = None
    if kind == "ip":
        addr = ipaddress.ip_address(value)
    elif kind == "cidr":
        net = ipaddress.ip_network(value, strict=False)
    elif kind == "domain":
        host = value
    elif kind == "url":
        host = url_host(value)
    for a_kind, a_value in entries:
        if a_kind == kind and a_value == value:
            return True
        if a_kind in ("ip", "cidr") and (addr is not None or net is not None):
            allowed = ipaddress.ip_network(a_value, strict=False)
            if addr is not None and addr.version == allowed.version and addr in allowed:
                return True
            if net is not None and net.version == allowed.version and net.subnet_of(allowed):  # type: ignore[arg-type]
                return True
        if a_kind == "domain" and host is not None and (host == a_value or host.endswith("." + a_value)):
            return True
    return False


class IntelStore:
    """Indicators, allow-lists, feeds, proposals, retro-hunt runs and leaked credentials."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    # ---------------------------------------------------------------- indicators
    def upsert_indicators(
        self, indicators: Iterable[Indicator], actor: str, source: str | None = None, now: datetime | None = None
    ) -> UpsertReport:
        """Add new indicators and merge ones already known (same scope, type and value).

        Values allow-listed for the indicator's scope are refused and reported, never stored.
        One audit record covers the whole import.
        """
        now = now or _now()
        report = UpsertReport()
        batch: dict[str, Indicator] = {}
        for ind in indicators:
            batch[ind.id] = ind
        if not batch:
            return report
        with self.state.transaction() as conn:
            revision = _bump(conn)
            allow = self._allow_pairs(conn, {i.tenant for i in batch.values()})
            items = list(batch.values())
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                kept = []
                for ind in chunk:
                    pairs = allow.get(GLOBAL_SCOPE, []) + (allow.get(ind.tenant, []) if ind.tenant else [])
                    if pairs and value_allowed(ind.type, ind.value, pairs):
                        report.refused.append((ind.value, "allow-listed"))
                    else:
                        kept.append(ind)
                existing = {
                    r.id: r
                    for r in conn.execute(
                        sa.select(intel_indicators).where(intel_indicators.c.id.in_([i.id for i in kept]))
                    )
                }
                inserts = [_indicator_values(i, now) | {"revision": revision} for i in kept if i.id not in existing]
                if inserts:
                    conn.execute(intel_indicators.insert(), inserts)
                for ind in kept:
                    old = existing.get(ind.id)
                    if old is not None:
                        conn.execute(
                            intel_indicators.update()
                            .where(intel_indicators.c.id == ind.id)
                            .values(**_merge(old, ind, now), revision=revision)
                        )
                report.added += len(inserts)
                report.updated += len(kept) - len(inserts)
                report.ids.extend(i.id for i in kept)
            scopes = sorted({_scope(i.tenant) for i in batch.values()})
            tenant = scopes[0] if len(scopes) == 1 and scopes[0] != GLOBAL_SCOPE else None
            self.state.append_audit(
                conn,
                actor,
                "intel.indicators.upsert",
                tenant,
                source,
                {"added": report.added, "updated": report.updated, "refused": len(report.refused), "scopes": scopes},
                time=now,
            )
            if source:
                conn.execute(
                    intel_sources.update()
                    .where(intel_sources.c.name == source)
                    .values(indicators=intel_sources.c.indicators + report.added, updated_at=now)
                )
        return report

    def get_indicator(self, indicator_id: str, tenant: str | None = None) -> Indicator:
        """One indicator visible to ``tenant`` (provider-wide, or the tenant's own); else NotFoundError."""
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(intel_indicators).where(
                    intel_indicators.c.id == indicator_id, intel_indicators.c.scope.in_(self._scopes(tenant))
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no indicator {indicator_id!r} visible to {tenant or 'the provider scope'}")
        return _row_indicator(row)

    def list_indicators(
        self,
        tenant: str | None = None,
        kind: str | None = None,
        active_at: datetime | None = None,
        max_tlp: str | None = None,
        updated_after: datetime | None = None,
        own_only: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Indicator]:
        """Indicators visible to ``tenant`` (``None``: provider-wide ones only), newest change last.

        ``active_at`` leaves out those expired by then; ``max_tlp`` those more restricted than it;
        ``own_only`` with a tenant returns only that tenant's own rows.
        """
        scopes = [_scope(tenant)] if own_only else self._scopes(tenant)
        query = sa.select(intel_indicators).where(intel_indicators.c.scope.in_(scopes))
        if kind:
            query = query.where(intel_indicators.c.type == kind)
        if active_at is not None:
            query = query.where(
                sa.or_(intel_indicators.c.expires_at.is_(None), intel_indicators.c.expires_at > active_at)
            )
        if max_tlp is not None:
            allowed = TLP_LEVELS[: tlp_rank(max_tlp) + 1]
            query = query.where(intel_indicators.c.tlp.in_(allowed))
        if updated_after is not None:
            query = query.where(intel_indicators.c.updated_at > updated_after)
        query = query.order_by(intel_indicators.c.updated_at, intel_indicators.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.state.transaction() as conn:
            return [_row_indicator(r) for r in conn.execute(query)]

    def indicators_by_id(self, ids: Sequence[str]) -> dict[str, Indicator]:
        """Indicators by id across every scope: for the matcher, which enforces scope per event itself."""
        out: dict[str, Indicator] = {}
        unique = sorted(set(ids))
        with self.state.transaction() as conn:
            for start in range(0, len(unique), _CHUNK):
                query = sa.select(intel_indicators).where(intel_indicators.c.id.in_(unique[start : start + _CHUNK]))
                out.update((r.id, _row_indicator(r)) for r in conn.execute(query))
        return out

    def matching_columns(self, now: datetime, since_revision: int | None = None) -> MatchingColumns:
        """Indicators of every scope as columns (the matcher's input), with the revision they are as of.

        Without ``since_revision``: every indicator not expired at ``now``.  With it: every
        indicator written after that revision, expired or not (a live matcher's delta).
        """
        c = intel_indicators.c
        query = sa.select(c.id, c.tenant, c.type, c.value, c.confidence, c.tlp, c.last_seen, c.expires_at)
        if since_revision is None:
            query = query.where(sa.or_(c.expires_at.is_(None), c.expires_at > now))
        else:
            query = query.where(c.revision > since_revision)
        current = sa.select(intel_revision.c.revision).where(intel_revision.c.id == _INDICATORS_REV)
        with self.state.transaction() as conn:
            revision = int(conn.execute(current).scalar_one())
            rows = conn.execute(query).all()
        if not rows:
            return MatchingColumns([], [], [], [], [], [], [], [], revision)
        cols = list(zip(*rows, strict=True))
        return MatchingColumns(*(list(col) for col in cols), revision=revision)  # type: ignore[arg-type]

    def version(self) -> tuple[int, int]:
        """Revisions of (indicators, allow-lists): each changes with every write (a primary-key read)."""
        with self.state.transaction() as conn:
            rows = dict(conn.execute(sa.select(intel_revision.c.id, intel_revision.c.revision)).all())
        return int(rows[_INDICATORS_REV]), int(rows[_ALLOW_REV])

    def retire_indicator(
        self, indicator_id: str, actor: str, tenant: str | None = None, now: datetime | None = None
    ) -> None:
        """Expire an indicator of ``tenant``'s own scope now (``None``: a provider-wide one); it stops matching.

        The row is kept (expired), so live matchers see the change and the record stays.
        """
        when = now or _now()
        with self.state.transaction() as conn:
            revision = _bump(conn)
            result = conn.execute(
                intel_indicators.update()
                .where(intel_indicators.c.id == indicator_id, intel_indicators.c.scope == _scope(tenant))
                .values(expires_at=when, updated_at=when, revision=revision)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no indicator {indicator_id!r} in scope {_scope(tenant)}")
            self.state.append_audit(conn, actor, "intel.indicator.retire", tenant, indicator_id)

    # ---------------------------------------------------------------- allow-lists
    def add_allow(self, kind: str, value: str, actor: str, reason: str, tenant: str | None = None) -> AllowEntry:
        """Allow-list a value provider-wide or for one tenant (idempotent)."""
        if kind not in INDICATOR_TYPES:
            raise ValidationError(f"unknown indicator type {kind!r}")
        try:
            value = normalize_value(kind, value)
        except IndicatorError as exc:
            raise ValidationError(str(exc)) from None
        if not reason.strip():
            raise ValidationError("an allow-list entry needs a reason")
        entry_id = str(uuid.uuid5(_NS, f"allow\x1f{_scope(tenant)}\x1f{kind}\x1f{value}"))
        now = _now()
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(intel_allowlist).where(intel_allowlist.c.id == entry_id)).first()
            if row is None:
                conn.execute(
                    intel_allowlist.insert().values(
                        id=entry_id,
                        scope=_scope(tenant),
                        tenant=tenant,
                        type=kind,
                        value=value,
                        reason=reason,
                        created_by=actor,
                        created_at=now,
                    )
                )
                _bump(conn, _ALLOW_REV)
                self.state.append_audit(
                    conn, actor, "intel.allow.add", tenant, entry_id, {"type": kind, "value": value, "reason": reason}
                )
                return AllowEntry(entry_id, tenant, kind, value, reason, actor, now)
        return _row_allow(row)

    def remove_allow(self, entry_id: str, actor: str, tenant: str | None = None) -> None:
        """Remove an allow-list entry of ``tenant``'s own scope."""
        with self.state.transaction() as conn:
            result = conn.execute(
                intel_allowlist.delete().where(
                    intel_allowlist.c.id == entry_id, intel_allowlist.c.scope == _scope(tenant)
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no allow-list entry {entry_id!r} in scope {_scope(tenant)}")
            _bump(conn, _ALLOW_REV)
            self.state.append_audit(conn, actor, "intel.allow.remove", tenant, entry_id)

    def list_allow(self, tenant: str | None = None, all_scopes: bool = False) -> list[AllowEntry]:
        """Allow-list entries that apply to ``tenant`` (provider-wide plus its own); every scope for the matcher."""
        query = sa.select(intel_allowlist).order_by(intel_allowlist.c.created_at, intel_allowlist.c.id)
        if not all_scopes:
            query = query.where(intel_allowlist.c.scope.in_(self._scopes(tenant)))
        with self.state.transaction() as conn:
            return [_row_allow(r) for r in conn.execute(query)]

    def is_allowlisted(self, kind: str, value: str, tenant: str | None = None) -> bool:
        """True when ``value`` must never be alerted or blocked on for ``tenant`` (response engines ask this)."""
        try:
            value = normalize_value(kind, value)
        except IndicatorError:
            return False
        with self.state.transaction() as conn:
            pairs = self._allow_pairs(conn, {tenant})
        return value_allowed(kind, value, pairs.get(GLOBAL_SCOPE, []) + (pairs.get(tenant, []) if tenant else []))

    def _allow_pairs(self, conn: Connection, tenants: set[str | None]) -> dict[str | None, list[tuple[str, str]]]:
        scopes = {GLOBAL_SCOPE} | {t for t in tenants if t}
        out: dict[str | None, list[tuple[str, str]]] = {}
        for r in conn.execute(
            sa.select(intel_allowlist.c.scope, intel_allowlist.c.type, intel_allowlist.c.value).where(
                intel_allowlist.c.scope.in_(sorted(scopes))
            )
        ):
            out.setdefault(r.scope, []).append((r.type, r.value))
        return out

    @staticmethod
    def _scopes(tenant: str | None) -> list[str]:
        return [GLOBAL_SCOPE, tenant] if tenant else [GLOBAL_SCOPE]

    # ---------------------------------------------------------------- sources
    def upsert_source(
        self,
        name: str,
        kind: str,
        actor: str,
        url: str | None = None,
        collection: str | None = None,
        default_tlp: str = "amber",
        default_confidence: int = 50,
    ) -> IntelSource:
        """Register (or update) a feed by name."""
        if not name or len(name) > 100:
            raise ValidationError("a source needs a name of 1-100 characters")
        tlp = normalize_tlp(default_tlp)
        now = _now()
        values = {
            "kind": kind,
            "url": url,
            "collection": collection,
            "default_tlp": tlp,
            "default_confidence": max(0, min(100, default_confidence)),
            "updated_at": now,
        }
        with self.state.transaction() as conn:
            exists = conn.execute(sa.select(intel_sources.c.name).where(intel_sources.c.name == name)).first()
            if exists:
                conn.execute(intel_sources.update().where(intel_sources.c.name == name).values(**values))
            else:
                conn.execute(intel_sources.insert().values(name=name, indicators=0, created_at=now, **values))
            self.state.append_audit(conn, actor, "intel.source.upsert", None, name, {"kind": kind, "url": url})
            row = conn.execute(sa.select(intel_sources).where(intel_sources.c.name == name)).one()
        return _row_source(row)

    def get_source(self, name: str) -> IntelSource | None:
        """A feed by name, or None."""
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(intel_sources).where(intel_sources.c.name == name)).first()
        return None if row is None else _row_source(row)

    def list_sources(self) -> list[IntelSource]:
        """Every registered feed."""
        with self.state.transaction() as conn:
            return [_row_source(r) for r in conn.execute(sa.select(intel_sources).order_by(intel_sources.c.name))]

    def mark_pulled(self, name: str, when: datetime, actor: str) -> None:
        """Remember when a feed was last pulled (TAXII ``added_after`` of the next pull)."""
        with self.state.transaction() as conn:
            conn.execute(intel_sources.update().where(intel_sources.c.name == name).values(last_pulled_at=when))
            self.state.append_audit(conn, actor, "intel.source.pulled", None, name, {"at": when.isoformat()})

    # ---------------------------------------------------------------- proposals
    def add_proposals(self, tenant: str, case_id: str, items: Sequence[dict[str, Any]], actor: str) -> list[Proposal]:
        """Record the proposed indicators of one resolved case of ``tenant`` (items: type, value, tlp, confidence)."""
        now = _now()
        rows = [
            {
                "id": str(uuid.uuid4()),
                "tenant": tenant,
                "case_id": case_id,
                "type": it["type"],
                "value": it["value"],
                "tlp": it["tlp"],
                "confidence": it["confidence"],
                "status": "proposed",
                "reason": it.get("reason"),
                "indicator_id": None,
                "created_at": now,
                "decided_at": None,
                "decided_by": None,
            }
            for it in items
        ]
        with self.state.transaction() as conn:
            if rows:
                conn.execute(intel_proposals.insert(), rows)
            self.state.append_audit(
                conn,
                actor,
                "intel.proposals.add",
                tenant,
                case_id,
                {"proposals": len(rows), "ids": [r["id"] for r in rows]},
            )
        return [Proposal(**r) for r in rows]

    def list_proposals(self, tenant: str, status: str | None = None) -> list[Proposal]:
        """``tenant``'s proposals, oldest first."""
        query = sa.select(intel_proposals).where(intel_proposals.c.tenant == tenant)
        if status:
            query = query.where(intel_proposals.c.status == status)
        with self.state.transaction() as conn:
            return [Proposal(**r._mapping) for r in conn.execute(query.order_by(intel_proposals.c.created_at))]

    def pending_proposals(self) -> list[Proposal]:
        """Every tenant's proposals waiting for an analyst (the provider's sharing queue)."""
        query = sa.select(intel_proposals).where(intel_proposals.c.status == "proposed")
        with self.state.transaction() as conn:
            return [Proposal(**r._mapping) for r in conn.execute(query.order_by(intel_proposals.c.created_at))]

    def get_proposal(self, tenant: str, proposal_id: str) -> Proposal:
        """One proposal of ``tenant``; NotFoundError for any other tenant's id."""
        with self.state.transaction() as conn:
            row = conn.execute(
                sa.select(intel_proposals).where(
                    intel_proposals.c.id == proposal_id, intel_proposals.c.tenant == tenant
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no proposal {proposal_id!r} for tenant {tenant!r}")
        return Proposal(**row._mapping)

    def decide_proposal(
        self,
        tenant: str,
        proposal_id: str,
        status: str,
        actor: str,
        indicator_id: str | None = None,
        tlp: str | None = None,
        reason: str | None = None,
    ) -> Proposal:
        """Mark a pending proposal of ``tenant`` shared (with the indicator made from it) or rejected."""
        if status not in ("shared", "rejected"):
            raise ValidationError(f"a proposal is decided as shared or rejected, not {status!r}")
        now = _now()
        values: dict[str, Any] = {
            "status": status,
            "decided_at": now,
            "decided_by": actor,
            "indicator_id": indicator_id,
        }
        if tlp:
            values["tlp"] = normalize_tlp(tlp)
        if reason:
            values["reason"] = reason
        with self.state.transaction() as conn:
            result = conn.execute(
                intel_proposals.update()
                .where(
                    intel_proposals.c.id == proposal_id,
                    intel_proposals.c.tenant == tenant,
                    intel_proposals.c.status == "proposed",
                )
                .values(**values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no pending proposal {proposal_id!r} for tenant {tenant!r}")
            self.state.append_audit(
                conn, actor, f"intel.proposal.{status}", tenant, proposal_id, {"indicator_id": indicator_id, "tlp": tlp}
            )
            row = conn.execute(sa.select(intel_proposals).where(intel_proposals.c.id == proposal_id)).one()
        return Proposal(**row._mapping)

    # ---------------------------------------------------------------- retro-hunts
    def record_retrohunt(self, run: RetroHuntRun, actor: str) -> None:
        """Keep the record of a finished retro-hunt."""
        values = {name: getattr(run, name) for name in RetroHuntRun.__slots__}  # type: ignore[attr-defined]
        with self.state.transaction() as conn:
            conn.execute(intel_retrohunts.insert().values(**values))
            self.state.append_audit(
                conn,
                actor,
                "intel.retrohunt",
                None,
                run.id,
                {"indicators": len(run.indicator_ids), "days": run.days, "alerts": run.alerts, "trigger": run.trigger},
            )

    def list_retrohunts(self, limit: int = 50) -> list[RetroHuntRun]:
        """The newest retro-hunt runs."""
        query = sa.select(intel_retrohunts).order_by(intel_retrohunts.c.started_at.desc()).limit(limit)
        with self.state.transaction() as conn:
            return [RetroHuntRun(**r._mapping) for r in conn.execute(query)]

    # ---------------------------------------------------------------- leaked credentials
    def add_leaks(self, tenant: str, leaks: Sequence[dict[str, Any]], actor: str) -> list[LeakedCredential]:
        """Store leaked identities of ``tenant``; returns only those not known before (same identity and source)."""
        now = _now()
        fresh: list[LeakedCredential] = []
        with self.state.transaction() as conn:
            rows = []
            for leak in leaks:
                leak_id = str(uuid.uuid5(_NS, f"leak\x1f{tenant}\x1f{leak['identity']}\x1f{leak['source']}"))
                rows.append((leak_id, leak))
            known: set[str] = set()
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), _CHUNK):
                known.update(
                    r.id
                    for r in conn.execute(
                        sa.select(intel_leaked_credentials.c.id).where(
                            intel_leaked_credentials.c.tenant == tenant,
                            intel_leaked_credentials.c.id.in_(ids[start : start + _CHUNK]),
                        )
                    )
                )
            inserts = []
            for leak_id, leak in rows:
                if leak_id in known:
                    continue
                known.add(leak_id)
                item = LeakedCredential(
                    leak_id,
                    tenant,
                    leak["identity"],
                    leak["source"],
                    leak.get("leaked_at"),
                    bool(leak.get("password_hash_present")),
                    bool(leak.get("known_user")),
                    now,
                    leak.get("alert_id"),
                )
                fresh.append(item)
                inserts.append({name: getattr(item, name) for name in LeakedCredential.__slots__})  # type: ignore[attr-defined]
            if inserts:
                conn.execute(intel_leaked_credentials.insert(), inserts)
            self.state.append_audit(conn, actor, "intel.leaks.import", tenant, None, {"new": len(inserts)})
        return fresh

    def list_leaks(self, tenant: str) -> list[LeakedCredential]:
        """``tenant``'s leaked identities."""
        query = (
            sa.select(intel_leaked_credentials)
            .where(intel_leaked_credentials.c.tenant == tenant)
            .order_by(intel_leaked_credentials.c.identity)
        )
        with self.state.transaction() as conn:
            return [LeakedCredential(**r._mapping) for r in conn.execute(query)]

    def iter_all(self, tenant: str | None = None, batch: int = 10_000) -> Iterator[Indicator]:
        """Stream the indicators visible to ``tenant`` in pages (exports of big stores)."""
        offset = 0
        while True:
            page = self.list_indicators(tenant, limit=batch, offset=offset)
            yield from page
            if len(page) < batch:
                return
            offset += batch


def _row_allow(row: Any) -> AllowEntry:
    return AllowEntry(row.id, row.tenant, row.type, row.value, row.reason, row.created_by, row.created_at)


def _row_source(row: Any) -> IntelSource:
    return IntelSource(
        row.name,
        row.kind,
        row.url,
        row.collection,
        row.default_tlp,
        int(row.default_confidence),
        row.last_pulled_at,
        int(row.indicators),
    )
