"""Registered devices (端末認証): one-time device codes, device credentials, revocation.

An administrator issues a code with an expiry (optionally for one user); the device registers
with it once, declaring its platform and capabilities, and receives a credential that it
presents at every sign-in.  Codes and credentials are stored as SHA-256 only.  Revoking a device
ends every session opened from it at once (its websockets close, in every process).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chat import audit
from chat.audit import Actor
from chat.auth import revoke_sessions
from chat.errors import BadRequest, NotFound
from chat.models import AuthSession, Device, DeviceCode, User, utcnow
from chat.policy import check_capabilities, check_platform
from chat.unit import Unit

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CODE_LENGTH = 16  # 80 bits, shown as XXXX-XXXX-XXXX-XXXX
CREDENTIAL_BYTES = 32
CODE_TTL_MAX = timedelta(days=30)
DEVICE_NAME_MAX = 100


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_code(untrusted: str) -> str:
    return "".join(ch for ch in untrusted.upper() if ch.isalnum())


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@dataclass(frozen=True)
class IssuedCode:
    code: str  # shown once
    row: DeviceCode


async def issue_code(
    uow: Unit,
    actor: Actor,
    org_id: int,
    *,
    label: str = "",
    user_id: int | None = None,
    ttl: timedelta = timedelta(days=1),
) -> IssuedCode:
    if not timedelta(minutes=5) <= ttl <= CODE_TTL_MAX:
        raise BadRequest(
            "有効期限は5分〜30日の範囲で指定してください。",
            "The code's lifetime must be between 5 minutes and 30 days.",
        )
    if user_id is not None:
        user = await uow.session.get(User, user_id)
        if user is None or user.org_id != org_id:
            raise NotFound("利用者が見つかりません。", "No such user.")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = utcnow()
    row = DeviceCode(
        org_id=org_id,
        code_hash=_digest(raw),
        label=label.strip()[:DEVICE_NAME_MAX],
        user_id=user_id,
        created_by=actor.user_id,
        created_at=now,
        expires_at=now + ttl,
    )
    uow.session.add(row)
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        "device.code_issue",
        target_type="device_code",
        target_id=row.id,
        details={"label": row.label, "user_id": user_id, "expires_at": row.expires_at.isoformat()},
        org_id=org_id,
    )
    return IssuedCode(format_code(raw), row)


def _check_name(untrusted: str) -> str:
    name = untrusted.strip()
    if not 1 <= len(name) <= DEVICE_NAME_MAX:
        raise BadRequest(
            "端末名は1〜100文字で指定してください。", "The device name must be 1-100 characters."
        )
    return name


def _code_invalid() -> BadRequest:
    return BadRequest(
        "端末認証コードが正しくないか、有効期限が切れているか、既に使われています。"
        "管理者に新しいコードを発行してもらってください。",
        "The device code is wrong, expired or already used. Ask your administrator for a new one.",
        code="device_code_invalid",
    )


@dataclass(frozen=True)
class Registered:
    device: Device
    credential: str  # shown once


async def register(
    uow: Unit,
    actor: Actor,
    untrusted_code: str,
    *,
    name: str,
    platform: str,
    capabilities: list[str],
) -> Registered:
    """Use a code once: the device gets its credential.  A failed attempt is audited."""
    platform = check_platform(platform)
    caps = check_capabilities(capabilities)
    name = _check_name(name)
    raw = normalise_code(untrusted_code)
    row = (
        await uow.session.execute(
            select(DeviceCode).where(DeviceCode.code_hash == _digest(raw)).with_for_update()
        )
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise _code_invalid()
    credential = secrets.token_urlsafe(CREDENTIAL_BYTES)
    device = Device(
        org_id=row.org_id,
        user_id=row.user_id,
        name=name,
        platform=platform,
        capabilities={"declared": sorted(caps)},
        credential_hash=_digest(credential),
        created_at=now,
    )
    uow.session.add(device)
    await uow.session.flush()
    row.used_at, row.device_id = now, device.id
    await audit.record(
        uow.session,
        actor,
        "device.register",
        target_type="device",
        target_id=device.id,
        details={"name": name, "platform": platform, "capabilities": sorted(caps)},
        org_id=row.org_id,
    )
    return Registered(device, credential)


async def verify(
    session: AsyncSession, user: User, device_id: int, untrusted_credential: str
) -> Device | None:
    """The device if the credential is its own, it is not revoked, it belongs to the user's
    organisation and (if bound to a person) to this user; otherwise ``None``."""
    device = await session.get(Device, device_id)
    if device is None or device.revoked_at is not None or device.org_id != user.org_id:
        return None
    if device.user_id is not None and device.user_id != user.id:
        return None
    if not secrets.compare_digest(device.credential_hash, _digest(untrusted_credential)):
        return None
    device.last_seen_at = utcnow()
    return device


def device_dict(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "platform": device.platform,
        "capabilities": device.capabilities.get("declared", []),
        "user_id": device.user_id,
        "created_at": device.created_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None,
    }


def code_dict(row: DeviceCode) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "user_id": row.user_id,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "used_at": row.used_at.isoformat() if row.used_at else None,
        "device_id": row.device_id,
    }


async def list_devices(uow: Unit, org_id: int) -> list[Device]:
    return list(
        (
            await uow.session.execute(
                select(Device).where(Device.org_id == org_id).order_by(Device.id)
            )
        ).scalars()
    )


async def list_codes(uow: Unit, org_id: int) -> list[DeviceCode]:
    return list(
        (
            await uow.session.execute(
                select(DeviceCode)
                .where(DeviceCode.org_id == org_id, DeviceCode.used_at.is_(None))
                .order_by(DeviceCode.id.desc())
            )
        ).scalars()
    )


async def _get(uow: Unit, org_id: int, device_id: int) -> Device:
    device = await uow.session.get(Device, device_id)
    if device is None or device.org_id != org_id:
        raise NotFound("端末が見つかりません。", "No such device.")
    return device


async def rename(uow: Unit, actor: Actor, org_id: int, device_id: int, name: str) -> Device:
    device = await _get(uow, org_id, device_id)
    name = _check_name(name)
    before, device.name = device.name, name
    await audit.record(
        uow.session,
        actor,
        "device.rename",
        target_type="device",
        target_id=device.id,
        details={"before": before, "after": name},
        org_id=org_id,
    )
    return device


async def revoke(uow: Unit, actor: Actor, org_id: int, device_id: int) -> int:
    """Cut the device off: its credential stops working and its sessions end at once."""
    device = await _get(uow, org_id, device_id)
    if device.revoked_at is None:
        device.revoked_at = utcnow()
    ids = list(
        (
            await uow.session.execute(
                select(AuthSession.id).where(
                    AuthSession.device_id == device.id, AuthSession.revoked_at.is_(None)
                )
            )
        ).scalars()
    )
    await revoke_sessions(uow, ids, reason="device_revoked")
    await audit.record(
        uow.session,
        actor,
        "device.revoke",
        target_type="device",
        target_id=device.id,
        details={"name": device.name, "sessions_ended": len(ids)},
        org_id=org_id,
    )
    return len(ids)


async def revoke_code(uow: Unit, actor: Actor, org_id: int, code_id: int) -> None:
    row = await uow.session.get(DeviceCode, code_id)
    if row is None or row.org_id != org_id or row.used_at is not None:
        raise NotFound("未使用の端末認証コードが見つかりません。", "No such unused device code.")
    await uow.session.delete(row)
    await audit.record(
        uow.session,
        actor,
        "device.code_revoke",
        target_type="device_code",
        target_id=code_id,
        org_id=org_id,
    )
