"""The listening sockets ``kakehashi serve`` (and the test harness) hand to uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from pathlib import Path

import pytest

from chat.cli import bind_listeners, listen
from chat.settings import Settings


async def _nodelay_of_accepted(sock: socket.socket) -> int:
    """TCP_NODELAY of the server side of one connection accepted by asyncio on ``sock``."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("socket")
            accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await loop.create_server(Probe, sock=sock)
    try:
        host, port = sock.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_accepted_connections_send_without_waiting_for_acks(tmp_path: Path) -> None:
    """With Nagle's algorithm on, a response written as headers then body waits ~40 ms for
    the client's delayed ACK; asyncio turns it off only on sockets that say they are TCP."""
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0, lgwan_port=0)
    [sock] = bind_listeners(settings)
    with contextlib.closing(sock):
        assert sock.proto == socket.IPPROTO_TCP
        assert await _nodelay_of_accepted(sock) != 0


@pytest.mark.skipif(not socket.has_ipv6, reason="this Python was built without IPv6")
async def test_an_ipv6_listener_too() -> None:
    """On ::1 the accepted side has TCP_NODELAY too; a kernel with IPv6 off refuses the
    address itself (and leaves no socket open), never anything else."""
    try:
        sock = listen("::1", 0)
    except OSError as exc:
        assert exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT), exc
        return
    with contextlib.closing(sock):
        assert await _nodelay_of_accepted(sock) != 0


def test_a_port_in_use_is_refused() -> None:
    first = listen("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            listen("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
