"""The load generator of ``bench/realtime.py``: one process, one event loop, many real
websocket clients (the ``websockets`` library) speaking Kakehashi's protocol.

The orchestrator drives each worker over a pipe with small commands (connect, arm, publish,
collect, close) and gets plain dicts back.  A published body carries its send time:
``"bench <tag> <publisher> <n> <CLOCK_MONOTONIC ns>"``; CLOCK_MONOTONIC is one clock for
every process of the machine, so a receiver in another process subtracts it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 60.0
WINDOW_STALL_S = 10.0  # a flood publisher whose echo never comes back gives up after this
MAX_FRAME_BYTES = 1 << 20
PR_SET_PDEATHSIG = 1
EVENT_PREFIX = b'{"type":"event","room_id":'
BENCH_BODY = b'"body":"bench '


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (the bench is bounded)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Recording:
    """What one worker saw of one run (``tag``)."""

    tag: str
    received: int = 0
    duplicates: int = 0
    acked: int = 0
    errors: int = 0
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))
    first_ns: int = 0
    last_ns: int = 0


class Client(asyncio.Protocol):
    """One websocket connection: websockets' sans-I/O ``ClientProtocol`` under a plain
    asyncio protocol — no task and no future per frame, so the load generator stays cheaper
    than the servers it measures."""

    def __init__(self, worker: Worker, idx: int, token: str, compression: str | None) -> None:
        self.worker = worker
        self.idx = idx
        self.token = token
        self.compression = compression
        self.transport: asyncio.Transport | None = None
        self.protocol: ClientProtocol | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.fragments: list[bytes] = []
        self.last_seq: dict[int, int] = {}
        self.window: asyncio.Semaphore | None = None
        self.closing = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        url = self.worker.url
        extensions = enable_client_permessage_deflate(None) if self.compression else None
        self.protocol = ClientProtocol(
            parse_uri(url), extensions=extensions, max_size=MAX_FRAME_BYTES
        )
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        assert protocol is not None
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Response):
                if protocol.handshake_exc is not None:
                    self._fail(protocol.handshake_exc)
                    return
                self.send(json.dumps({"type": "hello", "token": self.token}))
            elif isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    if not event.fin:
                        self.fragments.append(event.data)
                        continue
                    if self.fragments:
                        self.fragments.append(event.data)
                        data = b"".join(self.fragments)
                        self.fragments.clear()
                    else:
                        data = event.data
                    self._on_text(data)
                elif event.opcode is Opcode.CLOSE and not self.closing:
                    code = protocol.close_rcvd.code if protocol.close_rcvd else 1006
                    self.worker.dropped[code] = self.worker.dropped.get(code, 0) + 1
                    self.closing = True
        self._flush()
        if protocol.close_expected() and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.protocol is not None:
            self.protocol.receive_eof()
        if not self.closing:
            self.worker.dropped[1006] = self.worker.dropped.get(1006, 0) + 1
            self.closing = True
        self._fail(ConnectionError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    # -- helpers -----------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
            if self.transport is not None:
                self.transport.abort()

    def _flush(self) -> None:
        assert self.protocol is not None and self.transport is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def send(self, text: str) -> None:
        if self.protocol is None or self.protocol.state is not State.OPEN:
            raise ConnectionError("not open")
        self.protocol.send_text(text.encode())
        self._flush()

    def _on_text(self, data: bytes) -> None:
        now = time.monotonic_ns()
        rec = self.worker.recording
        if data.startswith(EVENT_PREFIX):
            # Both servers write event frames as {"type":"event","room_id":…,"seq":…,…}: read
            # the three fields we need without decoding the whole frame.
            if rec is None:
                return
            start = data.find(BENCH_BODY)
            if start < 0:
                return
            start += len(BENCH_BODY) - len(b"bench ")
            body = data[start : data.index(b'"', start)].decode()
            room_s, _, rest = data[len(EVENT_PREFIX) :].partition(b',"seq":')
            seq = int(rest[: rest.index(b",")])
            self._on_bench_event(rec, now, int(room_s), seq, body)
            return
        frame = json.loads(data)
        kind = frame.get("type")
        if kind == "event":
            if frame.get("event") == "message" and rec is not None:
                body = frame["data"]["message"]["body"]
                if body.startswith("bench "):
                    self._on_bench_event(rec, now, frame["room_id"], frame["seq"], body)
        elif kind == "ping":
            self.send('{"type":"pong"}')
        elif kind == "synced":
            if not self.opened.done():
                self.opened.set_result(None)
        elif kind == "ack":
            if rec is not None and str(frame.get("client_id", "")).startswith(rec.tag + "-"):
                rec.acked += 1
        elif kind == "error":
            if not self.opened.done():
                self._fail(RuntimeError(f"hello refused: {frame.get('code')}"))
            elif rec is not None:
                rec.errors += 1

    def _on_bench_event(self, rec: Recording, now: int, room_id: int, seq: int, body: str) -> None:
        _, tag, pub, _n, sent_ns = body.split(" ")
        if tag != rec.tag:
            return
        if seq <= self.last_seq.get(room_id, 0):
            rec.duplicates += 1
            return
        self.last_seq[room_id] = seq
        rec.received += 1
        rec.latencies_ns.append(now - int(sent_ns))
        if not rec.first_ns:
            rec.first_ns = now
        rec.last_ns = now
        if self.window is not None and int(pub) == self.idx:
            self.window.release()

    @property
    def is_open(self) -> bool:
        return (
            self.opened.done()
            and not self.lost.done()
            and self.protocol is not None
            and self.protocol.state is State.OPEN
        )

    async def close(self) -> None:
        self.closing = True
        if self.protocol is not None and self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self._flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.lost
        if self.transport is not None and not self.lost.done():
            self.transport.abort()


class Worker:
    def __init__(self, tokens: dict[int, str]) -> None:
        self.tokens = tokens
        self.clients: dict[int, Client] = {}
        self.recording: Recording | None = None
        self.dropped: dict[int, int] = {}
        self.url = ""

    async def connect(
        self, url: str, indexes: list[int], concurrency: int, compression: str | None
    ) -> dict[str, Any]:
        started = time.monotonic()
        self.url = url
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def one(idx: int) -> None:
            async with gate:
                for attempt in range(CONNECT_ATTEMPTS):
                    client = Client(self, idx, self.tokens[idx], compression)
                    try:
                        async with asyncio.timeout(CONNECT_TIMEOUT_S):
                            await loop.create_connection(lambda c=client: c, uri.host, uri.port)
                            await client.opened
                    except Exception as exc:
                        if client.transport is not None:
                            client.transport.abort()
                        if attempt == CONNECT_ATTEMPTS - 1:
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    self.clients[idx] = client
                    return

        await asyncio.gather(
            *(one(i) for i in indexes if i not in self.clients and i in self.tokens)
        )
        return {
            "open": sum(c.is_open for c in self.clients.values()),
            "failed": len(errors),
            "errors": errors[:3],
            "seconds": time.monotonic() - started,
        }

    async def close(self, indexes: list[int] | None) -> dict[str, Any]:
        chosen = (
            list(self.clients) if indexes is None else [i for i in indexes if i in self.clients]
        )
        gate = asyncio.Semaphore(200)

        async def one(idx: int) -> None:
            async with gate:
                await self.clients.pop(idx).close()

        await asyncio.gather(*(one(i) for i in chosen))
        return {"closed": len(chosen)}

    def status(self) -> dict[str, Any]:
        return {
            "open": sum(c.is_open for c in self.clients.values()),
            "dropped": dict(self.dropped),
        }

    def arm(self, tag: str) -> dict[str, Any]:
        self.recording = Recording(tag)
        return {}

    async def publish(
        self,
        tag: str,
        room_id: int,
        publishers: list[tuple[int, float]],
        *,
        rate_per_publisher: float,
        window: int,
        start_at: float,
        duration_s: float,
    ) -> dict[str, Any]:
        """Fixed rate (``rate_per_publisher`` > 0, absolute schedule so it never drifts) or
        flood (``window`` messages in flight per publisher, released by the publisher's own
        echo) from ``start_at`` (CLOCK_MONOTONIC seconds) for ``duration_s``.  ``publishers``
        are ``(index, phase)``: a publisher starts ``phase`` of its own interval late."""
        results = await asyncio.gather(
            *(
                self._publish_one(
                    self.clients[i],
                    tag,
                    room_id,
                    rate_per_publisher,
                    window,
                    start_at,
                    duration_s,
                    phase,
                )
                for i, phase in publishers
                if i in self.clients
            )
        )
        return {
            "sent": sum(r[0] for r in results),
            "stalled": sum(r[1] for r in results),
            "late_ms_max": max((r[2] for r in results), default=0.0),
        }

    async def _publish_one(
        self,
        client: Client,
        tag: str,
        room_id: int,
        rate: float,
        window: int,
        start_at: float,
        duration_s: float,
        phase: float,
    ) -> tuple[int, int, float]:
        loop = asyncio.get_running_loop()
        offset = time.monotonic() - loop.time()
        t0 = start_at - offset
        if rate > 0:
            t0 += phase / rate  # publishers take turns instead of sending in bursts
        end = t0 + duration_s
        if window:
            client.window = asyncio.Semaphore(window)
        n = stalled = 0
        late_max = 0.0
        try:
            while True:
                if rate > 0:
                    due = t0 + n / rate
                    if due >= end:
                        break
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        late_max = max(late_max, -delay * 1000)
                else:
                    delay = t0 - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if loop.time() >= end:
                        break
                    assert client.window is not None
                    try:
                        async with asyncio.timeout(WINDOW_STALL_S):
                            await client.window.acquire()
                    except TimeoutError:
                        stalled += 1
                        break
                body = f"bench {tag} {client.idx} {n} {time.monotonic_ns()}"
                client.send(
                    json.dumps(
                        {
                            "type": "send",
                            "room_id": room_id,
                            "client_id": f"{tag}-{client.idx}-{n}",
                            "body": body,
                        }
                    )
                )
                n += 1
        except ConnectionError:
            stalled += 1
        finally:
            client.window = None
        return n, stalled, late_max

    async def collect(self, expected: int, timeout_s: float) -> dict[str, Any]:
        rec = self.recording
        assert rec is not None
        deadline = time.monotonic() + timeout_s
        while rec.received < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)  # late duplicates, acks
        self.recording = None
        return {
            "received": rec.received,
            "duplicates": rec.duplicates,
            "acked": rec.acked,
            "errors": rec.errors,
            "first_ns": rec.first_ns,
            "last_ns": rec.last_ns,
            "latencies": rec.latencies_ns.tobytes(),
            "dropped": dict(self.dropped),
        }


async def serve(pipe: Connection, tokens: dict[int, str]) -> None:
    worker = Worker(tokens)
    loop = asyncio.get_running_loop()
    while True:
        try:
            command, args = await loop.run_in_executor(None, pipe.recv)
        except EOFError:
            return
        if command == "exit":
            await worker.close(None)
            pipe.send({})
            return
        handler = {
            "connect": worker.connect,
            "close": worker.close,
            "publish": worker.publish,
            "collect": worker.collect,
        }.get(command)
        if handler is not None:
            reply = await handler(**args)
        elif command == "status":
            reply = worker.status()
        elif command == "arm":
            reply = worker.arm(**args)
        else:
            reply = {"error": f"unknown command {command!r}"}
        pipe.send(reply)


def main(pipe: Connection, tokens: dict[int, str]) -> None:
    """Entry point of a worker process (multiprocessing, spawn)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator decides when we stop
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(pipe, tokens))
    else:
        uvloop.run(serve(pipe, tokens))
    pipe.close()
    sys.stdout.flush()
    os._exit(0)
