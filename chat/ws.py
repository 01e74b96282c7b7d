"""The websocket endpoint: authenticate, subscribe, then three owned tasks per connection —
reader, writer, heartbeat — until one ends.  Frames are parsed by :mod:`chat.protocol`;
decisions are made by the domain modules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from chat import messages, policy, receipts
from chat.auth import Principal, authenticate
from chat.errors import (
    WS_CLOSE_NORMAL,
    WS_CLOSE_ORIGIN,
    WS_CLOSE_UNAUTHENTICATED,
    ChatError,
)
from chat.hub import Connection
from chat.protocol import ClientFrame, ProtocolError, encode, error_frame, parse_client_frame
from chat.services import Services
from chat.settings import HELLO_TIMEOUT_S
from chat.sides import ingress_of
from chat.transport import ABORT, DETACH, DIRECT_SEND
from storage.tasks import cancel_all

log = logging.getLogger(__name__)
SESSION_COOKIE = "kakehashi_session"


def session_cookie(side: str) -> str:
    """One session cookie per side: a browser may be signed in on both (cookies ignore ports)."""
    return f"{SESSION_COOKIE}_{side}"


CLOSE_GRACE_S = 2.0


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers always send Origin; it must name this server (or a configured origin).
    Clients that send none (apps, scripts) authenticate with a hello token instead."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc == host


async def websocket_endpoint(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    origin = ws.headers.get("origin")
    if not origin_allowed(origin, ws.headers.get("host"), services.settings.allowed_origins):
        await ws.close(WS_CLOSE_ORIGIN, "origin_forbidden")
        return
    await ws.accept()
    side = ingress_of(ws.scope).side
    cookie_token = ws.cookies.get(session_cookie(side))
    since: dict[int, int] = {}
    try:
        if cookie_token and origin is not None:
            principal = await authenticate(services.db, cookie_token, side)
        else:
            frame = await _hello(ws)
            since = frame.data["since"]
            principal = await authenticate(services.db, frame.data["token"] or cookie_token, side)
    except (ChatError, ProtocolError, TimeoutError) as exc:
        code = getattr(exc, "code", "not_authenticated")
        ja = getattr(exc, "message", "認証できません。")
        en = getattr(exc, "message_en", "Not authenticated.")
        with contextlib.suppress(Exception):
            await ws.send_text(error_frame(code, ja, en))
            await ws.close(WS_CLOSE_UNAUTHENTICATED, str(code)[:120])
        return
    except WebSocketDisconnect:
        return
    detach = ws.scope.get("extensions", {}).get(DETACH)
    if detach is None:
        await Session(services, ws, principal).run(since)
        return
    # The session goes on in a task of the connection's own and this ASGI call returns: an
    # idle connection keeps its session's frames, not those of the whole middleware stack.
    detach(lambda detached: Session(services, detached, principal).run(since))


async def _hello(ws: WebSocket) -> ClientFrame:
    async with asyncio.timeout(HELLO_TIMEOUT_S):
        while True:
            text = await ws.receive_text()
            try:
                frame = parse_client_frame(text)
            except ProtocolError as exc:
                await ws.send_text(error_frame(exc.code, exc.message, exc.message_en, exc.ref))
                continue
            if frame.type == "hello":
                return frame
            await ws.send_text(
                error_frame(
                    "hello_required",
                    "最初に hello を送ってください。",
                    "Send hello first.",
                    frame.ref,
                )
            )


class Session:
    def __init__(self, services: Services, ws: WebSocket, principal: Principal) -> None:
        self.services = services
        self.ws = ws
        self.principal = principal
        extensions = ws.scope.get("extensions") or {}
        self.abort_transport: Callable[[], None] | None = extensions.get(ABORT)
        self.conn = Connection(principal.user_id, principal.session_id, extensions.get(DIRECT_SEND))

    async def run(self, since: dict[int, int]) -> None:
        """Two owned tasks, reader and writer, until either ends; ``Connection.abort`` (hub:
        slow consumer, revoked session, heartbeat) cancels the writer."""
        hub = self.services.hub
        conn = self.conn
        hub.register(conn)
        hub.presence.up(self.principal.user_id, self.principal.side)
        welcome_sent = asyncio.Event()
        conn.writer = asyncio.create_task(self._writer(), name="ws-writer")
        reader = asyncio.create_task(self._reader(welcome_sent), name="ws-reader")
        tasks = (conn.writer, reader)
        try:
            await self._welcome(since)
            welcome_sent.set()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_all(tasks)
            hub.unregister(conn)
            hub.presence.down(self.principal.user_id, self.principal.side)
            # A client that stopped reading cannot take even the close frame: give it a
            # moment, then let go (the server closes the TCP connection behind us).
            try:
                async with asyncio.timeout(CLOSE_GRACE_S):
                    await self.ws.close(conn.close_code, conn.close_reason)
            except TimeoutError:
                if self.abort_transport is not None:
                    self.abort_transport()
            except Exception:
                log.debug("close after the connection ended", exc_info=True)

    async def _welcome(self, since: dict[int, int]) -> None:
        user = self.principal.user
        async with self.services.read() as uow:
            current = await policy.get_policy(uow, self.principal.org_id)
        restrictions = policy.restrictions(current, self.principal.client).to_dict()
        # The welcome goes first in the queue; replayed events follow it.
        self.conn.push(
            encode(
                {
                    "type": "welcome",
                    "user": {"id": user.id, "display_name": user.display_name, "role": user.role},
                    "session_id": self.principal.session_id,
                    "side": self.principal.side,
                    "restrictions": restrictions,
                    "heartbeat_s": self.services.settings.ping_interval_s,
                }
            )
        )
        rooms = await self.services.hub.subscribe(self.conn, since)
        self.conn.push(encode({"type": "synced", "rooms": {str(k): v for k, v in rooms.items()}}))

    async def _writer(self) -> None:
        """Sends what could not be written directly (the socket was busy), in order."""
        conn = self.conn
        while True:
            frame = await conn.queue.get()
            conn.sending = True
            try:
                await self.ws.send_text(frame)
            finally:
                conn.sending = False

    async def _reader(self, welcome_sent: asyncio.Event) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                self.conn.abort(WS_CLOSE_NORMAL, "client_closed")
                return
            self.conn.last_heard = time.monotonic()
            text = message.get("text")
            raw = text if text is not None else message.get("bytes") or b""
            await welcome_sent.wait()
            try:
                frame = parse_client_frame(raw)
                await self._handle(frame)
            except ProtocolError as exc:
                self.conn.push(error_frame(exc.code, exc.message, exc.message_en, exc.ref))

    async def _handle(self, frame: ClientFrame) -> None:
        services, principal = self.services, self.principal
        try:
            if frame.type == "ping":
                self.conn.push(encode({"type": "pong", "ref": frame.ref}))
            elif frame.type == "pong":
                return
            elif frame.type == "hello":
                raise ProtocolError(
                    "already_authenticated", "認証済みです。", "Already authenticated.", frame.ref
                )
            elif frame.type == "resume":
                for room_id, seq in frame.data["since"].items():
                    if room_id in self.conn.delivered and seq < self.conn.delivered[room_id]:
                        await services.hub.replay(self.conn, room_id, seq)
                self.conn.push(encode({"type": "synced", "ref": frame.ref}))
            elif frame.type == "send":
                d = frame.data
                async with services.unit() as uow:
                    sent = await messages.send_message(
                        uow,
                        principal,
                        d["room_id"],
                        client_id=d["client_id"],
                        body=d["body"],
                        reply_to_id=d["reply_to"],
                        attachment_ids=d["attachment_ids"],
                        location=d["location"],
                    )
                m = sent.message
                self.conn.push(
                    encode(
                        {
                            "type": "ack",
                            "ref": frame.ref,
                            "client_id": m.client_id,
                            "room_id": m.room_id,
                            "message_id": m.id,
                            "seq": m.seq,
                            "duplicate": not sent.created,
                        }
                    )
                )
            elif frame.type == "read":
                async with services.unit() as uow:
                    seq = await receipts.mark_read(
                        uow, principal, frame.data["room_id"], frame.data["seq"]
                    )
                self.conn.push(encode({"type": "ack", "ref": frame.ref, "read_seq": seq}))
        except ChatError as exc:
            self.conn.push(error_frame(exc.code, exc.message, exc.message_en, frame.ref))
        except ProtocolError:
            raise
        except Exception:
            # A bug must not look like a normal close: report it, keep the connection.
            log.exception("websocket frame %s failed", frame.type)
            self.conn.push(
                error_frame(
                    "internal_error",
                    "サーバーで問題が発生しました。しばらくしてからもう一度お試しください。",
                    "The server failed to handle this frame; try again later.",
                    frame.ref,
                )
            )
