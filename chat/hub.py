"""Live connections of this app process and the fan-out of room events to them.

One consumer task reads the broker in order.  Each event's frame was encoded once by its
publisher and is handed as the same string to every local member's bounded send queue — no
task and no encoding per recipient.  A connection whose queue is full is dropped with
``WS_CLOSE_SLOW_CONSUMER`` and resumes on reconnect; it never slows the room.

Ordering and completeness: the hub remembers the last sequence it fanned out per room; a
jump (pub/sub lost something, Redis restarted) is filled from the database's event log
before the newer event goes out.  A connection that subscribes buffers live events while it
replays what it missed, then flushes the buffer past what it has delivered: nothing lost,
nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from chat.broker import Broker
from chat.db import Database
from chat.errors import (
    WS_CLOSE_GOING_AWAY,
    WS_CLOSE_HEARTBEAT,
    WS_CLOSE_NORMAL,
    WS_CLOSE_REVOKED,
    WS_CLOSE_SLOW_CONSUMER,
)
from chat.memory import Flag, LightQueue
from chat.models import AuthSession, Event, Room, RoomMember, User, utcnow
from chat.presence import Presence
from chat.protocol import encode
from chat.settings import REPLAY_QUEUE_MAX, RESUME_BUFFER_MAX, SEND_QUEUE_MAX
from chat.unit import frame_text
from storage.tasks import cancel_all

log = logging.getLogger(__name__)

RESYNC_INTERVAL_S = 2.0
SESSION_CHECK_INTERVAL_S = 5.0  # backstop; revocations are pushed at once
SWEEP_CHUNK = 500
HEARTBEAT_TICK_S = 1.0
REPLAY_BATCH = 500


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "kakehashi_ws_connections", "Open websocket connections", registry=self.registry
        )
        self.delivered = Counter(
            "kakehashi_events_delivered",
            "Event frames queued to websocket connections",
            registry=self.registry,
        )
        self.dropped = Counter(
            "kakehashi_slow_clients_dropped",
            "Connections closed because their send queue overflowed",
            registry=self.registry,
        )
        self.latency = Histogram(
            "kakehashi_event_delivery_seconds",
            "From an event's commit time to its fan-out to local connections",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "kakehashi_http_request_seconds",
            "HTTP request latency",
            ["method", "status"],
            registry=self.registry,
        )


class Connection:
    """One websocket's delivery state.  The transport owns the socket and the tasks; the hub
    only ever calls :meth:`offer` and :meth:`abort`, neither of which blocks."""

    __slots__ = (
        "close_code",
        "close_reason",
        "closed",
        "delivered",
        "direct",
        "last_heard",
        "queue",
        "sending",
        "session_id",
        "syncing",
        "user_id",
        "writer",
    )

    def __init__(
        self,
        user_id: int,
        session_id: int,
        direct: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.user_id = user_id
        # A synchronous write of an encoded frame, when the transport offers one
        # (chat.transport); used only while nothing is queued or being sent, so order holds.
        self.direct = direct
        self.sending = False
        self.session_id = session_id
        self.queue: LightQueue[str] = LightQueue(SEND_QUEUE_MAX)
        self.delivered: dict[int, int] = {}  # room -> last seq queued
        self.syncing: dict[int, list[tuple[int, str]]] = {}
        self.closed = Flag()
        self.close_code = WS_CLOSE_NORMAL
        self.close_reason = ""
        self.last_heard = time.monotonic()
        self.writer: asyncio.Task[None] | None = None  # cancelled on abort to end the session

    def abort(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()
            self.queue.wake_producer()  # a replay waiting for room stops
            if self.writer is not None:
                self.writer.cancel()

    def push(self, frame: str, data: bytes | None = None) -> bool:
        """Send a frame now if the socket can take it, else queue it; on overflow the
        connection is dropped (it resumes later)."""
        if self.closed.is_set():
            return False
        if self.direct is not None and not self.sending and self.queue.empty():
            if self.direct(frame.encode() if data is None else data):
                return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.abort(WS_CLOSE_SLOW_CONSUMER, "slow_consumer")
            return False
        return True

    def offer(self, room_id: int, seq: int, frame: str, data: bytes | None = None) -> bool:
        buffer = self.syncing.get(room_id)
        if buffer is not None:
            if len(buffer) >= RESUME_BUFFER_MAX:
                self.abort(WS_CLOSE_SLOW_CONSUMER, "slow_consumer")
                return False
            buffer.append((seq, frame))
            return False
        last = self.delivered.get(room_id)
        if last is None or seq <= last:
            return False
        self.delivered[room_id] = seq
        return self.push(frame, data)


class Hub:
    def __init__(
        self,
        db: Database,
        broker: Broker,
        metrics: Metrics,
        *,
        resync: bool,
        ping_interval_s: float = 20.0,
        dead_after_s: float = 60.0,
        presence: Presence | None = None,
    ) -> None:
        self.db = db
        self.presence = presence or Presence()
        self.ping_interval_s = ping_interval_s
        self.dead_after_s = dead_after_s
        self.broker = broker
        self.metrics = metrics
        self.rooms: dict[int, set[Connection]] = {}
        self.room_seq: dict[int, int] = {}
        self.by_user: dict[int, set[Connection]] = {}
        self.by_session: dict[int, set[Connection]] = {}
        self._resync_periodically = resync
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()  # serialises fan-out with gap filling

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        ready = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._consume(ready), name="hub-consume"))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat"))
        self._tasks.append(asyncio.create_task(self._session_loop(), name="hub-sessions"))
        if self._resync_periodically:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name="hub-resync"))
        self._tasks.append(asyncio.create_task(self.presence.run(), name="hub-presence"))
        await ready.wait()

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for conns in list(self.by_session.values()):
            for conn in conns:
                conn.abort(WS_CLOSE_GOING_AWAY, "server_shutdown")
        await self.presence.close()

    # -- registration ------------------------------------------------------------------------
    def register(self, conn: Connection) -> None:
        self.by_user.setdefault(conn.user_id, set()).add(conn)
        self.by_session.setdefault(conn.session_id, set()).add(conn)
        self.metrics.connections.inc()

    def unregister(self, conn: Connection) -> None:
        for room_id in list(conn.delivered) + list(conn.syncing):
            self._leave(conn, room_id)
        for index, key in ((self.by_user, conn.user_id), (self.by_session, conn.session_id)):
            conns = index.get(key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del index[key]
        self.metrics.connections.dec()
        if conn.close_code == WS_CLOSE_SLOW_CONSUMER:
            self.metrics.dropped.inc()

    def _leave(self, conn: Connection, room_id: int) -> None:
        conn.delivered.pop(room_id, None)
        conn.syncing.pop(room_id, None)
        members = self.rooms.get(room_id)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.rooms[room_id]
                self.room_seq.pop(room_id, None)

    async def subscribe(self, conn: Connection, since: dict[int, int]) -> dict[int, int]:
        """Subscribe ``conn`` to all its rooms.  Rooms in ``since`` replay every event after
        the given sequence; others start live at their current sequence.  Live events that
        arrive meanwhile wait in the connection's buffer.  Returns ``{room_id: seq}``."""
        async with self.db.read_sessions() as s:
            rooms = await _member_room_seqs(s, conn.user_id)
        for room_id, last_seq in rooms.items():
            conn.syncing[room_id] = []
            self.rooms.setdefault(room_id, set()).add(conn)
            self.room_seq.setdefault(room_id, last_seq)
        for room_id, last_seq in rooms.items():
            start = since.get(room_id)
            if start is None or start >= last_seq:
                # "live from now"; a client claiming more than exists is taken back to now
                self._finish_sync(conn, room_id, last_seq)
            else:
                await self.replay(conn, room_id, start)
        return dict(conn.delivered)

    async def replay(self, conn: Connection, room_id: int, after: int) -> None:
        """Queue the room's events after ``after`` from the database, then the live events
        that came meanwhile, then go live.  It waits for queue room instead of dropping (it
        is the client's own pace) and leaves room for the frames that follow."""
        buffer = conn.syncing.setdefault(room_id, [])
        delivered = after
        while True:
            async with self.db.read_sessions() as s:
                events = await _events_after(s, room_id, delivered, limit=REPLAY_BATCH)
            for seq, _, frame in events:
                if not await _put_paced(conn, room_id, buffer, frame):
                    return
                delivered = seq
            if len(events) < REPLAY_BATCH:
                break
        while buffer:  # live events keep joining it while this waits for room
            seq, frame = buffer.pop(0)
            if seq > delivered:
                if not await _put_paced(conn, room_id, buffer, frame):
                    return
                delivered = seq
        self._finish_sync(conn, room_id, delivered)

    def _finish_sync(self, conn: Connection, room_id: int, delivered: int) -> None:
        buffered = conn.syncing.pop(room_id, [])
        conn.delivered[room_id] = delivered
        for seq, frame in buffered:
            conn.offer(room_id, seq, frame)

    # -- control -----------------------------------------------------------------------------
    def notify_users(self, user_ids: Iterable[int], notice: dict[str, Any]) -> None:
        """A personal notice (not part of any room's log) to every live connection of these
        users in this process: e.g. a release request for a supervisor, its answer for the
        requester.  Missed while offline, it is found again through the REST inbox."""
        frame = encode({"type": "notice", **notice})
        for uid in user_ids:
            for conn in list(self.by_user.get(uid, ())):
                conn.push(frame)

    def close_sessions(self, session_ids: Iterable[int], code: int, reason: str) -> None:
        for session_id in session_ids:
            for conn in list(self.by_session.get(session_id, ())):
                conn.abort(code, reason)

    # -- the consumer --------------------------------------------------------------------------
    async def _consume(self, ready: asyncio.Event) -> None:
        stream = self.broker.subscribe()
        first = asyncio.ensure_future(anext(stream))  # subscribed once the generator started
        await asyncio.sleep(0)
        ready.set()
        message = await first
        while True:
            try:
                await self._handle(message)
            except Exception:
                log.exception("hub failed to handle a broker message")
            message = await anext(stream)

    async def _handle(self, message: str | None) -> None:
        if message is None:
            await self.resync_all()
            return
        head, _, body = message.partition("\n")
        if head == "C":
            control = json.loads(body)
            if control.get("op") == "revoke_sessions":
                reason = str(control.get("reason") or "session_revoked")[:60]
                self.close_sessions(control["session_ids"], WS_CLOSE_REVOKED, reason)
            elif control.get("op") == "notify_users":
                self.notify_users(control["user_ids"], control["notice"])
            return
        _, room_s, seq_s, event_type = head.split(" ", 3)
        room_id, seq = int(room_s), int(seq_s)
        async with self._lock:
            await self._fan_out(room_id, seq, event_type, body)

    async def _fan_out(self, room_id: int, seq: int, event_type: str, frame: str) -> None:
        known = self.room_seq.get(room_id)
        if known is not None:
            if seq <= known:
                return
            if seq > known + 1:
                await self._fill_gap(room_id, known, seq)
        self._deliver_event(room_id, seq, event_type, frame)

    def _deliver_event(self, room_id: int, seq: int, event_type: str, frame: str) -> None:
        """Membership events change who receives the room, live or filled from the log."""
        if event_type == "member.added":
            self._attach_new_member(room_id, seq, frame)
        if room_id not in self.rooms:
            return
        self._deliver(room_id, seq, frame)
        if event_type == "member.removed":
            user_id = json.loads(frame)["data"]["user_id"]
            for conn in list(self.by_user.get(user_id, ())):
                self._leave(conn, room_id)

    def _deliver(self, room_id: int, seq: int, frame: str) -> None:
        self.room_seq[room_id] = seq
        conns = self.rooms.get(room_id, ())
        delivered = 0
        data = frame.encode()  # once per event, shared by every recipient
        for conn in tuple(conns):
            if conn.offer(room_id, seq, frame, data):
                delivered += 1
        self.metrics.delivered.inc(delivered)
        at = _frame_time(frame)
        if at is not None:
            self.metrics.latency.observe(max(0.0, time.time() - at))

    def _attach_new_member(self, room_id: int, seq: int, frame: str) -> None:
        user_id = json.loads(frame)["data"]["user"]["id"]
        conns = self.by_user.get(user_id)
        if not conns:
            return
        members = self.rooms.setdefault(room_id, set())
        self.room_seq.setdefault(room_id, seq - 1)
        for conn in conns:
            if room_id not in conn.delivered and room_id not in conn.syncing:
                conn.delivered[room_id] = seq - 1
                members.add(conn)

    async def _fill_gap(self, room_id: int, known: int, upto: int) -> None:
        async with self.db.read_sessions() as s:
            events = await _events_after(s, room_id, known, before=upto, limit=None)
        for seq, type_, frame in events:
            self._deliver_event(room_id, seq, type_, frame)

    async def resync_all(self, *, memberships: bool = True) -> None:
        """Catch up from the database after a broker reconnect (memberships first, then every
        room's missing events), or periodically, when pub/sub may have dropped something
        (missing events only: gap filling applies the membership events it finds)."""
        if memberships:
            await self.reconcile_memberships()
        if not self.rooms:
            return
        async with self.db.read_sessions() as s:
            rows = await s.execute(
                select(Room.id, Room.last_seq).where(Room.id.in_(list(self.rooms)))
            )
            latest = {k: v for k, v in rows.all()}
        for room_id, last_seq in latest.items():
            async with self._lock:
                known = self.room_seq.get(room_id)
                if known is not None and last_seq > known:
                    await self._fill_gap(room_id, known, last_seq + 1)

    async def reconcile_memberships(self) -> None:
        """Make local subscriptions match the database's memberships (a lost ``member.added``
        or ``member.removed`` must not leave a removed member listening)."""
        users = list(self.by_user)
        for chunk in _chunks(users, SWEEP_CHUNK):
            async with self.db.read_sessions() as s:
                rows = await s.execute(
                    select(RoomMember.user_id, Room.id, Room.last_seq)
                    .join(Room, Room.id == RoomMember.room_id)
                    .where(RoomMember.user_id.in_(chunk))
                )
                member_of: dict[int, dict[int, int]] = {}
                for user_id, room_id, last_seq in rows.all():
                    member_of.setdefault(user_id, {})[room_id] = last_seq
            async with self._lock:
                for user_id in chunk:
                    rooms = member_of.get(user_id, {})
                    for conn in tuple(self.by_user.get(user_id, ())):
                        for room_id in list(conn.delivered) + list(conn.syncing):
                            if room_id not in rooms:
                                self._leave(conn, room_id)
                        for room_id, last_seq in rooms.items():
                            if room_id not in conn.delivered and room_id not in conn.syncing:
                                known = self.room_seq.setdefault(room_id, last_seq)
                                conn.delivered[room_id] = known
                                self.rooms.setdefault(room_id, set()).add(conn)

    async def check_sessions(self) -> None:
        """Close connections whose session was revoked or expired or whose user was
        deactivated — whether or not the broker's control message arrived."""
        now = utcnow()
        for chunk in _chunks(list(self.by_session), SWEEP_CHUNK):
            async with self.db.read_sessions() as s:
                rows = await s.execute(
                    select(AuthSession.id, AuthSession.revoked_at, AuthSession.expires_at)
                    .join(User, User.id == AuthSession.user_id)
                    .where(AuthSession.id.in_(chunk))
                    .where(
                        (AuthSession.revoked_at.is_not(None))
                        | (AuthSession.expires_at <= now)
                        | (User.is_active.is_(False))
                    )
                )
                dead = [(sid, revoked, expires) for sid, revoked, expires in rows.all()]
            for session_id, revoked, expires in dead:
                reason = (
                    "session_expired" if revoked is None and expires <= now else "session_revoked"
                )
                self.close_sessions([session_id], WS_CLOSE_REVOKED, reason)

    async def _session_loop(self) -> None:
        while True:
            await asyncio.sleep(SESSION_CHECK_INTERVAL_S)
            try:
                await self.check_sessions()
            except Exception:
                log.exception("session sweep failed")

    async def _heartbeat_loop(self) -> None:
        """One sweeper for every connection.  Each tick visits a slice of the connections, so
        every connection is pinged once per ``ping_interval_s`` without a burst that would
        stall the loop (15,000 pings at once take a noticeable slice of a second), and one not
        heard from in ``dead_after_s`` is dropped (checked once per interval, early enough)."""
        tick = min(HEARTBEAT_TICK_S, self.ping_interval_s / 4, self.dead_after_s / 6)
        slices = max(1, round(self.ping_interval_s / tick))
        limit = self.dead_after_s - self.ping_interval_s
        turn = 0
        while True:
            await asyncio.sleep(tick)
            turn = (turn + 1) % slices
            conns = [c for cs in self.by_session.values() for c in cs][turn::slices]
            now = time.monotonic()
            frame = f'{{"type":"ping","t":{time.time():.3f}}}'
            for n, conn in enumerate(conns, 1):
                if now - conn.last_heard > limit:
                    conn.abort(WS_CLOSE_HEARTBEAT, "heartbeat_timeout")
                else:
                    conn.push(frame)
                if n % SWEEP_CHUNK == 0:
                    await asyncio.sleep(0)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_INTERVAL_S)
            try:
                await self.resync_all(memberships=False)
            except Exception:
                log.exception("periodic resync failed")


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _put_paced(
    conn: Connection, room_id: int, buffer: list[tuple[int, str]], frame: str
) -> bool:
    """Queue a replayed frame once the queue is below ``REPLAY_QUEUE_MAX``; False when the
    connection closed or left the room (its sync ``buffer`` is no longer the room's)."""
    queue = conn.queue
    while True:
        if conn.closed.is_set() or conn.syncing.get(room_id) is not buffer:
            return False
        if queue.qsize() < REPLAY_QUEUE_MAX:
            queue.put_nowait(frame)
            return True
        await queue.wait_taken()


