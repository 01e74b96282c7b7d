"""Offline: a message written while the connection is down waits in the outbox (shown as
pending), goes out on reconnect with the same client_id, and is stored and shown once."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import WebSocket, expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.browser.test_chat import message, send
from tests.harness import World, client_id

pytestmark = pytest.mark.browser


async def direct_room(world: World) -> int:
    r = await world["alice"].api.post("/api/rooms/direct", json={"user_id": world["bob"].id})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def bodies(world: World, room_id: int) -> list[str]:
    r = await world["bob"].api.get(f"/api/rooms/{room_id}/messages?limit=200")
    return [m["body"] for m in r.json()["messages"]]


async def test_offline_messages_queue_and_go_out_once_on_reconnect(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await direct_room(world)
    a = await browser_context()
    b = await browser_context()
    alice = await sign_in(a, "alice")
    bob = await sign_in(b, "bob")
    await alice.get_by_role("link", name=re.compile("馬場 ボブ")).click()
    await bob.get_by_role("link", name=re.compile("青木 アリス")).click()
    await send(alice, "接続テスト")
    await expect(message(bob, "接続テスト")).to_be_visible()

    await a.context.set_offline(True)
    await expect(alice.get_by_role("status").filter(has_text="オフライン")).to_be_visible()
    await send(alice, "電波の届かない現場から送ります")
    await send(alice, "2通目も順番どおりに")
    pending = message(alice, "電波の届かない現場から送ります")
    await expect(pending).to_have_attribute("data-state", "pending")
    await expect(pending).to_contain_text("送信待ち(オフライン)")
    await screenshot(alice, "room-offline")
    # Meanwhile Bob writes: Alice gets it on reconnect by resume, once.
    await send(bob, "了解、待っています")
    await expect(message(bob, "了解、待っています")).to_have_attribute("data-state", "sent")
    assert "電波の届かない現場から送ります" not in await bodies(world, room_id)
    await expect(message(alice, "了解、待っています")).to_have_count(0)

    await a.context.set_offline(False)
    await expect(pending).to_have_attribute("data-state", "sent")
    await expect(message(alice, "2通目も順番どおりに")).to_have_attribute("data-state", "sent")
    await expect(message(bob, "2通目も順番どおりに")).to_be_visible()
    await expect(message(bob, "電波の届かない現場から送ります")).to_have_count(1)
    await expect(message(alice, "了解、待っています")).to_have_count(1)
    stored = await bodies(world, room_id)
    assert stored.count("電波の届かない現場から送ります") == 1
    assert stored.index("電波の届かない現場から送ります") < stored.index("2通目も順番どおりに")
    assert await alice.evaluate("() => window.kakehashi.outbox.items.length") == 0


async def test_a_resend_after_a_lost_ack_is_not_stored_twice(
    world: World, browser_context: ContextFactory
) -> None:
    """The server stored the message but the ack never arrived (the tab was closed): the
    outbox kept it, and on the next visit it goes out again with the same client_id."""
    room_id = await direct_room(world)
    cid = client_id()
    r = await world["alice"].api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": cid, "body": "ackが届かなかった"}
    )
    assert r.status_code == 201
    a = await browser_context()
    alice = await sign_in(a, "alice")
    item = {
        "client_id": cid,
        "room_id": room_id,
        "body": "ackが届かなかった",
        "reply_to": None,
        "created_at": "2026-01-05T09:00:00+09:00",
        "state": "pending",
        "error": None,
    }
    await alice.evaluate(
        "([key, value]) => localStorage.setItem(key, value)",
        [f"kakehashi.outbox.{world['alice'].id}", json.dumps([item])],
    )
    acks: list[dict[str, object]] = []

    def on_ws(ws: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "ack" and frame.get("client_id") == cid:
                acks.append(frame)

        ws.on("framereceived", on_frame)

    alice.on("websocket", on_ws)
    await alice.reload()
    # The outbox resends on connect; the server answers "duplicate" and nothing is added.
    await alice.wait_for_function(
        "() => window.kakehashi && window.kakehashi.outbox.items.length === 0"
    )
    await alice.get_by_role("link", name=re.compile("馬場 ボブ")).click()
    await expect(message(alice, "ackが届かなかった")).to_have_count(1)
    await expect(message(alice, "ackが届かなかった")).to_have_attribute("data-state", "sent")
    assert (await bodies(world, room_id)).count("ackが届かなかった") == 1
    assert [f["duplicate"] for f in acks] == [True]
    assert acks[0]["message_id"] == r.json()["id"]


async def test_deactivated_user_is_signed_out_at_once(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context()
    page = await sign_in(c, "carol")
    r = await world["admin"].api.post(f"/api/admin/users/{world['carol'].id}/deactivate")
    assert r.status_code == 200, r.text
    await expect(page.get_by_role("button", name="ログイン")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("もう一度ログインしてください")
