"""What every router shares: the services of the process, who the caller is, and error mapping.

Authentication is by ``Authorization: Bearer <API token>`` (integrations) or by the
console session cookie.  A cookie-authenticated request that changes anything must also
carry the session's CSRF token in ``X-CSRF-Token`` (the cookie is ``SameSite=Strict``
and ``HttpOnly`` as well), so another site cannot make a signed-in browser act.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from openmdr.api.rbac import PermissionDeniedError, Principal
from openmdr.api.schemas import ErrorOut
from openmdr.api.services import (
    AssetService,
    AuditService,
    AuthService,
    DeadLetterService,
    EventService,
    IngestTokenService,
    TenantService,
    UserService,
    principal_for,
)
from openmdr.store.errors import ConflictError, NotFoundError, NotMigratedError, QueryError, ValidationError
from openmdr.store.identity import AuthenticationError, IdentityStore, RateLimitedError, SessionInfo
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore

SESSION_COOKIE = "omdr_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(auto_error=False, description="API token (omdr_at_...)")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="console session")

#: The refusals every authenticated route may answer (documented in the OpenAPI document).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "invalid input"},
    401: {"model": ErrorOut, "description": "not authenticated"},
    403: {"model": ErrorOut, "description": "not permitted"},
    404: {"model": ErrorOut, "description": "not found"},
    409: {"model": ErrorOut, "description": "conflict"},
    429: {"model": ErrorOut, "description": "too many failed authentication attempts"},
}


@dataclass
class Services:
    """The services of one API process (built once in :func:`openmdr.api.app.create_app`)."""

    state: StateStore
    identity: IdentityStore
    lake: EventLake
    tenants: TenantService
    users: UserService
    auth: AuthService
    ingest_tokens: IngestTokenService
    assets: AssetService
    events: EventService
    dead_letters: DeadLetterService
    audit: AuditService
    extra: dict[str, Any]

    @classmethod
    def build(cls, state: StateStore, identity: IdentityStore, lake: EventLake) -> Services:
        """Wire every service over the stores."""
        return cls(
            state=state, identity=identity, lake=lake, tenants=TenantService(state, identity),
            users=UserService(identity), auth=AuthService(identity), ingest_tokens=IngestTokenService(state),
            assets=AssetService(state), events=EventService(state, lake), dead_letters=DeadLetterService(state),
            audit=AuditService(state), extra={},
        )  # fmt: skip


async def services(request: Request) -> Services:
    """The services of the app serving this request."""
    return request.app.state.services


def client_address(request: Request) -> str:
    """The peer address (what rate limits count failures against)."""
    return request.client.host if request.client else "unknown"


def current_session(
    request: Request,
    cookie: str | None = Depends(cookie_scheme),
    svc: Services = Depends(services),
) -> SessionInfo:
    """The console session of the cookie (for sign-out)."""
    resolved = svc.identity.resolve_session(cookie) if cookie else None
    if resolved is None:
        raise AuthenticationError("not signed in")
    return resolved[0]


def current_principal(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    cookie: str | None = Depends(cookie_scheme),
    svc: Services = Depends(services),
) -> Principal:
    """Who is calling: an API token's user (narrowed by the token) or a console session's user."""
    client = client_address(request)
    if bearer is not None:
        token, user = svc.identity.resolve_api_token(bearer.credentials, client)
        return principal_for(user, "token", token)
    if cookie:
        resolved = svc.identity.resolve_session(cookie)
        if resolved is None:
            raise AuthenticationError("the session has ended: sign in again")
        session, user = resolved
        if request.method not in _SAFE_METHODS and not svc.identity.csrf_matches(
            session, request.headers.get(CSRF_HEADER)
        ):
            raise PermissionDeniedError(f"missing or wrong {CSRF_HEADER} header")
        return principal_for(user, "session")
    raise AuthenticationError("authentication required: an API token or a console session")


# Domain errors answered with just a status and the error text as ``detail``.
_PLAIN_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationError, 400),
    (QueryError, 400),
    (LookupError, 404),
    (ValueError, 400),
    (PermissionError, 403),
    (NotMigratedError, 503),
)


def _error_answer(status: int, exc: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for a domain error: ``{"detail": str(exc)}`` with the given status and headers."""
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _plain_error_handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """An exception handler answering any error it gets with ``status`` (one per status, no extra headers)."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return _error_answer(status, exc)

    return handle


def install_error_handlers(app: FastAPI) -> None:
    """Map the domain errors to HTTP answers with a plain ``detail``."""

    @app.exception_handler(RateLimitedError)
    async def _rate(_: Request, exc: RateLimitedError) -> JSONResponse:
        return _error_answer(429, exc, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(AuthenticationError)
    async def _authn(_: Request, exc: AuthenticationError) -> JSONResponse:
        return _error_answer(401, exc, {"WWW-Authenticate": "Bearer"})

    for error, status in _PLAIN_ERROR_STATUS:
        app.add_exception_handler(error, _plain_error_handler(status))
