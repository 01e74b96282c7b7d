"""Rooms, messages, receipts and search over REST.  Parsing only; the domain decides."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from chat import attachments, messages, receipts, rooms, search
from chat.auth import Principal
from chat.http.deps import CurrentUser, ServicesDep
from chat.http.schemas import (
    BulkRoomsIn,
    DirectIn,
    GroupIn,
    MembersIn,
    MessageIn,
    MessagePatch,
    ReadIn,
    RoomPatch,
)
from chat.messages import message_dict
from chat.models import RoomMember, User
from chat.rooms import room_dict
from chat.unit import Unit

router = APIRouter(prefix="/api", tags=["rooms"])


def _summary(s: rooms.RoomSummary) -> dict[str, Any]:
    last = s.last_message
    return {
        **room_dict(s.room),
        "title": s.title,
        "my_role": s.role,
        "read_seq": s.read_seq,
        "archived_by_me": s.archived_by_me,
        "unread": s.unread,
        "mentions": s.mentions,
        "mentions_me": s.mentions_me,
        "mentions_all": s.mentions_all,
        "members": s.members,
        "last_message": message_dict(last, s.last_sender) if last else None,
    }


@router.get("/rooms")
async def list_rooms(
    principal: CurrentUser, services: ServicesDep, include_archived: bool = False
) -> Any:
    async with services.read() as uow:
        items = await rooms.list_my_rooms(uow, principal, include_archived=include_archived)
    return {"rooms": [_summary(s) for s in items]}


@router.post("/rooms", status_code=201)
async def create_group(body: GroupIn, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        room = await rooms.create_group(uow, principal, body.name, body.member_ids)
    return room_dict(room)


@router.post("/rooms/direct")
async def open_direct(
    body: DirectIn, principal: CurrentUser, services: ServicesDep, response: Response
) -> Any:
    async with services.unit() as uow:
        room, created = await rooms.open_direct(uow, principal, body.user_id)
    response.status_code = 201 if created else 200
    return {**room_dict(room), "created": created}


@router.post("/rooms/bulk")
async def bulk(body: BulkRoomsIn, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        return await rooms.bulk_rooms(uow, principal, body.action, body.room_ids)


@router.get("/rooms/{room_id}")
async def get_room(room_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        room, member = await rooms.check_member(uow, principal, room_id)
        positions = await receipts.read_positions(uow, room_id)
        users = await _users(uow, list(positions))
        roles = dict(
            (
                await uow.session.execute(
                    select(RoomMember.user_id, RoomMember.role).where(RoomMember.room_id == room_id)
                )
            ).all()
        )
    return {
        **room_dict(room),
        "my_role": member.role,
        "read_seq": member.read_seq,
        "members": [
            {
                "id": uid,
                "display_name": users.get(uid, ""),
                "read_seq": pos,
                "role": roles.get(uid, "member"),
            }
            for uid, pos in positions.items()
        ],
    }


async def _users(uow: Unit, ids: list[int]) -> dict[int, str]:
    rows = await uow.session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {k: v for k, v in rows.all()}


@router.patch("/rooms/{room_id}")
async def patch_room(
    room_id: int, body: RoomPatch, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        room = None
        if body.name is not None:
            room = await rooms.rename_room(uow, principal, room_id, body.name)
        if body.archived is not None:
            room = await rooms.archive_room(uow, principal, room_id, body.archived)
        if room is None:
            room, _ = await rooms.check_member(uow, principal, room_id)
    return room_dict(room)


@router.post("/rooms/{room_id}/members")
async def add_members(
    room_id: int, body: MembersIn, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        added = await rooms.add_members(uow, principal, room_id, body.user_ids)
    return {"added": added}


@router.delete("/rooms/{room_id}/members/{user_id}")
async def remove_member(
    room_id: int, user_id: int, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        await rooms.remove_member(uow, principal, room_id, user_id)
    return {"ok": True}


@router.post("/rooms/{room_id}/leave")
async def leave(room_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        await rooms.leave_room(uow, principal, room_id)
    return {"ok": True}


async def _page_view(uow: Unit, principal: Principal, room_id: int, page: messages.Page) -> Any:
    positions = await receipts.read_positions(uow, room_id)
    reactions = await messages.reactions_for(uow, [m.id for m in page.messages])
    files = await attachments.for_messages(uow, [m.id for m in page.messages])
    return {
        "messages": [
            {
                **message_dict(m, page.senders.get(m.sender_id), files.get(m.id)),
                "read_count": receipts.read_count(positions, m),
                "reactions": reactions.get(m.id, {}),
            }
            for m in page.messages
        ],
        "has_before": page.has_before,
        "has_after": page.has_after,
        "read_seq": positions.get(principal.user_id, 0),
        "member_count": len(positions),
    }


@router.get("/rooms/{room_id}/messages")
async def history(
    room_id: int,
    principal: CurrentUser,
    services: ServicesDep,
    before: int | None = Query(default=None, ge=0),
    after: int | None = Query(default=None, ge=0),
    limit: int = Query(default=50, ge=1, le=200),
    around: str | None = Query(default=None, pattern="^(first_unread|[0-9]{1,18})$"),
) -> Any:
    """Cursor paging by sequence number.  ``around=first_unread`` starts the page at my first
    unread message (``first_unread_seq`` in the answer; null when all is read);
    ``around=<seq>`` gives a page with that message in its middle (a search hit, a reply)."""
    async with services.read() as uow:
        first_unread = None
        if around == "first_unread":
            first_unread = await messages.first_unread_seq(uow, principal, room_id)
            if first_unread is not None:
                after = first_unread - 1
        elif around is not None:
            after = max(int(around) - limit // 2 - 1, 0)
        page = await messages.history(
            uow, principal, room_id, before=before, after=after, limit=limit
        )
        view = await _page_view(uow, principal, room_id, page)
    view["first_unread_seq"] = first_unread
    return view


@router.post("/rooms/{room_id}/messages", status_code=201)
async def send(
    room_id: int, body: MessageIn, principal: CurrentUser, services: ServicesDep, response: Response
) -> Any:
    async with services.unit() as uow:
        sent = await messages.send_message(
            uow,
            principal,
            room_id,
            client_id=body.client_id,
            body=body.body,
            reply_to_id=body.reply_to_id,
            attachment_ids=body.attachment_ids,
            location=body.location,
        )
    response.status_code = 201 if sent.created else 200
    return {
        **message_dict(sent.message, principal.user, sent.attachments),
        "duplicate": not sent.created,
    }


@router.post("/rooms/{room_id}/read")
async def mark_read(
    room_id: int, body: ReadIn, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        seq = await receipts.mark_read(uow, principal, room_id, body.seq)
    return {"read_seq": seq}


@router.get("/messages/{message_id}")
async def get_message(message_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    """One message (e.g. the quoted message of a reply that is not on screen)."""
    async with services.read() as uow:
        message = await messages.visible_message(uow, principal, message_id)
        sender = await uow.session.get(User, message.sender_id)
        reactions = await messages.reactions_for(uow, [message.id])
        positions = await receipts.read_positions(uow, message.room_id)
        files = await attachments.for_messages(uow, [message.id])
    return {
        **message_dict(message, sender, files.get(message.id)),
        "read_count": receipts.read_count(positions, message),
        "reactions": reactions.get(message.id, {}),
    }


@router.patch("/messages/{message_id}")
async def edit(
    message_id: int, body: MessagePatch, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        message = await messages.edit_message(uow, principal, message_id, body.body)
    return message_dict(message, principal.user)


@router.post("/messages/{message_id}/recall")
async def recall(message_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.unit() as uow:
        message = await messages.recall_message(uow, principal, message_id)
    return message_dict(message, principal.user)


@router.get("/messages/{message_id}/edits")
async def edits(message_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        rows = await messages.edit_history(uow, principal, message_id)
    return {"edits": [{"body": e.body, "replaced_at": e.edited_at.isoformat()} for e in rows]}


@router.get("/messages/{message_id}/readers")
async def readers(message_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        return await receipts.readers(uow, principal, message_id)


@router.put("/messages/{message_id}/reactions/{emoji}")
async def add_reaction(
    message_id: int, emoji: str, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        await messages.react(uow, principal, message_id, emoji, on=True)
    return {"ok": True}


@router.delete("/messages/{message_id}/reactions/{emoji}")
async def remove_reaction(
    message_id: int, emoji: str, principal: CurrentUser, services: ServicesDep
) -> Any:
    async with services.unit() as uow:
        await messages.react(uow, principal, message_id, emoji, on=False)
    return {"ok": True}


@router.get("/search")
async def search_messages(
    principal: CurrentUser,
    services: ServicesDep,
    q: str = Query(max_length=200),
    room_id: int | None = None,
    sender_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = Query(default=30, ge=1, le=100),
) -> Any:
    async with services.read() as uow:
        hits = await search.search_messages(
            uow,
            principal,
            q,
            room_id=room_id,
            sender_id=sender_id,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
    return {"results": [message_dict(h.message, h.sender) for h in hits]}
