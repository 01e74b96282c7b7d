"""Rooms: 1:1 (one per pair) and group rooms; membership; archive; the room list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chat.accounts import get_user
from chat.auth import Principal
from chat.errors import BadRequest, ChatError, Forbidden, NotFound
from chat.models import Mention, Message, Room, RoomMember, User, utcnow
from chat.settings import BULK_ROOMS_MAX
from chat.unit import Unit, append_event

MAX_ROOM_NAME = 100
MAX_GROUP_MEMBERS = 5_000


def not_a_member() -> Forbidden:
    return Forbidden(
        "このルームのメンバーではありません。",
        "You are not a member of this room.",
        code="not_a_member",
    )


async def get_room(uow: Unit, room_id: int) -> Room:
    room = await uow.session.get(Room, room_id)
    if room is None:
        raise NotFound("ルームが見つかりません。", "Room not found.")
    return room


async def membership(uow: Unit, room_id: int, user_id: int) -> RoomMember | None:
    return await uow.session.get(RoomMember, (room_id, user_id))


async def check_member(uow: Unit, principal: Principal, room_id: int) -> tuple[Room, RoomMember]:
    """The room and the caller's membership; a non-member learns nothing (not even existence)."""
    member = await membership(uow, room_id, principal.user_id)
    if member is None:
        raise not_a_member()
    return await get_room(uow, room_id), member


def room_archived() -> Forbidden:
    return Forbidden(
        "アーカイブされたルームには書き込めません。",
        "This room is archived and read-only.",
        code="forbidden",
    )


async def check_writable(uow: Unit, principal: Principal, room_id: int) -> tuple[Room, RoomMember]:
    room, member = await check_member(uow, principal, room_id)
    if room.archived_at is not None:
        raise room_archived()
    return room, member


async def check_room_admin(
    uow: Unit, principal: Principal, room_id: int
) -> tuple[Room, RoomMember]:
    room, member = await check_member(uow, principal, room_id)
    if room.kind != "group":
        raise BadRequest("1対1のルームではこの操作はできません。", "Not possible in a 1:1 room.")
    if member.role != "admin" and principal.user.role != "admin":
        raise Forbidden(
            "この操作はルーム管理者だけが行えます。", "Only a room administrator may do this."
        )
    return room, member


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_ROOM_NAME:
        raise BadRequest(
            f"ルーム名を{MAX_ROOM_NAME}文字以内で入力してください。",
            f"A room needs a name of at most {MAX_ROOM_NAME} characters.",
        )
    return name


def user_brief(user: User) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name, "login_id": user.login_id}


async def _add_member(uow: Unit, room: Room, user: User, role: str, by: int | None) -> None:
    event = await append_event(
        uow,
        room.id,
        "member.added",
        {"user": user_brief(user), "role": role, "by": by},
    )
    # The new member sees the room from this event on; their read position starts here.
    uow.session.add(
        RoomMember(
            room_id=room.id, user_id=user.id, role=role, joined_seq=event.seq, read_seq=event.seq
        )
    )


async def _active_user(uow: Unit, principal: Principal, user_id: int) -> User:
    user = await get_user(uow, principal.org_id, user_id)
    if not user.is_active:
        raise BadRequest(
            f"{user.display_name}さんのアカウントは無効です。",
            f"{user.display_name}'s account is deactivated.",
        )
    return user