def _frame_time(frame: str) -> float | None:
    marker = frame.rfind('"at":"')
    if marker < 0:
        return None
    try:
        return datetime.fromisoformat(frame[marker + 6 : frame.index('"', marker + 6)]).timestamp()
    except ValueError:
        return None


async def _member_room_seqs(s: AsyncSession, user_id: int) -> dict[int, int]:
    rows = await s.execute(
        select(Room.id, Room.last_seq)
        .join(RoomMember, RoomMember.room_id == Room.id)
        .where(RoomMember.user_id == user_id)
    )
    return {k: v for k, v in rows.all()}


async def _events_after(
    s: AsyncSession, room_id: int, after: int, *, before: int | None = None, limit: int | None
) -> list[tuple[int, str, str]]:
    """``(seq, type, frame)`` of the room's events after ``after`` (and before ``before``), in
    order.  The stored payload text goes into the frame as it is: no ORM objects, no JSON
    decoded and encoded again (most of a replay's cost otherwise)."""
    query = select(
        Event.seq, Event.type, cast(Event.payload, Text), Event.created_at, Event.side
    ).where(Event.room_id == room_id, Event.seq > after)
    if before is not None:
        query = query.where(Event.seq < before)
    rows = await s.execute(query.order_by(Event.seq).limit(limit))
    return [
        (seq, type_, frame_text(room_id, seq, type_, payload, at, side))
        for seq, type_, payload, at, side in rows.all()
    ]
