"""Rooms (1:1, groups, membership, archive, bulk), the room list, messages, receipts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import func, select

from chat.auth import authenticate
from chat.messages import RECALLED_TEXT
from chat.models import Event, Message, MessageEdit, Room, RoomMember
from chat.rooms import list_my_rooms
from chat.settings import MAX_MESSAGE_CHARS
from tests.harness import Person, World, Ws, client_id, error_of


async def group(owner: Person, name: str, *members: Person) -> int:
    r = await owner.api.post(
        "/api/rooms", json={"name": name, "member_ids": [m.id for m in members]}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def send(person: Person, room_id: int, body: str, **extra: Any) -> dict[str, Any]:
    r = await person.api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": body, **extra}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def my_rooms(person: Person, **params: Any) -> list[dict[str, Any]]:
    r = await person.api.get("/api/rooms", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["rooms"])


async def history(person: Person, room_id: int, **params: Any) -> dict[str, Any]:
    r = await person.api.get(f"/api/rooms/{room_id}/messages", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_direct_room_is_found_again_not_duplicated(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    first = await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})
    assert first.status_code == 201 and first.json()["created"] is True
    again = await asyncio.gather(
        *[p.api.post("/api/rooms/direct", json={"user_id": o.id}) for p, o in [(alice, bob)] * 3],
        bob.api.post("/api/rooms/direct", json={"user_id": alice.id}),
    )
    assert {r.status_code for r in again} == {200}
    assert {r.json()["id"] for r in again} == {first.json()["id"]}
    assert all(r.json()["created"] is False for r in again)
    other = await alice.api.post("/api/rooms/direct", json={"user_id": carol.id})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    error_of(
        await alice.api.post("/api/rooms/direct", json={"user_id": alice.id}), 400, "invalid_input"
    )
    error_of(await alice.api.post("/api/rooms/direct", json={"user_id": 99999}), 404, "not_found")
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        assert await uow.session.scalar(select(func.count(Room.id))) == 2
    # a 1:1 room is titled with the other person's name
    titles = {r["id"]: r["title"] for r in await my_rooms(bob)}
    assert titles == {first.json()["id"]: alice.display_name}


async def test_direct_room_opened_by_both_at_once_is_one_room(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    opened = await asyncio.gather(
        *[alice.api.post("/api/rooms/direct", json={"user_id": bob.id}) for _ in range(4)],
        *[bob.api.post("/api/rooms/direct", json={"user_id": alice.id}) for _ in range(4)],
    )
    assert sorted(r.status_code for r in opened) == [200] * 7 + [201], [r.text for r in opened]
    assert len({r.json()["id"] for r in opened}) == 1
    room = opened[0].json()["id"]
    assert (await alice.api.get(f"/api/rooms/{room}")).json()["last_seq"] == 2  # two joins


async def test_group_membership_is_managed_by_room_admins(world: World) -> None:
    alice, bob, carol, admin = world["alice"], world["bob"], world["carol"], world["admin"]
    room = await group(alice, "防災訓練の準備", bob)
    detail = (await bob.api.get(f"/api/rooms/{room}")).json()
    assert detail["my_role"] == "member" and {m["id"] for m in detail["members"]} == {
        alice.id,
        bob.id,
    }

    # a plain member may not rename, add or remove
    error_of(await bob.api.patch(f"/api/rooms/{room}", json={"name": "乗っ取り"}), 403, "forbidden")
    error_of(
        await bob.api.post(f"/api/rooms/{room}/members", json={"user_ids": [carol.id]}),
        403,
        "forbidden",
    )
    error_of(await bob.api.delete(f"/api/rooms/{room}/members/{alice.id}"), 403, "forbidden")
    error_of(await bob.api.patch(f"/api/rooms/{room}", json={"archived": True}), 403, "forbidden")
    # an organisation administrator who is not in the room has no say either
    error_of(await admin.api.patch(f"/api/rooms/{room}", json={"name": "x"}), 403, "not_a_member")
    assert (await bob.api.get(f"/api/rooms/{room}")).json()["name"] == "防災訓練の準備"

    renamed = await alice.api.patch(f"/api/rooms/{room}", json={"name": "防災訓練 本番"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "防災訓練 本番"
    added = await alice.api.post(
        f"/api/rooms/{room}/members", json={"user_ids": [carol.id, bob.id]}
    )
    assert added.json() == {"added": [carol.id]}
    assert room in {r["id"] for r in await my_rooms(carol)}
    r = await alice.api.delete(f"/api/rooms/{room}/members/{bob.id}")
    assert r.status_code == 200
    assert room not in {r["id"] for r in await my_rooms(bob)}
    error_of(await bob.api.get(f"/api/rooms/{room}/messages"), 403, "not_a_member")
    error_of(await alice.api.delete(f"/api/rooms/{room}/members/{bob.id}"), 404, "not_found")

    # leave: a group can be left, a 1:1 room cannot
    assert (await carol.api.post(f"/api/rooms/{room}/leave")).status_code == 200
    assert room not in {r["id"] for r in await my_rooms(carol)}
    error_of(await carol.api.post(f"/api/rooms/{room}/leave"), 403, "not_a_member")
    direct = (await carol.api.post("/api/rooms/direct", json={"user_id": alice.id})).json()["id"]
    error_of(await carol.api.post(f"/api/rooms/{direct}/leave"), 400, "invalid_input")

    # the history tells the story in order
    events = []
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        rows = await uow.session.execute(
            select(Event).where(Event.room_id == room).order_by(Event.seq)
        )
        events = [(e.seq, e.type) for e in rows.scalars()]
    assert [t for _, t in events] == [
        "room.created",
        "member.added",
        "member.added",
        "room.updated",
        "member.added",
        "member.removed",
        "member.removed",
    ]
    assert [s for s, _ in events] == list(range(1, len(events) + 1))


async def test_archive_makes_a_room_read_only_and_hides_it(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "旧プロジェクト", bob)
    await send(bob, room, "最後の連絡")
    r = await alice.api.patch(f"/api/rooms/{room}", json={"archived": True})
    assert r.status_code == 200 and r.json()["archived"] is True
    assert room not in {r["id"] for r in await my_rooms(bob)}
    assert room in {r["id"] for r in await my_rooms(bob, include_archived=True)}
    assert len((await history(bob, room))["messages"]) == 1  # still readable
    r = await bob.api.post(
        f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "まだ?"}
    )
    error_of(r, 403, "forbidden")
    assert (await alice.api.patch(f"/api/rooms/{room}", json={"archived": False})).json()[
        "archived"
    ] is False
    await send(bob, room, "再開しました")


async def test_bulk_leave_and_archive_are_all_or_nothing(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    mine = [await group(alice, f"案件{i:02d}", bob) for i in range(20)]
    theirs = await group(bob, "ボブの部屋", alice)
    direct = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]

    # one room that cannot be archived (carol is not in it) changes nothing
    carols = await group(world["carol"], "キャロルの部屋")
    r = await alice.api.post(
        "/api/rooms/bulk", json={"action": "archive", "room_ids": [*mine, carols]}
    )
    assert error_of(r, 403, "not_a_member")["details"]["room_id"] == carols
    assert len(await my_rooms(alice)) == 22
    # one room that cannot be left (1:1) changes nothing
    r = await bob.api.post("/api/rooms/bulk", json={"action": "leave", "room_ids": [*mine, direct]})
    assert error_of(r, 400, "invalid_input")["details"]["room_id"] == direct
    assert len(await my_rooms(bob)) == 22
    # nor does a room I am not in
    outsider = await group(alice, "非公開")
    r = await bob.api.post(
        "/api/rooms/bulk", json={"action": "leave", "room_ids": [*mine, outsider]}
    )
    assert error_of(r, 403, "not_a_member")["details"]["room_id"] == outsider
    assert len(await my_rooms(bob)) == 22
    error_of(
        await bob.api.post("/api/rooms/bulk", json={"action": "delete", "room_ids": mine}),
        400,
        "invalid_input",
    )

    r = await bob.api.post("/api/rooms/bulk", json={"action": "leave", "room_ids": mine[:12]})
    assert r.status_code == 200 and r.json()["room_ids"] == mine[:12]
    assert {x["id"] for x in await my_rooms(bob)} == {*mine[12:], theirs, direct}
    r = await alice.api.post(
        "/api/rooms/bulk", json={"action": "archive", "room_ids": [*mine, direct]}
    )
    assert r.status_code == 200
    assert {x["id"] for x in await my_rooms(alice)} == {theirs, outsider}
    assert len(await my_rooms(alice, include_archived=True)) == 23
    # archiving is personal: bob still has the 1:1 room, and can still write in it …
    assert direct in {x["id"] for x in await my_rooms(bob)}
    r = await bob.api.post(
        f"/api/rooms/{direct}/messages", json={"client_id": "after-archive-1", "body": "まだ?"}
    )
    assert r.status_code == 201
    # … and a new message brings the room back to alice's list
    assert direct in {x["id"] for x in await my_rooms(alice)}
    r = await alice.api.post("/api/rooms/bulk", json={"action": "unarchive", "room_ids": mine})
    assert r.status_code == 200
    assert {x["id"] for x in await my_rooms(alice)} >= set(mine)


async def test_room_list_newest_first_with_unread_mentions_and_last_message(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    a = await group(alice, "A班", bob, carol)
    b = await group(alice, "B班", bob, carol)
    c = await group(alice, "C班", bob)
    await send(alice, a, "@bob 資料の確認をお願いします")
    await send(alice, a, "@all 15時から会議です")
    await send(alice, a, "@bob @all 両方に宛てています")
    await send(alice, a, "普通の連絡")
    carol_a = next(r for r in await my_rooms(carol) if r["id"] == a)
    assert carol_a["unread"] == 4 and carol_a["mentions"] == 2
    assert carol_a["mentions_me"] == 0 and carol_a["mentions_all"] == 2
    await send(carol, a, "@bob. 了解です")  # a trailing period is not part of the login id
    await send(alice, b, "B班の連絡")
    last_c = await send(alice, c, "@carol C班にはいないキャロルさん")  # carol is not in C

    rooms = await my_rooms(bob)
    assert [r["id"] for r in rooms] == [c, b, a]
    by_id = {r["id"]: r for r in rooms}
    assert by_id[a]["unread"] == 5
    assert by_id[a]["mentions_me"] == 3 and by_id[a]["mentions_all"] == 2
    assert by_id[a]["mentions"] == 4  # messages that mention me either way
    assert by_id[a]["last_message"]["body"] == "@bob. 了解です"
    assert by_id[a]["last_message"]["sender_name"] == carol.display_name
    assert by_id[c]["last_message"]["id"] == last_c["id"]
    assert by_id[c]["unread"] == 1 and by_id[c]["mentions"] == 0
    assert by_id[a]["members"] == 3 and by_id[a]["title"] == "A班"

    carol_a = next(r for r in await my_rooms(carol) if r["id"] == a)
    assert carol_a["unread"] == 0  # her own message read everything before it
    alice_a = next(r for r in await my_rooms(alice) if r["id"] == a)
    assert alice_a["unread"] == 1 and alice_a["mentions"] == 0

    # reading is not activity: the order stays, the counts clear
    r = await bob.api.post(f"/api/rooms/{a}/read", json={"seq": by_id[a]["last_seq"]})
    assert r.status_code == 200
    rooms = await my_rooms(bob)
    assert [x["id"] for x in rooms] == [c, b, a]
    assert rooms[2]["unread"] == 0 and rooms[2]["mentions"] == 0 and rooms[2]["mentions_all"] == 0
    assert [x["id"] for x in await my_rooms(carol)] == [b, a]
    # a new message is
    await send(carol, a, "追加の連絡")
    assert [x["id"] for x in await my_rooms(bob)] == [a, c, b]


async def test_message_length_limit(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "長文", bob)
    longest = "あ" * MAX_MESSAGE_CHARS
    ok = await send(alice, room, longest)
    assert ok["body"] == longest
    last_seq = (await alice.api.get(f"/api/rooms/{room}")).json()["last_seq"]
    for body in ("あ" * (MAX_MESSAGE_CHARS + 1), "a" * 30_000):
        r = await alice.api.post(
            f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": body}
        )
        error = error_of(r, 413, "too_large")
        assert "10,000" in error["message"] and "10,000" in error["message_en"]
    error_of(
        await alice.api.patch(
            f"/api/messages/{ok['id']}", json={"body": "い" * (MAX_MESSAGE_CHARS + 1)}
        ),
        413,
        "too_large",
    )
    for blank in ("", "   \n "):
        r = await alice.api.post(
            f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": blank}
        )
        error_of(r, 400, "invalid_input")
    assert (await alice.api.get(f"/api/rooms/{room}")).json()["last_seq"] == last_seq
    page = await history(bob, room)
    assert [m["body"] for m in page["messages"]] == [longest]
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        assert await uow.session.scalar(select(func.count(Message.id))) == 1
        assert await uow.session.scalar(select(func.count(MessageEdit.id))) == 0


async def test_reply_quoting_and_reactions(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    room = await group(alice, "返信", bob, carol)
    other = await group(alice, "別室", bob)
    question = await send(alice, room, "明日の予定は?")
    answer = await send(bob, room, "10時からです", reply_to_id=question["id"])
    assert answer["reply_to_id"] == question["id"]
    elsewhere = await send(bob, other, "別の部屋")
    r = await bob.api.post(
        f"/api/rooms/{room}/messages",
        json={"client_id": client_id(), "body": "x", "reply_to_id": elsewhere["id"]},
    )
    error_of(r, 400, "invalid_input")

    for person, emoji in [(alice, "👍"), (carol, "👍"), (carol, "了解"), (carol, "👍")]:
        r = await person.api.put(f"/api/messages/{answer['id']}/reactions/{emoji}")
        assert r.status_code == 200, r.text
    page = await history(bob, room)
    shown = {m["id"]: m for m in page["messages"]}
    assert shown[answer["id"]]["reply_to_id"] == question["id"]
    assert shown[answer["id"]]["reactions"] == {"👍": [alice.id, carol.id], "了解": [carol.id]}
    assert (await carol.api.delete(f"/api/messages/{answer['id']}/reactions/👍")).status_code == 200
    page = await history(bob, room)
    assert {m["id"]: m for m in page["messages"]}[answer["id"]]["reactions"] == {
        "👍": [alice.id],
        "了解": [carol.id],
    }
    error_of(
        await carol.api.put(f"/api/messages/{answer['id']}/reactions/{'x' * 33}"),
        400,
        "invalid_input",
    )


async def test_edit_keeps_history(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "編集", bob)
    m = await send(alice, room, "会議は3階です")
    r = await alice.api.patch(f"/api/messages/{m['id']}", json={"body": "会議は4階です"})
    assert r.status_code == 200 and r.json()["edited_at"]
    await alice.api.patch(f"/api/messages/{m['id']}", json={"body": "会議は5階です @bob"})
    error_of(
        await bob.api.patch(f"/api/messages/{m['id']}", json={"body": "改ざん"}), 403, "forbidden"
    )
    shown = (await history(bob, room))["messages"][0]
    assert shown["body"] == "会議は5階です @bob" and shown["mentions"] == [bob.id]
    assert shown["seq"] == m["seq"]  # edited in place
    edits = (await bob.api.get(f"/api/messages/{m['id']}/edits")).json()["edits"]
    assert [e["body"] for e in edits] == ["会議は3階です", "会議は4階です"]


async def test_recall_removes_the_text_from_every_api(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    room = await group(alice, "取り消し", bob, carol)
    secret = "口座番号は 9876543 です"
    m = await send(alice, room, secret)
    await alice.api.patch(f"/api/messages/{m['id']}", json={"body": secret + " @bob 至急"})
    await bob.api.put(f"/api/messages/{m['id']}/reactions/👀")
    reply = await send(bob, room, "確認しました", reply_to_id=m["id"])
    await send(bob, room, "ほかの話題")
    live = await Ws.connect(world.server, carol.token)

    error_of(await bob.api.post(f"/api/messages/{m['id']}/recall"), 403, "forbidden")
    r = await alice.api.post(f"/api/messages/{m['id']}/recall")
    assert r.status_code == 200 and r.json()["body"] == RECALLED_TEXT and r.json()["recalled"]
    event = await live.event("message.recalled")
    assert event["data"]["message_id"] == m["id"] and event["data"]["text"] == RECALLED_TEXT
    await live.close()

    for person in (alice, bob, carol):
        page = await history(person, room)
        shown = {x["id"]: x for x in page["messages"]}
        assert shown[m["id"]]["body"] == RECALLED_TEXT and shown[m["id"]]["recalled"] is True
        assert shown[m["id"]]["mentions"] == [] and shown[m["id"]]["reactions"] == {}
        assert shown[reply["id"]]["reply_to_id"] == m["id"]
        assert "9876543" not in json.dumps(page, ensure_ascii=False)
    assert (await bob.api.get(f"/api/messages/{m['id']}/edits")).json()["edits"] == []
    assert (await bob.api.get("/api/search", params={"q": "9876543"})).json()["results"] == []
    bob_room = next(x for x in await my_rooms(bob) if x["id"] == room)
    assert bob_room["mentions"] == 0 and bob_room["mentions_me"] == 0
    carol_room = next(x for x in await my_rooms(carol) if x["id"] == room)
    assert carol_room["unread"] == 2  # bob's two; the recalled one is not unread
    error_of(
        await alice.api.patch(f"/api/messages/{m['id']}", json={"body": "復活"}),
        400,
        "invalid_input",
    )
    error_of(await bob.api.put(f"/api/messages/{m['id']}/reactions/👍"), 400, "invalid_input")

    # the last message of the room list, and a websocket replay of the whole room
    last = await send(alice, room, "締めの連絡")
    await alice.api.post(f"/api/messages/{last['id']}/recall")
    bob_room = next(x for x in await my_rooms(bob) if x["id"] == room)
    assert bob_room["last_message"]["body"] == RECALLED_TEXT
    replay = await Ws.connect(world.server, bob.token, since={room: 0})
    replayed = [f for f in replay.seen if f.get("type") == "event" and f.get("room_id") == room]
    await replay.close()
    assert [f["seq"] for f in replayed] == list(range(1, replayed[-1]["seq"] + 1))
    frames = json.dumps(replayed, ensure_ascii=False)
    assert "9876543" not in frames and "締めの連絡" not in frames
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        stored = await uow.session.execute(select(Event.payload).where(Event.room_id == room))
        assert "9876543" not in json.dumps(list(stored.scalars()), ensure_ascii=False)


async def test_history_pages_by_cursor_both_ways_and_jumps_to_first_unread(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "ページ", bob)
    sent = [await send(alice, room, f"連絡 {i:02d}") for i in range(25)]
    seqs = [m["seq"] for m in sent]

    newest = await history(bob, room, limit=10)
    assert [m["seq"] for m in newest["messages"]] == seqs[-10:]
    assert newest["has_before"] is True and newest["has_after"] is False
    older = await history(bob, room, limit=10, before=newest["messages"][0]["seq"])
    assert [m["seq"] for m in older["messages"]] == seqs[5:15]
    assert older["has_before"] is True and older["has_after"] is True
    oldest = await history(bob, room, limit=10, before=older["messages"][0]["seq"])
    assert [m["seq"] for m in oldest["messages"]] == seqs[:5]
    assert oldest["has_before"] is False and oldest["has_after"] is True
    # and forward again from the oldest
    forward, collected = oldest, [m["seq"] for m in oldest["messages"]]
    while forward["has_after"]:
        forward = await history(bob, room, limit=7, after=forward["messages"][-1]["seq"])
        collected += [m["seq"] for m in forward["messages"]]
    assert collected == seqs
    error_of(
        await bob.api.get(f"/api/rooms/{room}/messages", params={"before": 5, "after": 1}),
        400,
        "invalid_input",
    )
    error_of(
        await bob.api.get(f"/api/rooms/{room}/messages", params={"limit": 0}), 400, "invalid_input"
    )

    # jump to the first unread: bob has read up to message 12
    await bob.api.post(f"/api/rooms/{room}/read", json={"seq": seqs[11]})
    jump = await history(bob, room, around="first_unread", limit=5)
    assert jump["first_unread_seq"] == seqs[12]
    assert [m["seq"] for m in jump["messages"]] == seqs[12:17]
    assert jump["has_before"] is True and jump["has_after"] is True and jump["read_seq"] == seqs[11]
    # a recalled message is not "unread": the jump lands on the next one
    await alice.api.post(f"/api/messages/{sent[12]['id']}/recall")
    jump = await history(bob, room, around="first_unread", limit=5)
    assert jump["first_unread_seq"] == seqs[13]
    await bob.api.post(f"/api/rooms/{room}/read", json={"seq": 10**9})
    jump = await history(bob, room, around="first_unread", limit=5)
    assert jump["first_unread_seq"] is None
    assert [m["seq"] for m in jump["messages"]] == seqs[-5:]


async def test_read_receipts_count_and_name_readers(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    dan = await world.add_person("dan", "田中 ダン")
    room = await group(alice, "既読", bob, carol, dan)
    m1 = await send(alice, room, "一つ目")
    m2 = await send(alice, room, "二つ目")
    r = await bob.api.post(f"/api/rooms/{room}/read", json={"seq": m2["seq"]})
    assert r.json() == {"read_seq": m2["seq"]}
    await carol.api.post(f"/api/rooms/{room}/read", json={"seq": m1["seq"]})
    # never backwards, never past the end
    assert (await bob.api.post(f"/api/rooms/{room}/read", json={"seq": m1["seq"]})).json() == {
        "read_seq": m2["seq"]
    }
    page = await history(alice, room)
    counts = {m["id"]: m["read_count"] for m in page["messages"]}
    assert counts == {m1["id"]: 2, m2["id"]: 1}
    assert page["member_count"] == 4

    who = (await carol.api.get(f"/api/messages/{m1['id']}/readers")).json()
    assert {u["id"] for u in who["read"]} == {bob.id, carol.id}
    assert {u["id"] for u in who["unread"]} == {dan.id}  # the sender is in neither list
    who = (await alice.api.get(f"/api/messages/{m2['id']}/readers")).json()
    assert [u["id"] for u in who["read"]] == [bob.id]
    assert {u["id"] for u in who["unread"]} == {carol.id, dan.id}
    # sending reads up to one's own message
    m3 = await send(dan, room, "読みました")
    assert (await history(alice, room))["messages"][0]["read_count"] == 3
    who = (await alice.api.get(f"/api/messages/{m3['id']}/readers")).json()
    assert {u["id"] for u in who["unread"]} == {alice.id, bob.id, carol.id}
    # stored as read positions: one row per member, none per message
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        rows = await uow.session.scalar(
            select(func.count()).select_from(RoomMember).where(RoomMember.room_id == room)
        )
        assert rows == 4


async def test_rest_send_is_idempotent_by_client_id(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "再送", bob)
    cid = client_id()
    body = {"client_id": cid, "body": "一度だけ届くはず"}
    first = await alice.api.post(f"/api/rooms/{room}/messages", json=body)
    assert first.status_code == 201 and first.json()["duplicate"] is False
    retry = await alice.api.post(f"/api/rooms/{room}/messages", json=body)
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert retry.json()["id"] == first.json()["id"] and retry.json()["seq"] == first.json()["seq"]
    # many retries at once still store one message
    cid2 = client_id()
    results = await asyncio.gather(
        *[
            alice.api.post(f"/api/rooms/{room}/messages", json={"client_id": cid2, "body": "同時"})
            for _ in range(8)
        ]
    )
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    page = await history(bob, room)
    assert [m["body"] for m in page["messages"]] == ["一度だけ届くはず", "同時"]
    # the same client id from someone else is their own message
    other = await bob.api.post(f"/api/rooms/{room}/messages", json=body)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    error_of(
        await alice.api.post(
            f"/api/rooms/{room}/messages", json={"client_id": "短い", "body": "x"}
        ),
        400,
        "invalid_input",
    )


async def test_one_message_and_a_page_around_it(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    room = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]
    sent = []
    for i in range(30):
        r = await alice.api.post(
            f"/api/rooms/{room}/messages", json={"client_id": f"around-{i:04d}", "body": f"m{i}"}
        )
        sent.append(r.json())
    target = sent[20]
    one = await bob.api.get(f"/api/messages/{target['id']}")
    assert one.status_code == 200 and one.json()["body"] == "m20"
    assert (await carol.api.get(f"/api/messages/{target['id']}")).status_code == 403
    page = await bob.api.get(f"/api/rooms/{room}/messages?around={target['seq']}&limit=10")
    seqs = [m["seq"] for m in page.json()["messages"]]
    assert target["seq"] in seqs and len(seqs) == 10
    assert seqs.index(target["seq"]) in (4, 5, 6)
    bad = await bob.api.get(f"/api/rooms/{room}/messages?around=-3")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"


async def test_a_group_keeps_a_room_admin_and_a_personal_archive_tells_only_me(
    world: World,
) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    r = await alice.api.post(
        "/api/rooms", json={"name": "引継ぎ", "member_ids": [bob.id, carol.id]}
    )
    room = r.json()["id"]
    mine = await Ws.connect(world.server, bob.token)
    theirs = await Ws.connect(world.server, carol.token)
    assert (await alice.api.post(f"/api/rooms/{room}/leave")).status_code == 200
    promoted = await mine.event("member.role")
    assert promoted["data"] == {"user_id": bob.id, "role": "admin", "by": None}
    members = (await bob.api.get(f"/api/rooms/{room}")).json()["members"]
    assert {m["id"]: m["role"] for m in members} == {bob.id: "admin", carol.id: "member"}
    r = await bob.api.post("/api/rooms/bulk", json={"action": "archive", "room_ids": [room]})
    assert r.status_code == 200, r.text
    notice = await mine.expect("notice")
    assert notice == {
        "type": "notice",
        "notice": "rooms_archived",
        "archived": True,
        "room_ids": [room],
    }
    await theirs.send({"type": "ping", "id": "p"})
    await theirs.expect("pong", ref="p")
    assert not [f for f in theirs.seen if f.get("type") == "notice"]
    await mine.close()
    await theirs.close()


async def test_a_read_sees_one_moment_across_its_statements(world: World) -> None:
    """A read (the room list: counts from one statement, last messages from another) sees one
    snapshot: a message committed between two of its statements is in neither."""
    services = world.server.services
    assert services is not None
    room_id = await group(world["alice"], "一貫性", world["bob"])
    await send(world["alice"], room_id, "前")
    bob = await authenticate(services.db, world["bob"].token, "internet")
    in_room = select(func.count()).select_from(Message).where(Message.room_id == room_id)
    async with services.read() as uow:
        before = await uow.session.scalar(in_room)
        await send(world["alice"], room_id, "途中")  # committed by another connection
        assert await uow.session.scalar(in_room) == before == 1
        summary = next(s for s in await list_my_rooms(uow, bob) if s.room.id == room_id)
        assert summary.unread == 1 and summary.last_message is not None
        assert summary.last_message.body == "前"
    async with services.read() as uow:
        assert await uow.session.scalar(in_room) == before + 1
