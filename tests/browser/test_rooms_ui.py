"""Room management in the browser: the settings / members dialog (add from the directory,
rename, remove, leave) with the others' lists kept live, and the room list's personal archive
with multi-select bulk actions (all or nothing) and the archived view."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.harness import PASSWORD, World

pytestmark = pytest.mark.browser


async def test_group_members_rename_remove_and_leave_live(
    world: World, browser_context: ContextFactory
) -> None:
    a = await browser_context()
    b = await browser_context()
    alice = await sign_in(a, "alice")
    bob = await sign_in(b, "bob")

    # Alice makes a group with Carol from the directory.
    await alice.get_by_role("link", name="+ 新しいチャット").click()
    await alice.locator(f"#pick-{world['carol'].id}").check()
    await alice.get_by_label("グループ名").fill("広報誌の編集")
    await alice.get_by_role("button", name="グループを作成").click()
    await expect(alice.get_by_role("heading", name="広報誌の編集")).to_be_visible()

    # The settings dialog: members with their role; Alice made the room, so she is its admin.
    await alice.get_by_role("button", name="メンバー・設定").click()
    dialog = alice.get_by_role("dialog", name="ルームの設定とメンバー")
    await expect(dialog.get_by_role("heading", name="メンバー(2人)")).to_be_visible()
    await expect(dialog.locator("li.rs-member", has_text="青木 アリス")).to_contain_text(
        "ルーム管理者"
    )

    # Add Bob from the directory (keyboard): he sees the room appear in his list at once.
    search = dialog.get_by_label("メンバーを追加")
    await search.fill("馬場")
    await dialog.get_by_role("button", name="馬場 ボブさんを追加").focus()
    await alice.keyboard.press("Enter")
    await expect(dialog.get_by_role("heading", name="メンバー(3人)")).to_be_visible()
    await expect(dialog.get_by_role("button", name="馬場 ボブさんをルームから外す")).to_be_visible()
    bob_link = bob.get_by_role("link", name=re.compile("広報誌の編集"))
    await expect(bob_link).to_be_visible()

    # Rename: the heading and Bob's list follow.
    await dialog.get_by_label("ルーム名").fill("広報誌 6月号")
    await dialog.get_by_label("ルーム名").press("Enter")
    await expect(alice.get_by_role("heading", name="広報誌 6月号", exact=True)).to_be_visible()
    renamed = bob.get_by_role("link", name=re.compile("広報誌 6月号"))
    await expect(renamed).to_be_visible()
    await renamed.click()
    await expect(bob.get_by_role("heading", name="広報誌 6月号", exact=True)).to_be_visible()
    await screenshot(alice, "room-settings")

    # Remove Bob (after a confirmation): the room leaves his screen and his list live.
    await dialog.get_by_role("button", name="馬場 ボブさんをルームから外す").click()
    confirm = alice.get_by_role("dialog", name="メンバーを外す")
    await expect(confirm).to_contain_text("馬場 ボブさんをこのルームから外しますか")
    await confirm.get_by_role("button", name="外す").click()
    await expect(dialog.get_by_role("heading", name="メンバー(2人)")).to_be_visible()
    await expect(bob.get_by_role("link", name=re.compile("広報誌"))).to_have_count(0)
    await expect(bob.get_by_role("heading", name="広報誌 6月号")).to_have_count(0)
    await expect(bob.locator(".toast")).to_contain_text("このルームのメンバーではなくなりました")

    # Alice leaves (after a confirmation): gone from her list; Carol is still in it.
    await dialog.get_by_role("button", name="ルームから退出").click()
    confirm = alice.get_by_role("dialog", name="ルームから退出")
    await confirm.get_by_role("button", name="退出する").click()
    await expect(alice.get_by_role("link", name=re.compile("広報誌"))).to_have_count(0)
    await expect(alice.get_by_role("dialog")).to_have_count(0)
    r = await world["carol"].api.get("/api/rooms")
    assert [room["name"] for room in r.json()["rooms"]] == ["広報誌 6月号"]


async def test_bulk_archive_all_or_nothing_and_unarchive_on_a_phone(
    world: World, browser_context: ContextFactory
) -> None:
    alice_api, bob = world["alice"].api, world["bob"]
    for name in ("会議室予約", "庁舎清掃", "防災訓練"):
        r = await alice_api.post("/api/rooms", json={"name": name, "member_ids": [bob.id]})
        assert r.status_code == 201, r.text
    r = await alice_api.post("/api/rooms/direct", json={"user_id": bob.id})
    assert r.status_code == 201, r.text

    a = await browser_context(viewport={"width": 360, "height": 740})
    alice = await sign_in(a, "alice")
    rooms = alice.get_by_role("list", name="ルーム一覧")
    bar = alice.get_by_role("group", name="選択したルームをまとめて変更")

    # Select two rooms and archive them for me at once.
    await alice.get_by_role("button", name="選択", exact=True).click()
    await alice.get_by_role("checkbox", name="「会議室予約」を選択").check()
    await alice.get_by_role("checkbox", name="「庁舎清掃」を選択").check()
    await expect(bar).to_contain_text("2件選択中")
    await bar.get_by_role("button", name="アーカイブ", exact=True).click()
    await expect(rooms.get_by_role("link", name=re.compile("会議室予約|庁舎清掃"))).to_have_count(0)
    await expect(rooms.get_by_role("link", name=re.compile("防災訓練"))).to_be_visible()

    # Leaving a group and the 1:1 together: the server refuses the 1:1, so nothing changes.
    await alice.get_by_role("checkbox", name="「防災訓練」を選択").check()
    await alice.get_by_role("checkbox", name="「馬場 ボブ」を選択").check()
    await bar.get_by_role("button", name="退出").click()
    confirm = alice.get_by_role("dialog", name="ルームから退出")
    await confirm.get_by_role("button", name="退出").click()
    error = bar.get_by_role("alert")
    await expect(error).to_contain_text("1対1のルームは退出できません")
    await expect(error).to_contain_text("馬場 ボブ")
    await expect(rooms.get_by_role("link", name=re.compile("防災訓練"))).to_be_visible()
    r = await alice_api.get("/api/rooms")
    assert {room["title"] for room in r.json()["rooms"]} == {"防災訓練", "馬場 ボブ"}

    # The archived view: both rooms, then one unarchived goes back to the list.
    await alice.get_by_role("button", name="アーカイブ済み").click()
    archived = alice.get_by_role("list", name="アーカイブしたルーム")
    await expect(archived.get_by_role("link")).to_have_count(2)
    await expect(archived.get_by_role("link", name=re.compile("会議室予約"))).to_be_visible()
    await screenshot(alice, "rooms-archived")
    await alice.get_by_role("checkbox", name="「会議室予約」を選択").check()
    await bar.get_by_role("button", name="アーカイブを解除").click()
    await expect(archived.get_by_role("link")).to_have_count(1)
    await expect(archived.get_by_role("link", name=re.compile("庁舎清掃"))).to_be_visible()
    await alice.get_by_role("button", name="‹ ルーム一覧へ").click()
    await expect(rooms.get_by_role("link", name=re.compile("会議室予約"))).to_be_visible()
    await expect(rooms.get_by_role("link", name=re.compile("庁舎清掃"))).to_have_count(0)
    r = await alice_api.get("/api/rooms?include_archived=true")
    mine = {room["name"]: room["archived_by_me"] for room in r.json()["rooms"] if room["name"]}
    assert mine == {"会議室予約": False, "庁舎清掃": True, "防災訓練": False}


async def test_english_phone_dialog_shows_why_a_direct_room_cannot_be_left(
    world: World, browser_context: ContextFactory
) -> None:
    r = await world["alice"].api.post("/api/rooms/direct", json={"user_id": world["bob"].id})
    assert r.status_code == 201, r.text
    c = await browser_context(locale="en-US", viewport={"width": 360, "height": 740})
    page = c.page
    await page.goto("/")
    await page.get_by_label("Login ID").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name=re.compile("馬場 ボブ")).click()
    await page.get_by_role("button", name="Members & settings").click()
    dialog = page.get_by_role("dialog", name="Room settings and members")
    await expect(dialog.get_by_role("heading", name=re.compile("Members"))).to_be_visible()
    # A 1:1 room: no renaming, adding or removing; leaving is the server's call.
    await expect(dialog.get_by_label("Room name")).to_have_count(0)
    await expect(dialog.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    await dialog.get_by_role("button", name="Leave the room").click()
    await (
        page.get_by_role("dialog", name="Leave the room")
        .get_by_role("button", name="Leave")
        .click()
    )
    await expect(dialog.get_by_role("alert")).to_have_text(
        "You cannot leave a 1:1 room; archive it instead."
    )
    box = await dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    await screenshot(page, "room-settings-phone-en")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await expect(page.get_by_role("button", name="Members & settings")).to_be_focused()
