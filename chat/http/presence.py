"""Who is online, and on which side (在宅 = internet side / 庁内 = LGWAN side)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from chat.errors import BadRequest
from chat.http.deps import CurrentUser, ServicesDep
from chat.models import User

router = APIRouter(prefix="/api", tags=["presence"])
PRESENCE_QUERY_MAX = 500


@router.get("/presence")
async def presence(principal: CurrentUser, services: ServicesDep, user_ids: str) -> Any:
    """``user_ids=1,2,3`` → for each, the sides with an open connection (``[]``: offline).
    Only people of the caller's organisation are answered; others are left out."""
    try:
        wanted = [int(part) for part in user_ids.split(",") if part.strip()]
    except ValueError:
        raise BadRequest(
            "user_ids はカンマ区切りの数字で指定してください。",
            "user_ids must be numbers separated by commas.",
        ) from None
    if len(wanted) > PRESENCE_QUERY_MAX:
        raise BadRequest(
            f"一度に問い合わせられるのは{PRESENCE_QUERY_MAX}人までです。",
            f"Ask for at most {PRESENCE_QUERY_MAX} people at a time.",
        )
    async with services.read() as uow:
        known = set(
            (
                await uow.session.execute(
                    select(User.id).where(User.id.in_(wanted), User.org_id == principal.org_id)
                )
            ).scalars()
        )
    found = await services.hub.presence.lookup(uid for uid in wanted if uid in known)
    return {"presence": {str(uid): sides for uid, sides in found.items()}}
