"""FastAPI dependencies: the services, the caller (cookie or bearer token) and CSRF."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat.audit import Actor
from chat.auth import Principal, authenticate, csrf_matches
from chat.errors import Forbidden
from chat.services import Services
from chat.settings import CSV_IMPORT_MAX_BYTES
from chat.sides import Ingress, ingress_of
from chat.user_import import csv_too_large
from chat.ws import session_cookie

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


# Dependencies are ``async def`` even where they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per dependency on every request.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_ingress(request: Request) -> Ingress:
    """The side and the client's address, as the server decided them (chat/sides.py)."""
    return ingress_of(request.scope)


def request_token(request: Request, side: str) -> tuple[str | None, bool]:
    """``(token, from_cookie)``: a bearer token wins over the side's cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None, False
    return request.cookies.get(session_cookie(side)), True


async def get_principal(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    ingress: Annotated[Ingress, Depends(get_ingress)],
) -> Principal:
    token, from_cookie = request_token(request, ingress.side)
    principal = await authenticate(services.db, token, ingress.side)
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


async def get_actor(
    principal: Annotated[Principal, Depends(get_principal)],
    ingress: Annotated[Ingress, Depends(get_ingress)],
) -> Actor:
    """The signed-in caller as the audit log records it."""
    user = principal.user
    return Actor(user.id, user.login_id, user.org_id, ingress.side, ingress.address)


async def read_csv_body(request: Request) -> bytes:
    """A CSV upload's body, refused as soon as it passes ``CSV_IMPORT_MAX_BYTES``."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > CSV_IMPORT_MAX_BYTES:
            raise csv_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
IngressDep = Annotated[Ingress, Depends(get_ingress)]
ActorDep = Annotated[Actor, Depends(get_actor)]
