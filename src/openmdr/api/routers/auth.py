"""Sign-in, sign-out, the caller's identity, own password and own API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response

from openmdr.api.deps import (
    COMMON_RESPONSES,
    SESSION_COOKIE,
    Services,
    client_address,
    current_principal,
    current_session,
    services,
)
from openmdr.api.rbac import Principal
from openmdr.api.schemas import (
    ApiTokenBody,
    ApiTokenOut,
    GrantBody,
    LoginBody,
    LoginOut,
    MeOut,
    NewApiTokenOut,
    OkOut,
    PasswordChangeBody,
)
from openmdr.store.identity import SessionInfo

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=COMMON_RESPONSES)


@router.post("/auth/login", response_model=LoginOut)
def login(body: LoginBody, request: Request, response: Response, svc: Services = Depends(services)) -> LoginOut:
    """Console sign-in: sets the session cookie and returns the CSRF token (rate-limited)."""
    session = svc.auth.login(body.username, body.password, client_address(request))
    max_age = int((session.expires_at - svc.identity.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE, session.secret, max_age=max_age, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return LoginOut(username=session.user.username, csrf_token=session.csrf_token, expires_at=session.expires_at)


@router.post("/auth/logout", response_model=OkOut)
def logout(
    response: Response,
    session: SessionInfo = Depends(current_session),
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> OkOut:
    """End the console session (needs the CSRF token like every change)."""
    svc.identity.logout(session)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return OkOut()


@router.get("/me", response_model=MeOut)
def me(principal: Principal = Depends(current_principal), svc: Services = Depends(services)) -> MeOut:
    """Who the caller is and which permissions they hold where."""
    tenants = sorted({g.tenant for g in principal.grants if g.tenant is not None})
    if principal.permissions(None):
        tenants = [t.name for t in svc.state.list_tenants()]
    per_tenant = {t: sorted(principal.permissions(t)) for t in tenants}
    return MeOut(
        username=principal.name, via=principal.via,
        grants=[GrantBody(role=g.role, tenant=g.tenant)
                for g in sorted(principal.grants, key=lambda g: (g.tenant or "", g.role))],
        provider_permissions=sorted(principal.permissions(None)),
        tenant_permissions={t: p for t, p in per_tenant.items() if p},
        token_scopes=sorted(principal.scopes) if principal.scopes is not None else None,
        token_tenant=principal.token_tenant,
    )  # fmt: skip


@router.post("/me/password", response_model=OkOut)
def change_password(
    body: PasswordChangeBody,
    request: Request,
    principal: Principal = Depends(current_principal),
    svc: Services = Depends(services),
) -> OkOut:
    """Change one's own password (proving the current one); every session ends."""
    svc.auth.change_own_password(principal, body.current_password, body.new_password, client_address(request))
    return OkOut()


@router.get("/me/tokens", response_model=list[ApiTokenOut])
def my_tokens(
    principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> list[ApiTokenOut]:
    """The caller's API tokens."""
    return [ApiTokenOut.of(t) for t in svc.users.list_tokens(principal, principal.name)]


@router.post("/me/tokens", response_model=NewApiTokenOut, status_code=201)
def create_my_token(
    body: ApiTokenBody, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> NewApiTokenOut:
    """Create an API token for the caller (its secret is shown only in this answer)."""
    info, secret = svc.users.create_token(
        principal, principal.name, body.name, expires_in=timedelta(days=body.expires_in_days), scopes=body.scopes,
        tenant=body.tenant,
    )  # fmt: skip
    return NewApiTokenOut(token=ApiTokenOut.of(info), secret=secret)


@router.delete("/me/tokens/{token_id}", response_model=OkOut)
def revoke_my_token(
    token_id: int, principal: Principal = Depends(current_principal), svc: Services = Depends(services)
) -> OkOut:
    """Revoke one of the caller's API tokens."""
    svc.users.revoke_token(principal, principal.name, token_id)
    return OkOut()
