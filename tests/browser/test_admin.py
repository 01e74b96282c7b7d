"""Administration in the browser: the users list, adding a user, CSV import that shows every
bad row (and imports nothing), deactivating a user."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.harness import World

pytestmark = pytest.mark.browser

BAD_CSV = (
    "ログインID,氏名,所属,メールアドレス\n"
    "tanaka,田中 一郎,総務課,tanaka@example.jp\n"
    "alice,重複 太郎,,\n"
    "bad id!,名前,,\n"
    "suzuki,鈴木 花子,存在しない課,not-an-email\n"
)
GOOD_CSV = "ログインID,氏名,所属,メールアドレス\ntanaka,田中 一郎,総務課,tanaka@example.jp\n"


async def test_admin_imports_csv_showing_bad_rows_then_adds_and_deactivates(
    world: World, browser_context: ContextFactory
) -> None:
    r = await world["admin"].api.post("/api/admin/departments", json={"name": "総務課"})
    assert r.status_code == 201, r.text
    c = await browser_context()
    page = await sign_in(c, "admin")
    await page.get_by_role("link", name="管理").click()
    users = page.get_by_role("table").first
    await expect(users.locator("tr[data-login='carol'] td.state")).to_have_text("有効")

    # A file with bad rows: every bad row is listed in Japanese, nothing is imported.
    # Excel's CSV: Shift_JIS.
    await page.get_by_label("CSVファイル").set_input_files(
        files=[{"name": "職員.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode("cp932")}]
    )
    await page.get_by_role("button", name="読み込んで登録").click()
    errors = page.locator(".errors-table")
    await expect(page.locator(".import-errors")).to_contain_text("1件も登録していません")
    await expect(errors.locator("tbody tr")).to_have_count(4)
    row3 = errors.locator("tr[data-line='3']")
    await expect(row3).to_contain_text("3行目")
    await expect(row3).to_contain_text("ログインID")
    await expect(row3).to_contain_text("は既に使われています")
    row4 = errors.locator("tr[data-line='4']")
    await expect(row4).to_contain_text("半角英数字と . _ @ - の1〜64文字")
    await expect(errors.locator("tr[data-line='5']").first).to_be_visible()
    await expect(errors).to_contain_text("部署「存在しない課」が見つかりません")
    await expect(errors).to_contain_text("メールアドレスの形式が正しくありません")
    await errors.scroll_into_view_if_needed()
    await screenshot(page, "admin-csv-errors")
    r = await world["admin"].api.get("/api/admin/users?include_inactive=true")
    assert "tanaka" not in {u["login_id"] for u in r.json()["users"]}

    # The corrected file imports, with the one-time initial password shown.
    await page.get_by_label("CSVファイル").set_input_files(
        files=[
            {
                "name": "職員.csv",
                "mimeType": "text/csv",
                "buffer": b"\xef\xbb\xbf" + GOOD_CSV.encode(),
            }
        ]
    )
    await page.get_by_role("button", name="読み込んで登録").click()
    await expect(page.locator(".import-ok")).to_contain_text("1人を登録しました")
    await expect(page.locator(".import-ok")).to_contain_text("初期パスワード")
    await expect(users.locator("tr[data-login='tanaka']")).to_contain_text("総務課")

    # Add one user by the form.
    await page.get_by_label("ログインID").fill("yamada")
    await page.get_by_label("氏名").fill("山田 次郎")
    await page.get_by_label("権限").select_option("supervisor")
    await page.get_by_label("パスワード", exact=True).fill("Yamada-Kakehashi-2026")
    await page.get_by_role("button", name="追加する").click()
    await expect(page.get_by_role("status").filter(has_text="山田 次郎")).to_contain_text(
        "追加しました"
    )
    await expect(users.locator("tr[data-login='yamada']")).to_contain_text("所属長")

    # Deactivate Carol (after a confirmation).
    await page.get_by_role("button", name="佐藤 キャロル さんを無効にする").click()
    dialog = page.get_by_role("dialog", name="ユーザーを無効にする")
    await dialog.get_by_role("button", name="無効にする").click()
    await expect(users.locator("tr[data-login='carol'] td.state")).to_have_text("無効")
    await expect(page.locator(".toast")).to_contain_text("佐藤 キャロル さんを無効にしました")
    r = await world["admin"].api.get("/api/admin/users?include_inactive=true")
    carol = next(u for u in r.json()["users"] if u["login_id"] == "carol")
    assert carol["is_active"] is False
    await page.get_by_role("heading", name="管理").scroll_into_view_if_needed()
    await screenshot(page, "admin")


async def test_members_do_not_get_the_admin_screen(
    world: World, browser_context: ContextFactory
) -> None:
    c = await browser_context()
    page = await sign_in(c, "alice")
    await expect(page.get_by_role("link", name="管理")).to_have_count(0)
    await page.goto("/#/admin")
    await expect(page.get_by_text("ルームを選んでください")).to_be_visible()
