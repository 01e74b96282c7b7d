"""Who may touch a room: a non-member learns and changes nothing, and every refusal is the
same JSON error shape with the right HTTP status."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from chat import accounts, audit, licenses
from chat.models import Event, Message, MessageEdit, Reaction, Room, RoomMember
from tests.harness import Person, World, Ws, client_id


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "message_en"} <= set(error), error
    assert error["code"] == code, (response.request.url, error)
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["message_en"], str) and error["message_en"].strip()


async def snapshot(world: World) -> dict[str, Any]:
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        s = uow.session

        async def count(model: Any) -> int:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)

        rooms = [
            (r.id, r.name, r.archived_at, r.last_seq)
            for r in (await s.execute(select(Room))).scalars()
        ]
        members = sorted(
            (m.room_id, m.user_id, m.role, m.read_seq)
            for m in (await s.execute(select(RoomMember))).scalars()
        )
        bodies = sorted(
            (m.id, m.body, m.recalled_at) for m in (await s.execute(select(Message))).scalars()
        )
        return {
            "rooms": rooms,
            "members": members,
            "messages": bodies,
            "events": await count(Event),
            "edits": await count(MessageEdit),
            "reactions": await count(Reaction),
        }


async def test_a_non_member_can_do_nothing_with_a_room(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    r = await alice.api.post("/api/rooms", json={"name": "秘密の相談", "member_ids": [bob.id]})
    room = r.json()["id"]
    r = await alice.api.post(
        f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "内密に"}
    )
    message = r.json()["id"]
    await bob.api.put(f"/api/messages/{message}/reactions/👍")
    direct = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]
    watcher = await Ws.connect(world.server, alice.token)
    before = await snapshot(world)

    m, cid = message, client_id()
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/rooms/{room}", None),
        ("GET", f"/api/rooms/{room}/messages", None),
        ("GET", f"/api/rooms/{room}/messages?around=first_unread", None),
        ("GET", f"/api/rooms/{direct}/messages", None),
        ("POST", f"/api/rooms/{room}/messages", {"client_id": cid, "body": "割り込み"}),
        ("POST", f"/api/rooms/{direct}/messages", {"client_id": client_id(), "body": "割り込み"}),
        ("POST", f"/api/rooms/{room}/read", {"seq": 1}),
        ("PATCH", f"/api/rooms/{room}", {"name": "乗っ取り"}),
        ("PATCH", f"/api/rooms/{room}", {"archived": True}),
        ("POST", f"/api/rooms/{room}/members", {"user_ids": [carol.id]}),
        ("DELETE", f"/api/rooms/{room}/members/{bob.id}", None),
        ("POST", f"/api/rooms/{room}/leave", None),
        ("POST", "/api/rooms/bulk", {"action": "archive", "room_ids": [room]}),
        ("POST", "/api/rooms/bulk", {"action": "leave", "room_ids": [room]}),
        ("PUT", f"/api/messages/{m}/reactions/👍", None),
        ("DELETE", f"/api/messages/{m}/reactions/👍", None),
        ("GET", f"/api/messages/{m}/readers", None),
        ("GET", f"/api/messages/{m}/edits", None),
        ("PATCH", f"/api/messages/{m}", {"body": "改ざん"}),
        ("POST", f"/api/messages/{m}/recall", None),
        ("GET", f"/api/search?q=内密&room_id={room}", None),
    ]
    for method, url, body in attempts:
        response = await carol.api.request(method, url, json=body)
        assert_error(response, 403, "not_a_member")
    # a room id that does not exist looks the same: nothing is learnt by probing
    assert_error(await carol.api.get("/api/rooms/99999"), 403, "not_a_member")
    assert_error(await carol.api.get("/api/rooms/99999/messages"), 403, "not_a_member")
    # nor does a search without a room filter show the room
    r = await carol.api.get("/api/search", params={"q": "内密"})
    assert r.status_code == 200 and r.json()["results"] == []
    assert room not in {x["id"] for x in (await carol.api.get("/api/rooms")).json()["rooms"]}
    # nor a websocket that asks to be replayed the room
    ws = await Ws.connect(world.server, carol.token, since={room: 0, direct: 0})
    assert not [f for f in ws.seen if f.get("room_id") in (room, direct)]
    await ws.close()

    assert await snapshot(world) == before
    # the members' websocket saw no event from any of it
    await bob.api.post(f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "次"})
    got = await watcher.event("message")
    assert (
        got["data"]["message"]["body"] == "次"
        and got["seq"] == {r[0]: r[3] for r in before["rooms"]}[room] + 1
    )
    await watcher.close()
    # the client id carol tried was never recorded: she can use it in her own room
    mine = (await carol.api.post("/api/rooms", json={"name": "自分の部屋"})).json()["id"]
    r = await carol.api.post(f"/api/rooms/{mine}/messages", json={"client_id": cid, "body": "ok"})
    assert r.status_code == 201 and r.json()["duplicate"] is False


async def test_other_organisations_are_invisible(world: World) -> None:
    alice = world["alice"]
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "隣町")
        await licenses.set_pool(uow, audit.SYSTEM, org.id, "internet", 10)
        await licenses.set_pool(uow, audit.SYSTEM, org.id, "lgwan", 10)
    neighbours = World(world.server, org.id)
    try:
        mallory = await neighbours.add_person("mallory", "隣町 マロリー", role="admin")
        assert_error(
            await mallory.api.post("/api/rooms/direct", json={"user_id": alice.id}),
            404,
            "not_found",
        )
        r = await mallory.api.post("/api/rooms", json={"name": "越境", "member_ids": [alice.id]})
        assert_error(r, 404, "not_found")
        listed = (
            await mallory.api.get("/api/admin/users", params={"include_inactive": True})
        ).json()
        assert [u["login_id"] for u in listed["users"]] == ["mallory"]
        assert_error(
            await mallory.api.post(f"/api/admin/users/{alice.id}/deactivate"), 404, "not_found"
        )
        assert_error(
            await mallory.api.patch(f"/api/admin/users/{alice.id}", json={"role": "member"}),
            404,
            "not_found",
        )
        r = await mallory.api.post(
            f"/api/admin/users/{alice.id}/password", json={"password": "Taken-over-2026!"}
        )
        assert_error(r, 404, "not_found")
        assert (await alice.api.get("/api/auth/me")).status_code == 200
        assert (await world["admin"].api.get("/api/admin/users")).json()["users"]
        assert "mallory" not in {
            u["login_id"] for u in (await alice.api.get("/api/admin/users")).json()["users"]
        }
        room = (await mallory.api.post("/api/rooms", json={"name": "隣町の部屋"})).json()["id"]
        own = await mallory.api.post(f"/api/rooms/{room}/members", json={"user_ids": [alice.id]})
        assert_error(own, 404, "not_found")
    finally:
        await neighbours.close()


async def errors_have_one_shape(client: httpx.AsyncClient, person: Person) -> None:
    assert_error(await client.get("/api/rooms"), 401, "not_authenticated")
    assert_error(await client.post("/api/rooms", json={"name": "x"}), 401, "not_authenticated")
    assert_error(await person.api.get("/api/no-such-thing"), 404, "not_found")
    assert_error(await person.api.get("/api/messages/99999/readers"), 404, "not_found")
    assert_error(await person.api.post("/api/messages/99999/recall"), 404, "not_found")
    assert_error(
        await person.api.post("/api/rooms", json={"name": "x", "unknown": 1}), 400, "invalid_input"
    )
    assert_error(
        await person.api.post(
            "/api/rooms", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "invalid_input",
    )
    assert_error(await person.api.get("/api/rooms/not-a-number"), 400, "invalid_input")
    assert_error(await person.api.post("/api/rooms", json={"name": "   "}), 400, "invalid_input")
    assert_error(
        await person.api.post("/api/admin/users", json={"login_id": "x", "display_name": "x"}),
        403,
        "forbidden",
    )


async def test_errors_are_json_with_code_and_both_languages(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as anonymous:
        await errors_have_one_shape(anonymous, world["bob"])
    assert (await world["bob"].api.get("/api/rooms")).json()["rooms"] == []
