"""A long history in the browser: scrolling up to the first message pages older messages in
while only a window of them stays in the DOM; scrolling back down pages the newer ones in again
and the room is live at its end.  A page whose answer never comes is given up and asked for
again."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Route, expect

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
TO_TOP = "el => { el.scrollTop = 0; }"
TO_BOTTOM = "el => { el.scrollTop = el.scrollHeight; }"
SHOWN = """el => ({
  busy: el.getAttribute('aria-busy') === 'true',
  seqs: [...el.querySelectorAll('article.msg')].map((e) => Number(e.dataset.seq)),
})"""


async def scroll_until(
    page: Page, history: Locator, script: str, done: Callable[[], Awaitable[bool]]
) -> None:
    """Scroll the history to one end again and again until ``done()``: each scroll that
    reaches an end asks for one more page.  Gives up after a minute, saying what is shown."""
    deadline = time.monotonic() + 60
    while not await done():
        if time.monotonic() > deadline:
            shown = await history.evaluate(SHOWN)
            seqs = shown["seqs"] or [None]
            pytest.fail(
                f"the history stopped paging: {len(shown['seqs'])} messages shown, seq "
                f"{seqs[0]}-{seqs[-1]}, a page still on its way: {shown['busy']}"
            )
        await history.evaluate(script)
        await page.wait_for_timeout(60)


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

    async def at_the_beginning() -> bool:
        return bool(await first.count()) and await beginning.is_visible()

    await scroll_until(page, history, TO_TOP, at_the_beginning)
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

    async def at_the_end() -> bool:
        return bool(await newest.count())

    await scroll_until(page, history, TO_BOTTOM, at_the_end)
    await history.evaluate(TO_BOTTOM)
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


async def test_a_page_whose_answer_never_comes_is_given_up_and_asked_for_again(
    world: World, browser_context: ContextFactory
) -> None:
    alice, bob = world["alice"], world["bob"]
    r = await alice.api.post(
        "/api/rooms", json={"name": "返事のないページ", "member_ids": [bob.id]}
    )
    assert r.status_code == 201, r.text
    room_id = int(r.json()["id"])
    for n in range(1, 3 * PAGE + 1):
        r = await alice.api.post(
            f"/api/rooms/{room_id}/messages", json={"client_id": client_id(), "body": f"記録 {n}"}
        )
        assert r.status_code == 201, r.text
    r = await bob.api.post(f"/api/rooms/{room_id}/read", json={"seq": r.json()["seq"]})
    assert r.status_code == 200

    b = await browser_context()
    await b.page.clock.install()  # the page's timers, so that 20 s can pass at once
    page = await sign_in(b, "bob")
    await page.get_by_role("link", name=re.compile("返事のないページ")).click()
    await expect(page.get_by_text(f"記録 {3 * PAGE}", exact=True)).to_be_visible()
    history = page.get_by_role("log")

    # The first request for older messages is held: its answer never comes.
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    older = re.compile(r"/api/rooms/\d+/messages\?before=")
    await page.route(older, hold)
    await history.evaluate(TO_TOP)
    await expect(history).to_have_attribute("aria-busy", "true")
    assert len(held) == 1

    # Past the read timeout the page is given up: the person is told, the history is idle and
    # its top offers to ask again (the view is at its top already: no scroll would ask)…
    await page.clock.fast_forward(21_000)
    await expect(page.get_by_text("サーバーに接続できません", exact=False)).to_be_visible()
    await expect(history).not_to_have_attribute("aria-busy", "true")
    await page.unroute(older, hold)  # (after the abort: unrouting lets a held request go on)
    await page.get_by_role("button", name="もう一度読み込む").click()

    # …and this time the page comes, and the next ones as the view moves up.
    first = page.get_by_text("記録 1", exact=True)

    async def at_the_first() -> bool:
        return bool(await first.count())

    await scroll_until(page, history, TO_TOP, at_the_first)
    await expect(page.get_by_text("このルームの最初のメッセージです")).to_be_attached()
    shown: dict[str, Any] = await history.evaluate(SHOWN)
    assert shown["seqs"] == sorted(set(shown["seqs"]))
    assert len(shown["seqs"]) == 3 * PAGE
