"""Issue 6 in the browser, end to end: a home worker (internet side), an office worker (LGWAN
side) and their supervisor chat in real time and see read counts move; the home worker sends a
macro-enabled workbook, the office worker sees it sanitised with the report, asks for the
original, the supervisor approves it in the inbox (承認待ち) and the office worker saves the
original byte for byte; a field worker's phone posts a field report (a photo and the shared
location) that the others see as coordinates.  No page talks to any host but the server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from chat import accounts, audit, licenses
from chat.settings import Settings
from tests.browser.conftest import ContextFactory, screenshot, sign_in
from tests.harness import Server, World
from tests.sanitizer import sancorpus

pytestmark = pytest.mark.browser

LGWAN, INTERNET = "lgwan", "internet"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)
# Sanitisation runs in a sandboxed child, one job at a time: generous on a loaded machine.
SCAN_MS = 60_000
# What arrives by the server's push (events, notices).
PUSH_MS = 15_000
ROOM = "介護の在宅作業"
SITE = {"latitude": 35.6812, "longitude": 139.7671, "accuracy": 8}


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    settings.sanitizer_workers = 1
    yield settings


@pytest.fixture
async def world(server: Server) -> AsyncIterator[World]:
    """福祉部 (its supervisor) ⊃ 介護保険課 (an office worker on the LGWAN side, a home worker
    on the internet side, a field worker with a phone)."""
    assert server.services is not None
    async with server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "架け橋村")
        for side in (LGWAN, INTERNET):
            await licenses.set_pool(uow, audit.SYSTEM, org.id, side, 100)
        welfare = await accounts.create_department(uow, org.id, "福祉部")
        care = await accounts.create_department(uow, org.id, "介護保険課", parent_id=welfare.id)
    w = World(server, org.id)
    await w.add_person("admin", "管理者", role="admin", side=LGWAN)
    await w.add_person(
        "kacho", "福祉 課長", role="supervisor", side=LGWAN, department_id=welfare.id
    )
    await w.add_person("office", "介護 太郎", side=LGWAN, sides=(LGWAN,), department_id=care.id)
    await w.add_person("home", "在宅 次郎", side=INTERNET, sides=(INTERNET,), department_id=care.id)
    await w.add_person(
        "genba", "現場 三郎", side=INTERNET, sides=(INTERNET,), department_id=care.id
    )
    yield w
    await w.close()


def message(page: Page, text: str):  # type: ignore[no-untyped-def]
    return page.locator("article.msg").filter(has=page.locator(".msg-body").filter(has_text=text))


def attachment(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".attachment").filter(has=page.locator(".attachment-name", has_text=name))


async def send(page: Page, text: str) -> None:
    box = page.get_by_role("combobox", name="メッセージ")
    await box.fill(text)
    await box.press("Enter")


async def open_room(page: Page) -> None:
    await page.get_by_role("link", name=re.compile(ROOM)).first.click()
    await expect(page.get_by_role("heading", name=ROOM)).to_be_visible()
    await expect(page.locator(".shell")).to_have_attribute("data-conn", "online", timeout=PUSH_MS)


def photo(path: Path) -> Path:
    image = Image.new("RGB", (640, 480), (90, 140, 60))
    for x in range(200, 440):
        for y in range(180, 300):
            image.putpixel((x, y), (200, 60, 40))
    image.save(path, "JPEG", quality=85)
    return path


async def test_home_office_supervisor_and_phone_share_files_and_a_field_report(
    world: World, side_context: ContextFactory, tmp_path: Path
) -> None:
    r = await world["admin"].api.put("/api/admin/policy", json={"mobile_encrypted_storage": False})
    assert r.status_code == 200, r.text
    members = [world[n].id for n in ("home", "kacho", "genba")]
    r = await world["office"].api.post("/api/rooms", json={"name": ROOM, "member_ids": members})
    assert r.status_code == 201, r.text

    home = await sign_in(await side_context(INTERNET), "home")
    office = await sign_in(await side_context(LGWAN), "office")
    kacho = await sign_in(await side_context(LGWAN), "kacho")
    await expect(office.locator("#top-side")).to_contain_text("LGWAN接続系")
    await expect(home.locator("#top-side")).to_contain_text("インターネット接続系")
    for page in (home, office, kacho):
        await open_room(page)

    # They chat in real time; the home worker's message is read by both.
    await send(home, "集計表を作りました。確認をお願いします。")
    mine = message(home, "集計表を作りました")
    await expect(mine).to_have_attribute("data-state", "sent")
    await expect(message(office, "集計表を作りました")).to_be_visible(timeout=PUSH_MS)
    await expect(mine.locator(".read-label")).to_have_text("既読 2", timeout=PUSH_MS)
    await send(office, "ありがとうございます。")
    await expect(message(home, "ありがとうございます。")).to_be_visible(timeout=PUSH_MS)

    # The home worker attaches a macro-enabled workbook with the 📎 button and sends it.
    workbook = sancorpus.xlsm_active()
    book = tmp_path / "集計表.xlsm"
    book.write_bytes(workbook)
    async with home.expect_file_chooser() as chooser:
        await home.get_by_role("button", name="ファイルを添付").click()
    await (await chooser.value).set_files(book)
    upload = home.locator(".composer-files .upload")
    await expect(upload).to_contain_text("集計表.xlsm")
    await expect(upload).to_have_attribute("data-state", "done", timeout=PUSH_MS)
    await expect(home.get_by_role("button", name="送信", exact=True)).to_be_enabled()
    await send(home, "マクロ付きの集計表です")
    sent = message(home, "マクロ付きの集計表です")
    await expect(sent).to_have_attribute("data-state", "sent")
    await expect(home.locator(".composer-files")).to_be_hidden()
    await screenshot(home, "attachment-sent-home")

    # The office worker sees it arrive and turn 無害化済み, with the report in plain words.
    card = attachment(office, "集計表.xlsm")
    await expect(card).to_be_visible(timeout=PUSH_MS)
    await expect(card).to_have_attribute("data-state", "ready", timeout=SCAN_MS)
    await expect(card.locator(".file-state")).to_have_text("無害化済み")
    await expect(card).to_contain_text("インターネット接続系から")
    await card.get_by_text("無害化レポート").click()
    report = card.locator(".report")
    await expect(report).to_contain_text("次のものを削除しました")
    await expect(report).to_contain_text("マクロ")
    await expect(report).to_contain_text("マクロを削除したため")
    await expect(report).to_contain_text("集計表.xlsx")
    await card.scroll_into_view_if_needed()
    await screenshot(office, "attachment-report-office")
    await expect(attachment(home, "集計表.xlsm")).to_have_attribute("data-state", "ready")

    # The sanitised workbook can be saved as it is; the original must be asked for.
    async with office.expect_download() as got:
        await card.get_by_role("button", name="集計表.xlsx を無害化済みで保存").click()
    assert (await got.value).suggested_filename == "集計表.xlsx"
    await expect(card.get_by_role("button", name="原本を保存")).to_have_count(0)
    await card.get_by_role("button", name="原本を申請").click()
    dialog = office.get_by_role("dialog", name="原本の受け取りを申請")
    await dialog.get_by_label("申請の理由").fill("マクロで月次集計を続けるため原本が必要です")
    await dialog.get_by_role("button", name="申請する").click()
    await expect(card.locator(".release-state")).to_have_text("原本: 申請中(承認待ち)")

    # The supervisor's inbox badge counts it at once; the inbox lists it with the reason.
    inbox_link = kacho.locator("#inbox-link")
    await expect(inbox_link.locator(".inbox-badge")).to_have_text("1", timeout=PUSH_MS)
    await inbox_link.click()
    await expect(kacho.get_by_role("heading", name="承認待ち", exact=True)).to_be_visible()
    item = kacho.locator(".pending-approvals .approval").filter(has_text="集計表.xlsm")
    await expect(item).to_contain_text("原本の受け取り")
    await expect(item).to_contain_text("介護 太郎")
    await expect(item).to_contain_text("マクロで月次集計を続けるため原本が必要です")
    await screenshot(kacho, "inbox-supervisor")
    await item.get_by_label("コメント(任意)").fill("今回に限り許可します")
    await item.get_by_role("button", name="承認").click()
    await expect(kacho.locator(".decided-approvals .approval")).to_contain_text(
        "今回に限り許可します"
    )
    await expect(inbox_link.locator(".inbox-badge")).to_be_hidden()

    # The office worker is told, and saves the original: the very bytes the home worker sent.
    await expect(card.locator(".release-state")).to_have_text("原本: 承認済み", timeout=PUSH_MS)
    async with office.expect_download() as got:
        await card.get_by_role("button", name="集計表.xlsm の原本を保存").click()
    download = await got.value
    assert download.suggested_filename == "集計表.xlsm"
    saved = await download.path()
    assert saved is not None and Path(saved).read_bytes() == workbook
    await screenshot(office, "attachment-original-released")

    # A field worker on a phone (view only under the policy) reports from the site.
    phone_ctx = await side_context(
        INTERNET,
        viewport={"width": 360, "height": 740},
        user_agent=IPHONE_UA,
        is_mobile=True,
        has_touch=True,
        geolocation=SITE,
        permissions=["geolocation"],
    )
    phone = await sign_in(phone_ctx, "genba")
    await expect(phone.get_by_role("note", name="この端末への制限")).to_contain_text(
        "この端末では保存できません"
    )
    await open_room(phone)
    on_phone = attachment(phone, "集計表.xlsm")
    await expect(on_phone).to_have_attribute("data-state", "ready")
    await expect(on_phone).to_contain_text("PCで開いてください")
    await expect(on_phone.get_by_role("button", name=re.compile("保存"))).to_have_count(0)

    await phone.get_by_role("button", name="現場報告").click()
    report_dialog = phone.get_by_role("dialog", name="現場報告")
    await expect(report_dialog.locator(".geo-status")).to_contain_text(
        "北緯 35.681200°", timeout=PUSH_MS
    )
    await expect(report_dialog.locator(".geo-status")).to_contain_text("精度 約8m")
    await report_dialog.get_by_label("写真を撮る・選ぶ").set_input_files(
        photo(tmp_path / "現場写真.jpg")
    )
    await expect(report_dialog.locator(".field-photo")).to_contain_text("現場写真.jpg")
    await report_dialog.get_by_label("ひとこと(任意)").fill("〇〇橋の欄干が破損しています")
    await screenshot(phone, "field-report-dialog")
    await report_dialog.get_by_role("button", name="送信").click()
    await expect(report_dialog).to_be_hidden(timeout=PUSH_MS)
    reported = message(phone, "欄干が破損しています")
    await expect(reported).to_have_attribute("data-state", "sent", timeout=PUSH_MS)
    await expect(reported.locator(".msg-location")).to_contain_text("北緯 35.681200°")

    # The others see the location as coordinates (no map, nothing fetched elsewhere).
    for page in (office, home):
        seen = message(page, "欄干が破損しています")
        location = seen.locator(".msg-location")
        await expect(location).to_contain_text("北緯 35.681200°、東経 139.767100°", timeout=PUSH_MS)
        await expect(location).to_contain_text("精度 約8m")
        await expect(location).to_contain_text("取得")
        await expect(location.locator("a")).to_have_count(0)
        pic = attachment(page, "現場写真.jpg")
        await expect(pic).to_have_attribute("data-state", "ready", timeout=SCAN_MS)
        await expect(pic.locator("img.thumb")).to_be_visible()
    await message(office, "欄干が破損しています").scroll_into_view_if_needed()
    await screenshot(office, "field-report-office")

    # On the phone its own photo opens as the marked preview, never as a download.
    mine_pic = attachment(phone, "現場写真.jpg")
    await expect(mine_pic).to_have_attribute("data-state", "ready", timeout=SCAN_MS)
    await mine_pic.get_by_role("button", name="表示").click()
    preview = phone.get_by_role("dialog", name="現場写真.jpg")
    await expect(preview.locator("img.preview-image")).to_be_visible(timeout=PUSH_MS)
    await screenshot(phone, "field-report-phone-preview")
    await preview.get_by_role("button", name="閉じる").click()
    await screenshot(phone, "field-report-phone")


DROP_FILE_JS = """([name, type, bytes, size]) => {
    const dt = new DataTransfer();
    const body = bytes === null ? new Uint8Array(size) : new Uint8Array(bytes);
    dt.items.add(new File([body], name, { type }));
    return dt;
}"""


async def drop_file(
    page: Page, name: str, type_: str, data: bytes | None = None, size: int = 0
) -> None:
    """Drop one file on the open room, as a person dragging it from their desktop would."""
    content = None if data is None else list(data)
    transfer = await page.evaluate_handle(DROP_FILE_JS, [name, type_, content, size])
    room = page.locator("section.room")
    await room.dispatch_event("dragover", {"dataTransfer": transfer})
    await room.dispatch_event("drop", {"dataTransfer": transfer})


async def test_dropped_files_too_large_blocked_and_a_pdf_paged_on_a_phone(
    world: World, side_context: ContextFactory
) -> None:
    r = await world["admin"].api.put("/api/admin/policy", json={"mobile_encrypted_storage": False})
    assert r.status_code == 200, r.text
    members = [world[n].id for n in ("office", "genba")]
    r = await world["home"].api.post("/api/rooms", json={"name": ROOM, "member_ids": members})
    assert r.status_code == 201, r.text
    home_ctx = await side_context(INTERNET)
    home = await sign_in(home_ctx, "home")
    office = await sign_in(await side_context(LGWAN), "office")
    for page in (home, office):
        await open_room(page)

    # 20 MiB + 1 byte: refused before sending, in words, and nothing is uploaded.
    await drop_file(home, "大きな資料.pdf", "application/pdf", size=20 * 1024 * 1024 + 1)
    status = home.locator(".composer-file-status")
    await expect(status).to_contain_text(
        "「大きな資料.pdf」(20.0 MB)は20MBを超えているため送れません"
    )
    await expect(home.locator(".composer-files .upload")).to_have_count(0)
    assert not [
        u for u in home_ctx.recorder.requests if re.search(r"/api/rooms/\d+/attachments", u)
    ]

    # A test virus and a two-page PDF, dropped together with a message.
    await drop_file(home, "テスト.txt", "text/plain", sancorpus.EICAR)
    await drop_file(home, "手順書.pdf", "application/pdf", b"")
    await expect(status).to_contain_text("「手順書.pdf」は空のファイルのため送れません")
    await drop_file(home, "手順書.pdf", "application/pdf", sancorpus.pdf_benign(pages=2))
    uploads = home.locator(".composer-files .upload")
    await expect(uploads).to_have_count(2)
    await expect(uploads.nth(0)).to_have_attribute("data-state", "done", timeout=PUSH_MS)
    await expect(uploads.nth(1)).to_have_attribute("data-state", "done", timeout=PUSH_MS)
    await send(home, "手順書とテストファイルです")
    await expect(message(home, "手順書とテストファイルです")).to_have_attribute(
        "data-state", "sent"
    )

    blocked = attachment(office, "テスト.txt")
    await expect(blocked).to_have_attribute("data-state", "blocked", timeout=SCAN_MS)
    await expect(blocked.locator(".file-state")).to_have_text("ブロック")
    await expect(blocked.locator(".report")).to_contain_text(
        "ウイルス検査用のテストファイル(EICAR)"
    )
    await expect(blocked.get_by_role("button")).to_have_count(0)
    manual = attachment(office, "手順書.pdf")
    await expect(manual).to_have_attribute("data-state", "ready", timeout=SCAN_MS)
    await blocked.scroll_into_view_if_needed()
    await screenshot(office, "attachment-blocked-office")

    # A phone that may not save: the PDF is shown page by page as the marked preview.
    phone = await sign_in(
        await side_context(INTERNET, viewport={"width": 360, "height": 740}, user_agent=IPHONE_UA),
        "genba",
    )
    await open_room(phone)
    on_phone = attachment(phone, "手順書.pdf")
    await expect(on_phone).to_have_attribute("data-state", "ready")
    await on_phone.get_by_role("button", name="表示").click()
    preview = phone.get_by_role("dialog", name="手順書.pdf")
    await expect(preview.locator(".preview-status")).to_have_text("1 / 2 ページ", timeout=PUSH_MS)
    await preview.get_by_role("button", name="次のページ").click()
    await expect(preview.locator(".preview-status")).to_have_text("2 / 2 ページ", timeout=PUSH_MS)
    await expect(preview.get_by_role("button", name="次のページ")).to_be_disabled()
    await screenshot(phone, "attachment-preview-pdf-phone")
    await preview.get_by_role("button", name="閉じる").click()
