"""Attachments across the sides (issue 5): upload, sanitisation in real time, downloads by side,
size limits, ranges, blocked files, and no upload lost when the server stops mid-scan.

A real server listens on both sides' ports; the sanitiser runs in the server (memory:// on
SQLite, the Redis Streams queue on PostgreSQL) with real sandboxed children."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from multiprocessing import forkserver
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openpyxl
import pytest
import redis.asyncio as aioredis
from aiobotocore.session import AioSession
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from chat import accounts, attachments, audit, licenses, sanitizing
from chat.auth import Principal
from chat.db import Database
from chat.errors import BadRequest, RangeNotSatisfiable
from chat.models import Attachment, AuditEntry, Event, Message, User
from chat.settings import Settings
from chat.unit import next_seq
from storage.uploads import MAX_ATTACHMENT_BYTES
from tests.backends import REDIS_URL
from tests.clirun import ROOT, cli_env
from tests.harness import Person, Server, World, Ws, client_id, error_of
from tests.sanitizer import sancorpus

LGWAN, INTERNET = "lgwan", "internet"
XLSM_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.12"
SCAN_TIMEOUT_S = 60.0


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    """The sanitiser in the server: one job at a time, on the Redis queue when there is Redis
    (the default when ``redis_url`` is set)."""
    assert settings.effective_sanitizer_queue_url == (settings.redis_url or "memory://")
    settings.sanitizer_workers = 1
    yield settings
    if settings.redis_url:
        client = aioredis.from_url(settings.redis_url)
        keys = [k async for k in client.scan_iter(f"{settings.redis_prefix}:sanitizer:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def make_world(server: Server) -> World:
    assert server.services is not None
    async with server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "架け橋町")
        for side in (LGWAN, INTERNET):
            await licenses.set_pool(uow, audit.SYSTEM, org.id, side, 100)
    world = World(server, org.id)
    await world.add_person("admin", "管理者", role="admin")
    await world.add_person("home", "在宅 花子", side=INTERNET, sides=(INTERNET,))
    await world.add_person("office", "庁内 太郎", side=LGWAN, sides=(LGWAN,))
    await world.add_person("outsider", "部外 次郎", side=LGWAN)
    return world


@pytest.fixture
async def town(server: Server) -> AsyncIterator[World]:
    world = await make_world(server)
    yield world
    await world.close()


async def make_room(world: World, *members: str) -> int:
    owner, *others = members
    r = await world[owner].api.post(
        "/api/rooms",
        json={"name": "在宅勤務の連絡", "member_ids": [world[m].id for m in others]},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def upload(
    person: Person,
    room_id: int,
    data: bytes,
    filename: str,
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await person.api.post(
        f"/api/rooms/{room_id}/attachments",
        content=data,
        headers={"X-Filename": quote(filename), "Content-Type": content_type},
    )


async def attachment_events(ws: Ws, attachment_id: int, until: str) -> list[dict[str, Any]]:
    """The ``attachment`` events of one attachment, up to the first in state ``until``."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = await ws.event("attachment", timeout=SCAN_TIMEOUT_S)
        data = frame["data"]["attachment"]
        if data["id"] == attachment_id:
            seen.append(data)
            if data["state"] == until:
                return seen


async def wait_state(person: Person, attachment_id: int, *states: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + SCAN_TIMEOUT_S
    while True:
        r = await person.api.get(f"/api/attachments/{attachment_id}")
        assert r.status_code == 200, r.text
        if r.json()["state"] in states:
            return dict(r.json())
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.1)


