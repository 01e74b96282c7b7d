"""uvicorn's HTTP/1.1 protocol (httptools), passing a request body on as it is read.

uvicorn gathers body bytes in a ``bytearray`` and gives the app ``bytes(bytearray)``, and
httptools copies every body byte out of what the socket read: every byte of an upload is
copied three times more on the event loop, and asyncio reads a socket 256 KiB at a time, each
read pausing and resuming the socket once more.  A 20 MiB attachment is most of what the
event loop does while it arrives, so here:

- a body with a ``Content-Length`` (no ``Transfer-Encoding``) is counted past the parser:
  once the parser has the headers, what the socket reads is the body itself, handed on as
  it was read (the bytes of a next, pipelined request go to a fresh parser);
- the chunks are handed to the app as they were read: one chunk as is, several (read before
  the app asked) joined once;
- while a request body arrives, an asyncio transport reads up to :data:`BODY_READ_BYTES` at a
  time (back to asyncio's default when the body is complete), a quarter as many reads
  (uvloop, which ``kakehashi serve`` runs on, reads 256 KiB at a time and is left as it is).

Flow control is uvicorn's: reading pauses as soon as more than 64 KiB wait for the app, so a
connection holds at most about one read of body the app has not taken.  Measured with
``bench/upload.py`` (docs/bench.md).  The websocket upgrade is uvicorn's (``chat.transport``).
"""

from __future__ import annotations

from typing import Any

import httptools
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

    #: Body bytes of the current request not received yet, once they bypass the parser.
    _body_left = 0
    #: The current request's ``Content-Length`` when its body may bypass the parser.
    _body_length: int | None = None
    _body_seen = 0

    def data_received(self, data: bytes) -> None:
        if self._body_left:
            self._take_body(data)
            return
        super().data_received(data)
        length = self._body_length
        if (
            length is not None
            and self._body_seen < length
            and self.parser is not None
            and not self.transport.is_closing()
        ):
            # The parser has the headers (and perhaps some of the body): count the rest.
            self._body_left = length - self._body_seen

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._body_seen = 0
        self._body_length = _plain_length(self.headers) if self.cycle is not None else None
        if self.parser.should_upgrade():
            self._body_length = None

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        cycle: Any = self.cycle
        if type(cycle.body) is not BodyChunks:  # a new request, or the app took what was held
            held = bytes(cycle.body)
            cycle.body = BodyChunks()
            if held:
                cycle.body += held
            self._set_read_size(BODY_READ_BYTES)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_length = None
        self._set_read_size(None)
        super().on_message_complete()

    def _take_body(self, data: bytes) -> None:
        """``data`` starts with body bytes the parser will not see; the body's end goes to
        uvicorn as the parser would have said it, and what follows to a fresh parser."""
        self._unset_keepalive_if_required()
        left = self._body_left
        body, rest = (data, b"") if len(data) <= left else (data[:left], data[left:])
        self._body_left = left - len(body)
        self.on_body(body)
        if self._body_left:
            return
        # The old parser still waits for this body: the next request gets a new one.
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's
        self.on_message_complete()
        if rest:
            self.data_received(rest)

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


def _plain_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length when it is given by exactly one ``Content-Length`` of digits and no
    ``Transfer-Encoding`` (anything else stays with the parser, which refuses what is wrong)."""
    lengths = [value for name, value in headers if name == b"content-length"]
    if len(lengths) != 1 or not lengths[0].strip().isdigit():
        return None
    if any(name == b"transfer-encoding" for name, _ in headers):
        return None
    return int(lengths[0])
