"""Devices (端末認証) and the organisation's policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from chat import devices, policy
from chat.audit import Actor
from chat.http.deps import ActorDep, CurrentUser, IngressDep, ServicesDep
from chat.http.schemas import DeviceCodeIn, DevicePatch, DeviceRegisterIn, PolicyIn
from chat.permissions import require_admin

router = APIRouter(tags=["devices"])


@router.post("/api/devices/register", status_code=201)
async def register(body: DeviceRegisterIn, services: ServicesDep, ingress: IngressDep) -> Any:
    """Register this device with a one-time code; the credential in the answer is shown once
    and is presented (with ``device_id``) at every sign-in from this device."""
    actor = Actor(None, "device", None, ingress.side, ingress.address)
    async with services.unit() as uow:
        done = await devices.register(
            uow,
            actor,
            body.code,
            name=body.name,
            platform=body.platform,
            capabilities=body.capabilities,
        )
    return {
        "device_id": done.device.id,
        "credential": done.credential,
        "device": devices.device_dict(done.device),
    }


@router.post("/api/admin/device-codes", status_code=201)
async def issue_code(
    body: DeviceCodeIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        issued = await devices.issue_code(
            uow,
            actor,
            principal.org_id,
            label=body.label,
            user_id=body.user_id,
            ttl=timedelta(hours=body.ttl_hours),
        )
    return {"code": issued.code, **devices.code_dict(issued.row)}


@router.get("/api/admin/device-codes")
async def list_codes(principal: CurrentUser, services: ServicesDep) -> Any:
    require_admin(principal)
    async with services.read() as uow:
        rows = await devices.list_codes(uow, principal.org_id)
    return {"codes": [devices.code_dict(r) for r in rows]}


@router.delete("/api/admin/device-codes/{code_id}")
async def revoke_code(
    code_id: int, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        await devices.revoke_code(uow, actor, principal.org_id, code_id)
    return {"ok": True}


@router.get("/api/admin/devices")
async def list_devices(principal: CurrentUser, services: ServicesDep) -> Any:
    require_admin(principal)
    async with services.read() as uow:
        rows = await devices.list_devices(uow, principal.org_id)
    return {"devices": [devices.device_dict(d) for d in rows]}


@router.patch("/api/admin/devices/{device_id}")
async def rename_device(
    device_id: int,
    body: DevicePatch,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        device = await devices.rename(uow, actor, principal.org_id, device_id, body.name)
        return devices.device_dict(device)


@router.post("/api/admin/devices/{device_id}/revoke")
async def revoke_device(
    device_id: int, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    """A lost phone: cut off at once (its sessions end, its websockets close)."""
    require_admin(principal)
    async with services.unit() as uow:
        ended = await devices.revoke(uow, actor, principal.org_id, device_id)
    return {"ok": True, "sessions_ended": ended}


@router.get("/api/admin/policy")
async def get_policy(principal: CurrentUser, services: ServicesDep) -> Any:
    require_admin(principal)
    async with services.read() as uow:
        return policy.policy_dict(await policy.get_policy(uow, principal.org_id))


@router.put("/api/admin/policy")
async def put_policy(
    body: PolicyIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    """Change some of the rules (fields left out stay); live sessions the new rules do not
    admit end at once."""
    require_admin(principal)
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    async with services.unit() as uow:
        updated, ended = await policy.update_policy(uow, actor, principal.org_id, changes)
        return {**policy.policy_dict(updated), "sessions_ended": ended}
