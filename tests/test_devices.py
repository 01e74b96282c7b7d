"""Registered devices (端末認証), capabilities and the organisation's policy, enforced by the
server at sign-in, in `welcome`, and on live sessions when a device or the policy changes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from websockets.exceptions import ConnectionClosed

from chat.models import AuditEntry, DeviceCode, utcnow
from tests.harness import PASSWORD, World, Ws, error_of

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"


async def login(
    world: World, login_id: str, side: str = "internet", ua: str = "pytest", **client: Any
) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=world.server.url_for(side), headers={"User-Agent": ua}
    ) as c:
        return await c.post(
            "/api/auth/login", json={"login_id": login_id, "password": PASSWORD, **client}
        )


async def issue(world: World, **body: Any) -> dict[str, Any]:
    r = await world["admin"].api.post("/api/admin/device-codes", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def register(world: World, code: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.server.url) as c:
        return await c.post(
            "/api/devices/register",
            json={"code": code, "name": "青木のiPhone", "platform": "mobile_app", **body},
        )


async def set_policy(world: World, **rules: bool) -> None:
    r = await world["admin"].api.put("/api/admin/policy", json=rules)
    assert r.status_code == 200, r.text


async def closed(ws: Ws, timeout: float = 5.0) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.recv(timeout)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_a_code_registers_one_device_once(world: World) -> None:
    alice = world["alice"]
    issued = await issue(world, label="青木さんのスマホ", user_id=alice.id, ttl_hours=1)
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", issued["code"])
    listed = (await world["admin"].api.get("/api/admin/device-codes")).json()["codes"]
    assert [c["label"] for c in listed] == ["青木さんのスマホ"] and "code" not in listed[0]
    error_of(await alice.api.get("/api/admin/device-codes"), 403, "forbidden")
    # typed by a person: lower case, without dashes
    r = await register(
        world,
        issued["code"].replace("-", "").lower(),
        capabilities=["prevent_save", "encrypted_storage"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["device"]["capabilities"] == ["encrypted_storage", "prevent_save"]
    assert len(r.json()["credential"]) >= 40
    error_of(await register(world, issued["code"]), 400, "device_code_invalid")  # used
    error_of(await register(world, "AAAA-BBBB-CCCC-DDDD"), 400, "device_code_invalid")
    late = await issue(world, ttl_hours=1)
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        await uow.session.execute(
            update(DeviceCode)
            .where(DeviceCode.id == late["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error_of(await register(world, late["code"]), 400, "device_code_invalid")  # expired
    fresh = await issue(world)
    error_of(await register(world, fresh["code"], platform="fax"), 400, "invalid_platform")
    error_of(
        await register(world, fresh["code"], capabilities=["root"]), 400, "invalid_capabilities"
    )
    assert (await register(world, fresh["code"])).status_code == 201  # bad input used nothing
    devices = (await world["admin"].api.get("/api/admin/devices")).json()["devices"]
    assert len(devices) == 2
    async with world.server.services.read() as uow:
        actions = list(
            (
                await uow.session.execute(
                    select(AuditEntry.action).where(AuditEntry.action.like("device.%"))
                )
            ).scalars()
        )
    assert actions.count("device.register") == 2 and actions.count("device.code_issue") == 3


async def test_only_registered_devices_on_the_lgwan_side_when_the_policy_says_so(
    world: World,
) -> None:
    await set_policy(world, registered_device_lgwan=True)
    refused = error_of(await login(world, "alice", "lgwan"), 403, "device_not_registered")
    assert "端末認証コード" in refused["message"]
    assert (await login(world, "alice", "internet")).status_code == 200  # other side: no rule
    issued = await issue(world, label="庁内PC 12番")
    done = (await register(world, issued["code"], platform="desktop", name="庁内PC 12番")).json()
    ok = await login(
        world,
        "alice",
        "lgwan",
        device_id=done["device_id"],
        device_credential=done["credential"],
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["restrictions"]["registered_device"] is True
    wrong = await login(
        world, "alice", "lgwan", device_id=done["device_id"], device_credential="x" * 43
    )
    error_of(wrong, 403, "device_invalid")


async def test_mobile_rules_refuse_or_restrict_by_capability(world: World) -> None:
    # The default policy: mobile storage must be encrypted; mobile saving is not allowed.
    refused = await login(world, "bob", ua=IPHONE, platform="browser")  # a phone, whatever it says
    error_of(refused, 403, "encrypted_storage_required")
    plain = await register(world, (await issue(world))["code"], capabilities=["encrypted_storage"])
    viewer = await login(
        world,
        "bob",
        ua=IPHONE,
        device_id=plain.json()["device_id"],
        device_credential=plain.json()["credential"],
    )
    assert viewer.status_code == 200, viewer.text
    assert viewer.json()["restrictions"] == {
        "view_only": True,
        "no_screenshots": False,
        "platform": "mobile_app",
        "registered_device": True,
    }
    # claiming more at sign-in than the registration declared counts for nothing
    bolder = await login(
        world,
        "bob",
        ua=IPHONE,
        device_id=plain.json()["device_id"],
        device_credential=plain.json()["credential"],
        capabilities=["encrypted_storage", "prevent_save"],
    )
    assert bolder.json()["restrictions"]["view_only"] is True
    ws = await Ws.connect(world.server, viewer.json()["token"])
    welcome = next(f for f in ws.seen if f["type"] == "welcome")
    assert welcome["restrictions"]["view_only"] is True
    await ws.close()
    safe = await register(
        world, (await issue(world))["code"], capabilities=["encrypted_storage", "prevent_save"]
    )
    saver = await login(
        world,
        "bob",
        ua=IPHONE,
        device_id=safe.json()["device_id"],
        device_credential=safe.json()["credential"],
    )
    assert saver.json()["restrictions"]["view_only"] is False  # the app prevents saving
    await set_policy(world, mobile_screenshot_allowed=False)
    error_of(
        await login(
            world,
            "bob",
            ua=IPHONE,
            device_id=safe.json()["device_id"],
            device_credential=safe.json()["credential"],
        ),
        403,
        "screenshot_protection_required",
    )
    # A desktop browser is no phone: none of the mobile rules apply.
    desk = await login(world, "bob", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    assert desk.status_code == 200 and desk.json()["restrictions"]["view_only"] is False


async def test_a_revoked_device_is_cut_off_at_once(world: World) -> None:
    alice = world["alice"]
    done = (
        await register(
            world,
            (await issue(world, user_id=alice.id))["code"],
            capabilities=["encrypted_storage", "prevent_save", "prevent_screenshot"],
        )
    ).json()
    creds = {"device_id": done["device_id"], "device_credential": done["credential"]}
    error_of(await login(world, "bob", ua=IPHONE, **creds), 403, "device_invalid")  # alice's
    signed = await login(world, "alice", ua=IPHONE, **creds)
    assert signed.status_code == 200, signed.text
    ws = await Ws.connect(world.server, signed.json()["token"])
    other = await Ws.connect(world.server, alice.token)  # her laptop's session
    r = await world["admin"].api.post(f"/api/admin/devices/{done['device_id']}/revoke")
    assert r.status_code == 200 and r.json()["sessions_ended"] == 1
    assert await closed(ws, 2.0) == (4003, "device_revoked")
    await other.send({"type": "ping", "id": "laptop"})
    await other.expect("pong", ref="laptop")
    await other.close()
    error_of(await login(world, "alice", ua=IPHONE, **creds), 403, "device_invalid")
    devices = (await world["admin"].api.get("/api/admin/devices")).json()["devices"]
    assert devices[0]["revoked_at"] is not None
    renamed = await world["admin"].api.patch(
        f"/api/admin/devices/{done['device_id']}", json={"name": "紛失(青木)"}
    )
    assert renamed.json()["name"] == "紛失(青木)"


async def test_a_stricter_policy_ends_the_sessions_it_no_longer_admits(world: World) -> None:
    token = (await login(world, "carol", "lgwan")).json()["token"]
    office = await Ws.connect(world.server, token, side="lgwan")
    home = await Ws.connect(world.server, world["carol"].token, side="internet")
    await set_policy(world, registered_device_lgwan=True)
    assert await closed(office, 2.0) == (4003, "policy_changed")
    await home.send({"type": "ping", "id": "home"})
    await home.expect("pong", ref="home")
    await home.close()
    policy = (await world["admin"].api.get("/api/admin/policy")).json()
    assert policy["registered_device_lgwan"] is True and policy["mobile_save_allowed"] is False
    error_of(
        await world["admin"].api.put("/api/admin/policy", json={"everything_allowed": True}),
        400,
        "invalid_input",
    )
    error_of(await world["carol"].api.put("/api/admin/policy", json={}), 403, "forbidden")
    assert world.server.services is not None
    async with world.server.services.read() as uow:
        details = (
            await uow.session.execute(
                select(AuditEntry.details).where(AuditEntry.action == "policy.update")
            )
        ).scalar_one()
    assert details == {"changed": {"registered_device_lgwan": [False, True]}, "sessions_ended": 1}
