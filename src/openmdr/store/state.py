"""The state store: tenants, assets, ingest tokens, dead letters and the audit trail.

One SQLAlchemy engine over SQLite (embedded default, ``data_dir/state.db``) or PostgreSQL
(service shape).  Every state change runs in one transaction together with its hash-chained
audit record, so the trail never misses a change and never records one that did not happen.

Other stages keep their own tables in their own store modules; they share this engine,
:meth:`StateStore.transaction` and :meth:`StateStore.append_audit` so their changes are
audited in the same way.  Tenant scoping is enforced here: every read and write of
tenant-owned rows names the tenant, and a row of another tenant is never returned.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from openmdr.models.record import Rejection
from openmdr.models.tenant import AssetInfo, TenantInfo
from openmdr.store.assets_csv import AssetImportReport, parse_assets_csv, read_csv_source
from openmdr.store.audit import (
    AuditRecord,
    AuditVerification,
    canonical_details,
    canonical_record,
    chain_hash,
    id_ranges,
    verify_chain,
)
from openmdr.store.errors import ConflictError, NotFoundError, NotMigratedError, ValidationError
from openmdr.store.schema import (
    VERSION_TABLE,
    assets,
    audit_head,
    audit_log,
    dead_letters,
    ingest_tokens,
    tenants,
)
from openmdr.store.validation import hostname_key, validate_asset, validate_tenant, validate_token_name

#: Payloads up to this size live in the database row; larger ones in ``blob_dir``.
INLINE_PAYLOAD_BYTES = 64 * 1024
#: Dead-letter statuses.
DEAD_LETTER_STATUSES = ("pending", "replayed", "discarded")
#: Prefix of every ingest token secret (helps secret scanners recognise a leaked one).
TOKEN_PREFIX = "omdr_"
_MIGRATIONS = Path(__file__).with_name("migrations")


def _now() -> datetime:
    return datetime.now(UTC)


def hash_token(secret: str) -> str:
    """SHA-256 of an ingest-token secret: only this is stored (the secret has 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def reason_key(reason: str, fmt: str | None = None) -> str:
    """The group a rejection reason is counted under: its head before the detail.

    ``"oversized record: 5 bytes > limit"`` -> ``"oversized record"``; a parser's reason,
    which starts with the record's format ``fmt``, keeps it in front:
    ``"json: truncated JSON: at byte 9"`` -> ``"json: truncated JSON"``.
    """
    head, _sep, rest = reason.partition(":")
    if fmt and head == fmt:
        second = rest.split(":", 1)[0].strip()
        if second:
            head = f"{head}: {second}"
    return head[:80]


def _json_safe(value: Any) -> Any:
    """Context mappings as JSON-storable data (datetimes and bytes become text)."""
    if value is None:
        return None
    return orjson.loads(orjson.dumps(dict(value), default=str, option=orjson.OPT_NON_STR_KEYS))


@dataclass(frozen=True, slots=True)
class IngestTokenInfo:
    """An ingest token as listed (never its secret)."""

    tenant: str
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > _now())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A kept rejection: what was refused, why, from where, and whether it was replayed."""

    id: int
    tenant: str | None
    reason: str
    origin: str
    format: str | None
    stage: str
    received_at: datetime
    stored_at: datetime
    size: int
    payload_sha256: str
    context: dict[str, Any] | None
    status: str
    replay_count: int


class StateStore:
    """Tenants, assets, tokens, dead letters and the audit chain over one SQL database."""

    def __init__(self, url: str, blob_dir: Path | str | None = None, echo: bool = False) -> None:
        self.url = url
        self.blob_dir = Path(blob_dir) if blob_dir else None
        self.engine: Engine = _create_engine(url, echo)
        self.dialect = self.engine.dialect.name

    # ---------------------------------------------------------------- lifecycle
    def migrate(self) -> None:
        """Bring the database to the newest schema (every migration head), idempotently.

        Concurrent callers are serialized: an advisory lock on PostgreSQL, the database
        write lock on SQLite.
        """
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "heads")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction (committed on success, rolled back on error)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, ProgrammingError) as exc:
            text = str(exc.orig) if exc.orig is not None else str(exc)
            if "no such table" in text or ("does not exist" in text and "relation" in text):
                raise NotMigratedError(
                    f"the state store at {self.engine.url.render_as_string(hide_password=True)} has no schema yet: "
                    "run StateStore.migrate()"
                ) from exc
            raise

    def schema_revisions(self) -> list[str]:
        """The migration revisions the database is at (one per branch head)."""
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))

    # ---------------------------------------------------------------- audit
    def append_audit(
        self,
        conn: Connection,
        actor: str,
        action: str,
        tenant: str | None,
        target: str | None,
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditRecord:
        """Append one hash-chained audit record inside the caller's transaction.

        The head row is written first, which takes the write lock on both backends, so
        concurrent appends never fork the chain.
        """
        if not actor or len(actor) > 200:
            raise ValidationError("an audit record needs an actor of 1-200 characters")
        details_text = canonical_details(details or {})
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq))
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        seq = int(head.seq) + 1
        when = (time or _now()).astimezone(UTC)
        parsed = orjson.loads(details_text)
        digest = chain_hash(head.hash, canonical_record(seq, when, actor, action, tenant, target, parsed))
        conn.execute(
            audit_log.insert().values(
                seq=seq, time=when, actor=actor, action=action, tenant=tenant, target=target,
                details=details_text, prev_hash=head.hash, hash=digest,
            )
        )  # fmt: skip
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return AuditRecord(seq, when, actor, action, tenant, target, parsed, head.hash, digest)

    def audit(
        self,
        actor: str,
        action: str,
        tenant: str | None,
        target: str | None,
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditRecord:
        """Append an audit record in a transaction of its own (for changes made outside the store).

        ``time`` is when it happened by the caller's clock (a replay's simulated time); now if not given.
        """
        with self.transaction() as conn:
            return self.append_audit(conn, actor, action, tenant, target, details, time=time)

    def list_audit(
        self, tenant: str | None = None, after_seq: int = 0, limit: int = 1000, provider_wide: bool = False
    ) -> list[AuditRecord]:
        """Audit records in chain order; ``tenant`` limits to that tenant's records.

        Without ``tenant`` only a provider-wide reader (``provider_wide=True``) sees the
        whole trail; a tenant reader always names its tenant.
        """
        query = sa.select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        if tenant is not None:
            query = query.where(audit_log.c.tenant == tenant)
        elif not provider_wide:
            raise ValidationError("reading the whole audit trail needs provider_wide=True")
        with self.transaction() as conn:
            return [
                AuditRecord(r.seq, r.time, r.actor, r.action, r.tenant, r.target, orjson.loads(r.details),
                            r.prev_hash, r.hash)
                for r in conn.execute(query)
            ]  # fmt: skip

    def verify_audit(self, batch: int = 10_000) -> AuditVerification:
        """Recompute the whole chain; reports the first record edited, deleted or reordered."""
        with self.transaction() as conn:
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()

            def rows() -> Iterator[Mapping[str, Any]]:
                last = 0
                while True:
                    chunk = conn.execute(
                        sa.select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch)
                    ).mappings().all()  # fmt: skip
                    if not chunk:
                        return
                    yield from chunk
                    last = int(chunk[-1]["seq"])

            return verify_chain(rows(), int(head.seq), head.hash)

    # ---------------------------------------------------------------- tenants
    def tenant_id(self, conn: Connection, name: str) -> int:
        """The row id of tenant ``name`` (raises :class:`NotFoundError`)."""
        row = conn.execute(sa.select(tenants.c.id).where(tenants.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"unknown tenant {name!r}")
        return int(row.id)

    def create_tenant(self, info: TenantInfo, actor: str) -> TenantInfo:
        """Create a tenant; raises :class:`ConflictError` if the name is taken."""
        info = validate_tenant(info)
        now = _now()
        try:
            with self.transaction() as conn:
                conn.execute(tenants.insert().values(**_tenant_values(info), created_at=now, updated_at=now))
                self.append_audit(conn, actor, "tenant.create", info.name, info.name, _tenant_details(info))
        except IntegrityError:
            raise ConflictError(f"tenant {info.name!r} already exists") from None
        return info

    def update_tenant(self, info: TenantInfo, actor: str) -> TenantInfo:
        """Replace a tenant's settings (networks, hours, domains, retention)."""
        info = validate_tenant(info)
        with self.transaction() as conn:
            before = conn.execute(sa.select(tenants).where(tenants.c.name == info.name)).first()
            if before is None:
                raise NotFoundError(f"unknown tenant {info.name!r}")
            conn.execute(
                tenants.update().where(tenants.c.name == info.name).values(**_tenant_values(info), updated_at=_now())
            )
            self.append_audit(
                conn,
                actor,
                "tenant.update",
                info.name,
                info.name,
                {"before": _tenant_details(_row_tenant(before)), "after": _tenant_details(info)},
            )
        return info

    def get_tenant(self, name: str) -> TenantInfo | None:
        """The tenant called ``name``, or None."""
        with self.transaction() as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).first()
        return None if row is None else _row_tenant(row)

    def list_tenants(self) -> list[TenantInfo]:
        """Every tenant, by name."""
        with self.transaction() as conn:
            return [_row_tenant(r) for r in conn.execute(sa.select(tenants).order_by(tenants.c.name))]

    def delete_tenant(self, name: str, actor: str) -> None:
        """Delete a tenant with its assets and tokens (its lake partitions are the lake's business)."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, name)
            conn.execute(assets.delete().where(assets.c.tenant_id == tid))
            conn.execute(ingest_tokens.delete().where(ingest_tokens.c.tenant_id == tid))
            conn.execute(tenants.delete().where(tenants.c.id == tid))
            self.append_audit(conn, actor, "tenant.delete", name, name, {})

    # ---------------------------------------------------------------- assets
    def upsert_assets(self, tenant: str, items: Iterable[AssetInfo], actor: str, source: str = "api") -> int:
        """Insert or update inventory entries (matched by hostname, case-insensitively)."""
        validated = [validate_asset(a) for a in items]
        now = _now()
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            existing = {
                r.hostname_key: r.id
                for r in conn.execute(sa.select(assets.c.id, assets.c.hostname_key).where(assets.c.tenant_id == tid))
            }
            created = updated = 0
            for asset in validated:
                key = hostname_key(asset.hostname)
                values = _asset_values(asset)
                if key in existing:
                    conn.execute(assets.update().where(assets.c.id == existing[key]).values(**values, updated_at=now))
                    updated += 1
                else:
                    conn.execute(assets.insert().values(tenant_id=tid, hostname_key=key, **values,
                                                        created_at=now, updated_at=now))  # fmt: skip
                    existing[key] = -1
                    created += 1
            if validated:
                self.append_audit(conn, actor, "assets.upsert", tenant, None,
                                  {"created": created, "updated": updated, "source": source,
                                   "hostnames": sorted(a.hostname for a in validated)[:200]})  # fmt: skip
        return len(validated)

    def import_assets_csv(self, tenant: str, path_or_text: str | Path, actor: str) -> AssetImportReport:
        """Import an inventory CSV; good rows are stored, bad rows come back with line and reason."""
        if self.get_tenant(tenant) is None:
            raise NotFoundError(f"unknown tenant {tenant!r}")
        rows, rejected = parse_assets_csv(read_csv_source(path_or_text))
        imported = self.upsert_assets(tenant, [a for _, a in rows], actor, source="csv")
        return AssetImportReport(imported=imported, rejected=rejected)

    def list_assets(self, tenant: str) -> list[AssetInfo]:
        """The tenant's inventory, by hostname."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            rows = conn.execute(sa.select(assets).where(assets.c.tenant_id == tid).order_by(assets.c.hostname_key))
            return [_row_asset(r) for r in rows]

    def get_asset(self, tenant: str, hostname: str) -> AssetInfo | None:
        """One asset of ``tenant`` by hostname (case-insensitive), or None."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            row = conn.execute(
                sa.select(assets).where(assets.c.tenant_id == tid, assets.c.hostname_key == hostname_key(hostname))
            ).first()
        return None if row is None else _row_asset(row)

    def delete_asset(self, tenant: str, hostname: str, actor: str) -> None:
        """Remove one asset of ``tenant`` from the inventory."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            result = conn.execute(
                assets.delete().where(assets.c.tenant_id == tid, assets.c.hostname_key == hostname_key(hostname))
            )
            if result.rowcount == 0:
                raise NotFoundError(f"tenant {tenant!r} has no asset {hostname!r}")
            self.append_audit(conn, actor, "assets.delete", tenant, hostname, {})

    # ---------------------------------------------------------------- ingest tokens
    def create_ingest_token(self, tenant: str, name: str, actor: str, expires_at: datetime | None = None) -> str:
        """Create an ingest token for ``tenant`` and return its secret (shown once, stored hashed)."""
        validate_token_name(name)
        if expires_at is not None and expires_at <= _now():
            raise ValidationError("the token would already be expired")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.transaction() as conn:
                tid = self.tenant_id(conn, tenant)
                conn.execute(ingest_tokens.insert().values(
                    tenant_id=tid, name=name, token_hash=hash_token(secret), created_at=_now(),
                    created_by=actor, expires_at=expires_at,
                ))  # fmt: skip
                self.append_audit(conn, actor, "ingest_token.create", tenant, name,
                                  {"expires_at": expires_at.isoformat() if expires_at else None})  # fmt: skip
        except IntegrityError:
            raise ConflictError(f"tenant {tenant!r} already has an active token named {name!r}") from None
        return secret

    def resolve_ingest_token(self, secret: str) -> IngestTokenInfo | None:
        """The active token whose secret this is, or None (unknown, revoked or expired)."""
        if not secret or len(secret) > 512:
            return None
        query = (
            sa.select(ingest_tokens, tenants.c.name.label("tenant_name"))
            .join(tenants, tenants.c.id == ingest_tokens.c.tenant_id)
            .where(ingest_tokens.c.token_hash == hash_token(secret))
        )
        with self.transaction() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        info = _row_token(row, row.tenant_name)
        return info if info.active else None

    def list_ingest_tokens(self, tenant: str) -> list[IngestTokenInfo]:
        """The tenant's tokens, active and revoked, newest first."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            rows = conn.execute(
                sa.select(ingest_tokens).where(ingest_tokens.c.tenant_id == tid)
                .order_by(ingest_tokens.c.created_at.desc(), ingest_tokens.c.id.desc())
            )  # fmt: skip
            return [_row_token(r, tenant) for r in rows]

    def revoke_ingest_token(self, tenant: str, name: str, actor: str) -> None:
        """Revoke the tenant's active token called ``name``."""
        with self.transaction() as conn:
            tid = self.tenant_id(conn, tenant)
            result = conn.execute(
                ingest_tokens.update()
                .where(ingest_tokens.c.tenant_id == tid, ingest_tokens.c.name == name,
                       ingest_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now(), revoked_by=actor)
            )  # fmt: skip
            if result.rowcount == 0:
                raise NotFoundError(f"tenant {tenant!r} has no active token named {name!r}")
            self.append_audit(conn, actor, "ingest_token.revoke", tenant, name, {})

    # ---------------------------------------------------------------- dead letters
    def add_dead_letters(self, rejections: Sequence[Rejection], actor: str = "pipeline") -> list[int]:
        """Keep rejections with reason, origin and payload; returns their ids.

        Payloads larger than :data:`INLINE_PAYLOAD_BYTES` go to ``blob_dir`` (content
        addressed), so the database stays small while nothing is lost.
        """
        if not rejections:
            return []
        now = _now()
        rows: list[dict[str, Any]] = []
        for r in rejections:
            digest = hashlib.sha256(r.payload).hexdigest()
            inline = len(r.payload) <= INLINE_PAYLOAD_BYTES or self.blob_dir is None
            blob_path = None if inline else self._write_blob(digest, r.payload)
            reason = r.reason or "no reason given"
            rows.append({
                "tenant": r.tenant or None, "reason": reason, "reason_key": reason_key(reason, r.format),
                "origin": r.origin or "unknown", "format": r.format, "stage": r.stage or "parse",
                "received_at": r.received_at if r.received_at.tzinfo else r.received_at.replace(tzinfo=UTC),
                "stored_at": now, "size": len(r.payload), "payload": r.payload if inline else None,
                "blob_path": blob_path, "payload_sha256": digest, "context": _json_safe(r.context),
                "status": "pending", "replay_count": 0, "updated_at": now,
            })  # fmt: skip
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                ids = [int(i) for i in conn.execute(dead_letters.insert().returning(dead_letters.c.id), rows).scalars()]
            else:
                ids = [int(conn.execute(dead_letters.insert().values(**row)).inserted_primary_key[0]) for row in rows]
            by_tenant: dict[str | None, list[int]] = {}
            for row, i in zip(rows, ids, strict=True):
                by_tenant.setdefault(row["tenant"], []).append(i)
            for tenant, tids in by_tenant.items():
                reasons: dict[str, int] = {}
                for row in rows:
                    if row["tenant"] == tenant:
                        reasons[row["reason_key"]] = reasons.get(row["reason_key"], 0) + 1
                self.append_audit(conn, actor, "deadletter.add", tenant, None,
                                  {"ids": id_ranges(tids), "count": len(tids), "reasons": reasons})  # fmt: skip
        return ids

    def _write_blob(self, digest: str, payload: bytes) -> str:
        assert self.blob_dir is not None
        path = self.blob_dir / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(payload)
            tmp.replace(path)
        return str(path.relative_to(self.blob_dir))

    def list_dead_letters(
        self, tenant: str | None = None, status: str | None = "pending", limit: int = 100, after_id: int = 0
    ) -> list[DeadLetter]:
        """Dead letters, oldest first; ``tenant`` limits to one tenant, ``status`` to one state."""
        if status is not None and status not in DEAD_LETTER_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(DEAD_LETTER_STATUSES)}")
        cols = _letter_columns()
        query = sa.select(*cols).where(dead_letters.c.id > after_id).order_by(dead_letters.c.id).limit(limit)
        if tenant is not None:
            query = query.where(dead_letters.c.tenant == tenant)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        with self.transaction() as conn:
            return [DeadLetter(**dict(r._mapping)) for r in conn.execute(query)]

    def get_dead_letter(self, letter_id: int, tenant: str | None = None) -> DeadLetter:
        """One dead letter; with ``tenant``, only if it belongs to that tenant."""
        row = self._one_dead_letter(sa.select(*_letter_columns()), letter_id, tenant)
        return DeadLetter(**dict(row._mapping))

    def _one_dead_letter(self, query: sa.Select[Any], letter_id: int, tenant: str | None) -> sa.Row[Any]:
        """The row ``query`` selects for dead letter ``letter_id`` (within ``tenant`` when given).

        Raises ``NotFoundError`` when there is none, so another tenant's letter looks the same as a missing one.
        """
        query = query.where(dead_letters.c.id == letter_id)
        if tenant is not None:
            query = query.where(dead_letters.c.tenant == tenant)
        with self.transaction() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no dead letter {letter_id}")
        return row

    def get_dead_letter_payload(self, letter_id: int, tenant: str | None = None) -> bytes:
        """The exact bytes that were refused."""
        row = self._one_dead_letter(sa.select(dead_letters.c.payload, dead_letters.c.blob_path), letter_id, tenant)
        if row.payload is not None:
            return bytes(row.payload)
        if self.blob_dir is None:
            raise NotFoundError(f"dead letter {letter_id} lives in a blob directory this store was not given")
        return (self.blob_dir / row.blob_path).read_bytes()

    def mark_dead_letters(self, ids: Sequence[int], status: str, actor: str) -> int:
        """Set the status of dead letters (``replayed`` after recovery, ``discarded`` by hand)."""
        if status not in DEAD_LETTER_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(DEAD_LETTER_STATUSES)}")
        if not ids:
            return 0
        changed = 0
        with self.transaction() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                result = conn.execute(
                    dead_letters.update().where(dead_letters.c.id.in_(chunk))
                    .values(status=status, replay_count=dead_letters.c.replay_count + int(status != "discarded"),
                            updated_at=_now())
                )  # fmt: skip
                changed += result.rowcount
            self.append_audit(conn, actor, f"deadletter.{status}", None, None,
                              {"ids": id_ranges(ids), "count": len(ids)})  # fmt: skip
        return changed

    def dead_letter_counts(self, tenant: str | None = None, status: str = "pending") -> dict[str, int]:
        """Pending dead letters by reason (the text before the first colon), most first."""
        query = (
            sa.select(dead_letters.c.reason_key, sa.func.count().label("n"))
            .where(dead_letters.c.status == status)
            .group_by(dead_letters.c.reason_key)
        )
        if tenant is not None:
            query = query.where(dead_letters.c.tenant == tenant)
        with self.transaction() as conn:
            rows = conn.execute(query).all()
        return dict(sorted(((r.reason_key, int(r.n)) for r in rows), key=lambda kv: (-kv[1], kv[0])))


