"""uvicorn's sans-I/O websocket protocol, lighter per connection, with three additions for the
app, offered as ASGI scope extensions:

- ``kakehashi.direct_send(data: bytes) -> bool`` writes an already-encoded text frame at once
  when the socket can take it (handshake done, not closing, transport not paused), so a
  fan-out to a thousand members costs a frame build and a ``transport.write`` per recipient —
  what ``websockets.broadcast`` does — instead of a task wake-up and the ASGI send chain.
  It returns False when the frame must go through the connection's queue instead.
- ``kakehashi.abort()`` drops the TCP connection of a client too stuck to take even a close
  frame (a slow consumer), instead of leaving its buffers to the kernel's timeouts.
- ``kakehashi.detach(session)`` lets a long-lived connection leave the ASGI call: the
  transport runs ``session(ws)`` in a task of its own, ``ws`` being a Starlette ``WebSocket``
  wired straight to this protocol, and the ASGI call returns without closing the connection.
  An idle connection then keeps its session's frames only, not those of every middleware of
  the stack (FastAPI's exit stacks, exception wrappers: some 13 KB).  When the session ends,
  the connection is closed as when an ASGI call returns.

What an idle connection keeps is otherwise kept small: no instance dicts (slots), a light
queue and flag in place of ``asyncio.Queue`` and ``asyncio.Event`` (``chat.memory``), and not
the handshake request (websockets' parser held on to it, every header, for good).

Without these extensions (another server), the app falls back to the plain ASGI path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketState
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.protocol import Protocol as _SansIOProtocol
from websockets.server import ServerProtocol

from chat.memory import Flag, LightQueue

DIRECT_SEND = "kakehashi.direct_send"
ABORT = "kakehashi.abort"
DETACH = "kakehashi.detach"

SessionFactory = Callable[[WebSocket], Coroutine[Any, Any, None]]

# What a detached session's scope drops: what routing and the middleware added for the ASGI
# call (FastAPI's exit stacks, the router, the route, the endpoint, the exception handlers);
# the rest, the ASGI websocket scope and what the app's own middleware put there, stays.
_SCOPE_DROPPED = frozenset(
    ("endpoint", "path_params", "route", "router", "starlette.exception_handlers")
)


def _kept(key: str) -> bool:
    return key not in _SCOPE_DROPPED and not key.startswith("fastapi")


class _ServerProtocol(ServerProtocol):
    """websockets' server protocol without an instance dict."""

    __slots__ = (
        "_state",
        "accept_called",
        "available_extensions",
        "available_subprotocols",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "current_size",
        "debug",
        "eof_sent",
        "events",
        "expect_continuation_frame",
        "extensions",
        "handshake_exc",
        "id",
        "logger",
        "max_fragment_size",
        "max_message_size",
        "origin",
        "origins",
        "parser",
        "parser_exc",
        "reader",
        "side",
        "subprotocol",
        "writes",
    )


class DirectSendProtocol(WebSocketsSansIOProtocol):
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "detached",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # uvicorn's __init__ (its minor version is pinned), with light stand-ins for the queue
        # and the writable event, and objects without an instance dict: an idle connection
        # keeps all of these.
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path = config.root_path
        self.asgi_version = config.asgi_version
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.transport = None  # type: ignore[assignment]
        self.server = None
        self.client = None
        self.scheme = None  # type: ignore[assignment]
        self.queue = LightQueue()  # type: ignore[assignment]
        self.handshake_initiated = False
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self.close_timer = None
        self.close_timeout = 10.0
        self.initial_response = None
        self.detached = False
        extensions = []
        if config.ws_per_message_deflate:
            extensions = [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            ]
        self.conn = _ServerProtocol(
            extensions=extensions, max_size=config.ws_max_size, logger=self.logger
        )
        self.read_paused = False
        self.writable = Flag(True)  # type: ignore[assignment]
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.ping_timer = None
        self.pong_timer = None
        self.pending_ping_payload = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0
        self.frames = []
        self.curr_msg_data_type = "bytes"

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        conn = self.conn
        # websockets' parser keeps the handshake request (every header) in a local of its
        # generator for as long as the connection lives: start the frame parser afresh, which
        # is the same state as long as no byte of a frame has been read yet.
        if not conn.reader.buffer and conn.parser_exc is None:
            conn.parser = _SansIOProtocol.parse(conn)
            next(conn.parser)
        scope = getattr(self, "scope", None)
        if scope is not None:
            extensions = scope.setdefault("extensions", {})
            extensions[DIRECT_SEND] = self.direct_send
            extensions[ABORT] = self.abort
            extensions[DETACH] = self.detach

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response are not used again; a thousand idle
            # connections should not keep a thousand copies of their headers.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    def direct_send(self, data: bytes) -> bool:
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.conn.send_text(data)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()

    def detach(self, session: SessionFactory) -> None:
        """Run ``session(ws)`` in a task of the connection's own, once the app has accepted
        the connection; the ASGI call may then return without closing it."""
        if self.detached or not self.handshake_complete:
            raise RuntimeError("detach() is for an accepted connection, once")
        scope: Any = {k: v for k, v in self.scope.items() if _kept(k)}
        ws = WebSocket(scope, self.receive, self.send)  # type: ignore[arg-type]
        ws.client_state = ws.application_state = WebSocketState.CONNECTED
        coroutine = session(ws)
        self.scope = scope
        self.detached = True
        task = self.loop.create_task(self._run_detached(coroutine))
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    async def _run_detached(self, session: Coroutine[Any, Any, None]) -> None:
        try:
            await session
        except ClientDisconnected:
            pass
        except Exception:
            self.logger.exception("Exception in websocket session\n")
        finally:
            # As when an ASGI call returns.
            if self.close_timer is None:
                self.transport.close()

    async def run_asgi(self) -> None:
        """uvicorn's, except that a detached connection stays open when the call returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self.detached:
            self.transport.close()
