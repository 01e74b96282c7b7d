"""A long history in the browser: scrolling up to the first message pages older messages in
while only a window of them stays in the DOM; scrolling back down pages the newer ones in again
and the room is live at its end."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ContextFactory, sign_in
from tests.harness import World, Ws, client_id

pytestmark = pytest.mark.browser

COUNT = 1500
WINDOW = 400  # web/js/views/room.js
PAGE = 50

# Notes the largest number of messages the list ever held (checked on every DOM change).
WATCH = """() => {
  window.__maxMsgs = document.querySelectorAll('article.msg').length;
  new MutationObserver(() => {
    const n = document.querySelectorAll('article.msg').length;
    if (n > window.__maxMsgs) window.__maxMsgs = n;
  }).observe(document.body, { childList: true, subtree: true });
}"""


async def test_scrolling_through_a_long_history_keeps_a_window_and_comes_back_live(
    world: World, browser_context: ContextFactory
) -> None:
    alice, bob = world["alice"], world["bob"]
    r = await alice.api.post("/api/rooms", json={"name": "長い履歴", "member_ids": [bob.id]})
    assert r.status_code == 201, r.text
    room_id = int(r.json()["id"])
    # Pipelined over one websocket: the server handles a connection's frames in order.
    ws = await Ws.connect(world.server, alice.token)
    for n in range(1, COUNT + 1):
        await ws.send(
            {
                "type": "send",
                "id": f"s{n}",
                "room_id": room_id,
                "client_id": client_id(),
                "body": f"履歴 その{n}",
                "reply_to": None,
            }
        )
    acks: dict[str, int] = {}
    ids: dict[str, int] = {}
    while len(acks) < COUNT:
        ack = await ws.expect("ack")
        acks[ack["ref"]] = ack["seq"]
        ids[ack["ref"]] = ack["message_id"]
    await ws.close()
    r = await bob.api.post(f"/api/rooms/{room_id}/read", json={"seq": acks[f"s{COUNT}"]})
    assert r.status_code == 200

    b = await browser_context()
    page = await sign_in(b, "bob")
    await page.get_by_role("link", name=re.compile("長い履歴")).click()
    await expect(page.get_by_text(f"履歴 その{COUNT}", exact=True)).to_be_visible()
    await page.evaluate(WATCH)
    history = page.get_by_role("log")

    first = page.get_by_text("履歴 その1", exact=True)
    beginning = page.get_by_text("このルームの最初のメッセージです")
    for _ in range(400):
        if await first.count() and await beginning.is_visible():
            break
        await history.evaluate("el => { el.scrollTop = 0; }")
        await page.wait_for_timeout(60)
    await expect(first).to_be_attached()
    await expect(beginning).to_be_visible()
    # The oldest messages are there in order, the newest were dropped.
    seqs = await page.locator("article.msg").evaluate_all(
        "els => els.map((e) => Number(e.dataset.seq))"
    )
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert seqs[0] == acks["s1"]
    assert await page.get_by_text(f"履歴 その{COUNT}", exact=True).count() == 0
    assert await page.evaluate("window.__maxMsgs") <= WINDOW + PAGE
    assert await page.locator("article.msg").count() <= WINDOW + PAGE

    # A message sent meanwhile is not added to the stretch shown; the button says it is there.
    r = await alice.api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": client_id(), "body": "上にいる間の連絡"},
    )
    assert r.status_code == 201, r.text
    await expect(page.get_by_role("button", name="新着メッセージ ↓")).to_be_visible()
    assert await page.get_by_text("上にいる間の連絡", exact=True).count() == 0

    newest = page.get_by_text("上にいる間の連絡", exact=True)
    for _ in range(400):
        if await newest.count():
            break
        await history.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        await page.wait_for_timeout(60)
    await history.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    await expect(newest).to_be_in_viewport()
    assert await page.get_by_text("履歴 その1", exact=True).count() == 0
    assert await page.evaluate("window.__maxMsgs") <= WINDOW + PAGE
    seqs = await page.locator("article.msg").evaluate_all(
        "els => els.map((e) => Number(e.dataset.seq))"
    )
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert seqs[-1] > acks[f"s{COUNT}"]
    assert await page.get_by_text(f"履歴 その{COUNT}", exact=True).count() == 1

    # Back at the live end: a new message shows at the bottom.
    r = await alice.api.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": "いま届いた連絡"}
    )
    assert r.status_code == 201, r.text
    await expect(page.get_by_text("いま届いた連絡", exact=True)).to_be_in_viewport()

    # Up again until the newest are dropped; then the button jumps back to the live end.
    live = page.get_by_text("いま届いた連絡", exact=True)
    for _ in range(200):
        if not await live.count():
            break
        await history.evaluate("el => { el.scrollTop = 0; }")
        await page.wait_for_timeout(60)
    assert await live.count() == 0
    r = await alice.api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": client_id(), "body": "最後の連絡", "reply_to_id": ids["s1"]},
    )
    assert r.status_code == 201, r.text
    await page.get_by_role("button", name="新着メッセージ ↓").click()
    await expect(page.get_by_text("最後の連絡", exact=True)).to_be_in_viewport()
    await expect(live).to_be_attached()
    assert await page.evaluate("window.__maxMsgs") <= WINDOW + PAGE
    # Its quote of the first message, long paged out: a click loads the history around it.
    await page.locator("article.msg").filter(has_text="最後の連絡").locator(".quote").click()
    await expect(page.get_by_text("履歴 その1", exact=True)).to_be_in_viewport()
    await expect(live).not_to_be_attached()
    assert b.recorder.page_errors == []
    assert b.recorder.page_errors == []