async def audit_actions(world: World, attachment_id: int) -> list[str]:
    assert world.server.services is not None
    async with world.server.services.read() as uow:
        rows = await uow.session.execute(
            select(AuditEntry.action)
            .where(
                AuditEntry.target_type == "attachment",
                AuditEntry.target_id == str(attachment_id),
            )
            .order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


def zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


async def test_internet_workbook_reaches_lgwan_sanitised_and_the_original_stays_out(
    town: World,
) -> None:
    room_id = await make_room(town, "home", "office")
    office_ws = await Ws.connect(town.server, town["office"].token, side=LGWAN)
    home_ws = await Ws.connect(town.server, town["home"].token, side=INTERNET)
    workbook = sancorpus.xlsm_active()
    assert "xl/vbaProject.bin" in zip_names(workbook)

    r = await upload(town["home"], room_id, workbook, "集計表(令和8年度).xlsm", XLSM_TYPE)
    assert r.status_code == 201, r.text
    uploaded = r.json()
    assert uploaded["state"] == "scanning"
    assert uploaded["side"] == INTERNET
    assert uploaded["filename"] == "集計表(令和8年度).xlsm"
    assert uploaded["size"] == len(workbook)
    attachment_id = uploaded["id"]

    # The LGWAN-side member sees it scanning, then ready, with the report, in real time.
    events = await attachment_events(office_ws, attachment_id, "ready")
    assert [e["state"] for e in events] == ["scanning", "ready"]
    ready = events[-1]
    report = ready["report"]
    assert report["verdict"] == "sanitized"
    removed = {item["kind"] for item in report["removed"]}
    assert {"vba_macro", "xlm_macro_sheet"} <= removed
    assert any("マクロ" in w["ja"] for w in report["warnings"])
    assert ready["sanitized_filename"] == "集計表(令和8年度).xlsx"
    assert ready["detected_type"] == "application/vnd.ms-excel.sheet.macroEnabled.12"

    # The message carries it, with its state.
    r = await town["home"].api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": client_id(), "body": "", "attachment_ids": [attachment_id]},
    )
    assert r.status_code == 201, r.text
    assert [a["id"] for a in r.json()["attachments"]] == [attachment_id]
    frame = await office_ws.event("message")
    (carried,) = frame["data"]["message"]["attachments"]
    assert carried["id"] == attachment_id and carried["state"] == "ready"
    await home_ws.event("message")
    history = (await town["office"].api.get(f"/api/rooms/{room_id}/messages")).json()
    assert history["messages"][-1]["attachments"][0]["state"] == "ready"
    # An attachment goes with one message only.
    r = await town["home"].api.post(
        f"/api/rooms/{room_id}/messages",
        json={"client_id": client_id(), "body": "再送", "attachment_ids": [attachment_id]},
    )
    error_of(r, 400, "invalid_input")

    # The office downloads a workbook without macros that still opens, under its new name.
    r = await town["office"].api.get(f"/api/attachments/{attachment_id}/content")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.endswith("filename*=UTF-8''" + quote("集計表(令和8年度).xlsx", safe=""))
    assert disposition.encode("ascii")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert r.headers["cache-control"] == "private, no-store"
    assert int(r.headers["content-length"]) == len(r.content) == ready["sanitized_size"]
    names = zip_names(r.content)
    assert not [n for n in names if "vbaProject" in n or "macrosheets" in n]
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert "集計" in book.sheetnames and "Macro1" not in book.sheetnames

    # The original stays on the internet side: the office is told whom to ask.
    r = await town["office"].api.get(
        f"/api/attachments/{attachment_id}/content", params={"variant": "original"}
    )
    error = error_of(r, 403, "original_not_released")
    assert "申請" in error["message"] and "上長" in error["message"]
    # The uploader gets the original back byte for byte.
    r = await town["home"].api.get(
        f"/api/attachments/{attachment_id}/content", params={"variant": "original"}
    )
    assert r.status_code == 200 and r.content == workbook
    assert r.headers["content-type"] == XLSM_TYPE

    assert await audit_actions(town, attachment_id) == [
        "attachment.upload",
        "attachment.download",
        "attachment.download_refused",
        "attachment.download",
    ]
    await office_ws.close()
    await home_ws.close()


