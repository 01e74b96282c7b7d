"""uvicorn's sans-I/O websocket protocol with two additions for the hub, offered to the app as
ASGI scope extensions:

- ``kakehashi.direct_send(data: bytes) -> bool`` writes an already-encoded text frame at once
  when the socket can take it (handshake done, not closing, transport not paused), so a
  fan-out to a thousand members costs a frame build and a ``transport.write`` per recipient —
  what ``websockets.broadcast`` does — instead of a task wake-up and the ASGI send chain.
  It returns False when the frame must go through the connection's queue instead.
- ``kakehashi.abort()`` drops the TCP connection of a client too stuck to take even a close
  frame (a slow consumer), instead of leaving its buffers to the kernel's timeouts.

Without them (another server), the app falls back to the plain ASGI path.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

DIRECT_SEND = "kakehashi.direct_send"
ABORT = "kakehashi.abort"


class DirectSendProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            extensions = scope.setdefault("extensions", {})
            extensions[DIRECT_SEND] = self.direct_send
            extensions[ABORT] = self.abort

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
