"""Sides, licenses, devices, policy, the audit log and presence in the browser: the admin tabs
(licenses with the pool count, the roster CSV with its bad rows, device codes, the policy,
the audit log with its export), the sign-in screen's refusals and device registration, and
庁内 / 在宅 next to people."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.harness import PASSWORD, World, Ws

pytestmark = pytest.mark.browser

# What arrives by the server's push or a poll (a websocket close, presence) gets more time on
# a loaded machine than expect()'s default 5 s.
PUSH_MS = 15_000
CODE_RE = re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$")


async def open_tab(page: Page, name: str) -> None:
    await page.get_by_role("link", name="管理", exact=True).click()
    await page.get_by_role("navigation", name="管理メニュー").get_by_role("link", name=name).click()
    await expect(page.locator(".tabs [aria-current='page']")).to_have_text(name)


async def presence_settled(world: World, want: dict[int, list[str]]) -> None:
    """Wait (up to 10 s) until the server reports these people on these sides."""
    ids = ",".join(str(uid) for uid in want)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        r = await world["admin"].api.get(f"/api/presence?user_ids={ids}")
        seen = {int(k): sorted(v) for k, v in r.json()["presence"].items()}
        if all(seen.get(uid) == sorted(sides) for uid, sides in want.items()):
            return
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.1)


async def online(page: Page) -> None:
    """The page's websocket is connected and synced (so a 4003 close reaches it)."""
    await expect(page.locator(".shell")).to_have_attribute("data-conn", "online")


async def test_admin_assigns_a_license_imports_a_roster_and_revokes_a_live_session(
    world: World, browser_context: ContextFactory
) -> None:
    dan = await world.add_person("dan", "田中 ダン", sides=("internet",), sign_in=False)
    pools = (await world["admin"].api.get("/api/admin/licenses/pools")).json()["pools"]
    lgwan_before = next(p["assigned"] for p in pools if p["side"] == "lgwan")

    # Bob works from home in another browser.
    b = await browser_context()
    bob_page = await sign_in(b, "bob")
    await expect(bob_page.locator("#top-side")).to_contain_text("インターネット接続系")
    await online(bob_page)

    c = await browser_context()
    page = await sign_in(c, "admin")
    await open_tab(page, "ライセンス")
    lgwan = page.locator(".pool[data-side='lgwan']")
    await expect(lgwan.locator(".pool-assigned")).to_have_text(str(lgwan_before))

    # Assign Dan an LGWAN license with the toggle: the pool count moves at once.
    toggle = page.get_by_role("checkbox", name="田中 ダン さんのLGWAN接続系ライセンス")
    await expect(toggle).not_to_be_checked()
    await toggle.check()
    await expect(lgwan.locator(".pool-assigned")).to_have_text(str(lgwan_before + 1))
    await expect(page.locator(".toast")).to_contain_text("田中 ダン さんにLGWAN接続系ライセンスを")
    held = (await world["admin"].api.get("/api/admin/licenses")).json()["users"]
    assert set(next(u for u in held if u["user_id"] == dan.id)["licenses"]) == {"lgwan", "internet"}
    await expect(page.locator(".usage-table tbody tr").first).to_be_visible()
    await expect(page.locator("#usage-csv")).to_have_attribute(
        "href", "/api/admin/licenses/usage?format=csv"
    )
    await screenshot(page, "admin-licenses")

    # A roster with bad rows: each shown by line and column, nothing applied.
    roster = "ログインID,LGWAN接続系,インターネット接続系\ncarol,○,○\nnobody,1,0\nbob,たぶん,\n"
    await page.get_by_label("名簿CSVファイル").set_input_files(
        files=[{"name": "名簿.csv", "mimeType": "text/csv", "buffer": roster.encode("cp932")}]
    )
    await page.get_by_role("button", name="読み込んで反映").click()
    errors = page.locator(".errors-table")
    await expect(errors.locator("tbody tr")).to_have_count(2)
    await expect(errors.locator("tr[data-line='3']")).to_contain_text("3行目")
    await expect(errors.locator("tr[data-line='3']")).to_contain_text("ログインID")
    await expect(errors.locator("tr[data-line='3']")).to_contain_text("nobody")
    await expect(errors.locator("tr[data-line='4']")).to_contain_text("LGWAN接続系")
    await errors.scroll_into_view_if_needed()
    await screenshot(page, "admin-licenses-roster-errors")
    await expect(lgwan.locator(".pool-assigned")).to_have_text(str(lgwan_before + 1))

    # Taking Bob's internet license away ends his session there, with the reason.
    await page.get_by_role(
        "checkbox", name="馬場 ボブ さんのインターネット接続系ライセンス"
    ).uncheck()
    dialog = page.get_by_role("dialog", name="ライセンスの解除")
    await expect(dialog).to_contain_text("すぐに切断されます")
    await dialog.get_by_role("button", name="解除する").click()
    await expect(page.locator(".toast").last).to_contain_text("解除しました")
    await expect(bob_page.locator(".login-notice")).to_contain_text(
        "インターネット接続系のライセンスが解除されたため", timeout=PUSH_MS
    )
    await expect(bob_page.get_by_role("button", name="ログイン")).to_be_visible()


