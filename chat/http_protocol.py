"""uvicorn's HTTP/1.1 protocol (httptools), passing a request body on as it is read.

uvicorn gathers body bytes in a ``bytearray`` and gives the app ``bytes(bytearray)``: every
byte of an upload is copied twice more in the event loop, and asyncio reads a socket 256 KiB
at a time, each read pausing and resuming the socket once more.  A 20 MiB attachment is most
of what the event loop does while it arrives, so here:

- the chunks are handed to the app as they were read: one chunk as is, several (read before
  the app asked) joined once;
- while a request body arrives, the transport reads up to :data:`BODY_READ_BYTES` at a time
  (back to asyncio's default when the body is complete), a quarter as many reads.

Flow control is uvicorn's: reading pauses as soon as more than 64 KiB wait for the app, so a
connection holds at most about one read of body the app has not taken.  Measured with
``bench/upload.py`` (docs/bench.md).  The websocket upgrade is uvicorn's (``chat.transport``).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Largest socket read while a request body arrives.
BODY_READ_BYTES = 1024 * 1024


class BodyChunks:
    """Stands in for uvicorn's ``cycle.body`` bytearray: ``+=`` keeps the chunk (no copy),
    ``len()`` is the bytes held, ``bytes()`` gives them (the chunk itself when there is one)."""

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def __iadd__(self, chunk: bytes) -> BodyChunks:
        self.chunks.append(chunk)
        self.size += len(chunk)
        return self

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        if len(self.chunks) == 1:
            return self.chunks[0]
        return b"".join(self.chunks)


class StreamingHttpProtocol(HttpToolsProtocol):
    """Used as uvicorn's ``http`` protocol class (``chat.cli.uvicorn_config``)."""

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle.body) is not BodyChunks:  # a new request, or the app took what was held
            held = bytes(cycle.body)
            cycle.body = BodyChunks()
            if held:
                cycle.body += held
            self._set_read_size(BODY_READ_BYTES)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._set_read_size(None)
        super().on_message_complete()

    def _set_read_size(self, size: int | None) -> None:
        """asyncio's selector transport reads ``max_size`` bytes a time (a class attribute);
        ``None`` goes back to it.  Other transports (uvloop's) are left as they are."""
        transport: Any = self.transport
        default = getattr(type(transport), "max_size", None)
        if not isinstance(default, int):
            return
        if size is None:
            if "max_size" in vars(transport):
                del transport.max_size
        else:
            transport.max_size = max(size, default)