async def open_direct(uow: Unit, principal: Principal, other_id: int) -> tuple[Room, bool]:
    """The 1:1 room of the pair, created on first use; ``(room, created)``."""
    if other_id == principal.user_id:
        raise BadRequest("自分自身との1対1ルームは作れません。", "Pick someone else.")
    other = await _active_user(uow, principal, other_id)
    low, high = sorted((principal.user_id, other.id))
    key = f"{low}:{high}"
    room = await uow.session.scalar(select(Room).where(Room.direct_key == key))
    if room is not None:
        return room, False
    room = Room(
        org_id=principal.org_id, kind="direct", direct_key=key, created_by=principal.user_id
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(room)
            await uow.session.flush()
    except IntegrityError:
        # The other person (or a retry) opened it at the same moment: that room it is.
        found = await uow.session.scalar(select(Room).where(Room.direct_key == key))
        if found is None:
            raise
        return found, False
    await _add_member(uow, room, principal.user, "member", principal.user_id)
    await _add_member(uow, room, other, "member", principal.user_id)
    return room, True


async def create_group(uow: Unit, principal: Principal, name: str, member_ids: list[int]) -> Room:
    name = _check_name(name)
    ids = [i for i in dict.fromkeys(member_ids) if i != principal.user_id]
    if len(ids) + 1 > MAX_GROUP_MEMBERS:
        raise BadRequest("メンバーが多すぎます。", "Too many members.")
    users = [await _active_user(uow, principal, i) for i in ids]
    room = Room(org_id=principal.org_id, kind="group", name=name, created_by=principal.user_id)
    uow.session.add(room)
    await uow.session.flush()
    await append_event(uow, room.id, "room.created", {"name": name, "by": principal.user_id})
    await _add_member(uow, room, principal.user, "admin", principal.user_id)
    for user in users:
        await _add_member(uow, room, user, "member", principal.user_id)
    return room


async def rename_room(uow: Unit, principal: Principal, room_id: int, name: str) -> Room:
    room, _ = await check_room_admin(uow, principal, room_id)
    room.name = _check_name(name)
    await append_event(uow, room.id, "room.updated", {"name": room.name, "by": principal.user_id})
    return room


async def add_members(
    uow: Unit, principal: Principal, room_id: int, user_ids: list[int]
) -> list[int]:
    room, _ = await check_room_admin(uow, principal, room_id)
    added = []
    for user_id in dict.fromkeys(user_ids):
        if await membership(uow, room.id, user_id) is not None:
            continue
        user = await _active_user(uow, principal, user_id)
        await _add_member(uow, room, user, "member", principal.user_id)
        added.append(user_id)
    return added


async def _remove_member(uow: Unit, room: Room, user_id: int, by: int, reason: str) -> None:
    await uow.session.execute(
        delete(RoomMember).where(RoomMember.room_id == room.id, RoomMember.user_id == user_id)
    )
    await append_event(
        uow, room.id, "member.removed", {"user_id": user_id, "by": by, "reason": reason}
    )
    await _keep_an_admin(uow, room)


async def _keep_an_admin(uow: Unit, room: Room) -> None:
    """A group never stays without a room administrator: when the last one leaves or is
    removed, the member who joined earliest becomes one (event ``member.role``)."""
    if room.kind != "group":
        return
    admins = await uow.session.scalar(
        select(func.count())
        .select_from(RoomMember)
        .where(RoomMember.room_id == room.id, RoomMember.role == "admin")
    )
    if admins:
        return
    heir = (
        await uow.session.execute(
            select(RoomMember)
            .where(RoomMember.room_id == room.id)
            .order_by(RoomMember.joined_at, RoomMember.user_id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if heir is None:
        return
    heir.role = "admin"
    await uow.session.flush()
    await append_event(
        uow, room.id, "member.role", {"user_id": heir.user_id, "role": "admin", "by": None}
    )


async def remove_member(uow: Unit, principal: Principal, room_id: int, user_id: int) -> None:
    room, _ = await check_room_admin(uow, principal, room_id)
    if await membership(uow, room.id, user_id) is None:
        raise NotFound("そのユーザーはメンバーではありません。", "That user is not a member.")
    await _remove_member(uow, room, user_id, principal.user_id, "removed")


async def leave_room(uow: Unit, principal: Principal, room_id: int) -> None:
    room, _ = await check_member(uow, principal, room_id)
    if room.kind != "group":
        raise BadRequest(
            "1対1のルームは退出できません。アーカイブしてください。",
            "You cannot leave a 1:1 room; archive it instead.",
        )
    await _remove_member(uow, room, principal.user_id, principal.user_id, "left")


async def archive_room(uow: Unit, principal: Principal, room_id: int, archived: bool) -> Room:
    room, member = await check_member(uow, principal, room_id)
    if room.kind == "group" and member.role != "admin" and principal.user.role != "admin":
        raise Forbidden(
            "この操作はルーム管理者だけが行えます。", "Only a room administrator may do this."
        )
    room.archived_at = utcnow() if archived else None
    await append_event(
        uow, room.id, "room.updated", {"archived": archived, "by": principal.user_id}
    )
    return room


async def bulk_rooms(
    uow: Unit, principal: Principal, action: str, room_ids: list[int]
) -> dict[str, Any]:
    """Leave, archive or unarchive many rooms in one transaction; one room that cannot be
    changed changes nothing.  Archiving here is personal: the room leaves *my* list (until
    someone writes in it again) and stays as it is for everyone else."""
    if action not in ("leave", "archive", "unarchive"):
        raise BadRequest(
            "action は leave・archive・unarchive のいずれかです。",
            "action is leave, archive or unarchive.",
        )
    ids = list(dict.fromkeys(room_ids))
    if not ids or len(ids) > BULK_ROOMS_MAX:
        raise BadRequest(
            f"ルームを1〜{BULK_ROOMS_MAX}件指定してください。",
            f"Give between 1 and {BULK_ROOMS_MAX} rooms.",
        )
    for room_id in ids:
        try:
            if action == "leave":
                await leave_room(uow, principal, room_id)
            else:
                _, member = await check_member(uow, principal, room_id)
                member.archived_at = utcnow() if action == "archive" else None
        except ChatError as exc:
            exc.details = {**exc.details, "room_id": room_id}  # which one stopped them all
            raise
    if action != "leave":
        # Personal: only my own connections (other tabs, other devices) are told.
        uow.control(
            "notify_users",
            user_ids=[principal.user_id],
            notice={"notice": "rooms_archived", "archived": action == "archive", "room_ids": ids},
        )
    return {"action": action, "room_ids": ids}


@dataclass
class RoomSummary:
    room: Room
    role: str
    read_seq: int
    unread: int
    mentions: int  # unread messages that mention me by name or @all
    mentions_me: int  # … by name (@login_id)
    mentions_all: int  # … with @all
    last_message: Message | None
    last_sender: User | None
    members: int
    title: str
    archived_by_me: bool = False


async def list_my_rooms(
    uow: Unit, principal: Principal, *, include_archived: bool = False, limit: int = 500
) -> list[RoomSummary]:
    s = uow.session
    query = (
        select(Room, RoomMember)
        .join(RoomMember, RoomMember.room_id == Room.id)
        .where(RoomMember.user_id == principal.user_id)
    )
    if not include_archived:
        # Hidden: rooms archived for everyone, and rooms I archived with no activity since.
        query = query.where(
            Room.archived_at.is_(None),
            or_(
                RoomMember.archived_at.is_(None),
                Room.last_activity_at > RoomMember.archived_at,
            ),
        )
    rows = (await s.execute(query.order_by(Room.last_activity_at.desc()).limit(limit))).all()
    if not rows:
        return []
    room_ids = [room.id for room, _ in rows]
    reads = {room.id: member.read_seq for room, member in rows}
    # Unread: others' live messages past my read position, counted in one grouped query.
    read_pos = (
        select(RoomMember.room_id, RoomMember.read_seq)
        .where(RoomMember.user_id == principal.user_id, RoomMember.room_id.in_(room_ids))
        .subquery()
    )
    unread = await _counts(
        s,
        select(Message.room_id, func.count())
        .join(read_pos, read_pos.c.room_id == Message.room_id)
        .where(
            Message.seq > read_pos.c.read_seq,
            Message.sender_id != principal.user_id,
            Message.recalled_at.is_(None),
        )
        .group_by(Message.room_id),
    )
    unread_mentions = (
        select(Message.room_id, func.count())
        .join(read_pos, read_pos.c.room_id == Message.room_id)
        .outerjoin(
            Mention,
            and_(Mention.message_id == Message.id, Mention.user_id == principal.user_id),
        )
        .where(
            Message.seq > read_pos.c.read_seq,
            Message.sender_id != principal.user_id,
            Message.recalled_at.is_(None),
        )
        .group_by(Message.room_id)
    )
    mentions = await _counts(
        s,
        unread_mentions.where(or_(Message.mention_all.is_(True), Mention.user_id.is_not(None))),
    )
    mentions_me = await _counts(s, unread_mentions.where(Mention.user_id.is_not(None)))
    mentions_all = await _counts(s, unread_mentions.where(Message.mention_all.is_(True)))
    last_ids = (
        select(func.max(Message.id).label("id"))
        .where(Message.room_id.in_(room_ids))
        .group_by(Message.room_id)
        .subquery()
    )
    last = {
        m.room_id: m
        for m in (await s.execute(select(Message).join(last_ids, last_ids.c.id == Message.id)))
        .scalars()
        .all()
    }
    sender_ids = {m.sender_id for m in last.values()}
    senders = {
        u.id: u for u in (await s.execute(select(User).where(User.id.in_(sender_ids)))).scalars()
    }
    counts = await _counts(
        s,
        select(RoomMember.room_id, func.count())
        .where(RoomMember.room_id.in_(room_ids))
        .group_by(RoomMember.room_id),
    )
    titles = await _direct_titles(uow, principal, [r for r, _ in rows if r.kind == "direct"])
    return [
        RoomSummary(
            room=room,
            role=member.role,
            read_seq=reads[room.id],
            unread=unread.get(room.id, 0),
            mentions=mentions.get(room.id, 0),
            mentions_me=mentions_me.get(room.id, 0),
            mentions_all=mentions_all.get(room.id, 0),
            last_message=last.get(room.id),
            last_sender=senders.get(last[room.id].sender_id) if room.id in last else None,
            members=counts.get(room.id, 0),
            title=titles.get(room.id, room.name),
            archived_by_me=member.archived_at is not None
            and room.last_activity_at <= member.archived_at,
        )
        for room, member in rows
    ]


async def _counts(s: AsyncSession, query: Select[int, int]) -> dict[int, int]:
    return {key: count for key, count in (await s.execute(query)).all()}


async def _direct_titles(uow: Unit, principal: Principal, rooms: list[Room]) -> dict[int, str]:
    """A 1:1 room is titled with the other person's name."""
    if not rooms:
        return {}
    rows = await uow.session.execute(
        select(RoomMember.room_id, User.display_name)
        .join(User, User.id == RoomMember.user_id)
        .where(
            RoomMember.room_id.in_([r.id for r in rooms]),
            RoomMember.user_id != principal.user_id,
        )
    )
    return {k: v for k, v in rows.all()}


async def room_member_ids(uow: Unit, room_id: int) -> list[int]:
    rows = await uow.session.execute(
        select(RoomMember.user_id).where(RoomMember.room_id == room_id)
    )
    return list(rows.scalars())


async def my_room_seqs(uow: Unit, user_id: int) -> dict[int, int]:
    """``{room_id: last_seq}`` of every room the user is in (for subscribing a connection)."""
    rows = await uow.session.execute(
        select(Room.id, Room.last_seq)
        .join(RoomMember, RoomMember.room_id == Room.id)
        .where(RoomMember.user_id == user_id)
    )
    return {k: v for k, v in rows.all()}


def room_dict(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "kind": room.kind,
        "name": room.name,
        "archived": room.archived_at is not None,
        "last_seq": room.last_seq,
        "last_activity_at": _iso(room.last_activity_at),
        "created_at": _iso(room.created_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