async def test_lgwan_upload_is_served_as_original_to_both_sides_and_via_websocket_send(
    town: World,
) -> None:
    room_id = await make_room(town, "office", "home")
    home_ws = await Ws.connect(town.server, town["home"].token, side=INTERNET)
    text = "議事録\r\n第1回 在宅勤務検討会\r\n".encode("cp932")
    r = await upload(town["office"], room_id, text, "議事録.txt", "text/plain")
    assert r.status_code == 201, r.text
    attachment_id = r.json()["id"]
    events = await attachment_events(home_ws, attachment_id, "ready")
    assert events[-1]["side"] == LGWAN

    office_ws = await Ws.connect(town.server, town["office"].token, side=LGWAN)
    cid = client_id()
    await office_ws.send(
        {
            "type": "send",
            "id": "s1",
            "room_id": room_id,
            "client_id": cid,
            "body": "議事録を送ります",
            "attachment_ids": [attachment_id],
        }
    )
    ack = await office_ws.expect("ack", ref="s1")
    assert ack["duplicate"] is False
    frame = await home_ws.event("message")
    assert [a["id"] for a in frame["data"]["message"]["attachments"]] == [attachment_id]
    await office_ws.send(
        {
            "type": "send",
            "id": "s2",
            "room_id": room_id,
            "client_id": client_id(),
            "body": "x",
            "attachment_ids": ["1"],
        }
    )
    bad = await office_ws.expect("error", ref="s2")
    assert bad["code"] == "missing_field"

    for person in ("home", "office"):
        r = await town[person].api.get(
            f"/api/attachments/{attachment_id}/content", params={"variant": "original"}
        )
        assert r.status_code == 200 and r.content == text, (person, r.text)
        assert "utf-8" not in r.headers["content-type"]  # the bytes are CP932
        r = await town[person].api.get(f"/api/attachments/{attachment_id}/content")
        assert r.status_code == 200 and r.content == text
    # A recalled message takes its files with it.
    r = await town["office"].api.post(f"/api/messages/{ack['message_id']}/recall")
    assert r.status_code == 200 and r.json()["attachments"] == []
    for person in ("home", "office"):
        r = await town[person].api.get(f"/api/attachments/{attachment_id}/content")
        error_of(r, 404, "not_found")
    await home_ws.close()
    await office_ws.close()


async def test_non_members_and_other_organisations_learn_nothing(town: World) -> None:
    room_id = await make_room(town, "home", "office")
    r = await upload(town["home"], room_id, b"hello\n", "memo.txt", "text/plain")
    attachment_id = r.json()["id"]
    await wait_state(town["home"], attachment_id, "ready")

    # A non-member of the same organisation, an unknown id, another organisation's user.
    assert town.server.services is not None
    async with town.server.services.unit() as uow:
        other = await accounts.create_organisation(uow, "隣町")
        for side in (LGWAN, INTERNET):
            await licenses.set_pool(uow, audit.SYSTEM, other.id, side, 10)
    elsewhere = World(town.server, other.id)
    stranger = await elsewhere.add_person("stranger", "他町 職員", role="admin")
    try:
        for person in (town["outsider"], stranger):
            for path in (
                f"/api/attachments/{attachment_id}/content",
                f"/api/attachments/{attachment_id}/content?variant=original",
                f"/api/attachments/{attachment_id}",
                f"/api/attachments/{attachment_id + 1000}/content",
            ):
                error_of(await person.api.get(path), 404, "not_found")
        # Uploading needs membership too, and nothing is read or kept.
        r = await upload(town["outsider"], room_id, b"x" * 1000, "a.txt")
        error_of(r, 403, "not_a_member")
    finally:
        await elsewhere.close()
    assert await count_rows(town) == 1


async def count_rows(world: World) -> int:
    assert world.server.services is not None
    async with world.server.services.read() as uow:
        return (await uow.session.scalar(select(func.count()).select_from(Attachment))) or 0


def stored_files(settings: Settings) -> tuple[int, int, int]:
    """(blobs, temporary files) in the local blob store, files waiting for the sanitiser."""
    root = Path(settings.effective_blob_url)
    blobs = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    temps = [p for p in (root / "tmp").rglob("*") if p.is_file()]
    queued = [p for p in settings.effective_sanitizer_dir.rglob("*") if p.is_file()]
    return len(blobs), len(temps), len(queued)


