"""Sign-in errors, the directory, the phone layout, English, notifications, and a tour of
every screen that checks nothing is fetched from anywhere but the server."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.browser.test_chat import group_room, message, send
from tests.harness import World

pytestmark = pytest.mark.browser


async def test_sign_in_shows_wrong_password_and_lockout_in_japanese(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context()
    page = c.page
    await page.goto("/")
    await expect(page.get_by_role("heading", name="架け橋")).to_be_visible()
    await screenshot(page, "sign-in")
    alert = page.get_by_role("alert")
    for _ in range(4):
        await page.get_by_label("ログインID").fill("bob")
        await page.get_by_label("パスワード").fill("wrong-password")
        await page.get_by_role("button", name="ログイン").click()
        await expect(alert).to_be_visible()
        await expect(page.get_by_role("button", name="ログイン")).to_be_enabled()
    assert re.search("[ぁ-んァ-ヶ一-龠]", await alert.inner_text())
    await page.get_by_label("パスワード").fill("wrong-password")
    await page.get_by_role("button", name="ログイン").click()
    await expect(alert).to_contain_text("ロックされています")
    # The unlock time in the browser's time zone (Asia/Tokyo here), from details.locked_until.
    r = await page.request.post(
        "/api/auth/login", data={"login_id": "bob", "password": "wrong-password"}
    )
    until = datetime.fromisoformat((await r.json())["error"]["details"]["locked_until"])
    tokyo = until.astimezone(timezone(timedelta(hours=9))).strftime("%H:%M")
    await expect(alert).to_contain_text(f"{tokyo} までロックされています")
    await screenshot(page, "sign-in-locked")


async def test_directory_by_department_starts_direct_and_group_rooms(
    world: World, browser_context: ContextFactory
) -> None:
    admin = world["admin"].api
    top = (await admin.post("/api/admin/departments", json={"name": "総務部"})).json()
    sub = (
        await admin.post(
            "/api/admin/departments", json={"name": "情報管理課", "parent_id": top["id"]}
        )
    ).json()
    for login, dept, title in (("bob", sub["id"], "主任"), ("carol", top["id"], "課長")):
        r = await admin.patch(
            f"/api/admin/users/{world[login].id}", json={"department_id": dept, "title": title}
        )
        assert r.status_code == 200, r.text
    c = await browser_context()
    page = await sign_in(c, "alice")
    await page.get_by_role("link", name="+ 新しいチャット").click()
    tree = page.locator(".directory-tree")
    bob_row = tree.locator("details", has_text="総務部").locator("details", has_text="情報管理課")
    await expect(bob_row).to_contain_text("馬場 ボブ")
    await expect(bob_row).to_contain_text("主任")
    await expect(tree).not_to_contain_text("青木 アリス")  # not oneself
    await screenshot(page, "directory")

    await page.get_by_role("button", name="馬場 ボブ さんと1対1で話す").click()
    await expect(page.get_by_role("heading", name="馬場 ボブ")).to_be_visible()
    await send(page, "はじめまして")
    await expect(message(page, "はじめまして")).to_have_attribute("data-state", "sent")

    await page.get_by_role("link", name="+ 新しいチャット").click()
    await page.get_by_label("名前・ふりがな・役職で絞り込む").fill("課長")
    await expect(tree.locator(".person")).to_have_count(1)
    await page.get_by_role("checkbox", name="佐藤 キャロル").check()
    await page.get_by_label("名前・ふりがな・役職で絞り込む").fill("")
    await page.get_by_role("checkbox", name="馬場 ボブ").check()
    await expect(page.get_by_text("2人を選択中")).to_be_visible()
    await page.get_by_label("グループ名").fill("システム更新")
    await page.get_by_role("button", name="グループを作成").click()
    await expect(page.get_by_role("heading", name="システム更新")).to_be_visible()
    await expect(page.get_by_text("メンバー 3人")).to_be_visible()
    rooms = page.get_by_role("list", name="ルーム一覧").get_by_role("link")
    await expect(rooms).to_have_count(2)


async def test_phone_sized_screen_is_usable(world: World, browser_context: ContextFactory) -> None:
    await group_room(world)
    c = await browser_context(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = await sign_in(c, "bob")

    async def no_sideways_scroll() -> None:
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, width

    await expect(page.get_by_role("link", name=re.compile("防災訓練の準備"))).to_be_visible()
    await no_sideways_scroll()
    await screenshot(page, "phone-room-list")
    await page.get_by_role("link", name=re.compile("防災訓練の準備")).click()
    # One pane at a time: the list is gone, the room fills the screen with its composer.
    await expect(page.get_by_role("complementary")).to_be_hidden()
    box = page.get_by_role("combobox", name="メッセージ")
    await expect(box).to_be_in_viewport()
    await box.tap()
    await box.fill("現場に到着しました。写真は後で送ります。")
    await page.get_by_role("button", name="送信").tap()
    sent = message(page, "現場に到着しました")
    await expect(sent).to_have_attribute("data-state", "sent")
    await expect(sent.get_by_role("button", name="返信")).to_be_visible()  # no hover on phones
    await no_sideways_scroll()
    await screenshot(page, "phone-room")
    await page.get_by_role("link", name="ルーム一覧に戻る").tap()
    await expect(page.get_by_role("link", name=re.compile("防災訓練の準備"))).to_be_visible()


async def test_english_by_browser_language_and_switch_back(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context(locale="en-US")
    page = c.page
    await page.goto("/")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.get_by_label("Login ID").fill("alice")
    await page.get_by_label("Password").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible()
    # One language per screen: no Japanese outside the language picker's own names.
    text = await page.locator("main").evaluate(
        """el => {
            const c = el.cloneNode(true);
            c.querySelectorAll('option').forEach(o => o.remove());
            return c.innerText;
        }"""
    )
    assert not re.search("[ぁ-んァ-ヶ一-龠]", text), text
    await page.get_by_label("Language").select_option("ja")
    await expect(page.get_by_role("button", name="ログイン")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "ja")


async def test_desktop_notification_for_direct_and_mention_only(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await group_room(world)
    r = await world["alice"].api.post("/api/rooms/direct", json={"user_id": world["bob"].id})
    direct_id = r.json()["id"]
    c = await browser_context(permissions=["notifications"])
    # Count notifications the page creates (Chromium shows none while headless).
    await c.context.add_init_script(
        """
        window.__notes = [];
        const Real = window.Notification;
        window.Notification = class extends Real {
          constructor(title, options) {
            super(title, options);
            window.__notes.push({title, ...options});
          }
        };
        """
    )
    page = await sign_in(c, "bob")
    alice = world["alice"].api
    await alice.post(
        f"/api/rooms/{room_id}/messages", json={"client_id": "note-plain-1", "body": "全体連絡です"}
    )
    await alice.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": "note-mention-1", "body": "@bob 確認をお願いします"},
    )
    await alice.post(
        f"/api/rooms/{direct_id}/messages",
        json={"client_id": "note-direct-1", "body": "少しいいですか"},
    )
    await page.wait_for_function("() => window.__notes.length >= 2")
    await page.wait_for_timeout(300)
    notes = await page.evaluate("() => window.__notes")
    assert [n["body"] for n in notes] == ["@bob 確認をお願いします", "少しいいですか"]
    assert all(n["silent"] is True for n in notes)  # sound is off by default
    assert notes[1]["title"] == "青木 アリス"


async def test_every_screen_stays_on_the_server(
    world: World, browser_context: ContextFactory
) -> None:
    room_id = await group_room(world)
    r = await world["alice"].api.post(
        f"/api/rooms/{room_id}/members", json={"user_ids": [world["admin"].id]}
    )
    assert r.status_code == 200, r.text
    await world["bob"].api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": "external-link-1", "body": "参考: https://www.example.com/guide.pdf"},
    )
    c = await browser_context()
    page = await sign_in(c, "admin")
    r = await page.request.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    for route in ("#/new", "#/admin", "#/search?q=" + "参考"):
        await page.goto("/" + route)
        await page.wait_for_load_state("networkidle")
    await page.goto("/")
    await page.get_by_role("link", name="+ 新しいチャット").click()
    await page.get_by_role("button", name="馬場 ボブ さんと1対1で話す").click()
    await send(page, "外部への通信がないことの確認")
    await expect(message(page, "外部への通信がないことの確認")).to_have_attribute(
        "data-state", "sent"
    )
    await page.goto("/#/search?q=" + "参考")
    hit = page.locator(".search-hit")
    await expect(hit).to_contain_text("https://www.example.com/guide.pdf")
    await hit.click()
    link = page.get_by_role("link", name="https://www.example.com/guide.pdf")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    await page.wait_for_load_state("networkidle")
    assert c.recorder.requests, "requests are recorded"
    assert c.recorder.foreign(world.server.url) == []
    assert await page.locator("[style]").count() == 0
    assert await page.locator("script:not([src])").count() == 0
