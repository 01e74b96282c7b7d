"""Supervisors decide: the original of a file from the internet side is released to one
LGWAN-side requester; under the outbound policy a file from the LGWAN side reaches
internet-side members only after approval; phones that cannot prevent saving get marked
previews, never the bytes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from chat import accounts, audit, licenses
from chat.models import AuditEntry
from chat.settings import Settings
from tests.harness import PASSWORD, Server, World, Ws, error_of
from tests.sanitizer import sancorpus
from tests.test_attachments import XLSM_TYPE, upload, wait_state

LGWAN, INTERNET = "lgwan", "internet"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    settings.sanitizer_workers = 1
    yield settings


@pytest.fixture
async def hall(server: Server) -> AsyncIterator[World]:
    """福祉部 (its supervisor 課長) ⊃ 介護保険課 (an office worker); 建設部 with its own
    supervisor; a home worker on the internet side."""
    assert server.services is not None
    async with server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "架け橋村")
        for side in (LGWAN, INTERNET):
            await licenses.set_pool(uow, audit.SYSTEM, org.id, side, 100)
        welfare = await accounts.create_department(uow, org.id, "福祉部")
        care = await accounts.create_department(uow, org.id, "介護保険課", parent_id=welfare.id)
        building = await accounts.create_department(uow, org.id, "建設部")
    world = World(server, org.id)
    await world.add_person("admin", "管理者", role="admin", side=LGWAN)
    await world.add_person(
        "kacho", "福祉 課長", role="supervisor", side=LGWAN, department_id=welfare.id
    )
    await world.add_person(
        "other", "建設 課長", role="supervisor", side=LGWAN, department_id=building.id
    )
    await world.add_person("office", "介護 太郎", side=LGWAN, sides=(LGWAN,), department_id=care.id)
    await world.add_person(
        "office2", "介護 花子", side=LGWAN, sides=(LGWAN,), department_id=care.id
    )
    await world.add_person(
        "home", "在宅 次郎", side=INTERNET, sides=(INTERNET,), department_id=care.id
    )
    yield world
    await world.close()


async def room_of(world: World, *names: str) -> int:
    owner, *others = names
    r = await world[owner].api.post(
        "/api/rooms", json={"name": "介護の在宅作業", "member_ids": [world[n].id for n in others]}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def sent_file(world: World, who: str, room: int, data: bytes, name: str, kind: str) -> int:
    r = await upload(world[who], room, data, name, kind)
    assert r.status_code == 201, r.text
    attachment_id = int(r.json()["id"])
    await wait_state(world[who], attachment_id, "ready", "blocked")
    return attachment_id


def content(attachment_id: int, variant: str) -> str:
    return f"/api/attachments/{attachment_id}/content?variant={variant}"


async def test_a_supervisor_releases_the_original_to_the_requester_only(hall: World) -> None:
    room = await room_of(hall, "home", "office", "office2", "kacho")
    workbook = sancorpus.xlsm_active()
    aid = await sent_file(hall, "home", room, workbook, "集計.xlsm", XLSM_TYPE)
    office, office2, kacho, other = hall["office"], hall["office2"], hall["kacho"], hall["other"]
    error_of(await office.api.get(content(aid, "original")), 403, "original_not_released")
    boss_ws = await Ws.connect(hall.server, kacho.token, side=LGWAN)
    ask = f"/api/attachments/{aid}/release-requests"
    error_of(await office.api.post(ask, json={"reason": "  "}), 400, "reason_required")
    error_of(await hall["home"].api.post(ask, json={"reason": "x"}), 400, "release_not_needed")
    r = await office.api.post(ask, json={"reason": "マクロで集計するため原本が必要です"})
    assert r.status_code == 201, r.text
    approval = r.json()
    assert approval["state"] == "pending" and approval["filename"] == "集計.xlsm"
    error_of(await office.api.post(ask, json={"reason": "再申請"}), 409, "already_requested")
    notice = await boss_ws.expect("notice")
    assert notice["notice"] == "approval_requested" and notice["approval"]["id"] == approval["id"]
    inbox = (await kacho.api.get("/api/approvals")).json()
    assert [a["id"] for a in inbox["to_decide"]] == [approval["id"]]
    assert inbox["to_decide"][0]["requester_name"] == "介護 太郎"
    assert (await other.api.get("/api/approvals")).json()["to_decide"] == []
    decide = f"/api/approvals/{approval['id']}"
    error_of(await other.api.post(f"{decide}/approve", json={}), 403, "outside_department")
    error_of(await office.api.post(f"{decide}/approve", json={}), 403, "own_request")
    error_of(await office2.api.post(f"{decide}/approve", json={}), 403, "forbidden")
    error_of(await office.api.get(content(aid, "original")), 403, "original_not_released")
    office_ws = await Ws.connect(hall.server, office.token, side=LGWAN)
    r = await kacho.api.post(f"{decide}/approve", json={"note": "今回に限り許可"})
    assert r.status_code == 200 and r.json()["state"] == "approved"
    told = await office_ws.expect("notice")
    assert told["notice"] == "approval_decided" and told["approval"]["state"] == "approved"
    got = await office.api.get(content(aid, "original"))
    assert got.status_code == 200 and got.content == workbook
    # released to the requester only
    error_of(await office2.api.get(content(aid, "original")), 403, "original_not_released")
    error_of(await kacho.api.post(f"{decide}/reject", json={}), 409, "already_decided")
    mine = (await office.api.get("/api/approvals?state=all")).json()["mine"]
    assert [(a["id"], a["state"], a["note"]) for a in mine] == [
        (approval["id"], "approved", "今回に限り許可")
    ]
    await boss_ws.close()
    await office_ws.close()
    assert hall.server.services is not None
    async with hall.server.services.read() as uow:
        actions = list(
            (
                await uow.session.execute(
                    select(AuditEntry.action)
                    .where(AuditEntry.target_type == "attachment", AuditEntry.target_id == str(aid))
                    .order_by(AuditEntry.seq)
                )
            ).scalars()
        )
    assert "release.request" in actions and "release.approve" in actions
    assert actions.index("release.approve") < len(actions) - 1  # the download came after


async def test_a_rejected_request_keeps_the_original_closed(hall: World) -> None:
    room = await room_of(hall, "home", "office", "kacho")
    aid = await sent_file(hall, "home", room, sancorpus.xlsm_active(), "集計.xlsm", XLSM_TYPE)
    r = await hall["office"].api.post(
        f"/api/attachments/{aid}/release-requests", json={"reason": "念のため"}
    )
    approval = r.json()["id"]
    r = await hall["kacho"].api.post(f"/api/approvals/{approval}/reject", json={"note": "不要"})
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    error_of(await hall["office"].api.get(content(aid, "original")), 403, "original_not_released")
    # the sanitised workbook stays available
    assert (await hall["office"].api.get(content(aid, "sanitized"))).status_code == 200


async def test_outbound_files_wait_for_a_supervisor_when_the_policy_says_so(hall: World) -> None:
    r = await hall["admin"].api.put("/api/admin/policy", json={"outbound_approval": True})
    assert r.status_code == 200
    room = await room_of(hall, "office", "home", "office2", "kacho")
    data = sancorpus.xlsx_benign()
    aid = await sent_file(
        hall,
        "office",
        room,
        data,
        "依頼書.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    home = hall["home"]
    for variant in ("original", "sanitized"):
        error_of(await home.api.get(content(aid, variant)), 403, "outbound_pending")
    assert (await hall["office2"].api.get(content(aid, "original"))).status_code == 200
    inbox = (await hall["kacho"].api.get("/api/approvals")).json()["to_decide"]
    outbound = [a for a in inbox if a["kind"] == "outbound" and a["attachment_id"] == aid]
    assert len(outbound) == 1
    r = await hall["kacho"].api.post(f"/api/approvals/{outbound[0]['id']}/approve", json={})
    assert r.status_code == 200, r.text
    got = await home.api.get(content(aid, "original"))
    assert got.status_code == 200 and got.content == data


async def phone_session(hall: World, login_id: str, capabilities: list[str]) -> Any:
    admin = hall["admin"]
    code = (await admin.api.post("/api/admin/device-codes", json={"label": "スマホ"})).json()[
        "code"
    ]
    async with httpx.AsyncClient(base_url=hall.server.url_for(INTERNET)) as c:
        device = (
            await c.post(
                "/api/devices/register",
                json={
                    "code": code,
                    "name": "現場スマホ",
                    "platform": "mobile_app",
                    "capabilities": capabilities,
                },
            )
        ).json()
        r = await c.post(
            "/api/auth/login",
            headers={"User-Agent": IPHONE},
            json={
                "login_id": login_id,
                "password": PASSWORD,
                "device_id": device["device_id"],
                "device_credential": device["credential"],
            },
        )
        assert r.status_code == 200, r.text
        return r.json()


async def test_a_phone_that_cannot_prevent_saving_gets_a_marked_preview(hall: World) -> None:
    room = await room_of(hall, "office", "home")
    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 160, 200)).save(photo, "JPEG")
    pic = await sent_file(hall, "office", room, photo.getvalue(), "現場.jpg", "image/jpeg")
    doc = await sent_file(
        hall,
        "office",
        room,
        sancorpus.docx_benign(),
        "報告書.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    signed = await phone_session(hall, "home", ["encrypted_storage"])
    assert signed["restrictions"]["view_only"] is True

    async with httpx.AsyncClient(
        base_url=hall.server.url_for(INTERNET),
        headers={"Authorization": f"Bearer {signed['token']}"},
    ) as phone:
        for variant in ("original", "sanitized"):
            body = error_of(await phone.get(content(pic, variant)), 403, "view_only_device")
            assert "保存できません" in body["message"]
        r = await phone.get(f"/api/attachments/{pic}/preview")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        assert "attachment" not in r.headers.get("content-disposition", "")
        assert Image.open(io.BytesIO(r.content)).size == (640, 480)
        assert r.content != photo.getvalue()
        body = error_of(
            await phone.get(f"/api/attachments/{doc}/preview"), 403, "preview_unavailable"
        )
        assert "PCで開いてください" in body["message"]
    # a phone whose app prevents saving receives the file
    saver = await phone_session(hall, "home", ["encrypted_storage", "prevent_save"])
    async with httpx.AsyncClient(
        base_url=hall.server.url_for(INTERNET),
        headers={"Authorization": f"Bearer {saver['token']}"},
    ) as phone:
        assert (await phone.get(content(pic, "sanitized"))).status_code == 200