async def raw_post(
    server: Server,
    person: Person,
    path: str,
    headers: dict[str, str],
    body_chunks: int,
    chunk: bytes,
) -> tuple[int, bytes]:
    """POST with a body written while the response is read (a refusal mid-body is seen as
    the server sent it, not as a broken pipe); the body is chunked when no length is given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_of(person.side))
    chunked = "Content-Length" not in headers
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {person.token}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())

    async def send_body() -> None:
        for _ in range(body_chunks):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    sender = asyncio.create_task(send_body())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 30)
        response = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    return int(status_line.split()[1]), response


async def test_twenty_mib_is_accepted_and_one_byte_more_leaves_nothing(
    town: World, settings: Settings
) -> None:
    room_id = await make_room(town, "home", "office")
    home = town["home"]
    line = b"0123456789abcdef" * 4 + b"\n"  # plain text, so the sanitiser keeps it as is
    exact = (line * (MAX_ATTACHMENT_BYTES // len(line) + 1))[:MAX_ATTACHMENT_BYTES]
    before_rows, before_files = await count_rows(town), stored_files(settings)

    # 20 MiB + 1 declared: refused before a byte of the body is read.
    status, body = await raw_post(
        town.server,
        home,
        f"/api/rooms/{room_id}/attachments",
        {"X-Filename": "big.txt", "Content-Length": str(MAX_ATTACHMENT_BYTES + 1)},
        body_chunks=0,
        chunk=b"",
    )
    assert status == 413 and b"file_too_large" in body
    # 20 MiB + 1 streamed without a length: refused at the byte too many.
    status, body = await raw_post(
        town.server,
        home,
        f"/api/rooms/{room_id}/attachments",
        {"X-Filename": "big.txt"},
        body_chunks=21,
        chunk=b"x" * (MAX_ATTACHMENT_BYTES // 20),
    )
    assert status == 413 and b"file_too_large" in body
    # A sender that goes away half-way.
    _reader, writer = await asyncio.open_connection("127.0.0.1", town.server.port_of(home.side))
    head = (
        f"POST /api/rooms/{room_id}/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {home.token}\r\nX-Filename: half.txt\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + b"x" * (5 * 1024 * 1024))
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.5)
    # Also through an ordinary client.
    r = await upload(home, room_id, exact + b"!", "big.txt", "text/plain")
    error_of(r, 413, "file_too_large")
    r = await upload(home, room_id, b"", "empty.txt", "text/plain")
    error_of(r, 400, "empty_file")
    await asyncio.sleep(0.2)
    assert await count_rows(town) == before_rows
    assert stored_files(settings) == before_files

    # Exactly 20 MiB: stored, sanitised, served whole.
    r = await upload(home, room_id, exact, "ちょうど20MiB.txt", "text/plain")
    assert r.status_code == 201, r.text
    attachment_id = r.json()["id"]
    assert r.json()["size"] == MAX_ATTACHMENT_BYTES
    assert await count_rows(town) == before_rows + 1
    done = await wait_state(home, attachment_id, "ready", "blocked")
    assert done["state"] == "ready", done["report"]
    r = await town["office"].api.get(f"/api/attachments/{attachment_id}/content")
    assert r.status_code == 200 and r.content == exact
    # One blob more (the rendition of plain text is the same bytes), nothing else left behind.
    blobs, temps, queued = stored_files(settings)
    assert (blobs, temps, queued) == (before_files[0] + 1, before_files[1], before_files[2])


async def test_range_requests(town: World) -> None:
    room_id = await make_room(town, "office", "home")
    data = ("".join(chr(0x3042 + i % 80) for i in range(6000)) + "\n").encode()
    r = await upload(town["office"], room_id, data, "range.txt", "text/plain")
    attachment_id = r.json()["id"]
    await wait_state(town["office"], attachment_id, "ready")
    url = f"/api/attachments/{attachment_id}/content"
    api = town["home"].api
    size = len(data)

    r = await api.get(url, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206, r.text
    assert r.content == data[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{size}"
    assert r.headers["content-length"] == "10"
    assert r.headers["accept-ranges"] == "bytes"
    r = await api.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == data[100:]
    r = await api.get(url, headers={"Range": "bytes=-7"})
    assert r.status_code == 206 and r.content == data[-7:]
    assert r.headers["content-range"] == f"bytes {size - 7}-{size - 1}/{size}"
    r = await api.get(url, headers={"Range": f"bytes=10-{size * 2}"})
    assert r.status_code == 206 and r.content == data[10:]
    r = await api.get(url, params={"variant": "original"}, headers={"Range": "bytes=5-5"})
    assert r.status_code == 206 and r.content == data[5:6]
    # Several ranges or a malformed header: the whole file.
    for header in ("bytes=0-1,4-5", "bytes=abc", "items=0-3"):
        r = await api.get(url, headers={"Range": header})
        assert r.status_code == 200 and r.content == data, header
    # Past the end: 416 with the size.
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        r = await api.get(url, headers={"Range": header})
        error_of(r, 416, "range_not_satisfiable")
        assert r.headers["content-range"] == f"bytes */{size}", header


async def test_blocked_files_are_kept_from_everyone_but_an_administrator(town: World) -> None:
    room_id = await make_room(town, "home", "office")
    home_ws = await Ws.connect(town.server, town["home"].token, side=INTERNET)
    cases = [
        (sancorpus.EICAR, "eicar.txt", "malware_test"),
        (b"MZ" + os.urandom(4000), "請求書.pdf.exe", "executable"),
    ]
    for data, name, reason in cases:
        r = await upload(town["home"], room_id, data, name)
        assert r.status_code == 201, r.text
        attachment_id = r.json()["id"]
        events = await attachment_events(home_ws, attachment_id, "blocked")
        report = events[-1]["report"]
        assert report["verdict"] == "blocked" and report["reason"] == reason
        assert report["reason_ja"]
        url = f"/api/attachments/{attachment_id}/content"
        for person in ("home", "office"):
            for variant in ("sanitized", "original"):
                r = await town[person].api.get(url, params={"variant": variant})
                if person == "office" and variant == "original":
                    error_of(r, 403, "original_not_released")  # the side rule comes first
                else:
                    error = error_of(r, 403, "attachment_blocked")
                    assert error["details"]["reason"] == reason
        # An administrator (not even a member) may fetch the original, as bytes.
        r = await town["admin"].api.get(url, params={"variant": "original"})
        assert r.status_code == 200 and r.content == data
        assert r.headers["content-type"] == "application/octet-stream"
        r = await town["admin"].api.get(url)
        error_of(r, 403, "attachment_blocked")
    await home_ws.close()


@pytest.mark.parametrize("when", ["queued", "mid_job"])
async def test_a_server_stopped_mid_scan_finishes_the_scan_after_restart(
    settings: Settings, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped with the job still queued (no worker ran it), or while the in-process worker
    is inside the job (the stop does not wait for it): after a restart it ends ready.

    Mid-job, the sandboxed child is frozen (SIGSTOP) once it is at work, so the job cannot
    finish before the stop however fast or slow the machine is; after the stop it is killed,
    as the server's death would kill it (PR_SET_DEATHSIG)."""
    frozen: list[int] = []
    if when == "queued":
        settings.sanitizer_workers = 0  # nobody sanitises: the upload stays scanning
        data, name, content_type = sancorpus.xlsm_active(), "在庫.xlsm", XLSM_TYPE
    else:
        monkeypatch.setattr(sanitizing, "STOP_GRACE_S", 0.0)  # stop without waiting for jobs
        data, name, content_type = slow_zip(), "現場写真.zip", "application/zip"
    first = Server(settings)
    await first.start()
    world = await make_world(first)
    try:
        room_id = await make_room(world, "home", "office")
        r = await upload(world["home"], room_id, data, name, content_type)
        assert r.status_code == 201, r.text
        attachment_id = r.json()["id"]
        if when == "queued":
            await asyncio.sleep(0.5)
        else:  # the sandboxed child is at work
            workdirs = settings.effective_sanitizer_dir / "sanitized"
            deadline = asyncio.get_running_loop().time() + 20
            while not list(workdirs.glob(".kakehashi-sanitize-*")) or not frozen:
                assert asyncio.get_running_loop().time() < deadline
                frozen = sandbox_children()
                await asyncio.sleep(0.02)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
        assert (await wait_state(world["home"], attachment_id, "scanning"))["state"] == "scanning"
        r = await world["office"].api.get(f"/api/attachments/{attachment_id}/content")
        error_of(r, 409, "attachment_not_ready")
    finally:
        await world.close()
        await first.stop()
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    db = Database(settings.effective_database_url)
    try:
        async with db.read_sessions() as session:
            stopped = await session.get(Attachment, attachment_id)
            assert stopped is not None and stopped.state == "scanning"
    finally:
        await db.dispose()

    settings.sanitizer_workers = 1
    second = Server(settings)
    await second.start()
    try:
        world.server = second
        for person in world.people.values():
            person.http = None
            await world.sign_in(person)
        done = await wait_state(world["office"], attachment_id, "ready", "blocked")
        assert done["state"] == "ready", done["report"]
        r = await world["office"].api.get(f"/api/attachments/{attachment_id}/content")
        assert r.status_code == 200
        if when == "queued":
            assert {item["kind"] for item in done["report"]["removed"]} >= {"vba_macro"}
            assert not [n for n in zip_names(r.content) if "vbaProject" in n]
        else:
            assert len(zip_names(r.content)) == 8
        # One outcome, one event, however many times the job was queued.
        assert second.services is not None
        async with second.services.read() as uow:
            rows = await uow.session.execute(
                select(Event.payload).where(Event.room_id == room_id, Event.type == "attachment")
            )
            states = [p["attachment"]["state"] for p in rows.scalars()]
        assert states == ["scanning", "ready"]
    finally:
        await world.close()
        await second.stop()


