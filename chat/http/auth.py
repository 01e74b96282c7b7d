"""Sign-in, sign-out, the current user, and which side this connection is on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from chat import auth, policy
from chat.http.deps import ActorDep, CurrentUser, IngressDep, ServicesDep
from chat.http.schemas import LoginIn
from chat.http.views import user_view
from chat.sides import SIDE_NAMES_EN, SIDE_NAMES_JA
from chat.ws import session_cookie

router = APIRouter(prefix="/api/auth", tags=["auth"])
CSRF_COOKIE = "kakehashi_csrf"


def csrf_cookie(side: str) -> str:
    return f"{CSRF_COOKIE}_{side}"


def _secure(request: Request, mode: str) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.url.scheme == "https"


@router.get("/side")
async def side(ingress: IngressDep) -> Any:
    """The side the server decided for this connection (no sign-in needed): the sign-in page
    shows it, and the page's script finds its cookies by it."""
    return {
        "side": ingress.side,
        "name": SIDE_NAMES_JA[ingress.side],
        "name_en": SIDE_NAMES_EN[ingress.side],
    }


@router.post("/login")
async def login(
    body: LoginIn, request: Request, response: Response, services: ServicesDep, ingress: IngressDep
) -> Any:
    settings = services.settings
    result = await auth.sign_in(
        services.db,
        body.login_id,
        body.password,
        ttl=timedelta(hours=settings.session_ttl_hours),
        side=ingress.side,
        address=ingress.address,
        user_agent=request.headers.get("user-agent", ""),
        claim=auth.ClientClaim(
            platform=body.platform,
            capabilities=tuple(body.capabilities),
            device_id=body.device_id,
            device_credential=body.device_credential,
        ),
    )
    secure = _secure(request, settings.cookie_secure)
    max_age = settings.session_ttl_hours * 3600
    response.set_cookie(
        session_cookie(ingress.side),
        result.token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    csrf = auth.csrf_token_for(result.token)
    # Readable by the page's own script (double submit); useless without the session cookie.
    response.set_cookie(
        csrf_cookie(ingress.side),
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    async with services.read() as uow:
        current = await policy.get_policy(uow, result.principal.org_id)
    return {
        "token": result.token,
        "csrf_token": csrf,
        "side": ingress.side,
        "user": user_view(result.principal.user),
        "restrictions": policy.restrictions(current, result.principal.client).to_dict(),
    }


def _forget(response: Response, side: str) -> None:
    response.delete_cookie(session_cookie(side), path="/")
    response.delete_cookie(csrf_cookie(side), path="/")


@router.post("/logout")
async def logout(
    principal: CurrentUser, actor: ActorDep, response: Response, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        await auth.sign_out(uow, actor, principal.session_id)
    _forget(response, principal.side)
    return {"ok": True}


@router.post("/logout-all")
async def logout_all(
    principal: CurrentUser, actor: ActorDep, response: Response, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        ids = await auth.sign_out_everywhere(uow, actor, principal.user_id)
    _forget(response, principal.side)
    return {"ok": True, "sessions_ended": len(ids)}


@router.get("/me")
async def me(principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        current = await policy.get_policy(uow, principal.org_id)
    return {
        "user": user_view(principal.user),
        "session_id": principal.session_id,
        "side": principal.side,
        "restrictions": policy.restrictions(current, principal.client).to_dict(),
    }
