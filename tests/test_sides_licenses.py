"""Sides decided by the server's ingress, licenses per side, roles scoped to departments.

A real server listens on two ports, one per side (as `kakehashi serve` does)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import websockets
from sqlalchemy import func, select, update
from websockets.exceptions import ConnectionClosed

from chat.models import AuditEntry, License, utcnow
from chat.settings import Settings
from tests.harness import PASSWORD, Server, World, Ws, client_id, error_of

LGWAN, INTERNET = "lgwan", "internet"


async def login(world: World, login_id: str, side: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.server.url_for(side)) as client:
        return await client.post(
            "/api/auth/login", json={"login_id": login_id, "password": PASSWORD}
        )


async def closed_code(ws: Ws, timeout: float) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv(timeout)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def license_count(world: World, side: str) -> int:
    assert world.server.services is not None
    async with world.server.services.read() as uow:
        return (
            await uow.session.scalar(
                select(func.count())
                .select_from(License)
                .where(License.org_id == world.org_id, License.side == side)
            )
        ) or 0


async def set_pool(world: World, side: str, size: int) -> None:
    r = await world["admin"].api.put(f"/api/admin/licenses/pools/{side}", json={"size": size})
    assert r.status_code == 200, r.text


async def test_each_port_is_a_side_and_a_license_opens_only_its_side(world: World) -> None:
    home = await world.add_person("home", "在宅 花子", sides=(INTERNET,), sign_in=False)
    for side in (LGWAN, INTERNET):
        async with httpx.AsyncClient(base_url=world.server.url_for(side)) as client:
            r = await client.get("/api/auth/side")
            assert r.json()["side"] == side
    refused = error_of(await login(world, "home", LGWAN), 403, "license_required")
    assert "LGWAN接続系のライセンス" in refused["message"] and "管理者" in refused["message"]
    assert refused["details"] == {"side": LGWAN}
    ok = await login(world, "home", INTERNET)
    assert ok.status_code == 200 and ok.json()["side"] == INTERNET
    token = ok.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=world.server.url_for(INTERNET), headers=auth) as c:
        assert (await c.get("/api/auth/me")).json()["side"] == INTERNET
    # The internet session is no key to the LGWAN side: no license there, so say so.
    async with httpx.AsyncClient(base_url=world.server.url_for(LGWAN), headers=auth) as c:
        error_of(await c.get("/api/auth/me"), 403, "license_required")
    # A websocket on the LGWAN port with the internet token is refused too.
    conn = await websockets.connect(world.server.ws_url_for(LGWAN))
    ws = Ws(conn)
    await ws.send({"type": "hello", "token": token})
    error = await ws.expect("error")
    assert error["code"] == "license_required"
    assert (await closed_code(ws, 5))[0] == 4001
    # ... and accepted where the license is, with the side in the welcome.
    conn = await websockets.connect(world.server.ws_url_for(INTERNET))
    ws = Ws(conn)
    await ws.send({"type": "hello", "token": token})
    assert (await ws.expect("welcome"))["side"] == INTERNET
    await ws.close()
    # Every attempt is on the audit record with its side.
    assert world.server.services is not None
    async with world.server.services.read() as uow:
        rows = (
            await uow.session.execute(
                select(AuditEntry.action, AuditEntry.side, AuditEntry.details).where(
                    AuditEntry.actor_id == home.id
                )
            )
        ).all()
    assert ("auth.sign_in_failed", LGWAN, {"reason": "license_required"}) in rows
    assert any(a == "auth.sign_in" and s == INTERNET for a, s, _ in rows)


async def test_a_session_is_valid_on_its_own_side_only(world: World) -> None:
    alice = world["alice"]  # holds both licenses, signed in on the internet side
    async with httpx.AsyncClient(
        base_url=world.server.url_for(LGWAN), headers={"Authorization": f"Bearer {alice.token}"}
    ) as c:
        error_of(await c.get("/api/auth/me"), 401, "session_other_side")
    r = await login(world, "alice", LGWAN)
    assert r.status_code == 200 and r.json()["side"] == LGWAN
    # one cookie per side, so a browser may hold both
    names = {c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")}
    assert names == {"kakehashi_session_lgwan", "kakehashi_csrf_lgwan"}


async def test_forged_side_header_from_an_untrusted_address_changes_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await world.add_person("home2", "在宅 次郎", sides=(INTERNET,), sign_in=False)
    await world.add_person("office2", "庁内 三郎", sides=(LGWAN,), sign_in=False)
    forged = {"X-Kakehashi-Side": LGWAN}
    with caplog.at_level(logging.WARNING, logger="chat.sides"):
        async with httpx.AsyncClient(base_url=world.server.url_for(INTERNET), headers=forged) as c:
            assert (await c.get("/api/auth/side")).json()["side"] == INTERNET
            ok = await c.post("/api/auth/login", json={"login_id": "home2", "password": PASSWORD})
            assert ok.status_code == 200 and ok.json()["side"] == INTERNET
            no = await c.post("/api/auth/login", json={"login_id": "office2", "password": PASSWORD})
            error_of(no, 403, "license_required")
    assert any("ignored a side header" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[Server]:
    """A server behind a trusted reverse proxy (here: loopback) with source networks."""
    settings.trusted_proxies = ["127.0.0.1/32"]
    settings.lgwan_networks = ["10.20.0.0/16"]
    server = Server(settings)
    await server.start()
    yield server
    await server.stop()


async def test_trusted_proxy_header_and_source_networks_decide(proxied: Server) -> None:
    async with httpx.AsyncClient(base_url=proxied.url_for(INTERNET)) as c:
        r = await c.get("/api/auth/side", headers={"X-Kakehashi-Side": LGWAN})
        assert r.json()["side"] == LGWAN  # believed: it comes from a trusted proxy
        r = await c.get("/api/auth/side", headers={"X-Forwarded-For": "203.0.113.9, 10.20.3.4"})
        assert r.json()["side"] == LGWAN  # the client's address is in an LGWAN network
        r = await c.get("/api/auth/side", headers={"X-Forwarded-For": "10.20.3.4, 203.0.113.9"})
        assert r.json()["side"] == INTERNET  # only the proxy's own entry counts
        r = await c.get("/api/auth/side", headers={"X-Kakehashi-Side": "both"})
        assert r.json()["side"] == INTERNET  # not a side: the listener decides


def test_settings_refuse_bad_networks_and_one_port_for_two_sides() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/8"):
        Settings(trusted_proxies=["10.0.0.0/33"]).check()
    with pytest.raises(ValueError, match="must differ"):
        Settings(port=9000, lgwan_port=9000).check()


async def test_revoking_the_lgwan_license_ends_lgwan_sessions_only(world: World) -> None:
    alice, admin = world["alice"], world["admin"]
    lgwan_token = (await login(world, "alice", LGWAN)).json()["token"]
    on_lgwan = await Ws.connect(world.server, lgwan_token, side=LGWAN)
    on_internet = await Ws.connect(world.server, alice.token, side=INTERNET)
    r = await admin.api.post(
        "/api/admin/licenses/revoke", json={"side": LGWAN, "user_ids": [alice.id]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["sessions_ended"] == 1
    # The requirement: the live LGWAN websocket is closed within 2 seconds.
    assert await closed_code(on_lgwan, timeout=2.0) == (4003, "license_revoked")
    await on_internet.send({"type": "ping", "id": "still-here"})
    await on_internet.expect("pong", ref="still-here")
    assert (await alice.api.get("/api/auth/me")).status_code == 200
    error_of(await login(world, "alice", LGWAN), 403, "license_required")
    # and the internet socket still receives messages
    bob = world["bob"]
    room = (await bob.api.post("/api/rooms/direct", json={"user_id": alice.id})).json()["id"]
    sent = await bob.api.post(
        f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "届く?"}
    )
    assert sent.status_code == 201
    assert (await on_internet.event("message"))["data"]["message"]["body"] == "届く?"
    await on_internet.close()


async def test_pool_limits_are_atomic_for_one_and_for_a_csv(world: World) -> None:
    admin = world["admin"]
    before = await license_count(world, INTERNET)
    await set_pool(world, INTERNET, before + 1)
    new = [
        await world.add_person(f"new{i}", f"新人 {i}", sides=(), sign_in=False) for i in range(3)
    ]
    roster = "ログインID,インターネット接続系,LGWAN接続系\r\n" + "".join(
        f"{p.login_id},○,\r\n" for p in new[:2]
    )
    r = await admin.api.post(
        "/api/admin/licenses/import",
        content=roster.encode("cp932"),
        headers={"Content-Type": "text/csv"},
    )
    body = error_of(r, 409, "license_pool_exhausted")
    assert body["details"] == {
        "side": INTERNET,
        "pool": before + 1,
        "assigned": before,
        "requested": 2,
    }
    assert "何も変更していません" in body["message"]
    assert await license_count(world, INTERNET) == before
    # one at a time: the first fits, the second is refused and changes nothing
    one = await admin.api.post(
        "/api/admin/licenses/assign", json={"side": INTERNET, "user_ids": [new[0].id]}
    )
    assert one.status_code == 200 and one.json()["pools"][1]["available"] == 0
    error_of(
        await admin.api.post(
            "/api/admin/licenses/assign", json={"side": INTERNET, "user_ids": [new[1].id]}
        ),
        409,
        "license_pool_exhausted",
    )
    # a move within a full pool fits (one revoked, one assigned, in one CSV)
    swap = f"login_id,internet\n{new[0].login_id},0\n{new[1].login_id},1\n".encode()
    r = await admin.api.post("/api/admin/licenses/import", content=swap)
    assert r.status_code == 200, r.text
    assert {(x["user_id"], x["side"]) for x in r.json()["assigned"]} == {(new[1].id, INTERNET)}
    assert {(x["user_id"], x["side"]) for x in r.json()["revoked"]} == {(new[0].id, INTERNET)}
    # and the move endpoint does the same for two users
    r = await admin.api.post(
        "/api/admin/licenses/move",
        json={"side": INTERNET, "from_user_id": new[1].id, "to_user_id": new[2].id},
    )
    assert r.status_code == 200, r.text
    assert (await login(world, new[2].login_id, INTERNET)).status_code == 200
    error_of(await login(world, new[1].login_id, INTERNET), 403, "license_required")
    # shrinking a pool below what is assigned is refused
    body = error_of(
        await admin.api.put(f"/api/admin/licenses/pools/{INTERNET}", json={"size": before - 1}),
        409,
        "pool_below_assigned",
    )
    assert body["details"]["assigned"] == before + 1
    pools = (await admin.api.get("/api/admin/licenses/pools")).json()["pools"]
    assert {p["side"]: p["size"] for p in pools}[INTERNET] == before + 1


async def test_a_csv_with_bad_rows_names_them_and_changes_nothing(world: World) -> None:
    admin = world["admin"]
    before = {side: await license_count(world, side) for side in (LGWAN, INTERNET)}
    data = b"login_id,lgwan,internet\nalice,0,1\nnobody,1,1\nbob,maybe,1\nalice,1,1\n"
    r = await admin.api.post("/api/admin/licenses/import", content=data)
    body = error_of(r, 400, "csv_invalid")
    found = {(e["line"], e["column"], e["code"]) for e in body["details"]["errors"]}
    assert found == {
        (3, "login_id", "unknown_user"),
        (4, LGWAN, "invalid_value"),
        (5, "login_id", "duplicate_in_file"),
    }
    assert {side: await license_count(world, side) for side in (LGWAN, INTERNET)} == before
    error_of(
        await admin.api.post("/api/admin/licenses/import", content=b"name,side\nx,y\n"),
        400,
        "csv_invalid",
    )
    error_of(
        await admin.api.post(
            "/api/admin/licenses/assign", json={"side": "both", "user_ids": [world["bob"].id]}
        ),
        400,
        "invalid_side",
    )
    error_of(
        await world["alice"].api.post(
            "/api/admin/licenses/assign", json={"side": LGWAN, "user_ids": [world["alice"].id]}
        ),
        403,
        "forbidden",
    )


async def make_departments(world: World) -> dict[str, int]:
    admin = world["admin"]
    ids: dict[str, int] = {}
    for name, parent in (("福祉部", None), ("介護保険課", "福祉部"), ("建設部", None)):
        r = await admin.api.post(
            "/api/admin/departments",
            json={"name": name, "parent_id": ids.get(parent) if parent else None},
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    return ids


async def test_a_supervisor_oversees_their_department_and_below_only(world: World) -> None:
    depts = await make_departments(world)
    boss = await world.add_person(
        "kacho", "福祉 課長", role="supervisor", side=LGWAN, department_id=depts["福祉部"]
    )
    carer = await world.add_person(
        "carer", "介護 太郎", sides=(INTERNET,), department_id=depts["介護保険課"], sign_in=False
    )
    builder = await world.add_person(
        "builder", "建設 次郎", sides=(INTERNET,), department_id=depts["建設部"], sign_in=False
    )
    r = await boss.api.get("/api/admin/licenses")
    assert r.status_code == 200
    seen = {u["login_id"] for u in r.json()["users"]}
    assert seen == {"kacho", "carer"} and builder.login_id not in seen
    r = await boss.api.get(f"/api/admin/licenses/usage?department_id={depts['介護保険課']}")
    assert r.status_code == 200
    assert [(d["department"], d["assigned"]) for d in r.json()["departments"]] == [
        ("福祉部/介護保険課", 1)
    ]
    for path in (
        f"/api/admin/licenses/usage?department_id={depts['建設部']}",
        f"/api/admin/licenses?department_id={depts['建設部']}",
    ):
        body = error_of(await boss.api.get(path), 403, "outside_department")
        assert "配下" in body["message"]
    # supervising is not administering
    error_of(
        await boss.api.post(
            "/api/admin/licenses/revoke", json={"side": INTERNET, "user_ids": [carer.id]}
        ),
        403,
        "forbidden",
    )
    error_of(await world["alice"].api.get("/api/admin/licenses/usage"), 403, "forbidden")


async def test_department_quotas_hold_and_move(world: World) -> None:
    admin = world["admin"]
    depts = await make_departments(world)
    welfare, building = depts["福祉部"], depts["建設部"]
    r = await admin.api.put(f"/api/admin/licenses/quotas/{welfare}/{INTERNET}", json={"size": 1})
    assert r.status_code == 200, r.text
    a = await world.add_person(
        "w1", "福祉 一", sides=(), department_id=depts["介護保険課"], sign_in=False
    )
    b = await world.add_person("w2", "福祉 二", sides=(), department_id=welfare, sign_in=False)
    ok = await admin.api.post(
        "/api/admin/licenses/assign", json={"side": INTERNET, "user_ids": [a.id]}
    )
    assert ok.status_code == 200, ok.text
    body = error_of(
        await admin.api.post(
            "/api/admin/licenses/assign", json={"side": INTERNET, "user_ids": [b.id]}
        ),
        409,
        "department_quota_exhausted",
    )
    assert "福祉部" in body["message"] and body["details"]["quota"] == 1
    await admin.api.put(f"/api/admin/licenses/quotas/{building}/{INTERNET}", json={"size": 2})
    r = await admin.api.post(
        "/api/admin/licenses/quotas/move",
        json={
            "side": INTERNET,
            "from_department_id": building,
            "to_department_id": welfare,
            "count": 1,
        },
    )
    assert r.status_code == 200, r.text
    ok = await admin.api.post(
        "/api/admin/licenses/assign", json={"side": INTERNET, "user_ids": [b.id]}
    )
    assert ok.status_code == 200, ok.text
    quotas = (await admin.api.get("/api/admin/licenses/quotas")).json()["quotas"]
    assert [(q["department"], q["side"], q["size"], q["assigned"]) for q in quotas] == [
        ("建設部", INTERNET, 1, 0),
        ("福祉部", INTERNET, 2, 2),
    ]
    error_of(
        await admin.api.put(f"/api/admin/licenses/quotas/{welfare}/{INTERNET}", json={"size": 1}),
        409,
        "quota_below_assigned",
    )


async def test_usage_report_counts_recent_and_never_used_and_opens_in_excel(world: World) -> None:
    admin = world["admin"]
    depts = await make_departments(world)
    recent = await world.add_person(
        "recent", "最近 使う", sides=(INTERNET,), department_id=depts["建設部"]
    )
    old = await world.add_person(
        "old", "昔 使った", sides=(INTERNET,), department_id=depts["建設部"]
    )
    await world.add_person(
        "never", "未 使用", sides=(INTERNET,), department_id=depts["建設部"], sign_in=False
    )
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        await uow.session.execute(
            update(License)
            .where(License.user_id == old.id)
            .values(last_used_at=utcnow() - timedelta(days=45))
        )
    assert recent.token
    r = await admin.api.get(f"/api/admin/licenses/usage?department_id={depts['建設部']}")
    rows = r.json()["departments"]
    assert rows == [
        {
            "side": INTERNET,
            "department_id": depts["建設部"],
            "department": "建設部",
            "quota": None,
            "assigned": 3,
            "used_30d": 1,
            "never_used": 1,
        }
    ]
    r = await admin.api.get("/api/admin/licenses/usage?format=csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == ["側", "部署", "部署の割当上限", "割当数", "30日以内に利用", "未使用"]
    assert ["インターネット接続系", "建設部", "", "3", "1", "1"] in table


async def test_presence_shows_the_side_a_member_is_online_on(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    ask = f"/api/presence?user_ids={alice.id},{bob.id}"
    assert (await bob.api.get(ask)).json()["presence"] == {str(alice.id): [], str(bob.id): []}
    lgwan_token = (await login(world, "alice", LGWAN)).json()["token"]
    office = await Ws.connect(world.server, lgwan_token, side=LGWAN)
    home = await Ws.connect(world.server, alice.token, side=INTERNET)

    async def sides() -> list[str]:
        presence: list[str] = (await bob.api.get(ask)).json()["presence"][str(alice.id)]
        return presence

    for _ in range(50):  # in Redis mode the process publishes its counts about once a second
        if await sides() == [INTERNET, LGWAN]:
            break
        await asyncio.sleep(0.1)
    assert await sides() == [INTERNET, LGWAN]
    await office.close()
    for _ in range(50):
        if await sides() == [INTERNET]:
            break
        await asyncio.sleep(0.1)
    assert await sides() == [INTERNET]
    await home.close()
    error_of(await bob.api.get("/api/presence?user_ids=x"), 400, "invalid_input")


async def test_every_event_knows_the_side_it_came_from(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    room = (await bob.api.post("/api/rooms/direct", json={"user_id": alice.id})).json()["id"]
    lgwan_token = (await login(world, "alice", LGWAN)).json()["token"]
    office = await Ws.connect(world.server, lgwan_token, side=LGWAN)
    home = await Ws.connect(world.server, bob.token, side=INTERNET)
    await office.send(
        {"type": "send", "room_id": room, "client_id": client_id(), "body": "庁内から"}
    )
    got = await home.event("message")
    assert got["side"] == LGWAN and got["data"]["message"]["body"] == "庁内から"
    await bob.api.post(
        f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": "在宅から"}
    )
    mine = await office.event("message")  # its own message comes back first
    assert mine["side"] == LGWAN and mine["data"]["message"]["body"] == "庁内から"
    theirs = await office.event("message")
    assert theirs["side"] == INTERNET and theirs["data"]["message"]["body"] == "在宅から"
    await office.close()
    await home.close()
    # replayed from the database, the side is still there
    again = await Ws.connect(world.server, bob.token, since={room: 0})
    sides = [f["side"] for f in again.seen if f.get("event") == "message"]
    while len(sides) < 2:
        sides.append((await again.event("message"))["side"])
    assert sides == [LGWAN, INTERNET]
    await again.close()
