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