def start_worker(settings: Settings, consumer: str) -> subprocess.Popen[bytes]:
    """`kakehashi worker` as its own process (its sandboxed children in its process group)."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "chat", "worker",
            "--redis-url", settings.effective_sanitizer_queue_url,
            "--dir", str(settings.effective_sanitizer_dir),
            "--prefix", f"{settings.redis_prefix}:sanitizer",
            "--consumer", consumer, "--claim-idle-ms", "1500", "--heartbeat-s", "0.3",
            "--concurrency", "1",
        ],
        cwd=ROOT,
        env=cli_env(settings),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def test_a_scan_ending_while_its_message_is_sent_does_not_deadlock(
    settings: Settings,
) -> None:
    """The sanitiser's result and a send carrying the attachment lock the room and the
    attachment in the same order: with the send holding the room's row, the result waits for
    the room before it locks the attachment.  (It used to lock the attachment first; on
    PostgreSQL the two deadlocked and the sender got a 500.)"""
    settings.sanitizer_workers = 0  # the test delivers the result itself
    server = Server(settings)
    await server.start()
    world = await make_world(server)
    try:
        room_id = await make_room(world, "home", "office")
        r = await upload(world["home"], room_id, b"memo", "memo.txt", "text/plain")
        assert r.status_code == 201, r.text
        attachment_id = r.json()["id"]
        services = server.services
        assert services is not None
        async with services.read() as uow:
            stored = await uow.session.get(Attachment, attachment_id)
            home = await uow.session.get(User, world["home"].id)
        assert stored is not None and home is not None
        outcome = attachments.Outcome("blocked", {"reason": "unsupported_type"})

        async def deliver_result() -> bool:
            async with services.unit() as uow:
                return await attachments.finish(
                    uow, attachment_id, stored.original_key[:16], outcome
                )

        async with services.unit() as uow:  # a send, step by step (chat/messages.py)
            seq = await next_seq(uow, room_id)  # holds the room's row
            result = asyncio.create_task(deliver_result())
            await asyncio.sleep(0.5)  # the result's transaction waits now
            message_id = await uow.session.scalar(
                insert(Message)
                .values(room_id=room_id, seq=seq, sender_id=home.id, client_id=client_id())
                .returning(Message.id)
            )
            assert message_id is not None
            principal = Principal(home, 0, INTERNET)
            await attachments.take_for_message(uow, principal, room_id, message_id, [attachment_id])
        assert await asyncio.wait_for(result, 30) is True
        async with services.read() as uow:
            done = await uow.session.get(Attachment, attachment_id)
        assert done is not None
        assert (done.state, done.message_id) == ("blocked", message_id)
    finally:
        await world.close()
        await server.stop()


def sandbox_children() -> list[int]:
    """The sanitiser's sandboxed job processes: the children of this process's forkserver."""
    server_pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if server_pid is None:
        return []
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == server_pid:  # fields: state, ppid, ...
                children.append(int(stat.parent.name))
    return children


def slow_zip() -> bytes:
    """About three seconds of sanitising: eight 12-megapixel photos in a ZIP."""
    im = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return sancorpus.zip_plain({f"現場写真{i}.jpg": buf.getvalue() for i in range(8)})


@pytest.mark.slow
async def test_scale_out_worker_killed_mid_job_loses_no_upload(settings: Settings) -> None:
    """The Redis Streams queue with separate `kakehashi worker` processes: the worker holding
    the job is killed; another takes the job over and the attachment ends ready, once.  Redis
    runs on every machine of ours, so the queue is Redis on both databases."""
    settings.sanitizer_queue_url = settings.redis_url or REDIS_URL
    settings.sanitizer_workers = 0  # only the worker processes sanitise
    server = Server(settings)
    await server.start()
    world = await make_world(server)
    client = aioredis.from_url(settings.sanitizer_queue_url, decode_responses=True)
    jobs = f"{settings.redis_prefix}:sanitizer:jobs"
    doomed = start_worker(settings, "doomed")
    rescuer: subprocess.Popen[bytes] | None = None
    try:
        room_id = await make_room(world, "home", "office")
        office_ws = await Ws.connect(server, world["office"].token, side=LGWAN)
        r = await upload(world["home"], room_id, slow_zip(), "現場写真.zip", "application/zip")
        assert r.status_code == 201, r.text
        attachment_id = r.json()["id"]
        holder = None
        deadline = asyncio.get_running_loop().time() + 30
        while holder is None and asyncio.get_running_loop().time() < deadline:
            pending = await client.xpending_range(jobs, "workers", "-", "+", 10)
            holder = pending[0]["consumer"] if pending else None
            await asyncio.sleep(0.02)
        assert holder == "doomed"
        await asyncio.sleep(0.5)  # well inside the ~3 s job
        assert (await wait_state(world["home"], attachment_id, "scanning"))["state"] == "scanning"
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(10)

        rescuer = start_worker(settings, "rescuer")
        events = await attachment_events(office_ws, attachment_id, "ready")
        assert [e["state"] for e in events] == ["scanning", "ready"]
        assert events[-1]["report"]["verdict"] in ("clean", "sanitized")
        r = await world["office"].api.get(f"/api/attachments/{attachment_id}/content")
        assert r.status_code == 200
        assert len(zip_names(r.content)) == 8
        results = await client.xrange(f"{settings.redis_prefix}:sanitizer:results")
        assert len(results) == 1
        assert await client.xlen(jobs) == 0
        await office_ws.close()
    finally:
        stop_process(doomed)
        stop_process(rescuer)
        keys = [k async for k in client.scan_iter(f"{settings.redis_prefix}:sanitizer:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await world.close()
        await server.stop()


async def test_a_failed_submission_is_queued_again_by_the_sweep(
    town: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queueing fails (the queue is down): the upload still succeeds and stays scanning; the
    periodic sweep of attachments stuck in scanning queues it again."""
    services = town.server.services
    assert services is not None and services.sanitizing.queue is not None
    queue = services.sanitizing.queue

    async def broken(job: Any) -> None:
        raise ConnectionError("queue down")

    room_id = await make_room(town, "home", "office")
    with monkeypatch.context() as patch:
        patch.setattr(queue, "submit", broken)
        r = await upload(town["home"], room_id, b"memo\n", "memo.txt", "text/plain")
    assert r.status_code == 201, r.text
    attachment_id = r.json()["id"]
    await asyncio.sleep(0.5)
    assert (await wait_state(town["home"], attachment_id, "scanning"))["state"] == "scanning"
    assert await services.sanitizing.requeue(older_than_s=3600) == 0  # not stuck long enough
    assert await services.sanitizing.requeue(older_than_s=0) == 1
    assert (await wait_state(town["home"], attachment_id, "ready", "blocked"))["state"] == "ready"


