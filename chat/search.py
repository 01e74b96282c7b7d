"""Full-text search over the rooms I belong to.

Japanese has no spaces between words, so word tokenisers miss ``無害化`` inside
``添付ファイルは無害化してから受け取ってください``.  We search by substring: every query term
must occur in the message (case-insensitive for Latin letters), newest first.  On PostgreSQL
a pg_trgm GIN index serves ``ILIKE``; on SQLite the scan is limited to the caller's rooms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from chat.auth import Principal
from chat.errors import BadRequest
from chat.models import Message, RoomMember, User
from chat.rooms import check_member
from chat.unit import Unit

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
SEARCH_LIMIT_MAX = 100


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_terms(untrusted_query: str) -> list[str]:
    query = untrusted_query.replace("\u3000", " ").strip()  # full-width space separates too
    if not query or len(query) > MAX_QUERY_CHARS:
        raise BadRequest(
            f"検索語を1〜{MAX_QUERY_CHARS}文字で入力してください。",
            f"Search for 1-{MAX_QUERY_CHARS} characters.",
        )
    terms = list(dict.fromkeys(t for t in query.split(" ") if t))
    if len(terms) > MAX_TERMS:
        raise BadRequest(f"検索語は{MAX_TERMS}個までです。", f"At most {MAX_TERMS} search terms.")
    return terms


def _aware(moment: datetime | None) -> datetime | None:
    """A date or time given without an offset is read as UTC, like every time we answer."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@dataclass
class Hit:
    message: Message
    sender: User


async def search_messages(
    uow: Unit,
    principal: Principal,
    untrusted_query: str,
    *,
    room_id: int | None = None,
    sender_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 30,
) -> list[Hit]:
    terms = parse_terms(untrusted_query)
    since, until = _aware(since), _aware(until)
    if room_id is not None:
        await check_member(uow, principal, room_id)
    my_rooms = select(RoomMember.room_id).where(RoomMember.user_id == principal.user_id)
    query = (
        select(Message, User)
        .join(User, User.id == Message.sender_id)
        .where(Message.room_id.in_(my_rooms), Message.recalled_at.is_(None))
    )
    for term in terms:
        query = query.where(Message.body.ilike(f"%{_like_escape(term)}%", escape="\\"))
    if room_id is not None:
        query = query.where(Message.room_id == room_id)
    if sender_id is not None:
        query = query.where(Message.sender_id == sender_id)
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    limit = max(1, min(limit, SEARCH_LIMIT_MAX))
    rows = await uow.session.execute(query.order_by(Message.id.desc()).limit(limit))
    return [Hit(m, u) for m, u in rows]
