"""Unit of work: one transaction plus the events to publish once it has committed.

Domain ``do_*`` functions write through ``uow.session`` and call :func:`append_event` /
``uow.control``; nothing reaches a websocket unless the transaction commits, so nothing
half-written is ever visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat.models import Event, Room, utcnow
from chat.protocol import json_text
from chat.sides import current_side

if TYPE_CHECKING:
    from chat.broker import Broker
    from chat.db import Database


@dataclass
class Unit:
    session: AsyncSession
    pending: list[str] = field(default_factory=list)

    def control(self, op: str, **data: Any) -> None:
        self.pending.append(encode_control(op, data))


def frame_text(
    room_id: int, seq: int, type_: str, payload_json: str, at: datetime, side: str | None
) -> str:
    """The websocket frame of an event whose payload is already JSON (as it is stored):
    ``{"type":"event","room_id":…,"seq":…,"event":…,"data":…,"at":…,"side":…}``."""
    return (
        f'{{"type":"event","room_id":{room_id:d},"seq":{seq:d},"event":{json_text(type_)},'
        f'"data":{payload_json},"at":{json_text(at.isoformat())},"side":{json_text(side)}}}'
    )


def event_frame(event: Event) -> str:
    """The event as the websocket frame every recipient receives."""
    return frame_text(
        event.room_id,
        event.seq,
        event.type,
        json_text(event.payload),
        event.created_at,
        event.side,
    )


def encode_event(event: Event) -> str:
    """The broker envelope ``"E <room> <seq> <type>\\n<frame>"``: the frame is encoded once here
    and sent as is to every recipient."""
    return f"E {event.room_id} {event.seq} {event.type}\n{event_frame(event)}"


def encode_control(op: str, data: dict[str, Any]) -> str:
    return "C\n" + json_text({"op": op, **data})


async def next_seq(uow: Unit, room_id: int, *, activity: bool = True) -> int:
    """The room's next sequence number.  The UPDATE holds the room's row lock (PostgreSQL) or
    the write lock (SQLite) until commit, so a later number is never visible before an
    earlier one: a gap seen by a reader is always fillable from the database.  Only
    ``activity`` (messages, not reads or reactions) moves the room up the room list."""
    values: dict[str, Any] = {"last_seq": Room.last_seq + 1}
    if activity:
        values["last_activity_at"] = utcnow()
    return (
        await uow.session.execute(
            update(Room).where(Room.id == room_id).values(**values).returning(Room.last_seq)
        )
    ).scalar_one()


async def record_event(
    uow: Unit, room_id: int, seq: int, type_: str, payload: dict[str, Any]
) -> Event:
    """Record the event in the room's log (one INSERT); it is published after commit."""
    event = Event(
        room_id=room_id,
        seq=seq,
        type=type_,
        payload=payload,
        created_at=utcnow(),
        side=current_side.get(),
    )
    await uow.session.execute(
        insert(Event).values(
            room_id=room_id,
            seq=seq,
            type=type_,
            payload=payload,
            created_at=event.created_at,
            side=event.side,
        )
    )
    uow.pending.append(encode_event(event))
    return event


async def append_event(
    uow: Unit, room_id: int, type_: str, payload: dict[str, Any], *, activity: bool = True
) -> Event:
    seq = await next_seq(uow, room_id, activity=activity)
    return await record_event(uow, room_id, seq, type_, payload)


@asynccontextmanager
async def unit_of_work(db: Database, broker: Broker) -> AsyncIterator[Unit]:
    async with db.writer() as session:
        async with session.begin():
            uow = Unit(session)
            yield uow
        for message in uow.pending:
            await broker.publish(message)
