"""Release requests for originals, and the supervisors' inbox of requests to decide."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from chat import approvals, attachments
from chat.errors import BadRequest
from chat.http.deps import ActorDep, CurrentUser, ServicesDep
from chat.http.schemas import DecisionIn, ReleaseRequestIn

router = APIRouter(prefix="/api", tags=["approvals"])
STATES = ("pending", "approved", "rejected", "all")


@router.post("/attachments/{attachment_id}/release-requests", status_code=201)
async def request_release(
    attachment_id: int,
    body: ReleaseRequestIn,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    """Ask a supervisor to release the original of a file sent from the internet side."""
    async with services.unit() as uow:
        attachment = await attachments.visible(uow, principal, attachment_id)
        approval = await approvals.request_release(uow, principal, actor, attachment, body.reason)
        return approvals.approval_dict(approval, attachment)


@router.get("/approvals")
async def inbox(principal: CurrentUser, services: ServicesDep, state: str = "pending") -> Any:
    """``to_decide``: requests the caller may decide; ``mine``: the caller's own."""
    if state not in STATES:
        raise BadRequest(
            "state は pending・approved・rejected・all のいずれかです。",
            "state must be pending, approved, rejected or all.",
        )
    async with services.read() as uow:
        return await approvals.inbox(uow, principal, state=None if state == "all" else state)


async def _decide(
    approval_id: int, approve: bool, body: DecisionIn, principal: Any, actor: Any, services: Any
) -> Any:
    async with services.unit() as uow:
        approval, attachment = await approvals.decide(
            uow, principal, actor, approval_id, approve=approve, note=body.note
        )
        return approvals.approval_dict(approval, attachment)


@router.post("/approvals/{approval_id}/approve")
async def approve(
    approval_id: int,
    body: DecisionIn,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    return await _decide(approval_id, True, body, principal, actor, services)


@router.post("/approvals/{approval_id}/reject")
async def reject(
    approval_id: int,
    body: DecisionIn,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    return await _decide(approval_id, False, body, principal, actor, services)