async def test_supervisor_sees_only_their_departments_licenses(
    world: World, browser_context: ContextFactory
) -> None:
    admin = world["admin"].api
    dept = (await admin.post("/api/admin/departments", json={"name": "福祉課"})).json()
    await world.add_person(
        "kacho", "福田 課長", role="supervisor", department_id=dept["id"], sign_in=False
    )
    await world.add_person("fukushi", "福井 職員", department_id=dept["id"], sign_in=False)
    c = await browser_context(viewport={"width": 360, "height": 740})
    page = await sign_in(c, "kacho")
    await page.get_by_role("link", name="管理", exact=True).click()
    tabs = page.get_by_role("navigation", name="管理メニュー").get_by_role("link")
    await expect(tabs).to_have_text(["ライセンス"])
    rows = page.locator(".holders-table tbody tr")
    await expect(rows.filter(has_text="福井 職員")).to_have_count(1)
    await expect(rows.filter(has_text="馬場 ボブ")).to_have_count(0)
    await expect(page.locator(".holders-table input[type='checkbox']")).to_have_count(0)
    await expect(page.locator(".usage-table")).to_contain_text("福祉課")
    await expect(page.get_by_role("link", name="CSVでダウンロード")).to_be_visible()
    await page.get_by_role("heading", name="管理").scroll_into_view_if_needed()
    await screenshot(page, "phone-admin-licenses-supervisor")


