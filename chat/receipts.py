"""Read receipts (既読) as read positions: one row per member per room, never per message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chat.auth import Principal
from chat.errors import BadRequest, NotFound
from chat.models import Message, RoomMember, User
from chat.rooms import check_member
from chat.unit import Unit, append_event


async def mark_read(uow: Unit, principal: Principal, room_id: int, seq: int) -> int:
    """Move my read position forward (never back) to ``seq``; returns the position."""
    room, member = await check_member(uow, principal, room_id)
    if not isinstance(seq, int) or seq < 0:
        raise BadRequest("seq は0以上の整数です。", "seq is a whole number ≥ 0.")
    seq = min(seq, room.last_seq)
    if seq <= member.read_seq:
        return member.read_seq
    member.read_seq = seq
    await append_event(
        uow, room_id, "read", {"user_id": principal.user_id, "read_seq": seq}, activity=False
    )
    return seq


async def read_positions(uow: Unit, room_id: int) -> dict[int, int]:
    rows = await uow.session.execute(
        select(RoomMember.user_id, RoomMember.read_seq).where(RoomMember.room_id == room_id)
    )
    return {k: v for k, v in rows.all()}


def read_count(positions: dict[int, int], message: Message) -> int:
    """How many members other than the sender have read up to the message."""
    return sum(
        1 for uid, pos in positions.items() if uid != message.sender_id and pos >= message.seq
    )


async def readers(uow: Unit, principal: Principal, message_id: int) -> dict[str, Any]:
    message = await uow.session.get(Message, message_id)
    if message is None:
        raise NotFound("メッセージが見つかりません。", "Message not found.")
    await check_member(uow, principal, message.room_id)
    rows = await uow.session.execute(
        select(User.id, User.display_name, RoomMember.read_seq)
        .join(RoomMember, RoomMember.user_id == User.id)
        .where(RoomMember.room_id == message.room_id, User.id != message.sender_id)
        .order_by(User.kana, User.id)
    )
    read: list[dict[str, Any]] = []
    unread: list[dict[str, Any]] = []
    for uid, name, pos in rows:
        (read if pos >= message.seq else unread).append({"id": uid, "display_name": name})
    return {"message_id": message.id, "read": read, "unread": unread}
