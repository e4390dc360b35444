"""The state store on SQLite and PostgreSQL: tenants, assets, tokens, dead letters, audit chain, schema sync."""

from __future__ import annotations

import hashlib
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from openmdr.models import AssetInfo, Rejection, TenantInfo
from openmdr.store.errors import ConflictError, NotFoundError, NotMigratedError, ValidationError
from openmdr.store.schema import VERSION_TABLE, audit_log, dead_letters, ingest_tokens, load_all_tables
from openmdr.store.state import INLINE_PAYLOAD_BYTES, TOKEN_PREFIX, StateStore


def _tenant(name: str = "acme", **kw: object) -> TenantInfo:
    return TenantInfo(name=name, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- schema


def test_migrated_database_matches_every_area_table_definition(state_store: StateStore) -> None:
    """Alembic's autogenerate finds nothing to change: each area's migration matches its tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    metadata = load_all_tables()

    def not_alembic_bookkeeping(name: str | None, type_: str, _parent: object) -> bool:
        return not (type_ == "table" and name == VERSION_TABLE)

    with state_store.engine.connect() as conn:
        opts = {"compare_type": True, "include_name": not_alembic_bookkeeping}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    assert diff == [], diff
    assert state_store.schema_revisions()  # one head per area branch


def test_migrate_is_idempotent_and_an_unmigrated_store_says_so(state_store: StateStore, state_url: str) -> None:
    before = state_store.schema_revisions()
    state_store.migrate()
    assert state_store.schema_revisions() == before
    if state_url.startswith("sqlite"):
        fresh = StateStore(state_url.replace("state.db", "empty.db"))
        with pytest.raises(NotMigratedError, match="migrate"):
            fresh.list_tenants()
        fresh.close()


# ---------------------------------------------------------------------------- tenants


def test_tenant_lifecycle_and_validation(state_store: StateStore) -> None:
    info = _tenant(
        display_name="Acme Corp",
        timezone="Europe/Berlin",
        working_hours=(7, 19),
        working_days=(4, 0, 1),
        networks=("10.1.2.3/16", "2001:db8::/32"),
        domains=("ACME.example.",),
        retention_days=30,
    )
    state_store.create_tenant(info, actor="alice")
    got = state_store.get_tenant("acme")
    assert got is not None
    assert got.networks == ("10.1.0.0/16", "2001:db8::/32") and got.domains == ("acme.example",)
    assert got.working_days == (0, 1, 4) and got.timezone == "Europe/Berlin" and got.retention_days == 30
    with pytest.raises(ConflictError):
        state_store.create_tenant(_tenant(), actor="alice")
    for bad in (
        _tenant("Acme"),
        _tenant("a/b"),
        _tenant(timezone="Mars/Olympus"),
        _tenant(working_hours=(9, 9)),
        _tenant(networks=("10.0.0.300/8",)),
        _tenant(working_days=(7,)),
        _tenant(retention_days=0),
    ):
        with pytest.raises(ValidationError):
            state_store.create_tenant(bad, actor="alice")
    state_store.update_tenant(_tenant(networks=("192.168.0.0/24",)), actor="bob")
    assert state_store.get_tenant("acme").networks == ("192.168.0.0/24",)
    state_store.create_tenant(_tenant("globex"), actor="alice")
    assert [t.name for t in state_store.list_tenants()] == ["acme", "globex"]
    state_store.delete_tenant("globex", actor="alice")
    assert state_store.get_tenant("globex") is None
    with pytest.raises(NotFoundError):
        state_store.update_tenant(_tenant("nobody"), actor="x")
    actions = [r.action for r in state_store.list_audit(tenant="acme")]
    assert actions == ["tenant.create", "tenant.update"]


# ---------------------------------------------------------------------------- assets


CSV = """hostname,ip,owner,criticality,asset_class,has_edr,tags
dc01.acme.example,10.0.0.10;10.0.0.11,it-ops,critical,domain_controller,yes,tier0 ad
ws-042,10.0.1.42,alice,,workstation,no,
,10.0.0.5,nobody,low,server,no,
db01,10.0.0.20,dba,urgent,server,true,
web01,not-an-ip,web,high,server,true,
DC01.ACME.EXAMPLE,10.0.0.12,dup,low,server,no,
fw01,10.0.0.1,net,high,network,maybe,
laptop-7,10.0.2.7,bob,low,workstation,1,vip
too,many,fields,here,a,b,c,d
"""


def test_assets_csv_import_reports_bad_rows_by_line(state_store: StateStore) -> None:
    state_store.create_tenant(_tenant(), actor="t")
    state_store.create_tenant(_tenant("globex"), actor="t")
    report = state_store.import_assets_csv("acme", CSV, actor="t")
    assert report.imported == 3
    rejected = dict(report.rejected)
    assert set(rejected) == {4, 5, 6, 7, 8, 10}
    assert "hostname is empty" in rejected[4] and "urgent" in rejected[5] and "not-an-ip" in rejected[6]
    assert "line 2" in rejected[7] and "maybe" in rejected[8] and "fields" in rejected[10]
    assets = {a.hostname: a for a in state_store.list_assets("acme")}
    assert set(assets) == {"dc01.acme.example", "ws-042", "laptop-7"}
    dc = assets["dc01.acme.example"]
    assert dc.ips == ("10.0.0.10", "10.0.0.11") and dc.has_edr and dc.criticality == "critical"
    assert dc.asset_class == "domain_controller" and dc.tags == ("tier0", "ad")
    assert assets["ws-042"].criticality == "medium" and not assets["ws-042"].has_edr
    # re-import updates by hostname (case-insensitive), never duplicates; other tenants see nothing
    state_store.import_assets_csv("acme", "hostname,criticality\nWS-042,high\n", actor="t")
    assert state_store.get_asset("acme", "ws-042").criticality == "high"
    assert len(state_store.list_assets("acme")) == 3
    assert state_store.list_assets("globex") == [] and state_store.get_asset("globex", "ws-042") is None
    with pytest.raises(NotFoundError):
        state_store.delete_asset("globex", "ws-042", actor="t")
    state_store.delete_asset("acme", "ws-042", actor="t")
    assert len(state_store.list_assets("acme")) == 2
    for whole_file in ("", "host name,ip\nx,1.2.3.4\n", "ip,owner\n1.2.3.4,x\n"):
        with pytest.raises(ValidationError, match=r"line 1|empty"):
            state_store.import_assets_csv("acme", whole_file + ("\n" if not whole_file else ""), actor="t")
    with pytest.raises(NotFoundError):
        state_store.import_assets_csv("nobody", CSV, actor="t")
    with pytest.raises(ValidationError):
        state_store.upsert_assets("acme", [AssetInfo(hostname="x", criticality="extreme")], actor="t")


# ---------------------------------------------------------------------------- tokens


def test_tokens_are_hashed_at_rest_expire_and_revoke(state_store: StateStore) -> None:
    state_store.create_tenant(_tenant(), actor="t")
    state_store.create_tenant(_tenant("globex"), actor="t")
    secret = state_store.create_ingest_token("acme", "edge-1", actor="t")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) >= len(TOKEN_PREFIX) + 43  # 256 random bits
    with state_store.transaction() as conn:
        stored = conn.execute(sa.select(ingest_tokens.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert all(secret not in str(v) for v in stored)
    info = state_store.resolve_ingest_token(secret)
    assert info is not None and info.tenant == "acme" and info.active
    assert state_store.resolve_ingest_token(secret + "x") is None and state_store.resolve_ingest_token("") is None
    with pytest.raises(ConflictError):
        state_store.create_ingest_token("acme", "edge-1", actor="t")
    other = state_store.create_ingest_token("globex", "edge-1", actor="t")  # same name, other tenant: fine
    assert state_store.resolve_ingest_token(other).tenant == "globex"
    with pytest.raises(NotFoundError):
        state_store.revoke_ingest_token("globex", "nope", actor="t")
    state_store.revoke_ingest_token("acme", "edge-1", actor="t")
    assert state_store.resolve_ingest_token(secret) is None
    assert state_store.resolve_ingest_token(other) is not None
    renewed = state_store.create_ingest_token("acme", "edge-1", actor="t")  # the name is free again
    assert [t.revoked_at is None for t in state_store.list_ingest_tokens("acme")] == [True, False]
    soon = datetime.now(UTC) + timedelta(hours=1)
    expiring = state_store.create_ingest_token("acme", "short", actor="t", expires_at=soon)
    assert state_store.resolve_ingest_token(expiring).expires_at == soon.replace(microsecond=soon.microsecond)
    with state_store.transaction() as conn:
        conn.execute(ingest_tokens.update().where(ingest_tokens.c.name == "short")
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    assert state_store.resolve_ingest_token(expiring) is None
    assert state_store.resolve_ingest_token(renewed) is not None
    with pytest.raises(ValidationError):
        state_store.create_ingest_token("acme", "past", actor="t", expires_at=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(ValidationError):
        state_store.create_ingest_token("acme", "bad name!", actor="t")


# ---------------------------------------------------------------------------- dead letters


def test_dead_letters_small_and_large_with_tenant_scoping(state_store: StateStore) -> None:
    big = bytes(range(256)) * 1024  # 256 KiB, binary
    letters = [
        Rejection(b'{"cut": ', "json: truncated JSON: unexpected end", "a.jsonl:10", "json", "acme",
                  context={"received_at": datetime(2026, 3, 2, tzinfo=UTC), "peer": "10.0.0.1:514"}),
        Rejection(big, "oversized record: 262144 bytes > limit", "b.jsonl:0", "json", "acme", stage="collect"),
        Rejection(b"x", "no tenant route for peer 192.0.2.1", "syslog/udp 192.0.2.1:514", "syslog", "", "route"),
        Rejection(b"y", "json: truncated JSON: other", "c.jsonl:0", "json", "globex"),
    ]  # fmt: skip
    ids = state_store.add_dead_letters(letters)
    assert len(ids) == 4 and ids == sorted(ids)
    assert state_store.get_dead_letter_payload(ids[1]) == big
    with state_store.transaction() as conn:
        row = conn.execute(
            sa.select(dead_letters.c.payload, dead_letters.c.blob_path).where(dead_letters.c.id == ids[1])
        ).one()
    assert row.payload is None and row.blob_path and len(big) > INLINE_PAYLOAD_BYTES
    first = state_store.get_dead_letter(ids[0], tenant="acme")
    assert first.context == {"received_at": "2026-03-02T00:00:00+00:00", "peer": "10.0.0.1:514"}
    assert first.origin == "a.jsonl:10" and first.size == 8 and first.status == "pending"
    assert first.payload_sha256 == hashlib.sha256(b'{"cut": ').hexdigest()
    with pytest.raises(NotFoundError):
        state_store.get_dead_letter(ids[0], tenant="globex")  # id guessing across tenants
    with pytest.raises(NotFoundError):
        state_store.get_dead_letter_payload(ids[0], tenant="globex")
    assert [d.id for d in state_store.list_dead_letters(tenant="acme")] == ids[:2]
    assert state_store.list_dead_letters(tenant="globex")[0].id == ids[3]
    assert state_store.dead_letter_counts("acme") == {"json: truncated JSON": 1, "oversized record": 1}
    assert state_store.dead_letter_counts() == {
        "json: truncated JSON": 2,
        "no tenant route for peer 192.0.2.1": 1,
        "oversized record": 1,
    }  # fmt: skip
    assert state_store.mark_dead_letters([ids[0]], "replayed", actor="t") == 1
    assert [d.id for d in state_store.list_dead_letters(tenant="acme")] == [ids[1]]
    assert state_store.list_dead_letters(tenant="acme", status="replayed")[0].replay_count == 1
    assert [d.id for d in state_store.list_dead_letters(status=None, limit=2, after_id=ids[0])] == ids[1:3]
    with pytest.raises(ValidationError):
        state_store.list_dead_letters(status="lost")


def test_many_dead_letters_in_one_call(state_store: StateStore) -> None:
    rejections = [Rejection(f"r{i}".encode(), f"bad: {i % 3}", f"f:{i}", "json", "acme") for i in range(1_200)]
    ids = state_store.add_dead_letters(rejections)
    assert len(set(ids)) == 1_200  # more than one 500-id update chunk
    assert state_store.dead_letter_counts("acme") == {"bad": 1_200}
    assert state_store.mark_dead_letters(ids, "discarded", actor="t") == 1_200
    assert state_store.list_dead_letters(tenant="acme") == []


# ---------------------------------------------------------------------------- audit chain


def _history(store: StateStore) -> None:
    store.create_tenant(_tenant(), actor="alice")
    store.create_ingest_token("acme", "edge", actor="alice")
    store.upsert_assets("acme", [AssetInfo(hostname="ws1")], actor="bob")
    store.add_dead_letters([Rejection(b"x", "bad: x", "f:0", "json", "acme")])
    store.revoke_ingest_token("acme", "edge", actor="alice")


def test_audit_chain_verifies_and_every_change_is_recorded(state_store: StateStore) -> None:
    _history(state_store)
    check = state_store.verify_audit()
    assert check.ok and check.records == 5 and check.head_hash
    records = state_store.list_audit(provider_wide=True)
    assert [r.action for r in records] == ["tenant.create", "ingest_token.create", "assets.upsert", "deadletter.add",
                                           "ingest_token.revoke"]  # fmt: skip
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    with pytest.raises(ValidationError):
        state_store.list_audit()
    with pytest.raises(ValidationError):
        state_store.audit("", "x", None, None)


TAMPERING = ("edit_details", "edit_actor", "delete_middle", "delete_newest", "reorder", "insert")


def test_audit_tampering_names_the_first_bad_record(state_store: StateStore) -> None:
    """Each kind of tampering, applied to the same trail and undone after its check."""
    _history(state_store)
    assert state_store.verify_audit().ok
    for tamper in TAMPERING:
        with state_store.engine.connect() as conn:
            original = [dict(r._mapping) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
        expected = _tamper(state_store, tamper)
        check = state_store.verify_audit()
        assert not check.ok and check.first_bad_seq == expected, (tamper, check)
        assert check.problem
        with state_store.engine.begin() as conn:  # undo: the next kind starts from the intact trail
            conn.execute(audit_log.delete())
            conn.execute(audit_log.insert(), original)
        assert state_store.verify_audit().ok, tamper


def _tamper(state_store: StateStore, tamper: str) -> int:
    """Change the audit table behind the store's back; return the seq verification must name."""
    t = audit_log
    with state_store.engine.begin() as conn:
        if tamper == "edit_details":
            conn.execute(t.update().where(t.c.seq == 3).values(details='{"created":9}'))
            expected = 3
        elif tamper == "edit_actor":
            conn.execute(t.update().where(t.c.seq == 2).values(actor="mallory"))
            expected = 2
        elif tamper == "delete_middle":
            conn.execute(t.delete().where(t.c.seq == 3))
            expected = 3
        elif tamper == "delete_newest":
            conn.execute(t.delete().where(t.c.seq == 5))
            expected = 5
        elif tamper == "reorder":  # swap the contents of records 2 and 4
            rows = {r.seq: r for r in conn.execute(sa.select(t).where(t.c.seq.in_([2, 4])))}
            for a, b in ((2, 4), (4, 2)):
                src = rows[b]
                conn.execute(t.update().where(t.c.seq == a).values(
                    time=src.time, actor=src.actor, action=src.action, tenant=src.tenant, target=src.target,
                    details=src.details, prev_hash=src.prev_hash, hash=src.hash))  # fmt: skip
            expected = 2
        else:
            last = conn.execute(sa.select(t).where(t.c.seq == 5)).one()
            conn.execute(t.insert().values(seq=6, time=last.time, actor="mallory", action="tenant.delete",
                                           tenant="acme", target="acme", details="{}", prev_hash=last.hash,
                                           hash="0" * 64))  # fmt: skip
            expected = 6
    return expected


def test_concurrent_audited_changes_never_fork_the_chain(state_store: StateStore) -> None:
    state_store.create_tenant(_tenant(), actor="t")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(10):
                state_store.audit(f"worker-{k}", "test.event", "acme", str(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    check = state_store.verify_audit()
    assert check.ok and check.records == 41
