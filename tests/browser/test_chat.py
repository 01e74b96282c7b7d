"""Chatting in the browser: real time, read counts, mentions, replies, reactions, edit, recall,
history paging with the unread divider, the XSS message, and nothing fetched from elsewhere."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.harness import World, Ws, client_id

pytestmark = pytest.mark.browser


async def group_room(world: World, name: str = "防災訓練の準備") -> int:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    r = await alice.api.post("/api/rooms", json={"name": name, "member_ids": [bob.id, carol.id]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def message(page: Page, text: str):  # type: ignore[no-untyped-def]
    """The message whose own text (not a quote of it) contains ``text``."""
    return page.locator("article.msg").filter(has=page.locator(".msg-body").filter(has_text=text))


async def send(page: Page, text: str) -> None:
    box = page.get_by_role("combobox", name="メッセージ")
    await box.fill(text)
    await box.press("Enter")


async def test_two_people_chat_in_real_time_and_see_read_counts(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await group_room(world)
    a = await browser_context()
    b = await browser_context()
    alice = await sign_in(a, "alice")
    bob = await sign_in(b, "bob")

    await alice.get_by_role("link", name=re.compile("防災訓練の準備")).click()
    await expect(alice.get_by_role("heading", name="防災訓練の準備")).to_be_visible()
    await send(alice, "明日の訓練は9時集合です")
    mine = message(alice, "明日の訓練は9時集合です")
    await expect(mine).to_have_attribute("data-state", "sent")
    await expect(mine.locator(".read-label")).to_have_text("送信済み")

    # Bob, on his room list, sees the unread badge arrive without reloading.
    bob_room = bob.get_by_role("link", name=re.compile("防災訓練の準備"))
    await expect(bob_room).to_have_attribute("aria-label", re.compile("未読 1件"))
    await expect(bob_room.locator(".badge.unread")).to_have_text("1")
    await screenshot(bob, "room-list")

    # He opens the room: Alice's message now reads 既読 1.
    await bob_room.click()
    await expect(message(bob, "明日の訓練は9時集合です")).to_be_visible()
    await expect(mine.locator(".read-label")).to_have_text("既読 1")
    await expect(bob_room.locator(".badge.unread")).to_have_count(0)

    # Carol reads through the API (another device): 既読 2, and the list says who.
    r = await world["carol"].api.post(f"/api/rooms/{room_id}/read", json={"seq": 10_000})
    assert r.status_code == 200, r.text
    await expect(mine.locator(".read-label")).to_have_text("既読 2")
    await mine.locator(".read-label").click()
    dialog = alice.get_by_role("dialog", name="既読・未読")
    await expect(dialog).to_contain_text("既読(2人)")
    await expect(dialog).to_contain_text("馬場 ボブ")
    await expect(dialog).to_contain_text("佐藤 キャロル")
    await expect(dialog).to_contain_text("未読(0人)")
    await dialog.get_by_role("button", name="閉じる").click()

    # And back the other way, in real time.
    await send(bob, "了解しました。")
    await expect(message(alice, "了解しました。")).to_be_visible()
    await expect(message(bob, "了解しました。").locator(".read-label")).to_have_text("既読 1")
    await screenshot(alice, "room")


async def test_a_room_list_answer_older_than_a_live_message_keeps_its_unread_count(
    world: World, browser_context: ContextFactory
) -> None:
    """A list refresh whose answer was taken before a message arrived live (CI once showed
    the badge lost this way) does not take the room back: the unread count and the last
    message stay."""
    room_id = await group_room(world)
    bob = await sign_in(await browser_context(), "bob")
    bob_room = bob.get_by_role("link", name=re.compile("防災訓練の準備"))
    await expect(bob_room).to_be_visible()
    armed, answered, release = False, asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        if not armed:
            await route.continue_()
            return
        response = await route.fetch()  # the list as it is now: before the message
        answered.set()
        await release.wait()
        await route.fulfill(response=response)

    await bob.route(re.compile(r"/api/rooms$"), hold)
    # A rename makes Bob's client refresh its list (its room.updated event).
    armed = True
    r = await world["alice"].api.patch(f"/api/rooms/{room_id}", json={"name": "防災訓練の準備(改)"})
    assert r.status_code == 200, r.text
    await asyncio.wait_for(answered.wait(), 15)
    r = await world["alice"].api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": "集合は9時"}
    )
    assert r.status_code == 201, r.text
    await expect(bob_room).to_have_attribute("aria-label", re.compile("未読 1件"))
    release.set()
    # The held answer has been applied (it carries the new name) and took nothing back.
    renamed = bob.get_by_role("link", name=re.compile(r"防災訓練の準備\(改\)"))
    await expect(renamed).to_be_visible()
    await expect(renamed).to_have_attribute("aria-label", re.compile("未読 1件"))
    await expect(renamed).to_contain_text("集合は9時")
    await bob.unroute(re.compile(r"/api/rooms$"))


async def test_mention_reply_reaction_edit_and_recall(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await group_room(world)
    r = await world["alice"].api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": client_id(), "body": "資料を共有フォルダに置きました"},
    )
    assert r.status_code == 201
    a = await browser_context()
    b = await browser_context()
    alice = await sign_in(a, "alice")
    bob = await sign_in(b, "bob")
    for page in (alice, bob):
        await page.get_by_role("link", name=re.compile("防災訓練の準備")).click()
    original = message(bob, "資料を共有フォルダに置きました")

    # Bob replies with a mention picked from the autocomplete (keyboard only).
    await original.hover()
    await original.get_by_role("button", name="返信").click()
    await expect(bob.locator(".reply-bar")).to_contain_text("青木 アリス さんに返信")
    box = bob.get_by_role("combobox", name="メッセージ")
    await box.press_sequentially("確認しました @青木")
    listbox = bob.get_by_role("listbox", name="メンションの候補")
    await expect(listbox.get_by_role("option", name=re.compile("青木 アリス"))).to_be_visible()
    await box.press("Enter")
    await expect(box).to_have_value("確認しました @alice ")
    await box.press_sequentially("ありがとうございます")
    await box.press("Enter")

    reply = message(alice, "ありがとうございます")
    await expect(reply.locator(".quote")).to_contain_text("資料を共有フォルダに置きました")
    await expect(reply.locator(".mention.me")).to_have_text("@alice")

    # Alice reacts with a stamp; Bob sees it.
    mine = message(alice, "資料を共有フォルダに置きました")
    await mine.hover()
    await mine.get_by_role("button", name="リアクション").click()
    await mine.get_by_role("button", name="了解", exact=True).click()
    await expect(original.locator(".reaction")).to_contain_text("了解1")

    # She edits it: Bob sees the new text marked edited.
    await mine.hover()
    await mine.get_by_role("button", name="編集").click()
    editor = alice.get_by_role("textbox", name="メッセージを編集")
    await editor.fill("資料を共有フォルダの「訓練」に置きました")
    await editor.press("Enter")
    edited = message(bob, "「訓練」に置きました")
    await expect(edited).to_contain_text("(編集済み)")
    await screenshot(bob, "room-reply-reaction")

    # And recalls it: the text is gone for Bob too.
    mine = message(alice, "「訓練」に置きました")
    await mine.hover()
    await mine.get_by_role("button", name="送信取消").click()
    confirm = alice.get_by_role("dialog", name="送信の取り消し")
    await confirm.get_by_role("button", name="送信取消").click()
    await expect(bob.locator("article.msg.recalled")).to_have_text(
        re.compile("メッセージの送信を取り消しました")
    )
    await expect(bob.get_by_text("「訓練」に置きました")).to_have_count(0)


async def test_mention_list_stays_open_when_the_box_gets_its_focus_back(
    world: World, browser_context: ContextFactory
) -> None:
    """The box blurs and is focused again (as the reply button does) and the list opens at
    once: the close planned at the blur must not hide it, or Enter would send the message
    instead of picking the name (a flaky CI failure of the test above)."""
    await group_room(world)
    bob = await sign_in(await browser_context(), "bob")
    await bob.get_by_role("link", name=re.compile("防災訓練の準備")).click()
    box = bob.get_by_role("combobox", name="メッセージ")
    await expect(box).to_be_focused()
    await box.evaluate(
        """(input) => {
            input.blur();
            input.focus();
            input.value = '@青木';
            input.setSelectionRange(3, 3);
            input.dispatchEvent(new Event('input', { bubbles: true }));
        }"""
    )
    listbox = bob.get_by_role("listbox", name="メンションの候補")
    await expect(listbox).to_be_visible()
    await bob.wait_for_timeout(400)  # past the blur's 150 ms close
    await expect(listbox).to_be_visible()
    await box.press("Enter")
    await expect(box).to_have_value("@alice ")


async def test_xss_message_is_shown_as_text(world: World, browser_context: ContextFactory) -> None:
    room_id = await group_room(world)
    payload = "<img src=x onerror=alert(1)>"
    r = await world["carol"].api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": payload}
    )
    assert r.status_code == 201
    a = await browser_context()
    alice = await sign_in(a, "alice")
    await alice.get_by_role("link", name=re.compile("防災訓練の準備")).click()
    await send(alice, "<script>alert(2)</script><b onclick=alert(3)>太字</b>")
    body = alice.locator("article.msg .msg-body")
    await expect(body.first).to_have_text(payload)
    await expect(body.nth(1)).to_have_text("<script>alert(2)</script><b onclick=alert(3)>太字</b>")
    await expect(message(alice, "alert(2)")).to_have_attribute("data-state", "sent")
    assert await alice.locator(".messages img, .messages script, .messages b").count() == 0
    assert await alice.locator("[style]").count() == 0
    # The room list preview is text too.
    preview = alice.locator(".room-preview").first
    await expect(preview).to_contain_text("<script>alert(2)</script>")
    # The fixture also fails the test if any alert() dialog opened.


async def test_history_pages_in_while_scrolling_up_from_the_first_unread(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await group_room(world)
    alice, bob = world["alice"], world["bob"]
    # 130 messages over one websocket, pipelined: the server handles a connection's frames in
    # order, so their sequence numbers follow the numbering.
    ws = await Ws.connect(world.server, alice.token)
    for n in range(1, 131):
        await ws.send(
            {
                "type": "send",
                "id": f"s{n}",
                "room_id": room_id,
                "client_id": client_id(),
                "body": f"連絡事項 その{n}",
                "reply_to": None,
            }
        )
    acks = {}
    while len(acks) < 130:
        ack = await ws.expect("ack")
        acks[ack["ref"]] = ack["seq"]
    await ws.close()
    read_upto = acks["s100"]
    r = await bob.api.post(f"/api/rooms/{room_id}/read", json={"seq": read_upto})
    assert r.status_code == 200
    b = await browser_context()
    page = await sign_in(b, "bob")
    link = page.get_by_role("link", name=re.compile("防災訓練の準備"))
    await expect(link.locator(".badge.unread")).to_have_text("30")
    await link.click()
    divider = page.get_by_role("separator", name="ここから未読メッセージ")
    await expect(divider).to_be_in_viewport()
    # The first unread message follows the divider; older ones are not loaded yet.
    first_after = page.locator(".unread-divider + article.msg")
    await expect(first_after).to_contain_text("連絡事項 その101")
    assert await page.get_by_text("連絡事項 その1", exact=True).count() == 0
    history = page.get_by_role("log")
    for _ in range(10):
        if await page.get_by_text("このルームの最初のメッセージです").is_visible():
            break
        await history.evaluate("el => { el.scrollTop = 0; }")
        await page.wait_for_timeout(250)
    await expect(page.get_by_text("連絡事項 その1", exact=True)).to_be_attached()
    assert await page.locator("article.msg").count() == 130
