"""The websocket protocol against a real server: delivery, resume, idempotency, access,
revocation, bad frames, origin, heartbeats, slow clients."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

import pytest
import websockets
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chat import messages, rooms
from chat.auth import authenticate, end_user_sessions
from chat.broker import MemoryBroker
from chat.hub import Connection
from chat.settings import MAX_FRAME_BYTES, SEND_QUEUE_MAX
from chat.unit import unit_of_work
from tests.harness import Server, World, Ws, client_id


async def direct_room(world: World, a: str, b: str) -> int:
    r = await world[a].api.post("/api/rooms/direct", json={"user_id": world[b].id})
    assert r.status_code in (200, 201), r.text
    return int(r.json()["id"])


async def send_rest(world: World, who: str, room_id: int, body: str) -> dict:
    r = await world[who].api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": body}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def stuck_client(port: int, token: str) -> socket.socket:
    """A websocket client that authenticates and then never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = json.dumps({"type": "hello", "token": token}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def closed_code(ws: Ws, timeout: float = 5.0) -> int:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv(timeout)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


async def test_reconnect_resumes_with_no_loss_and_no_duplicate(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    bob = await Ws.connect(world.server, world["bob"].token)
    await send_rest(world, "alice", room, "一通目")
    first = await bob.event("message")
    last_seen = first["seq"]
    await bob.close()

    sent = [await send_rest(world, "alice", room, f"不在中 {i}") for i in range(5)]
    await world["alice"].api.put(f"/api/messages/{sent[0]['id']}/reactions/👍")

    bob = await Ws.connect(world.server, world["bob"].token, since={room: last_seen})
    replayed = [f for f in bob.seen if f["type"] == "event"]
    # everything after last_seen, in order, once: 5 messages and the reaction
    assert [f["seq"] for f in replayed] == list(range(last_seen + 1, last_seen + 7))
    bodies = [f["data"]["message"]["body"] for f in replayed if f["event"] == "message"]
    assert bodies == [f"不在中 {i}" for i in range(5)]
    assert replayed[-1]["event"] == "reaction"
    # and then live, without a gap or a repeat
    await send_rest(world, "alice", room, "おかえり")
    live = await bob.event("message")
    assert live["seq"] == last_seen + 7
    assert live["data"]["message"]["body"] == "おかえり"
    await bob.close()


async def test_resume_on_a_live_connection_replays_what_was_asked(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    for i in range(3):
        await send_rest(world, "alice", room, f"m{i}")
    bob = await Ws.connect(world.server, world["bob"].token)
    await bob.send({"type": "resume", "id": "r1", "since": {str(room): 2}})
    await bob.expect("synced", ref="r1")
    # Live from the current seq, the connection had received nothing; asking from 2 replays
    # exactly what follows 2, once.
    seqs = [f["seq"] for f in bob.seen if f["type"] == "event"]
    room_seq = (await world["bob"].api.get(f"/api/rooms/{room}")).json()["last_seq"]
    assert seqs == list(range(3, room_seq + 1))
    await bob.close()


async def test_retry_after_lost_ack_stores_and_delivers_once(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    alice = await Ws.connect(world.server, world["alice"].token)
    bob = await Ws.connect(world.server, world["bob"].token)
    cid = client_id()
    frame = {"type": "send", "room_id": room, "client_id": cid, "body": "一度だけ"}
    await alice.send({**frame, "id": "try1"})
    ack1 = await alice.expect("ack", ref="try1")
    # the ack was "lost": the client retries on a new connection with the same client id
    await alice.close()
    alice = await Ws.connect(world.server, world["alice"].token)
    await alice.send({**frame, "id": "try2"})
    ack2 = await alice.expect("ack", ref="try2")
    assert ack2["message_id"] == ack1["message_id"] and ack2["duplicate"] is True
    # REST retry with the same client id too
    r = await world["alice"].api.post(
        f"/api/rooms/{room}/messages", json={"client_id": cid, "body": "一度だけ"}
    )
    assert r.status_code == 200 and r.json()["id"] == ack1["message_id"]
    await send_rest(world, "alice", room, "次")
    await bob.expect("event", event="message")
    nxt = await bob.event("message")
    assert nxt["data"]["message"]["body"] == "次"
    bodies = [
        f["data"]["message"]["body"]
        for f in bob.seen
        if f.get("type") == "event" and f["event"] == "message"
    ]
    assert bodies == ["一度だけ", "次"]
    history = (await world["bob"].api.get(f"/api/rooms/{room}/messages")).json()["messages"]
    assert [m["body"] for m in history] == ["一度だけ", "次"]
    await alice.close()
    await bob.close()


async def test_concurrent_duplicate_sends_store_one_message(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    cid = client_id()
    results = await asyncio.gather(
        *[
            world["alice"].api.post(
                f"/api/rooms/{room}/messages", json={"client_id": cid, "body": "同時"}
            )
            for _ in range(5)
        ]
    )
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 1
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201]


async def test_non_member_cannot_subscribe_or_post(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    carol = await Ws.connect(world.server, world["carol"].token, since={room: 0})
    assert not [f for f in carol.seen if f["type"] == "event"], "replayed a foreign room"
    await send_rest(world, "alice", room, "秘密")
    await carol.send(
        {"type": "send", "id": "x", "room_id": room, "client_id": client_id(), "body": "侵入"}
    )
    err = await carol.expect("error", ref="x")
    assert err["code"] == "not_a_member"
    await carol.send({"type": "read", "id": "y", "room_id": room, "seq": 1})
    assert (await carol.expect("error", ref="y"))["code"] == "not_a_member"
    await carol.send({"type": "ping", "id": "p"})
    await carol.expect("pong", ref="p")
    assert not [f for f in carol.seen if f["type"] == "event"]
    history = await world["carol"].api.get(f"/api/rooms/{room}/messages")
    assert history.status_code == 403 and history.json()["error"]["code"] == "not_a_member"
    await carol.close()


async def test_member_added_starts_receiving_and_removed_stops(world: World) -> None:
    r = await world["alice"].api.post("/api/rooms", json={"name": "庶務係", "member_ids": []})
    room = r.json()["id"]
    carol = await Ws.connect(world.server, world["carol"].token)
    await world["alice"].api.post(
        f"/api/rooms/{room}/members", json={"user_ids": [world["carol"].id]}
    )
    added = await carol.event("member.added")
    assert added["data"]["user"]["id"] == world["carol"].id
    await send_rest(world, "alice", room, "ようこそ")
    assert (await carol.event("message"))["data"]["message"]["body"] == "ようこそ"
    await world["alice"].api.delete(f"/api/rooms/{room}/members/{world['carol'].id}")
    await carol.event("member.removed")
    await send_rest(world, "alice", room, "退出後")
    await carol.send({"type": "ping", "id": "after"})
    await carol.expect("pong", ref="after")
    bodies = [f["data"]["message"]["body"] for f in carol.seen if f.get("event") == "message"]
    assert bodies == ["ようこそ"]
    await carol.close()


async def test_sign_out_and_deactivation_close_live_connections(world: World) -> None:
    bob = await Ws.connect(world.server, world["bob"].token)
    r = await world["bob"].api.post("/api/auth/logout")
    assert r.status_code == 200
    assert await closed_code(bob) == 4003
    # the token is dead for new connections too
    with pytest.raises(ConnectionClosed) as info:
        await Ws.connect(world.server, world["bob"].token)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001

    carol = await Ws.connect(world.server, world["carol"].token)
    r = await world["admin"].api.post(f"/api/admin/users/{world['carol'].id}/deactivate")
    assert r.status_code == 200, r.text
    assert await closed_code(carol) == 4003
    r = await world["carol"].api.get("/api/rooms")
    assert r.status_code == 401


async def test_sign_out_everywhere_closes_every_session(world: World) -> None:
    first = await Ws.connect(world.server, world["alice"].token)
    old_token = world["alice"].token
    await world.sign_in(world["alice"])
    second = await Ws.connect(world.server, world["alice"].token)
    r = await world["alice"].api.post("/api/auth/logout-all")
    assert r.json()["sessions_ended"] == 2
    assert await closed_code(first) == 4003
    assert await closed_code(second) == 4003
    assert old_token != world["alice"].token


async def test_bad_frames_get_errors_and_the_connection_survives(world: World) -> None:
    alice = await Ws.connect(world.server, world["alice"].token)
    cases = [
        ("not json {", "bad_json"),
        (json.dumps([1, 2]), "bad_frame"),
        (json.dumps({"type": "fly"}), "unknown_type"),
        (json.dumps({"type": "send", "room_id": 1}), "missing_field"),
        (json.dumps({"type": "read", "room_id": "x", "seq": 1}), "missing_field"),
        (
            json.dumps(
                {"type": "send", "room_id": 1, "client_id": "c" * 10, "body": "a" * MAX_FRAME_BYTES}
            ),
            "frame_too_large",
        ),
        (
            json.dumps({"type": "send", "room_id": 999999, "client_id": "abcdefgh", "body": "x"}),
            "not_a_member",
        ),
        (json.dumps({"type": "hello", "token": "again"}), "already_authenticated"),
    ]
    for raw, code in cases:
        await alice.conn.send(raw)
        err = await alice.expect("error")
        assert err["code"] == code, (raw[:40], err)
        assert err["message"] and err["message_en"]
    await alice.conn.send(b"\x00binary")
    assert (await alice.expect("error"))["code"] == "bad_frame"
    await alice.send({"type": "ping", "id": "alive"})
    await alice.expect("pong", ref="alive")
    await alice.close()


async def test_invalid_token_and_missing_hello_close_with_documented_code(world: World) -> None:
    conn = await websockets.connect(world.server.ws_url)
    await conn.send(json.dumps({"type": "hello", "token": "forged"}))
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(conn.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_cookie_handshake_checks_origin(world: World) -> None:
    cookie = f"kakehashi_session_internet={world['alice'].token}"
    host = f"127.0.0.1:{world.server.port}"
    # a cross-site page cannot ride the cookie: the handshake is refused before upgrade
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(
            world.server.ws_url,
            origin="http://evil.example",  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
        )
    assert info.value.response.status_code == 403
    conn = await websockets.connect(
        world.server.ws_url,
        origin=f"http://{host}",  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
    )
    ws = Ws(conn)
    welcome = await ws.expect("welcome")
    assert welcome["user"]["id"] == world["alice"].id
    await ws.close()


async def test_silent_client_is_dropped_by_heartbeat(world: World) -> None:
    quick = world.server.settings.model_copy(update={"ping_interval_s": 0.2, "dead_after_s": 1.0})
    server = Server(quick)
    await server.start()
    try:
        conn = await websockets.connect(server.ws_url)
        await conn.send(json.dumps({"type": "hello", "token": world["alice"].token}))
        # never answer the server's pings
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(conn.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4009
        # a client that answers stays
        ws = await Ws.connect(server, world["bob"].token)
        for _ in range(8):
            await ws.send({"type": "ping", "id": "k"})
            await ws.expect("pong", ref="k")
            await asyncio.sleep(0.25)
        await ws.close()
    finally:
        await server.stop()


async def test_slow_client_is_dropped_while_others_receive_everything(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    r = await world["alice"].api.post(
        "/api/rooms",
        json={"name": "大部屋", "member_ids": [world["bob"].id, world["carol"].id]},
    )
    group = r.json()["id"]
    # carol's client stops reading: a raw socket with a tiny receive buffer that, after the
    # handshake and hello, never reads again
    slow = await stuck_client(world.server.port, world["carol"].token)
    bob = await Ws.connect(world.server, world["bob"].token)
    body = "𠮷" * 9_000  # 4 bytes each in UTF-8: ~36 KB a frame
    count = 600

    async def receive_all() -> list[int]:
        got: list[int] = []
        while len(got) < count:
            frame = await bob.expect("event", timeout=30, event="message")
            got.append(int(frame["data"]["message"]["body"].split(":", 1)[0]))
        return got

    receiving = asyncio.create_task(receive_all())
    for i in range(count):
        await send_rest(world, "alice", group, f"{i}:{body}")
    assert await receiving == list(range(count))
    # the slow one was dropped once its queue overflowed
    metrics = (await world["alice"].api.get("/metrics")).text
    assert "kakehashi_slow_clients_dropped_total 1.0" in metrics
    assert [c.user_id for cs in world.server.services.hub.by_user.values() for c in cs] == [
        world["bob"].id
    ]
    slow.close()
    # and it resumes on reconnect with nothing lost
    carol = await Ws.connect(world.server, world["carol"].token, since={group: 0})
    got = [f for f in carol.seen if f.get("event") == "message"]
    assert len(got) == count
    del room
    await carol.close()
    await bob.close()


async def test_replayed_frames_are_the_frames_sent_live(world: World) -> None:
    """A replay builds frames from the stored payload text; they carry what the live frames
    carried, also for a payload stored ASCII-escaped (as rows written before payloads were
    stored unescaped are)."""
    services = world.server.services
    assert services is not None
    room = await direct_room(world, "alice", "bob")
    bob = await Ws.connect(world.server, world["bob"].token)
    sent = await send_rest(world, "alice", room, "窓口は 17:15 まで「受付」です")
    await send_rest(world, "alice", room, 'quote " backslash \\ tab \t 𠮷')
    await world["alice"].api.put(f"/api/messages/{sent['id']}/reactions/👍")
    live = [await bob.expect("event", room_id=room) for _ in range(3)]
    await bob.close()
    first = live[0]["seq"]
    async with services.db.session() as s:
        await s.execute(
            text("UPDATE events SET payload = :p WHERE room_id = :r AND seq = :q"),
            {"p": json.dumps(live[0]["data"]), "r": room, "q": first},
        )
    bob = await Ws.connect(world.server, world["bob"].token, since={room: first - 1})
    replayed = [f for f in bob.seen if f.get("type") == "event" and f["room_id"] == room]
    assert replayed == live
    await bob.close()
    # and what is stored now is the text as it is, compact: the frame's bytes, not escapes
    async with services.db.session() as s:
        stored = await s.scalar(
            text("SELECT CAST(payload AS TEXT) FROM events WHERE room_id = :r AND seq = :q"),
            {"r": room, "q": first + 1},
        )
    assert "𠮷" in stored and '":"' in stored and '": "' not in stored


async def history_room(world: World, count: int) -> int:
    """A room of alice and bob holding ``count`` messages, stored but never fanned out."""
    services = world.server.services
    assert services is not None
    r = await world["alice"].api.post(
        "/api/rooms", json={"name": "再接続", "member_ids": [world["bob"].id]}
    )
    room_id: int = r.json()["id"]
    alice = await authenticate(services.db, world["alice"].token, "internet")
    async with unit_of_work(services.db, MemoryBroker()) as uow:
        for i in range(count):
            await messages.send_message(uow, alice, room_id, client_id=client_id(), body=f"{i}")
    return room_id


async def bobs_connection(world: World) -> Connection:
    """A connection of bob's registered with the hub, with no socket: the test reads its
    queue."""
    services = world.server.services
    assert services is not None
    bob = await authenticate(services.db, world["bob"].token, "internet")
    conn = Connection(bob.user.id, bob.session_id)
    services.hub.register(conn)
    return conn


async def test_a_replay_stops_when_its_connection_is_closed(world: World) -> None:
    """A client that reads nothing stalls its replay; closing the connection (revoked, lost
    phone, heartbeat) ends the replay instead of leaving it waiting for good."""
    services = world.server.services
    assert services is not None
    group = await history_room(world, SEND_QUEUE_MAX + 10)
    conn = await bobs_connection(world)
    try:
        replay = asyncio.create_task(services.hub.subscribe(conn, {group: 0}))
        sizes = [-1]
        async with asyncio.timeout(30):  # until the replay has queued and stopped
            while not sizes[-1] or sizes[-1] != conn.queue.qsize():
                sizes.append(conn.queue.qsize())
                await asyncio.sleep(0.05)
        assert not replay.done() and 0 < sizes[-1] < SEND_QUEUE_MAX
        conn.abort(4003, "session_revoked")
        await asyncio.wait_for(replay, 5)
    finally:
        services.hub.unregister(conn)


async def test_a_long_replay_to_a_slow_client_leaves_room_for_what_follows(
    world: World,
) -> None:
    """A reconnect's replay goes at the client's pace; however slow the client, the frames
    that follow it (synced, and live events sent meanwhile) find room in its send queue, so
    the catch-up never ends with the client dropped as a slow consumer."""
    services = world.server.services
    assert services is not None
    group = await history_room(world, SEND_QUEUE_MAX + 100)
    conn = await bobs_connection(world)
    taken: list[int] = []
    replaying = True

    async def read() -> None:
        """The slowest client that still moves: it takes a frame only when the server has
        stopped queueing (the queue did not change for a tick), until the replay is over."""
        last = -1
        while True:
            await asyncio.sleep(0.002)
            if conn.queue.qsize() and (conn.queue.qsize() == last or not replaying):
                taken.append(json.loads(conn.queue.get_nowait()).get("seq", 0))
            last = conn.queue.qsize()

    reader = asyncio.create_task(read())
    try:
        live = asyncio.create_task(send_rest(world, "alice", group, "再接続中の新着"))
        await services.hub.subscribe(conn, {group: 0})
        assert conn.push('{"type":"synced"}'), "the frame after the replay found no room"
        replaying = False
        last_seq = (await live)["seq"]
        async with asyncio.timeout(30):
            while last_seq not in taken or conn.queue.qsize():
                assert not conn.closed.is_set(), conn.close_reason
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()
        services.hub.unregister(conn)
    events = [seq for seq in taken if seq]
    assert events == list(range(1, last_seq + 1))
    assert not conn.closed.is_set()


async def test_a_token_in_the_url_is_ignored(world: World) -> None:
    """Tokens travel in the hello frame (or the cookie), never in a URL that proxies log."""
    conn = await websockets.connect(f"{world.server.ws_url}?token={world['alice'].token}")
    await conn.send(json.dumps({"type": "hello"}))
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(conn.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_since_beyond_the_room_is_taken_back_to_now(world: World) -> None:
    room = await direct_room(world, "alice", "bob")
    bob = await Ws.connect(world.server, world["bob"].token, since={room: 10_000})
    await send_rest(world, "alice", room, "届く")
    assert (await bob.event("message"))["data"]["message"]["body"] == "届く"
    await bob.close()


async def test_out_of_range_ids_get_an_error_and_the_connection_survives(world: World) -> None:
    alice = await Ws.connect(world.server, world["alice"].token)
    await alice.send(
        {"type": "send", "id": "big", "room_id": 2**70, "client_id": client_id(), "body": "x"}
    )
    assert (await alice.expect("error", ref="big"))["code"] == "missing_field"
    await alice.send({"type": "ping", "id": "still"})
    await alice.expect("pong", ref="still")
    await alice.close()


async def test_lost_broker_messages_are_recovered_from_the_database(world: World) -> None:
    """Events whose pub/sub message was lost (Redis restart) are filled from the event log,
    membership changes included; a revocation whose control message was lost still closes
    the connection."""
    services = world.server.services
    assert services is not None
    r = await world["alice"].api.post(
        "/api/rooms", json={"name": "係会議", "member_ids": [world["bob"].id, world["carol"].id]}
    )
    room = r.json()["id"]
    bob = await Ws.connect(world.server, world["bob"].token)
    carol = await Ws.connect(world.server, world["carol"].token)
    alice = world["alice"]
    principal = await authenticate(services.db, alice.token, "internet")

    lost = MemoryBroker()  # nobody subscribes: what is published here never arrives
    async with unit_of_work(services.db, lost) as uow:
        await messages.send_message(uow, principal, room, client_id=client_id(), body="消えた1")
        await rooms.remove_member(uow, principal, room, world["carol"].id)
    await send_rest(world, "alice", room, "後から")
    got = [(await bob.event("message"))["data"]["message"]["body"] for _ in range(2)]
    assert got == ["消えた1", "後から"]
    await carol.send({"type": "ping", "id": "c"})
    await carol.expect("pong", ref="c")
    carol_bodies = [f["data"]["message"]["body"] for f in carol.seen if f.get("event") == "message"]
    assert carol_bodies == ["消えた1"], "a removed member kept receiving the room"

    async with unit_of_work(services.db, lost) as uow:
        await end_user_sessions(uow, world["bob"].id)
    assert await closed_code(bob, timeout=15) == 4003
    await carol.close()
