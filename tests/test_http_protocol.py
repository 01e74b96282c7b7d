"""chat/http_protocol.py: request bodies reach the app as read, whole and in order, with
larger reads while a body arrives; keep-alive and pipelining as uvicorn does them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from chat.cli import listen, uvicorn_config
from chat.http_protocol import BODY_READ_BYTES, BodyChunks, StreamingHttpProtocol
from chat.settings import Settings

MIB = 1024 * 1024


def test_body_chunks_hand_over_one_chunk_as_is_and_join_several() -> None:
    one = os.urandom(1000)
    chunks = BodyChunks()
    chunks += one
    assert len(chunks) == 1000
    assert bytes(chunks) is one
    chunks += b"xyz"
    assert len(chunks) == 1003
    assert bytes(chunks) == one + b"xyz"
    assert bytes(BodyChunks()) == b""


class Probe:
    """An ASGI app answering every request with the size and SHA-256 of its body; it holds
    the first chunk of a request to /held until the test lets it go on."""

    def __init__(self) -> None:
        self.first_chunk = asyncio.Event()
        self.go_on = asyncio.Event()
        self.bodies: list[bytes] = []  # every body chunk the app was given

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/early":  # answers without reading the body
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        digest, size, first = hashlib.sha256(), 0, True
        while True:
            message = await receive()
            body = message.get("body", b"")
            self.bodies.append(body)
            digest.update(body)
            size += len(body)
            if first and scope["path"] == "/held":
                first = False
                self.first_chunk.set()
                await self.go_on.wait()
            if not message.get("more_body"):
                break
        answer = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def serving(app: Probe, tmp_path: Path) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn_config(Settings(data_dir=tmp_path), app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield server, port
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader, status: int = 200) -> dict[str, Any]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    assert head.startswith(f"HTTP/1.1 {status}"), head
    length = next(
        int(line.split(":", 1)[1])
        for line in head.split("\r\n")
        if line.lower().startswith("content-length:")
    )
    content = await reader.readexactly(length)
    answer: dict[str, Any] = json.loads(content) if status == 200 and content else {}
    return answer


async def start_held_post(
    server: uvicorn.Server, port: int, probe: Probe, payload: bytes, first: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, StreamingHttpProtocol]:
    """POST /held with the headers and the first ``first`` bytes of ``payload`` sent; returns
    once the app holds its first chunk, with the server's protocol for the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /held HTTP/1.1\r\nHost: t\r\nContent-Length: {len(payload)}\r\n\r\n"
    writer.write(head.encode() + payload[:first])
    await writer.drain()
    await asyncio.wait_for(probe.first_chunk.wait(), 10)
    [protocol] = server.server_state.connections
    assert isinstance(protocol, StreamingHttpProtocol)
    return reader, writer, protocol


async def test_a_body_arrives_whole_with_large_reads_then_a_pipelined_request(
    tmp_path: Path,
) -> None:
    probe = Probe()
    payload = os.urandom(3 * MIB + 12345)
    async with serving(probe, tmp_path) as (server, port):
        assert server.config.http_protocol_class is StreamingHttpProtocol
        reader, writer, protocol = await start_held_post(server, port, probe, payload, 1000)
        try:
            transport: Any = protocol.transport
            assert transport.max_size == BODY_READ_BYTES  # while the body arrives
            probe.go_on.set()
            # The rest in uneven pieces, then a second request on the same connection
            # before the first one is answered.
            offset = 1000
            for size in (1, 7, 300_000, MIB + 3, 65_536):
                writer.write(payload[offset : offset + size])
                offset += size
                await writer.drain()
            writer.write(payload[offset:])
            writer.write(b"POST /second HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()
            first = await asyncio.wait_for(read_response(reader), 30)
            second = await asyncio.wait_for(read_response(reader), 30)
            assert "max_size" not in vars(transport)  # asyncio's default again
        finally:
            writer.close()
    assert first == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    assert second == {"size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}


@pytest.mark.parametrize("pieces", [1, 64])
async def test_many_requests_on_one_connection_each_get_their_own_body(
    tmp_path: Path, pieces: int
) -> None:
    probe = Probe()
    bodies = [os.urandom(n) for n in (0, 1, 4096, 700_000, 70_000)]
    async with serving(probe, tmp_path) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in bodies:
                writer.write(
                    f"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                )
                step = max(1, len(body) // pieces)
                for start in range(0, len(body), step):
                    writer.write(body[start : start + step])
                    await writer.drain()
                answer = await asyncio.wait_for(read_response(reader), 30)
                assert answer == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        finally:
            writer.close()


async def test_body_bytes_bypass_the_parser_and_a_request_after_them_gets_a_fresh_one(
    tmp_path: Path,
) -> None:
    """Once the headers are parsed, what is read is handed to the app as it is (the same
    object, no copy); the bytes after the body, read together with its end, are the next
    request."""
    probe = Probe()
    payload = os.urandom(2 * MIB)
    async with serving(probe, tmp_path) as (server, port):
        reader, writer, protocol = await start_held_post(server, port, probe, payload, 10)
        try:
            probe.go_on.set()
            await asyncio.sleep(0.1)  # the app waits for more
            # As if the socket had read these (same event loop): the middle of the body, then
            # its end and the next request in one read.
            middle = payload[10:MIB]
            protocol.data_received(middle)
            await asyncio.sleep(0.1)  # the app takes it
            protocol.data_received(
                payload[MIB:] + b"POST /second HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"
            )
            first = await asyncio.wait_for(read_response(reader), 30)
            second = await asyncio.wait_for(read_response(reader), 30)
        finally:
            writer.close()
    assert first == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    assert second == {"size": 2, "sha256": hashlib.sha256(b"ok").hexdigest()}
    assert any(body is middle for body in probe.bodies)  # handed on as read


async def test_a_body_the_app_did_not_read_is_skipped_before_the_next_request(
    tmp_path: Path,
) -> None:
    probe = Probe()
    unread = os.urandom(3 * MIB)
    async with serving(probe, tmp_path) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head = f"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: {len(unread)}\r\n\r\n"
            writer.write(head.encode())
            await writer.drain()
            head_of_answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head_of_answer.startswith(b"HTTP/1.1 200")
            writer.write(unread + b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            await writer.drain()
            answer = await asyncio.wait_for(read_response(reader), 30)
        finally:
            writer.close()
    assert answer == {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5x",
    ],
)
async def test_ambiguous_body_framing_is_refused_as_before(tmp_path: Path, framing: str) -> None:
    """What is not one plain Content-Length stays with the parser, which refuses it."""
    probe = Probe()
    async with serving(probe, tmp_path) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"POST /x HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\nhello".encode())
            await writer.drain()
            await asyncio.wait_for(read_response(reader, status=400), 10)
        finally:
            writer.close()
    assert probe.bodies == []