async def test_device_code_is_shown_once_registers_this_browser_and_revoking_signs_it_out(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context()
    page = await sign_in(c, "admin")
    await open_tab(page, "端末")
    await page.get_by_label("用途・メモ").fill("ボブの自宅PC")
    await page.get_by_label("使う人").select_option(str(world["bob"].id))
    await page.get_by_role("button", name="コードを発行").click()
    value = page.locator("#issued-code-value")
    await expect(value).to_have_text(CODE_RE)
    await expect(page.locator(".code-box")).to_contain_text("有効期限")
    await expect(page.locator(".code-box")).to_contain_text("この画面でしか表示されません")
    await expect(page.locator(".codes-table")).to_contain_text("ボブの自宅PC")
    code = await value.inner_text()
    await screenshot(page, "admin-devices")

    # Bob registers his browser with the code, then signs in as a registered device.
    b = await browser_context()
    bob = b.page
    await bob.goto("/")
    await bob.get_by_role("button", name="この端末を登録").click()
    await bob.get_by_label("端末認証コード").fill(code.lower())
    await bob.get_by_label("端末名").fill("自宅のノートPC")
    await expect(bob.get_by_label("端末の種類")).to_have_value("browser")
    await bob.get_by_role("button", name="登録する").click()
    await expect(bob.locator("#device-status")).to_contain_text("自宅のノートPC")
    await screenshot(bob, "sign-in-device-registered")
    await bob.get_by_label("ログインID").fill("bob")
    await bob.get_by_label("パスワード").fill(PASSWORD)
    await bob.get_by_role("button", name="ログイン").click()
    await bob.get_by_role("link", name="+ 新しいチャット").wait_for()
    await online(bob)
    devices = (await world["admin"].api.get("/api/admin/devices")).json()["devices"]
    assert [(d["name"], d["platform"], d["capabilities"]) for d in devices] == [
        ("自宅のノートPC", "browser", [])
    ]

    # A second code is withdrawn unused; the device gets a clearer name.
    await page.reload()
    await page.get_by_label("用途・メモ").fill("予備")
    await page.get_by_role("button", name="コードを発行").click()
    await expect(page.locator(".codes-table")).to_contain_text("予備")
    await page.get_by_role("button", name="コード「予備」を取り消す").click()
    await expect(page.locator(".codes-table")).not_to_contain_text("予備")
    devices_table = page.locator(".devices-table")
    await devices_table.get_by_role("button", name="端末「自宅のノートPC」の名前を変更").click()
    rename = page.get_by_role("dialog", name="端末名の変更")
    await rename.get_by_label("端末名").fill("ボブの自宅ノートPC")
    await rename.get_by_role("button", name="保存").click()
    await expect(devices_table).to_contain_text("ボブの自宅ノートPC")

    # The administrator revokes it: Bob's page goes back to sign-in and says why.
    storage_key = f"kakehashi.device@{world.server.url}"
    stored_device = await bob.evaluate("(k) => localStorage.getItem(k)", storage_key)
    assert stored_device
    row = page.locator(".devices-table tbody tr", has_text="ボブの自宅ノートPC")
    await row.get_by_role("button", name="端末「ボブの自宅ノートPC」の登録を取り消す").click()
    await page.get_by_role("dialog").get_by_role("button", name="登録を取り消す").click()
    await expect(row).to_contain_text("取り消し済み")
    await expect(bob.locator(".login-notice")).to_contain_text(
        "この端末の登録が取り消された", timeout=PUSH_MS
    )
    await expect(bob.locator("#device-status")).to_be_hidden()

    # A browser that still holds the revoked device is refused once, told so, and forgets it.
    await bob.evaluate("([k, v]) => localStorage.setItem(k, v)", [storage_key, stored_device])
    await bob.reload()
    await expect(bob.locator("#device-status")).to_contain_text("自宅のノートPC")
    await bob.get_by_label("ログインID").fill("bob")
    await bob.get_by_label("パスワード").fill(PASSWORD)
    await bob.get_by_role("button", name="ログイン").click()
    alert = bob.get_by_role("alert")
    await expect(alert).to_have_attribute("data-code", "device_invalid")
    await expect(alert).to_contain_text("登録情報は削除しました")
    await expect(bob.locator("#device-status")).to_be_hidden()
    assert await bob.evaluate("(k) => localStorage.getItem(k)", storage_key) is None


async def test_policy_is_saved_after_a_confirmation(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context()
    page = await sign_in(c, "admin")
    await open_tab(page, "ポリシー")
    allow_save = page.get_by_label("スマートフォンでのファイル保存を許可")
    await expect(allow_save).to_be_enabled()
    await expect(allow_save).not_to_be_checked()
    await screenshot(page, "admin-policy")
    await allow_save.check()
    await page.get_by_role("button", name="保存", exact=True).click()
    dialog = page.get_by_role("dialog", name="ポリシーの変更")
    await expect(dialog).to_contain_text("ログイン中のセッションはすぐに終了します")
    await dialog.get_by_role("button", name="保存", exact=True).click()
    await expect(page.locator(".policy-form .ok")).to_have_text("ポリシーを保存しました。")
    policy = (await world["admin"].api.get("/api/admin/policy")).json()
    assert policy["mobile_save_allowed"] is True


async def test_audit_log_lists_the_sign_in_and_license_change_and_offers_exports(
    world: World, browser_context: ContextFactory
) -> None:
    # Enough license changes (one entry per person) for more than one page (50) of the log.
    people = [world[login].id for login in ("alice", "bob", "carol")]
    for action in ("revoke", "assign") * 6 + ("revoke",):
        r = await world["admin"].api.post(
            f"/api/admin/licenses/{action}", json={"side": "lgwan", "user_ids": people}
        )
        assert r.status_code == 200, r.text
    c = await browser_context()
    page = await sign_in(c, "admin")
    await open_tab(page, "監査ログ")
    table = page.locator(".audit-table")
    sign_ins = table.locator("tr[data-action='auth.sign_in']")
    await expect(sign_ins.first).to_contain_text("ログイン")
    await expect(sign_ins.first).to_contain_text("admin")
    await expect(table.locator("tr[data-action='license.revoke']").first).to_contain_text(
        "ライセンスの解除"
    )
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(50)
    await page.get_by_role("button", name="さらに表示").click()
    await expect(page.get_by_role("button", name="さらに表示")).to_be_hidden()
    count = await rows.count()
    assert count > 50
    seqs = [int(s) for s in await rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == count
    csv_href = await page.locator("#audit-csv").get_attribute("href")
    assert csv_href is not None and "format=csv" in csv_href
    await expect(page.locator("#audit-jsonl")).to_have_attribute("href", re.compile("jsonl"))

    # Filter: license changes only; a date range changes the export links.
    await page.get_by_label("操作").select_option("license.")
    await page.get_by_role("button", name="この条件で検索").click()
    await expect(table.locator("tbody tr[data-action='auth.sign_in']")).to_have_count(0)
    await expect(table.locator("tbody tr[data-action='license.revoke']").first).to_be_visible()
    await page.get_by_label("開始日").fill("2020-01-01")
    await expect(page.locator("#audit-csv")).to_have_attribute(
        "href", re.compile("since=2020-01-01")
    )

    await page.get_by_role("heading", name="監査ログ").scroll_into_view_if_needed()
    await screenshot(page, "admin-audit")
    await page.get_by_role("button", name="改ざんがないか検証").click()
    await expect(page.locator(".verify-ok")).to_contain_text("改ざんは見つかりませんでした")
    await screenshot(page, "admin-audit-verified")

    # The CSV link gives what Excel opens: UTF-8 with BOM, Japanese headers.
    href = await page.locator("#audit-csv").get_attribute("href")
    assert href
    response = await page.request.get(href)
    assert response.status == 200
    body = await response.body()
    assert body.startswith(b"\xef\xbb\xbf")
    assert "連番" in body.decode("utf-8-sig").splitlines()[0]
    assert "license.revoke" in body.decode("utf-8-sig")


async def test_internet_only_user_on_the_lgwan_port_sees_the_license_sentence(
    world: World, side_context: ContextFactory
) -> None:
    await world.add_person("home", "在宅 花子", sides=("internet",), sign_in=False)
    c = await side_context("lgwan")
    page = c.page
    await page.goto("/")
    await expect(page.locator("#login-side")).to_have_text("LGWAN接続系から接続しています")
    await page.get_by_label("ログインID").fill("home")
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("LGWAN接続系のライセンスが割り当てられていないため")
    await expect(alert).to_have_attribute("data-code", "license_required")
    await screenshot(page, "sign-in-license-required")


async def test_presence_shows_office_and_home_next_to_people(
    world: World, browser_context: ContextFactory, side_context: ContextFactory
) -> None:
    office = await world.add_person("office", "庁舎 一郎", side="lgwan")
    home = await world.add_person("home", "自宅 二郎", side="internet")
    ws_office = await Ws.connect(world.server, office.token, side="lgwan")
    ws_home = await Ws.connect(world.server, home.token, side="internet")
    try:
        c = await side_context("lgwan")
        page = await sign_in(c, "alice")
        await expect(page.locator("#top-side")).to_contain_text("LGWAN接続系")
        await online(page)
        # With Redis, presence may be about a second behind the connections.
        await presence_settled(
            world, {office.id: ["lgwan"], home.id: ["internet"], world["alice"].id: ["lgwan"]}
        )
        await page.get_by_role("link", name="+ 新しいチャット").click()
        tree = page.locator(".directory-tree")
        office_row = tree.locator(".person", has_text="庁舎 一郎")
        home_row = tree.locator(".person", has_text="自宅 二郎")
        await expect(office_row.locator(".presence")).to_have_text("庁内", timeout=PUSH_MS)
        await expect(home_row.locator(".presence")).to_have_text("在宅", timeout=PUSH_MS)
        await expect(
            tree.locator(".person", has_text="佐藤 キャロル").locator(".presence")
        ).to_have_text("オフライン")
        await screenshot(page, "directory-presence")

        # The 1:1 header and the member list say the same.
        await page.get_by_role("button", name="自宅 二郎 さんと1対1で話す").click()
        await expect(page.locator(".room-sub .presence")).to_have_text("在宅", timeout=PUSH_MS)
        await screenshot(page, "room-direct-presence")
        await page.get_by_role("button", name="メンバー").click()
        members = page.get_by_role("dialog")
        await expect(members.locator("li", has_text="自宅 二郎").locator(".presence")).to_have_text(
            "在宅"
        )
        await expect(
            members.locator("li", has_text="青木 アリス").locator(".presence")
        ).to_have_text("庁内")
    finally:
        await ws_office.close()
        await ws_home.close()


IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


async def test_phone_browser_is_refused_then_restricted_then_ended_by_the_policy(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context(viewport={"width": 390, "height": 844}, user_agent=IPHONE_UA)
    page = c.page
    await page.goto("/")
    # The sign-in screen guesses a phone for registration (the person may correct it).
    await page.get_by_role("button", name="この端末を登録").click()
    await expect(page.get_by_label("端末の種類")).to_have_value("mobile_browser")
    await page.get_by_role("button", name="この端末を登録").click()

    # By default phones need encrypted storage, which a browser cannot declare.
    await page.get_by_label("ログインID").fill("alice")
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_have_attribute("data-code", "encrypted_storage_required")
    await expect(alert).to_contain_text("保存領域が暗号化されていない")

    admin = world["admin"].api
    r = await admin.put("/api/admin/policy", json={"mobile_encrypted_storage": False})
    assert r.status_code == 200, r.text
    page = await sign_in(c, "alice")
    notice = page.get_by_role("note", name="この端末への制限")
    await expect(notice).to_contain_text("この端末では保存できません")
    await expect(notice).not_to_contain_text("画面撮影")
    await screenshot(page, "phone-restrictions")
    await online(page)

    # Forbidding screenshots on phones ends this session: back to sign-in, with the reason.
    r = await admin.put("/api/admin/policy", json={"mobile_screenshot_allowed": False})
    assert r.status_code == 200, r.text
    await expect(page.locator(".login-notice")).to_contain_text(
        "組織のポリシーが変更され", timeout=PUSH_MS
    )


async def test_admin_moves_a_license_and_sets_a_department_quota(
    world: World, browser_context: ContextFactory
) -> None:
    admin = world["admin"].api
    dept = (await admin.post("/api/admin/departments", json={"name": "税務課"})).json()
    other = (await admin.post("/api/admin/departments", json={"name": "会計課"})).json()
    dan = await world.add_person("dan", "田中 ダン", department_id=dept["id"], sign_in=False)
    eve = await world.add_person("eve", "江藤 イブ", sides=("internet",), sign_in=False)
    c = await browser_context()
    page = await sign_in(c, "admin")
    await open_tab(page, "ライセンス")

    # Dan's LGWAN license goes to Eve.
    await page.get_by_label("接続系", exact=True).first.select_option("lgwan")
    await page.get_by_label("移動元", exact=True).select_option(str(dan.id))
    await page.get_by_label("移動先", exact=True).select_option(str(eve.id))
    await page.get_by_role("button", name="移す", exact=True).click()
    await expect(page.locator(".toast")).to_contain_text("ライセンスを移しました")
    await expect(
        page.get_by_role("checkbox", name="江藤 イブ さんのLGWAN接続系ライセンス")
    ).to_be_checked()
    await expect(
        page.get_by_role("checkbox", name="田中 ダン さんのLGWAN接続系ライセンス")
    ).not_to_be_checked()

    # The tax department may hold at most 3 internet licenses: the usage report says so.
    quota = page.get_by_role("region", name="部署ごとの割当上限")
    await quota.get_by_label("所属").select_option(str(dept["id"]))
    await quota.get_by_label("接続系").select_option("internet")
    await quota.get_by_label("割当上限").fill("3")
    await quota.get_by_role("button", name="上限を設定").click()
    row = page.locator(f".usage-table tr[data-side='internet'][data-department='{dept['id']}']")
    await expect(row.locator("td").nth(2)).to_have_text("3")
    await expect(row.locator("td").nth(3)).to_have_text("1")

    # One of those moves to the (new) accounts department: 3 → 2.
    move = page.get_by_role("region", name="部署間で上限を移す")
    await move.get_by_label("接続系").select_option("internet")
    await move.get_by_label("移動元の部署").select_option(str(dept["id"]))
    await move.get_by_label("移動先の部署").select_option(str(other["id"]))
    await move.get_by_label("移す数").fill("1")
    await move.get_by_role("button", name="上限を移す").click()
    await expect(row.locator("td").nth(2)).to_have_text("2")
