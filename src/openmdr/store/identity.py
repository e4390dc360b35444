"""Identities: users, their roles per tenant or provider-wide, API tokens, console sessions.

Passwords are stored as argon2id hashes (``argon2-cffi``), API tokens and session
secrets as SHA-256 of 256-bit random secrets (shown once, never stored).  Every change
(user created, password set, role granted or revoked, token created or revoked, login
succeeded or failed, logout) writes an audit record in the same transaction.

Failed logins are counted per user name and per client address in ``login_attempts``;
once either exceeds the policy in the sliding window, further attempts are refused with
:class:`RateLimitedError` (even with the right password) until the window has passed.
The clock is injectable so the tests can move time instead of sleeping.

This store answers *what is*; *who may* is decided above it, in
:mod:`openmdr.api.rbac` and the services of :mod:`openmdr.api.services`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from openmdr.store.errors import ConflictError, NotFoundError, StoreError, ValidationError
from openmdr.store.schema import BigId, UTCDateTime, metadata, tenants
from openmdr.store.state import StateStore

#: Every role a user can hold (what each may do is :data:`openmdr.api.rbac.ROLE_PERMISSIONS`).
ROLES: tuple[str, ...] = (
    "provider_admin", "soc_analyst", "detection_engineer", "tenant_admin", "tenant_analyst", "auditor",
    "customer_viewer",
)  # fmt: skip
#: Roles that exist only provider-wide.
PROVIDER_ONLY_ROLES: frozenset[str] = frozenset({"provider_admin"})
#: Roles that exist only within one tenant.
TENANT_ONLY_ROLES: frozenset[str] = frozenset({"tenant_admin", "tenant_analyst", "customer_viewer"})
#: The ``scope`` column value of a provider-wide assignment (not a valid tenant name).
PROVIDER_SCOPE = "*"
#: Prefix of API token secrets (distinct from ingest tokens' ``omdr_``; helps secret scanners).
API_TOKEN_PREFIX = "omdr_at_"
#: Prefix of console session secrets.
SESSION_PREFIX = "omdr_s_"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=True),
    UniqueConstraint("username"),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(32), nullable=False),
    # a tenant name, or PROVIDER_SCOPE for a provider-wide assignment
    Column("scope", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("user_id", "role", "scope"),
    Index(None, "scope", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=True),
    Column("tenant", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("token_hash"),
    Index(None, "user_id"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_hash", String(64), nullable=False),
    Column("csrf_hash", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("session_hash"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Index(None, "key", "time"),
)


class AuthenticationError(StoreError, PermissionError):
    """The credentials are wrong, unknown, expired, revoked or belong to a disabled user."""


class RateLimitedError(StoreError, PermissionError):
    """Too many failed attempts: ``retry_after`` seconds until the next attempt is considered."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Grant:
    """One role assignment: ``role`` within ``tenant``, or provider-wide when ``tenant`` is None."""

    role: str
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as listed (never the password hash)."""

    username: str
    display_name: str
    disabled: bool
    created_at: datetime
    grants: tuple[Grant, ...] = ()
    has_password: bool = True


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    """An API token as listed (never its secret).  ``scopes`` None = all the user's permissions."""

    id: int
    username: str
    name: str
    scopes: tuple[str, ...] | None
    tenant: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live console session: whose it is and until when."""

    id: int
    username: str
    client: str
    created_at: datetime
    expires_at: datetime
    csrf_hash: str


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the two secrets the client gets once."""

    secret: str
    csrf_token: str
    expires_at: datetime
    user: UserInfo


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Authentication limits: failures allowed per user name and per client in a window, session lifetime."""

    max_failures_per_user: int = 5
    max_failures_per_client: int = 20
    window: timedelta = timedelta(minutes=15)
    session_lifetime: timedelta = timedelta(hours=12)
    session_idle: timedelta = timedelta(hours=1)
    max_token_lifetime: timedelta = timedelta(days=366)


def secret_hash(secret: str) -> str:
    """SHA-256 hex of a token or session secret (the secrets carry 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def validate_username(name: str) -> str:
    """A user name: 1-64 of lower-case letters, digits and ``._@-``, starting with a letter or digit."""
    if not isinstance(name, str) or not _USERNAME.match(name):
        raise ValidationError("a user name is 1-64 characters: a-z, 0-9 and . _ @ - (starting with a letter or digit)")
    return name


def validate_password(password: str) -> str:
    """Passwords of 12 to 1024 characters (length beats composition rules)."""
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationError(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return password


def validate_grant(grant: Grant) -> Grant:
    """Check the role exists and may be held at this scope (provider-wide or in one tenant)."""
    if grant.role not in ROLES:
        raise ValidationError(f"unknown role {grant.role!r}; roles: {', '.join(ROLES)}")
    if grant.tenant is None and grant.role in TENANT_ONLY_ROLES:
        raise ValidationError(f"role {grant.role} is held within one tenant: name the tenant")
    if grant.tenant is not None and grant.role in PROVIDER_ONLY_ROLES:
        raise ValidationError(f"role {grant.role} is provider-wide: it cannot be limited to a tenant")
    return grant


def _scope(tenant: str | None) -> str:
    return PROVIDER_SCOPE if tenant is None else tenant


def _tenant_of(scope: str) -> str | None:
    return None if scope == PROVIDER_SCOPE else scope


def _actor_of(username: str) -> str:
    return f"user:{username}"[:200]


class IdentityStore:
    """Users, role assignments, API tokens, console sessions and login rate limits over the state store."""

    def __init__(
        self,
        state: StateStore,
        *,
        clock: Callable[[], datetime] | None = None,
        hasher: PasswordHasher | None = None,
        policy: LoginPolicy | None = None,
    ) -> None:
        self.state = state
        self._clock = clock or (lambda: datetime.now(UTC))
        self.hasher = hasher or PasswordHasher()
        self.policy = policy or LoginPolicy()
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))

    def now(self) -> datetime:
        """The store's current time (injectable for tests)."""
        return self._clock()

    # ---------------------------------------------------------------- users
    def create_user(
        self,
        username: str,
        actor: str,
        *,
        display_name: str = "",
        password: str | None = None,
        grants: Sequence[Grant] = (),
    ) -> UserInfo:
        """Create a user (optionally with a password and roles); :class:`ConflictError` if the name is taken."""
        validate_username(username)
        checked = [validate_grant(g) for g in grants]
        pw_hash = self.hasher.hash(validate_password(password)) if password is not None else None
        now = self.now()
        try:
            with self.state.transaction() as conn:
                uid = conn.execute(
                    users.insert().values(
                        username=username, display_name=(display_name or username)[:200], password_hash=pw_hash,
                        disabled=False, created_at=now, created_by=actor, updated_at=now,
                        password_changed_at=now if pw_hash else None,
                    )
                ).inserted_primary_key[0]  # fmt: skip
                details = {"display_name": display_name or username, "password_set": pw_hash is not None}
                self.state.append_audit(conn, actor, "user.create", None, username, details)
                for grant in checked:
                    self._grant(conn, int(uid), username, grant, actor, now)
        except IntegrityError:
            raise ConflictError(f"user name {username!r} is not available") from None
        user = self.get_user(username)
        assert user is not None
        return user

    def get_user(self, username: str, tenant: str | None = None) -> UserInfo | None:
        """The user, or None.  With ``tenant``: only if they hold a role there, showing only that tenant's roles."""
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                return None
            grants = self._grants(conn, [int(row.id)]).get(int(row.id), ())
        if tenant is not None:
            grants = tuple(g for g in grants if g.tenant == tenant)
            if not grants:
                return None
        return _row_user(row, grants)

    def list_users(self, tenant: str | None = None) -> list[UserInfo]:
        """All users (provider view), or only those holding a role in ``tenant`` with only those roles."""
        query = sa.select(users).order_by(users.c.username)
        if tenant is not None:
            members = sa.select(role_assignments.c.user_id).where(role_assignments.c.scope == tenant)
            query = query.where(users.c.id.in_(members))
        with self.state.transaction() as conn:
            rows = conn.execute(query).all()
            grants = self._grants(conn, [int(r.id) for r in rows])
        out = []
        for r in rows:
            held = grants.get(int(r.id), ())
            if tenant is not None:
                held = tuple(g for g in held if g.tenant == tenant)
            out.append(_row_user(r, held))
        return out

    def set_password(self, username: str, password: str, actor: str) -> None:
        """Set a user's password (argon2id) and end their console sessions."""
        pw_hash = self.hasher.hash(validate_password(password))
        now = self.now()
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            conn.execute(users.update().where(users.c.id == uid).values(
                password_hash=pw_hash, password_changed_at=now, updated_at=now))  # fmt: skip
            ended = self._end_sessions(conn, uid, now)
            self.state.append_audit(conn, actor, "user.password_set", None, username, {"sessions_ended": ended})

    def set_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable (or re-enable) a user; disabling ends their sessions and their tokens stop working."""
        now = self.now()
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            conn.execute(users.update().where(users.c.id == uid).values(disabled=disabled, updated_at=now))
            ended = self._end_sessions(conn, uid, now) if disabled else 0
            self.state.append_audit(conn, actor, "user.disable" if disabled else "user.enable", None, username,
                                    {"sessions_ended": ended})  # fmt: skip

    # ---------------------------------------------------------------- roles
    def grant(self, username: str, grant: Grant, actor: str) -> UserInfo:
        """Give ``username`` a role in a tenant or provider-wide (idempotent: an existing grant is kept)."""
        validate_grant(grant)
        now = self.now()
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            exists = conn.execute(sa.select(role_assignments.c.id).where(
                role_assignments.c.user_id == uid, role_assignments.c.role == grant.role,
                role_assignments.c.scope == _scope(grant.tenant))).first()  # fmt: skip
            if exists is None:
                self._grant(conn, uid, username, grant, actor, now)
        user = self.get_user(username)
        assert user is not None
        return user

    def revoke(self, username: str, grant: Grant, actor: str) -> UserInfo:
        """Take a role away; :class:`NotFoundError` if the user does not hold it at that scope."""
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            result = conn.execute(role_assignments.delete().where(
                role_assignments.c.user_id == uid, role_assignments.c.role == grant.role,
                role_assignments.c.scope == _scope(grant.tenant)))  # fmt: skip
            if result.rowcount == 0:
                where = f"tenant {grant.tenant}" if grant.tenant else "provider-wide"
                raise NotFoundError(f"user {username!r} does not hold role {grant.role} ({where})")
            self.state.append_audit(conn, actor, "role.revoke", grant.tenant, username, {"role": grant.role})
        user = self.get_user(username)
        assert user is not None
        return user

    def drop_tenant_grants(self, tenant: str, actor: str) -> int:
        """Remove every role held in ``tenant`` (before the tenant is deleted, so a namesake inherits none)."""
        with self.state.transaction() as conn:
            result = conn.execute(role_assignments.delete().where(role_assignments.c.scope == tenant))
            if result.rowcount:
                self.state.append_audit(conn, actor, "role.revoke_all", tenant, None, {"count": result.rowcount})
            return int(result.rowcount)

    def _grant(self, conn: Connection, uid: int, username: str, grant: Grant, actor: str, now: datetime) -> None:
        if grant.tenant is not None:
            found = conn.execute(sa.select(tenants.c.id).where(tenants.c.name == grant.tenant)).first()
            if found is None:
                raise NotFoundError(f"unknown tenant {grant.tenant!r}")
        conn.execute(role_assignments.insert().values(
            user_id=uid, role=grant.role, scope=_scope(grant.tenant), created_at=now, created_by=actor))  # fmt: skip
        self.state.append_audit(conn, actor, "role.grant", grant.tenant, username, {"role": grant.role})

    def _grants(self, conn: Connection, user_ids: Sequence[int]) -> dict[int, tuple[Grant, ...]]:
        out: dict[int, list[Grant]] = {}
        for start in range(0, len(user_ids), 500):
            chunk = list(user_ids[start : start + 500])
            rows = conn.execute(
                sa.select(role_assignments.c.user_id, role_assignments.c.role, role_assignments.c.scope)
                .where(role_assignments.c.user_id.in_(chunk))
                .order_by(role_assignments.c.scope, role_assignments.c.role)
            )
            for r in rows:
                out.setdefault(int(r.user_id), []).append(Grant(r.role, _tenant_of(r.scope)))
        return {k: tuple(v) for k, v in out.items()}

    def _user_id(self, conn: Connection, username: str) -> int:
        row = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"unknown user {username!r}")
        return int(row.id)

    # ---------------------------------------------------------------- rate limits
    def _failures(self, conn: Connection, key: str, since: datetime) -> tuple[int, datetime | None]:
        row = conn.execute(
            sa.select(sa.func.count().label("n"), sa.func.min(login_attempts.c.time).label("first")).where(
                login_attempts.c.key == key, login_attempts.c.time > since
            )
        ).one()
        return int(row.n), row.first

    def check_rate(self, keys: Iterable[tuple[str, int]], conn: Connection | None = None) -> None:
        """Raise :class:`RateLimitedError` when any ``(key, limit)`` has ``limit`` failures in the window."""
        if conn is None:
            with self.state.transaction() as own:
                self.check_rate(keys, own)
            return
        now = self.now()
        since = now - self.policy.window
        for key, limit in keys:
            n, first = self._failures(conn, key, since)
            if n >= limit:
                first_time = first if first is not None else now
                retry = max(1, int((first_time + self.policy.window - now).total_seconds()) + 1)
                raise RateLimitedError("too many failed attempts; try again later", retry)

    def record_failure(self, keys: Iterable[str]) -> None:
        """Count one failed attempt against every key (and forget attempts older than the window)."""
        now = self.now()
        with self.state.transaction() as conn:
            for key in keys:
                conn.execute(login_attempts.delete().where(
                    login_attempts.c.key == key, login_attempts.c.time <= now - self.policy.window))  # fmt: skip
                conn.execute(login_attempts.insert().values(key=key[:200], time=now))

    def _login_keys(self, username: str, client: str) -> list[tuple[str, int]]:
        return [(f"user:{username.lower()[:100]}", self.policy.max_failures_per_user),
                (f"client:{client[:100]}", self.policy.max_failures_per_client)]  # fmt: skip

    # ---------------------------------------------------------------- login and sessions
    def authenticate(self, username: str, password: str, client: str) -> UserInfo:
        """Check a user name and password under the rate limits; failures are counted and audited."""
        keys = self._login_keys(username, client)
        self.check_rate(keys)
        with self.state.transaction() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        reason = None
        if row is None or row.password_hash is None:
            self._verify(self._dummy_hash, password)  # same work as for a real user: no timing oracle
            reason = "unknown user" if row is None else "no password set"
        elif not self._verify(row.password_hash, password):
            reason = "wrong password"
        elif row.disabled:
            reason = "user disabled"
        if reason is not None:
            self.record_failure(k for k, _ in keys)
            target = username[:64] if isinstance(username, str) else None
            self.state.audit("anonymous", "auth.login_failed", None, target, {"client": client, "reason": reason})
            raise AuthenticationError("wrong user name or password")
        if self.hasher.check_needs_rehash(row.password_hash):
            with self.state.transaction() as conn:
                conn.execute(
                    users.update().where(users.c.id == row.id).values(password_hash=self.hasher.hash(password))
                )
        user = self.get_user(username)
        assert user is not None
        return user

    def _verify(self, pw_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(pw_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def login(self, username: str, password: str, client: str) -> NewSession:
        """Authenticate and open a console session: a session secret (cookie) and a CSRF token."""
        user = self.authenticate(username, password, client)
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.now()
        expires = now + self.policy.session_lifetime
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            conn.execute(console_sessions.insert().values(
                user_id=uid, session_hash=secret_hash(secret), csrf_hash=secret_hash(csrf), client=client[:64],
                created_at=now, last_seen_at=now, expires_at=expires))  # fmt: skip
            self.state.append_audit(conn, _actor_of(username), "auth.login", None, username,
                                    {"client": client, "method": "password"})  # fmt: skip
        return NewSession(secret, csrf, expires, user)

    def resolve_session(self, secret: str) -> tuple[SessionInfo, UserInfo] | None:
        """The live session and its (enabled) user for a session secret, or None; refreshes the idle timer."""
        if not secret or len(secret) > 200:
            return None
        now = self.now()
        query = (
            sa.select(console_sessions, users.c.username, users.c.disabled)
            .join(users, users.c.id == console_sessions.c.user_id)
            .where(console_sessions.c.session_hash == secret_hash(secret))
        )
        with self.state.transaction() as conn:
            row = conn.execute(query).first()
            if row is None or row.revoked_at is not None or row.disabled:
                return None
            if row.expires_at <= now or row.last_seen_at + self.policy.session_idle <= now:
                return None
            if now - row.last_seen_at > timedelta(seconds=60):
                conn.execute(console_sessions.update().where(console_sessions.c.id == row.id).values(last_seen_at=now))
        user = self.get_user(row.username)
        if user is None:
            return None
        info = SessionInfo(int(row.id), row.username, row.client, row.created_at, row.expires_at, row.csrf_hash)
        return info, user

    @staticmethod
    def csrf_matches(session: SessionInfo, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token issued with ``session`` (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(session.csrf_hash, secret_hash(token or ""))

    def logout(self, session: SessionInfo) -> None:
        """End one console session."""
        now = self.now()
        with self.state.transaction() as conn:
            conn.execute(console_sessions.update().where(console_sessions.c.id == session.id).values(revoked_at=now))
            self.state.append_audit(conn, _actor_of(session.username), "auth.logout", None, session.username, {})

    def _end_sessions(self, conn: Connection, uid: int, now: datetime) -> int:
        live = sa.and_(console_sessions.c.user_id == uid, console_sessions.c.revoked_at.is_(None))
        result = conn.execute(console_sessions.update().where(live).values(revoked_at=now))
        return int(result.rowcount)

    # ---------------------------------------------------------------- API tokens
    def create_api_token(
        self,
        username: str,
        name: str,
        actor: str,
        *,
        expires_at: datetime,
        scopes: Sequence[str] | None = None,
        tenant: str | None = None,
    ) -> tuple[ApiTokenInfo, str]:
        """Create an API token for ``username``: returns it and its secret (shown once, stored hashed).

        ``scopes`` limits the token to those permissions (None: all the user's); ``tenant``
        limits it to one tenant.  Every token expires.
        """
        if not _TOKEN_NAME.match(name or ""):
            raise ValidationError("a token name is 1-64 characters: letters, digits and . _ - (no leading symbol)")
        now = self.now()
        if expires_at <= now:
            raise ValidationError("the token would already be expired")
        if expires_at - now > self.policy.max_token_lifetime:
            raise ValidationError(f"a token lives at most {self.policy.max_token_lifetime.days} days")
        secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            if (
                tenant is not None
                and conn.execute(sa.select(tenants.c.id).where(tenants.c.name == tenant)).first() is None
            ):
                raise NotFoundError(f"unknown tenant {tenant!r}")
            scope_list = sorted(set(scopes)) if scopes is not None else None
            token_id = conn.execute(api_tokens.insert().values(
                user_id=uid, name=name, token_hash=secret_hash(secret), scopes=scope_list, tenant=tenant,
                created_at=now, created_by=actor, expires_at=expires_at))  # fmt: skip
            new_id = int(token_id.inserted_primary_key[0])
            self.state.append_audit(conn, actor, "api_token.create", tenant, username,
                                    {"token_id": new_id, "name": name, "scopes": scope_list,
                                     "expires_at": expires_at.isoformat()})  # fmt: skip
        info = next(t for t in self.list_api_tokens(username) if t.id == new_id)
        return info, secret

    def list_api_tokens(self, username: str) -> list[ApiTokenInfo]:
        """The user's API tokens, active and revoked, newest first."""
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            rows = conn.execute(sa.select(api_tokens).where(api_tokens.c.user_id == uid)
                                .order_by(api_tokens.c.id.desc())).all()  # fmt: skip
        return [_row_token(r, username) for r in rows]

    def revoke_api_token(self, username: str, token_id: int, actor: str) -> None:
        """Revoke one of ``username``'s tokens (a token of another user is never touched)."""
        now = self.now()
        with self.state.transaction() as conn:
            uid = self._user_id(conn, username)
            result = conn.execute(api_tokens.update().where(
                api_tokens.c.id == token_id, api_tokens.c.user_id == uid, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=actor))  # fmt: skip
            if result.rowcount == 0:
                raise NotFoundError(f"user {username!r} has no active API token {token_id}")
            self.state.append_audit(conn, actor, "api_token.revoke", None, username, {"token_id": token_id})

    def resolve_api_token(self, secret: str, client: str = "unknown") -> tuple[ApiTokenInfo, UserInfo]:
        """The active token and its enabled user for a secret; failures count against the client's limit.

        One transaction on the hot path (every API request): rate check, token, user and roles.
        """
        client_key = (f"client:{client[:100]}", self.policy.max_failures_per_client)
        now = self.now()
        with self.state.transaction() as conn:
            self.check_rate([client_key], conn)
            row = None
            if secret and len(secret) <= 200:
                query = (
                    sa.select(api_tokens, users.c.username, users.c.disabled, users.c.display_name,
                              users.c.created_at.label("user_created_at"), users.c.password_hash)
                    .join(users, users.c.id == api_tokens.c.user_id)
                    .where(api_tokens.c.token_hash == secret_hash(secret))
                )  # fmt: skip
                row = conn.execute(query).first()
            valid = row is not None and not row.disabled and _row_token(row, row.username).active(now)
            if valid:
                assert row is not None
                grants = self._grants(conn, [int(row.user_id)]).get(int(row.user_id), ())
                if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=60):
                    conn.execute(api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now))
        if not valid or row is None:
            self.record_failure([client_key[0]])
            raise AuthenticationError("missing, invalid, expired or revoked API token")
        user = UserInfo(
            row.username, row.display_name, False, row.user_created_at, grants, row.password_hash is not None
        )
        return _row_token(row, row.username), user


def _row_user(row: Any, grants: tuple[Grant, ...]) -> UserInfo:
    return UserInfo(row.username, row.display_name, bool(row.disabled), row.created_at, grants,
                    row.password_hash is not None)  # fmt: skip


def _row_token(row: Any, username: str) -> ApiTokenInfo:
    scopes = tuple(row.scopes) if row.scopes is not None else None
    return ApiTokenInfo(int(row.id), username, row.name, scopes, row.tenant, row.created_at, row.created_by,
                        row.expires_at, row.revoked_at, row.last_used_at)  # fmt: skip
