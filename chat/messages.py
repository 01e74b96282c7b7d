"""Messages: send (idempotent by client id), mentions, replies, edit with history, recall,
reactions, history paged by sequence in both directions."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from chat.attachments import attachment_dict, for_messages, take_for_message
from chat.auth import Principal
from chat.errors import BadRequest, Forbidden, NotFound
from chat.location import check_location
from chat.models import (
    Attachment,
    Event,
    Mention,
    Message,
    MessageEdit,
    Reaction,
    Room,
    RoomMember,
    User,
    utcnow,
)
from chat.rooms import check_member, check_writable, not_a_member, room_archived
from chat.settings import HISTORY_PAGE_MAX, MAX_MESSAGE_CHARS
from chat.unit import Unit, append_event, next_seq, record_event

RECALLED_TEXT = "メッセージの送信を取り消しました"
RECALLED_TEXT_EN = "This message was recalled."
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MENTION_RE = re.compile(r"(?<![A-Za-z0-9._@-])@([A-Za-z0-9][A-Za-z0-9._@-]{0,63})")
MAX_EMOJI_CHARS = 32


def _check_body(body: str, *, may_be_empty: bool = False) -> str:
    if isinstance(body, str) and may_be_empty and not body.strip():
        return ""
    if not isinstance(body, str) or not body.strip():
        raise BadRequest("メッセージを入力してください。", "The message is empty.")
    if len(body) > MAX_MESSAGE_CHARS:
        raise BadRequest(
            f"メッセージは{MAX_MESSAGE_CHARS:,}文字以内にしてください({len(body):,}文字)。",
            f"A message may have at most {MAX_MESSAGE_CHARS:,} characters ({len(body):,}).",
            code="too_large",
        )
    return body


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise BadRequest(
            "client_id は8〜64文字の英数字・-・_ で指定してください。",
            "client_id must be 8-64 characters of letters, digits, - and _.",
        )
    return client_id


async def _resolve_mentions(uow: Unit, room_id: int, body: str) -> tuple[bool, list[int]]:
    names = {m.group(1).rstrip(".") for m in MENTION_RE.finditer(body)}
    mention_all = "all" in names
    names.discard("all")
    if not names:
        return mention_all, []
    rows = await uow.session.execute(
        select(User.id)
        .join(RoomMember, RoomMember.user_id == User.id)
        .where(RoomMember.room_id == room_id, User.login_id.in_(names))
    )
    return mention_all, sorted(rows.scalars())


def message_dict(
    message: Message,
    sender: User | None = None,
    attachments: list[Attachment] | None = None,
) -> dict[str, Any]:
    """``attachments``: the message's files with their state (empty when not loaded: history
    and the send path load them; an ``attachment`` event tells later states)."""
    recalled = message.recalled_at is not None
    return {
        "id": message.id,
        "room_id": message.room_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "sender_name": sender.display_name if sender else None,
        "client_id": message.client_id,
        "body": RECALLED_TEXT if recalled else message.body,
        "recalled": recalled,
        "reply_to_id": message.reply_to_id,
        "mention_all": False if recalled else message.mention_all,
        "mentions": [] if recalled else message.mentions.get("user_ids", []),
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "attachments": [] if recalled else [attachment_dict(a) for a in attachments or ()],
        "location": None if recalled else message.location,
    }


@dataclass
class Sent:
    message: Message
    created: bool  # False when the client id was seen before (a retry)
    attachments: list[Attachment] = field(default_factory=list)


async def _existing(uow: Unit, sender_id: int, client_id: str) -> Message | None:
    return await uow.session.scalar(
        select(Message).where(Message.sender_id == sender_id, Message.client_id == client_id)
    )


async def send_message(
    uow: Unit,
    principal: Principal,
    room_id: int,
    *,
    client_id: str,
    body: str,
    reply_to_id: int | None = None,
    attachment_ids: list[int] | None = None,
    location: Any = None,
) -> Sent:
    """``attachment_ids``: files the sender uploaded to this room and has not sent yet; with
    them the body may be empty."""
    check_client_id(client_id)
    shared = check_location(location)
    body = _check_body(body, may_be_empty=bool(attachment_ids) or shared is not None)
    previous = await _existing(uow, principal.user_id, client_id)
    if previous is not None:
        if previous.room_id != room_id:
            raise BadRequest(
                "この client_id は別のルームで使われています。",
                "This client_id was used in another room.",
            )
        return Sent(previous, False, (await for_messages(uow, [previous.id])).get(previous.id, []))
    await _check_can_post(uow, principal, room_id)
    if reply_to_id is not None:
        quoted_room = await uow.session.scalar(
            select(Message.room_id).where(Message.id == reply_to_id)
        )
        if quoted_room != room_id:
            raise BadRequest(
                "返信先のメッセージがこのルームにありません。",
                "The quoted message is not in this room.",
            )
    mention_all, mentioned = await _resolve_mentions(uow, room_id, body)
    values: dict[str, Any] = {
        "room_id": room_id,
        "sender_id": principal.user_id,
        "client_id": client_id,
        "body": body,
        "reply_to_id": reply_to_id,
        "mention_all": mention_all,
        "mentions": {"user_ids": mentioned},
        "location": shared,
        "created_at": utcnow(),
    }
    # The hot path speaks Core, not the ORM unit of work: a send is a handful of statements.
    # SQLite writers are serialised by BEGIN IMMEDIATE, so the lookup above already excludes
    # a concurrent duplicate; elsewhere a savepoint catches the race on the unique key.
    guard = nullcontext() if uow.session.get_bind().dialect.name == "sqlite" else None
    try:
        async with guard or uow.session.begin_nested():
            values["seq"] = await next_seq(uow, room_id)
            values["id"] = await uow.session.scalar(
                insert(Message).values(**values).returning(Message.id)
            )
    except IntegrityError:
        # A concurrent retry with the same client id won the race: return its message.
        previous = await _existing(uow, principal.user_id, client_id)
        if previous is None:
            raise
        return Sent(previous, False, (await for_messages(uow, [previous.id])).get(previous.id, []))
    message = Message(**values)
    files: list[Attachment] = []
    if attachment_ids:
        files = await take_for_message(uow, principal, room_id, message.id, attachment_ids)
    if mentioned:
        await uow.session.execute(
            insert(Mention),
            [
                {"message_id": message.id, "user_id": u, "room_id": room_id, "seq": message.seq}
                for u in mentioned
            ],
        )
    await record_event(
        uow,
        room_id,
        message.seq,
        "message",
        {"message": message_dict(message, principal.user, files)},
    )
    # Sending implies having read everything up to one's own message.
    await uow.session.execute(
        update(RoomMember)
        .where(
            RoomMember.room_id == room_id,
            RoomMember.user_id == principal.user_id,
            RoomMember.read_seq < message.seq,
        )
        .values(read_seq=message.seq)
    )
    return Sent(message, True, files)


async def _check_can_post(uow: Unit, principal: Principal, room_id: int) -> None:
    """Membership and a writable room in one query (the rules of ``rooms.check_writable``)."""
    row = (
        await uow.session.execute(
            select(Room.archived_at)
            .join(RoomMember, RoomMember.room_id == Room.id)
            .where(Room.id == room_id, RoomMember.user_id == principal.user_id)
        )
    ).one_or_none()
    if row is None:
        raise not_a_member()
    if row[0] is not None:
        raise room_archived()


async def _own_message(uow: Unit, principal: Principal, message_id: int) -> Message:
    message = await uow.session.get(Message, message_id)
    if message is None:
        raise NotFound("メッセージが見つかりません。", "Message not found.")
    await check_writable(uow, principal, message.room_id)
    if message.sender_id != principal.user_id:
        raise Forbidden(
            "自分のメッセージだけを編集・取り消しできます。",
            "You can only edit or recall your own messages.",
        )
    if message.recalled_at is not None:
        raise BadRequest(
            "取り消したメッセージは変更できません。", "A recalled message cannot be changed."
        )
    return message


async def edit_message(uow: Unit, principal: Principal, message_id: int, body: str) -> Message:
    body = _check_body(body)
    message = await _own_message(uow, principal, message_id)
    if body == message.body:
        return message
    uow.session.add(MessageEdit(message_id=message.id, body=message.body))
    message.body = body
    message.edited_at = utcnow()
    mention_all, mentioned = await _resolve_mentions(uow, message.room_id, body)
    message.mention_all = mention_all
    message.mentions = {"user_ids": mentioned}
    await uow.session.execute(delete(Mention).where(Mention.message_id == message.id))
    for user_id in mentioned:
        uow.session.add(
            Mention(
                message_id=message.id, user_id=user_id, room_id=message.room_id, seq=message.seq
            )
        )
    files = (await for_messages(uow, [message.id])).get(message.id, [])
    await append_event(
        uow,
        message.room_id,
        "message.edited",
        {"message": message_dict(message, principal.user, files)},
    )
    return message


async def recall_message(uow: Unit, principal: Principal, message_id: int) -> Message:
    """The text is gone from every API: body, edit history, mentions, reactions and any
    shared location."""
    message = await _own_message(uow, principal, message_id)
    message.recalled_at = utcnow()
    message.body = ""
    message.mention_all = False
    message.mentions = {"user_ids": []}
    message.location = None  # a recalled field report keeps no location either
    for model in (MessageEdit, Mention, Reaction):
        await uow.session.execute(delete(model).where(model.message_id == message.id))
    await _scrub_events(uow, message, principal.user)
    await append_event(
        uow,
        message.room_id,
        "message.recalled",
        {"message_id": message.id, "seq": message.seq, "text": RECALLED_TEXT},
    )
    return message


async def _scrub_events(uow: Unit, message: Message, sender: User) -> None:
    """Replace the message's text in the room's event log (what a reconnecting client is
    replayed) with its recalled form: the ``message`` event and every ``message.edited``."""
    recalled = {"message": message_dict(message, sender)}
    rows = await uow.session.execute(
        select(Event).where(
            Event.room_id == message.room_id,
            or_(
                and_(Event.seq == message.seq, Event.type == "message"),
                and_(Event.seq > message.seq, Event.type == "message.edited"),
            ),
        )
    )
    for event in rows.scalars():
        if event.type == "message" or event.payload.get("message", {}).get("id") == message.id:
            event.payload = dict(recalled)


async def edit_history(uow: Unit, principal: Principal, message_id: int) -> list[MessageEdit]:
    message = await visible_message(uow, principal, message_id)
    rows = await uow.session.execute(
        select(MessageEdit).where(MessageEdit.message_id == message.id).order_by(MessageEdit.id)
    )
    return list(rows.scalars())


async def visible_message(uow: Unit, principal: Principal, message_id: int) -> Message:
    message = await uow.session.get(Message, message_id)
    if message is None:
        raise NotFound("メッセージが見つかりません。", "Message not found.")
    await check_member(uow, principal, message.room_id)
    return message


def _check_emoji(emoji: str) -> str:
    if not emoji or len(emoji) > MAX_EMOJI_CHARS or any(c.isspace() for c in emoji):
        raise BadRequest(
            "スタンプの指定が正しくありません。", "A reaction is 1-32 characters, no spaces."
        )
    return emoji


async def react(uow: Unit, principal: Principal, message_id: int, emoji: str, *, on: bool) -> None:
    emoji = _check_emoji(emoji)
    message = await visible_message(uow, principal, message_id)
    await check_writable(uow, principal, message.room_id)
    if message.recalled_at is not None:
        raise BadRequest(
            "取り消したメッセージにはリアクションできません。",
            "A recalled message takes no reactions.",
        )
    existing = await uow.session.get(Reaction, (message.id, principal.user_id, emoji))
    if on == (existing is not None):
        return
    if on:
        uow.session.add(Reaction(message_id=message.id, user_id=principal.user_id, emoji=emoji))
    else:
        await uow.session.delete(existing)
    await append_event(
        uow,
        message.room_id,
        "reaction",
        {"message_id": message.id, "user_id": principal.user_id, "emoji": emoji, "on": on},
        activity=False,
    )


async def reactions_for(uow: Unit, message_ids: list[int]) -> dict[int, dict[str, list[int]]]:
    if not message_ids:
        return {}
    rows = await uow.session.execute(
        select(Reaction.message_id, Reaction.emoji, Reaction.user_id)
        .where(Reaction.message_id.in_(message_ids))
        .order_by(Reaction.created_at)
    )
    out: dict[int, dict[str, list[int]]] = {}
    for message_id, emoji, user_id in rows:
        out.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return out


@dataclass
class Page:
    messages: list[Message]
    senders: dict[int, User]
    has_before: bool
    has_after: bool


async def history(
    uow: Unit,
    principal: Principal,
    room_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page:
    """A page of messages by sequence: the newest ``limit`` when no cursor is given, those
    older than ``before``, or those newer than ``after`` (oldest first in every case)."""
    await check_member(uow, principal, room_id)
    if before is not None and after is not None:
        raise BadRequest("before と after は同時に指定できません。", "Use before or after.")
    limit = max(1, min(limit, HISTORY_PAGE_MAX))
    query = select(Message).where(Message.room_id == room_id)
    if after is not None:
        query = query.where(Message.seq > after).order_by(Message.seq.asc())
    else:
        if before is not None:
            query = query.where(Message.seq < before)
        query = query.order_by(Message.seq.desc())
    rows = list((await uow.session.execute(query.limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    if after is None:
        rows.reverse()
    first = rows[0].seq if rows else None
    last = rows[-1].seq if rows else None
    if after is not None:
        has_before = first is not None and await _exists(uow, room_id, lt=first)
        has_after = more
    else:
        has_before = more
        has_after = before is not None and last is not None and await _exists(uow, room_id, gt=last)
    sender_ids = {m.sender_id for m in rows}
    senders = {}
    if sender_ids:
        senders = {
            u.id: u
            for u in (await uow.session.execute(select(User).where(User.id.in_(sender_ids))))
            .scalars()
            .all()
        }
    return Page(rows, senders, has_before, has_after)


async def _exists(uow: Unit, room_id: int, *, lt: int | None = None, gt: int | None = None) -> bool:
    query = select(Message.id).where(Message.room_id == room_id)
    if lt is not None:
        query = query.where(Message.seq < lt)
    if gt is not None:
        query = query.where(Message.seq > gt)
    return (await uow.session.scalar(query.limit(1))) is not None


async def first_unread_seq(uow: Unit, principal: Principal, room_id: int) -> int | None:
    """The sequence of the first message from someone else past my read position."""
    _, member = await check_member(uow, principal, room_id)
    return await uow.session.scalar(
        select(Message.seq)
        .where(
            Message.room_id == room_id,
            Message.seq > member.read_seq,
            Message.sender_id != principal.user_id,
            Message.recalled_at.is_(None),
        )
        .order_by(Message.seq)
        .limit(1)
    )
