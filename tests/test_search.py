"""Full-text search: Japanese words inside sentences, newest first, filters, membership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from chat.models import Message
from tests.harness import Person, World, client_id

SENTENCE = "添付ファイルは無害化してから受け取ってください"


async def group(owner: Person, name: str, *members: Person) -> int:
    r = await owner.api.post(
        "/api/rooms", json={"name": name, "member_ids": [m.id for m in members]}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def send(person: Person, room_id: int, body: str) -> dict[str, Any]:
    r = await person.api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": body}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def search(person: Person, q: str, **params: Any) -> list[dict[str, Any]]:
    r = await person.api.get("/api/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def ids(results: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in results]


async def test_finds_japanese_words_inside_sentences_newest_first(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = await group(alice, "無害化の相談", bob)
    first = await send(alice, room, SENTENCE)
    await send(bob, room, "了解しました。")
    second = await send(bob, room, "無害化済みのファイルを確認しました")
    third = await send(alice, room, "LGWAN側では無害化されたPDFだけを開きます")

    hits = await search(bob, "無害化")
    assert ids(hits) == [third["id"], second["id"], first["id"]]
    assert hits[2]["body"] == SENTENCE and hits[2]["sender_name"] == alice.display_name
    assert ids(await search(bob, "受け取って")) == [first["id"]]
    # every term must occur; a full-width space separates terms too
    assert ids(await search(bob, "無害化\u3000ファイル")) == [second["id"], first["id"]]
    assert ids(await search(bob, "無害化 PDF")) == [third["id"]]
    # Latin letters ignore case; LIKE wildcards are plain characters
    assert ids(await search(bob, "lgwan")) == [third["id"]]
    assert await search(bob, "%") == [] and await search(bob, "_") == []
    assert await search(bob, "有害化") == []
    # paging through results, newest first
    page = await search(bob, "無害化", limit=2)
    assert ids(page) == [third["id"], second["id"]]
    assert ids(await search(bob, "無害化", limit=2, before_id=page[-1]["id"])) == [first["id"]]
    for bad in ("", "   ", "\u3000", "あ" * 201):
        r = await bob.api.get("/api/search", params={"q": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input", bad


async def test_filters_by_room_sender_and_date(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    one = await group(alice, "一班", bob, carol)
    two = await group(bob, "二班", alice)
    a_old = await send(alice, one, "会議資料 旧版")
    b_one = await send(bob, one, "会議資料 確認")
    a_two = await send(alice, two, "会議資料 二班")
    b_two = await send(bob, two, "会議資料 最新")
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        await uow.session.execute(
            update(Message)
            .where(Message.id == a_old["id"])
            .values(created_at=datetime(2025, 4, 1, 9, 0, tzinfo=UTC))
        )

    assert ids(await search(alice, "会議資料", room_id=one)) == [b_one["id"], a_old["id"]]
    assert ids(await search(alice, "会議資料", sender_id=bob.id)) == [b_two["id"], b_one["id"]]
    assert ids(await search(alice, "会議資料", room_id=two, sender_id=alice.id)) == [a_two["id"]]
    now = datetime.now(UTC)
    recent = await search(alice, "会議資料", since=(now - timedelta(days=1)).isoformat())
    assert ids(recent) == [b_two["id"], a_two["id"], b_one["id"]]
    old = await search(alice, "会議資料", until="2025-04-02T00:00:00+09:00")
    assert ids(old) == [a_old["id"]]
    # a date without a time or offset is read as UTC
    assert ids(await search(alice, "会議資料", since="2025-03-31", until="2025-04-02")) == [
        a_old["id"]
    ]
    assert await search(alice, "会議資料", since="2025-04-01T09:00:01Z", until="2025-04-02") == []
    r = await alice.api.get("/api/search", params={"q": "会議資料", "since": "昨日"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


async def test_search_covers_only_my_rooms(world: World) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    private = await group(alice, "人事の相談", bob)
    shared = await group(alice, "全体連絡", bob, carol)
    secret = await send(alice, private, "人事異動の内示 無害化")
    public = await send(alice, shared, "全体への連絡 無害化")

    assert ids(await search(carol, "無害化")) == [public["id"]]
    assert await search(carol, "人事異動") == []
    r = await carol.api.get("/api/search", params={"q": "無害化", "room_id": private})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "not_a_member" and error["message"] and error["message_en"]
    # a room that does not exist looks the same as one that is not mine
    r = await carol.api.get("/api/search", params={"q": "無害化", "room_id": 99999})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_member"
    # filtering by a sender does not widen the scope either
    assert ids(await search(carol, "無害化", sender_id=alice.id)) == [public["id"]]
    assert ids(await search(bob, "無害化")) == [public["id"], secret["id"]]

    # once bob leaves, the room's messages are no longer his to find
    assert (await bob.api.post(f"/api/rooms/{private}/leave")).status_code == 200
    assert ids(await search(bob, "無害化")) == [public["id"]]
    r = await bob.api.get("/api/search", params={"q": "無害化", "room_id": private})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_member"
