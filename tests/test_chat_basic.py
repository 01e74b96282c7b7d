from __future__ import annotations

from tests.harness import World, Ws, client_id


async def test_two_users_chat_in_real_time(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    r = await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})
    assert r.status_code == 201, r.text
    room_id = r.json()["id"]
    # found again, not duplicated, from either side
    again = await bob.api.post("/api/rooms/direct", json={"user_id": alice.id})
    assert again.status_code == 200 and again.json()["id"] == room_id

    ws_a = await Ws.connect(world.server, alice.token)
    ws_b = await Ws.connect(world.server, bob.token)
    await ws_a.send(
        {
            "type": "send",
            "id": "f1",
            "room_id": room_id,
            "client_id": client_id(),
            "body": "こんにちは",
        }
    )
    ack = await ws_a.expect("ack")
    assert ack["ref"] == "f1" and ack["duplicate"] is False
    got = await ws_b.event("message")
    assert got["data"]["message"]["body"] == "こんにちは"
    assert got["seq"] == ack["seq"] and got["room_id"] == room_id

    # REST send is delivered too; unread counts for bob
    r = await bob.api.get("/api/rooms")
    assert r.json()["rooms"][0]["unread"] == 1
    await ws_a.close()
    await ws_b.close()


async def test_fan_out_writes_directly_to_the_transport(world: World) -> None:
    """The hub's direct write path (chat.transport) is wired for every connection; a uvicorn
    upgrade that breaks it fails here rather than silently slowing the fan-out."""
    services = world.server.services
    assert services is not None
    alice, bob = world["alice"], world["bob"]
    room = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]
    ws_b = await Ws.connect(world.server, bob.token)
    [conn] = services.hub.by_user[bob.id]
    assert conn.direct is not None
    writes = []
    original = conn.direct

    def spy(data: bytes) -> bool:
        writes.append(data)
        return original(data)

    conn.direct = spy
    await alice.api.post(
        f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "直"}
    )
    got = await ws_b.event("message")
    assert got["data"]["message"]["body"] == "直"
    assert len(writes) == 1 and b'"body":"\xe7\x9b\xb4"' in writes[0]
    await ws_b.close()
