"""The audit trail: tampering (edit, delete, reorder) is detected and the first bad record named, by the
API and by ``openmdr audit verify``; logins, role changes and token changes are recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openmdr.cli.audit import audit_app
from openmdr.cli.users import apitokens_app, users_app
from openmdr.models import TenantInfo
from openmdr.store.schema import audit_log
from openmdr.store.state import StateStore

from .conftest import PASSWORD, World, sqlite_only, tenant_user


def _seed(state: StateStore) -> None:
    for i in range(6):
        state.create_tenant(TenantInfo(f"t{i}"), "test")


def _edit(conn: sa.Connection) -> None:
    conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(actor="someone-else"))


def _edit_details(conn: sa.Connection) -> None:
    conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(details='{"forged": true}'))


def _delete(conn: sa.Connection) -> None:
    conn.execute(audit_log.delete().where(audit_log.c.seq == 3))


def _delete_newest(conn: sa.Connection) -> None:
    conn.execute(audit_log.delete().where(audit_log.c.seq == 6))


def _reorder(conn: sa.Connection) -> None:
    """Swap the contents of records 3 and 4 (each keeps a valid hash of its own)."""
    rows = {r.seq: r._asdict() for r in conn.execute(sa.select(audit_log).where(audit_log.c.seq.in_([3, 4])))}
    for seq, other in ((3, 4), (4, 3)):
        values = {k: v for k, v in rows[other].items() if k != "seq"}
        conn.execute(audit_log.update().where(audit_log.c.seq == seq).values(**values))


def _rehash_forgery(conn: sa.Connection) -> None:
    """Edit record 3 and recompute its own hash: the next record's link still breaks."""
    from openmdr.store.audit import canonical_record, chain_hash

    row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 3)).one()
    digest = chain_hash(row.prev_hash, canonical_record(3, row.time, "forger", row.action, row.tenant, row.target,
                                                        {}))  # fmt: skip
    conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(actor="forger", details="{}", hash=digest))


TAMPERING: dict[str, tuple[Callable[[sa.Connection], None], int]] = {
    "edit": (_edit, 3),
    "edit details": (_edit_details, 3),
    "delete": (_delete, 3),
    "delete newest": (_delete_newest, 6),
    "reorder": (_reorder, 3),
    "edit and rehash": (_rehash_forgery, 4),
}


def test_tampering_is_detected_and_named(state_store: StateStore) -> None:
    """Each kind of tampering fails verification at the first bad record (the trail is restored in between)."""
    _seed(state_store)
    assert state_store.verify_audit().ok
    with state_store.engine.connect() as conn:
        original = [dict(r._mapping) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
    for kind, (tamper, first_bad) in TAMPERING.items():
        with state_store.engine.begin() as conn:
            tamper(conn)
        result = state_store.verify_audit()
        assert not result.ok, kind
        assert result.first_bad_seq == first_bad, (kind, result.problem)
        with state_store.engine.begin() as conn:
            conn.execute(audit_log.delete())
            conn.execute(audit_log.insert(), original)
        assert state_store.verify_audit().ok, kind


def _cli(platform_dir: Path, database_url: str) -> typer.Typer:
    """A root command with the global options of ``openmdr`` and the sub-commands under test."""
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.ensure_object(dict).update(data_dir=platform_dir, database_url=database_url)

    app.add_typer(audit_app, name="audit")
    app.add_typer(users_app, name="users")
    app.add_typer(apitokens_app, name="apitokens")
    return app


@sqlite_only
def test_cli_verify_exit_code_and_users(state_url: str, tmp_path: Path) -> None:
    """``audit verify`` exits 0 on an intact trail and 1 naming the first bad record; users/apitokens work."""
    cli, runner = _cli(tmp_path / "data", state_url), CliRunner()
    state = StateStore(state_url)
    state.migrate()
    _seed(state)
    r = runner.invoke(cli, ["users", "add", "boss", "--role", "provider_admin", "--password-stdin"],
                      input=PASSWORD + "\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert runner.invoke(cli, ["users", "add", "ann", "-r", "tenant_admin@t1", "--no-password"]).exit_code == 0
    assert runner.invoke(cli, ["users", "grant", "ann", "auditor", "--tenant", "t2"]).exit_code == 0
    assert runner.invoke(cli, ["users", "revoke", "ann", "auditor", "--tenant", "t2"]).exit_code == 0
    listed = runner.invoke(cli, ["users", "list", "--tenant", "t1"])
    assert "ann" in listed.output and "boss" not in listed.output
    created = runner.invoke(cli, ["apitokens", "create", "ann", "ci", "--scope", "case:read", "--days", "7"])
    assert created.exit_code == 0 and "omdr_at_" in created.output
    assert runner.invoke(cli, ["apitokens", "revoke", "ann", "1"]).exit_code == 0
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    actions = runner.invoke(cli, ["audit", "list", "--json", "--limit", "1000"]).output
    for action in ("user.create", "role.grant", "role.revoke", "api_token.create", "api_token.revoke"):
        assert f'"action":"{action}"' in actions
    with state.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(target="t9"))
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1 and "record 2" in bad.output
    state.close()


@sqlite_only
def test_audit_api_verify_and_export(client: TestClient, world: World) -> None:
    """The API verifies the chain, names the first bad record, and exports a re-verifiable trail."""
    root = world.headers("root")
    assert client.get("/api/v1/audit/verify", headers=root).json()["ok"] is True
    lines = client.get("/api/v1/audit/export", headers=root).text.splitlines()
    assert len(lines) == len(world.platform.state.list_audit(None, limit=100_000, provider_wide=True))
    with world.platform.state.engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 5))
    result = client.get("/api/v1/audit/verify", headers=root).json()
    assert result["ok"] is False and result["first_bad_seq"] == 5


@sqlite_only
def test_logins_role_and_token_changes_are_audited(client: TestClient, world: World) -> None:
    """Sign-in (good and bad), sign-out, role grants and token creation each leave a record."""
    user = tenant_user("tenant_admin", "alpha")
    client.post("/api/v1/auth/login", json={"username": user, "password": "wrong password!!"})
    csrf = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD}).json()["csrf_token"]
    h = {"X-CSRF-Token": csrf}
    client.post(f"/api/v1/tenants/alpha/users/{tenant_user('tenant_analyst', 'alpha')}/roles", json={"role": "auditor"},
                headers=h)  # fmt: skip
    client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=h)
    client.post("/api/v1/auth/logout", headers=h)
    trail = world.platform.state.list_audit(None, limit=100_000, provider_wide=True)
    mine = [(a.action, a.actor) for a in trail if a.actor in ("anonymous", f"user:{user}")]
    assert [a for a, _ in mine] == ["auth.login_failed", "auth.login", "role.grant", "api_token.create", "auth.logout"]
    alpha_only = client.get("/api/v1/tenants/alpha/audit", headers=world.headers(tenant_user("auditor", "alpha")))
    assert any(r["action"] == "role.grant" and r["actor"] == f"user:{user}" for r in alpha_only.json())
