"""FastAPI dependencies: the services, the caller (cookie or bearer token) and CSRF."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat.auth import Principal, authenticate, csrf_matches
from chat.errors import Forbidden
from chat.services import Services
from chat.ws import SESSION_COOKIE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def request_token(request: Request) -> tuple[str | None, bool]:
    """``(token, from_cookie)``: a bearer token wins over the cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None, False
    return request.cookies.get(SESSION_COOKIE), True


async def get_principal(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Principal:
    token, from_cookie = request_token(request)
    principal = await authenticate(services.db, token)
    if from_cookie and request.method not in SAFE_METHODS:
        assert token is not None
        if not csrf_matches(token, request.headers.get(CSRF_HEADER)):
            raise Forbidden(
                "ページを再読み込みしてから、もう一度お試しください(CSRFトークンが一致しません)。",
                "Reload the page and try again (the CSRF token is missing or wrong).",
                code="csrf_failed",
            )
    request.state.principal = principal
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