def test_names_headers_and_ranges_are_parsed_safely() -> None:
    parse = attachments.parse_filename
    assert parse(quote("..\\..\\秘密/議事録 (第1回).docx")) == "議事録 (第1回).docx"
    assert parse("集計表.xlsx".encode().decode("latin-1")) == "集計表.xlsx"  # raw UTF-8
    assert parse(quote("a\x00b\u202e.txt")) == "ab.txt"  # control and bidi characters go
    long_name = parse(quote("長" * 300 + ".pdf"))
    assert len(long_name) == 255 and long_name.endswith("長.pdf")
    for bad in (None, "", "%FF%FE", quote("../.."), quote("\x01")):
        with pytest.raises(BadRequest):
            parse(bad)

    disposition = attachments.content_disposition
    assert disposition("report.pdf") == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert disposition('見積"書;.pdf') == (
        "attachment; filename=\"download.pdf\"; filename*=UTF-8''" + quote('見積"書;.pdf', safe="")
    )
    assert disposition("議事録 v2.docx").startswith('attachment; filename="___ v2.docx"')

    rng = attachments.parse_range
    assert rng(None, 100) is None
    assert rng("bytes=0-0", 100) == (0, 1)
    assert rng("bytes=90-", 100) == (90, 100)
    assert rng("bytes=-10", 100) == (90, 100)
    assert rng("bytes=-1000", 100) == (0, 100)
    assert rng("bytes=50-1000", 100) == (50, 100)
    for ignored in ("bytes=5-1", "bytes=0-1,3-4", "bytes=a-b", "lines=1-2", "bytes=-", "bytes"):
        assert rng(ignored, 100) is None, ignored
    for unsatisfiable in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            rng(unsatisfiable, 100)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server as a process of its own (as tests/storage does)."""
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def test_blobs_in_an_object_store(settings: Settings, s3_endpoint: str) -> None:
    """The same flow with the blobs in S3: the worker gets the original as a file of the
    shared directory, the rendition goes back to the bucket, ranges come from the bucket."""
    bucket = f"kakehashi-{os.urandom(6).hex()}"
    session = AioSession()
    async with session.create_client(
        "s3",
        region_name="ap-northeast-1",
        endpoint_url=s3_endpoint,
        aws_access_key_id="kakehashi-test",
        aws_secret_access_key="kakehashi-test-secret",
    ) as raw:
        await raw.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
        )
    settings.blob_url = f"s3://{bucket}/att/?endpoint={s3_endpoint}&region=ap-northeast-1"
    settings.blob_access_key_id = "kakehashi-test"
    settings.blob_secret_access_key = SecretStr("kakehashi-test-secret")
    server = Server(settings)
    await server.start()
    world = await make_world(server)
    try:
        room_id = await make_room(world, "home", "office")
        workbook = sancorpus.xlsm_active()
        r = await upload(world["home"], room_id, workbook, "集計表.xlsm", XLSM_TYPE)
        assert r.status_code == 201, r.text
        attachment_id = r.json()["id"]
        done = await wait_state(world["office"], attachment_id, "ready", "blocked")
        assert done["state"] == "ready" and done["sanitized_filename"] == "集計表.xlsx"
        r = await world["office"].api.get(f"/api/attachments/{attachment_id}/content")
        assert r.status_code == 200 and not [n for n in zip_names(r.content) if "vba" in n]
        r = await world["home"].api.get(
            f"/api/attachments/{attachment_id}/content",
            params={"variant": "original"},
            headers={"Range": "bytes=0-3"},
        )
        assert r.status_code == 206 and r.content == workbook[:4] == b"PK\x03\x04"
        assert not list(settings.effective_sanitizer_dir.rglob("att-*"))  # nothing left over
    finally:
        await world.close()
        await server.stop()


async def test_an_unsent_upload_can_be_taken_back_by_its_uploader_only(town: World) -> None:
    room = await make_room(town, "home", "office")
    home, office = town["home"], town["office"]
    r = await upload(home, room, "下書き\n".encode() * 10, "下書き.txt", "text/plain")
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    error_of(await office.api.delete(f"/api/attachments/{aid}"), 403, "forbidden")
    error_of(await town["outsider"].api.delete(f"/api/attachments/{aid}"), 404, "not_found")
    assert (await home.api.delete(f"/api/attachments/{aid}")).status_code == 200
    error_of(await home.api.get(f"/api/attachments/{aid}"), 404, "not_found")
    sent = await upload(home, room, b"final\n" * 10, "final.txt", "text/plain")
    sid = sent.json()["id"]
    m = await home.api.post(
        f"/api/rooms/{room}/messages",
        json={"client_id": client_id(), "body": "", "attachment_ids": [sid]},
    )
    assert m.status_code == 201, m.text
    error_of(await home.api.delete(f"/api/attachments/{sid}"), 409, "attachment_sent")
