"""``openmdr users`` and ``openmdr apitokens``: identities, their roles and their API tokens.

The command line acts as the local operator (whoever can open the database directly is
provider administrator) through the same services as the API, so every change is
checked the same way and audited with actor ``cli``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import typer
from rich.table import Table

from openmdr.api.rbac import Principal
from openmdr.api.services import UserService
from openmdr.cli.common import UserError, console, platform
from openmdr.store.identity import ROLES, Grant

users_app = typer.Typer(help="Users and their roles (per tenant or provider-wide).", no_args_is_help=True)
apitokens_app = typer.Typer(help="API tokens of users (scoped, expiring, revocable).", no_args_is_help=True)
OPERATOR = Principal.operator("cli")


def parse_grant(text: str) -> Grant:
    """``role`` (provider-wide) or ``role@tenant``."""
    role, _, tenant = text.partition("@")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return Grant(role, tenant or None)


def _service(ctx: typer.Context) -> UserService:
    return UserService(platform(ctx).identity)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _grants_text(grants: tuple[Grant, ...]) -> str:
    return ", ".join(f"{g.role}@{g.tenant}" if g.tenant else g.role for g in grants) or "-"


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str = typer.Argument(..., help="user name: a-z, 0-9 and . _ @ -"),
    role: list[str] = typer.Option([], "--role", "-r", help="role or role@tenant (repeatable)"),
    display_name: str = typer.Option("", "--display-name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
    no_password: bool = typer.Option(False, "--no-password", help="create without a password (cannot sign in yet)"),
) -> None:
    """Create a user with roles (the first provider_admin is made this way)."""
    password = None if no_password else _read_password(password_stdin)
    grants = [parse_grant(r) for r in role]
    user = _service(ctx).create(OPERATOR, username, tenant=None, password=password, display_name=display_name,
                                grants=grants)  # fmt: skip
    console.print(f"[green]user {user.username} created[/] ({_grants_text(user.grants)})")


@users_app.command("list")
def users_list(
    ctx: typer.Context, tenant: str | None = typer.Option(None, "--tenant", "-t", help="only users of this tenant")
) -> None:
    """List users with their roles."""
    table = Table("user", "name", "roles", "password", "disabled", "created")
    for u in _service(ctx).list(OPERATOR, tenant):
        table.add_row(u.username, u.display_name, _grants_text(u.grants), "yes" if u.has_password else "[red]no",
                      "[red]yes" if u.disabled else "no", u.created_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    console.print(table)


@users_app.command("grant")
def users_grant(
    ctx: typer.Context,
    username: str,
    role: str = typer.Argument(..., help="role name"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="tenant of the role; omit for provider-wide"),
) -> None:
    """Give a user a role."""
    user = _service(ctx).grant(OPERATOR, username, parse_grant(role if tenant is None else f"{role}@{tenant}"), None)
    console.print(f"[green]{username}[/]: {_grants_text(user.grants)}")


@users_app.command("revoke")
def users_revoke(
    ctx: typer.Context,
    username: str,
    role: str = typer.Argument(..., help="role name"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="tenant of the role; omit for provider-wide"),
) -> None:
    """Take a role away from a user."""
    user = _service(ctx).revoke(OPERATOR, username, parse_grant(role if tenant is None else f"{role}@{tenant}"), None)
    console.print(f"[green]{username}[/]: {_grants_text(user.grants)}")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Set a user's password (their console sessions end)."""
    _service(ctx).set_password(OPERATOR, username, _read_password(password_stdin), None)
    console.print(f"[green]password of {username} set")


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str) -> None:
    """Disable a user: sessions end, tokens stop working, sign-in is refused."""
    _service(ctx).set_disabled(OPERATOR, username, True, None)
    console.print(f"[green]{username} disabled")


@users_app.command("enable")
def users_enable(ctx: typer.Context, username: str) -> None:
    """Enable a disabled user again."""
    _service(ctx).set_disabled(OPERATOR, username, False, None)
    console.print(f"[green]{username} enabled")


@apitokens_app.command("create")
def apitokens_create(
    ctx: typer.Context,
    username: str,
    name: str,
    days: int = typer.Option(90, min=1, max=366, help="lifetime in days"),
    scope: list[str] = typer.Option([], "--scope", "-s", help="limit to this permission (repeatable)"),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="limit to this tenant"),
) -> None:
    """Create an API token for a user and print its secret (shown only now)."""
    info, secret = _service(ctx).create_token(
        OPERATOR, username, name, expires_in=timedelta(days=days), scopes=scope or None, tenant=tenant
    )
    console.print(f"[green]API token {info.id} ({info.name}) for {username}, expires {info.expires_at:%Y-%m-%d}")
    print(secret)


@apitokens_app.command("list")
def apitokens_list(ctx: typer.Context, username: str) -> None:
    """List a user's API tokens (never their secrets)."""
    p = platform(ctx)
    now = p.identity.now()
    table = Table("id", "name", "scopes", "tenant", "created", "expires", "state", "last used")
    for t in _service(ctx).list_tokens(OPERATOR, username):
        state = "active" if t.active(now) else ("revoked" if t.revoked_at else "expired")
        table.add_row(str(t.id), t.name, ", ".join(t.scopes) if t.scopes is not None else "all", t.tenant or "all",
                      f"{t.created_at:%Y-%m-%d}", f"{t.expires_at:%Y-%m-%d}", state,
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-")  # fmt: skip
    console.print(table)


@apitokens_app.command("revoke")
def apitokens_revoke(ctx: typer.Context, username: str, token_id: int) -> None:
    """Revoke one of a user's API tokens."""
    _service(ctx).revoke_token(OPERATOR, username, token_id)
    console.print(f"[green]API token {token_id} of {username} revoked")
