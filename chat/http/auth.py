"""Sign-in, sign-out, the current user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from chat import auth
from chat.http.deps import CurrentUser, ServicesDep
from chat.http.schemas import LoginIn
from chat.http.views import user_view
from chat.ws import SESSION_COOKIE

router = APIRouter(prefix="/api/auth", tags=["auth"])
CSRF_COOKIE = "kakehashi_csrf"


def _secure(request: Request, mode: str) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.url.scheme == "https"


@router.post("/login")
async def login(body: LoginIn, request: Request, response: Response, services: ServicesDep) -> Any:
    settings = services.settings
    result = await auth.sign_in(
        services.db,
        body.login_id,
        body.password,
        ttl=timedelta(hours=settings.session_ttl_hours),
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )
    secure = _secure(request, settings.cookie_secure)
    max_age = settings.session_ttl_hours * 3600
    response.set_cookie(
        SESSION_COOKIE,
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
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return {"token": result.token, "csrf_token": csrf, "user": user_view(result.principal.user)}


@router.post("/logout")
async def logout(principal: CurrentUser, response: Response, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        await auth.sign_out(uow, principal.session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"ok": True}


@router.post("/logout-all")
async def logout_all(principal: CurrentUser, response: Response, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        ids = await auth.sign_out_everywhere(uow, principal.user_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"ok": True, "sessions_ended": len(ids)}


@router.get("/me")
async def me(principal: CurrentUser) -> Any:
    return {"user": user_view(principal.user), "session_id": principal.session_id}