def _letter_columns() -> list[sa.Column[Any]]:
    skip = ("payload", "blob_path", "updated_at", "reason_key")
    return [c for c in dead_letters.c if c.name not in skip]


def _create_engine(url: str, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, echo=echo, pool_pre_ping=True)


def _tenant_values(info: TenantInfo) -> dict[str, Any]:
    return {
        "name": info.name, "display_name": info.display_name or info.name, "timezone": info.timezone,
        "work_start_hour": info.working_hours[0], "work_end_hour": info.working_hours[1],
        "working_days": list(info.working_days), "networks": list(info.networks),
        "domains": list(info.domains), "retention_days": info.retention_days,
    }  # fmt: skip


def _tenant_details(info: TenantInfo) -> dict[str, Any]:
    values = _tenant_values(info)
    values.pop("name")
    return values


def _row_tenant(row: Any) -> TenantInfo:
    return TenantInfo(
        name=row.name, display_name=row.display_name, timezone=row.timezone,
        working_hours=(int(row.work_start_hour), int(row.work_end_hour)),
        working_days=tuple(row.working_days), networks=tuple(row.networks), domains=tuple(row.domains),
        retention_days=row.retention_days,
    )  # fmt: skip


def _asset_values(asset: AssetInfo) -> dict[str, Any]:
    return {
        "hostname": asset.hostname, "ips": list(asset.ips), "owner": asset.owner,
        "criticality": asset.criticality, "asset_class": asset.asset_class, "has_edr": asset.has_edr,
        "tags": list(asset.tags),
    }  # fmt: skip


def _row_asset(row: Any) -> AssetInfo:
    return AssetInfo(
        hostname=row.hostname, ips=tuple(row.ips), owner=row.owner, criticality=row.criticality,
        asset_class=row.asset_class, has_edr=bool(row.has_edr), tags=tuple(row.tags),
    )  # fmt: skip


def _row_token(row: Any, tenant: str) -> IngestTokenInfo:
    return IngestTokenInfo(tenant, row.name, row.created_at, row.created_by, row.expires_at, row.revoked_at)
