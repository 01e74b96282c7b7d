"""The organisation's policy against what a client can enforce.

A client declares its platform (``browser``, ``desktop``, ``mobile_app``, ``mobile_browser``)
and capabilities (``prevent_save``, ``prevent_screenshot``, ``encrypted_storage``).  Only a
registered device's declarations count: an unregistered client has no capabilities, and is
taken to be a phone when its User-Agent says so, whatever it declares.

:func:`admission` decides whether a client may sign in at all; :func:`restrictions` what a
signed-in client may receive (e.g. view-only previews instead of files).  Both run against the
policy as it is now, on every request that needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from chat import audit
from chat.audit import Actor
from chat.errors import BadRequest, Forbidden
from chat.models import AuthSession, OrgPolicy, User, utcnow
from chat.sides import SIDE_NAMES_EN, SIDE_NAMES_JA
from chat.unit import Unit

PLATFORMS = ("browser", "desktop", "mobile_app", "mobile_browser")
MOBILE = frozenset({"mobile_app", "mobile_browser"})
CAPABILITIES = ("prevent_save", "prevent_screenshot", "encrypted_storage")
POLICY_FIELDS = (
    "registered_device_lgwan",
    "registered_device_internet",
    "mobile_encrypted_storage",
    "mobile_save_allowed",
    "mobile_screenshot_allowed",
    "outbound_approval",
)
MOBILE_UA = re.compile(r"Android|iPhone|iPad|iPod|Mobile", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Client:
    """What counts of a client's declaration (see the module's docstring)."""

    platform: str
    capabilities: frozenset[str]
    device_id: int | None

    @property
    def mobile(self) -> bool:
        return self.platform in MOBILE

    @property
    def registered(self) -> bool:
        return self.device_id is not None


def check_platform(untrusted: str) -> str:
    if untrusted not in PLATFORMS:
        raise BadRequest(
            "platform は browser・desktop・mobile_app・mobile_browser のいずれかです。",
            "platform must be browser, desktop, mobile_app or mobile_browser.",
            code="invalid_platform",
        )
    return untrusted


def check_capabilities(untrusted: list[str]) -> frozenset[str]:
    unknown = [c for c in untrusted if c not in CAPABILITIES]
    if unknown:
        raise BadRequest(
            "capabilities は prevent_save・prevent_screenshot・encrypted_storage から"
            "選んでください。",
            "capabilities may be prevent_save, prevent_screenshot and encrypted_storage.",
            code="invalid_capabilities",
            details={"unknown": unknown[:10]},
        )
    return frozenset(untrusted)


UNREGISTERED_BROWSER = Client("browser", frozenset(), None)


def unregistered_client(declared_platform: str | None, user_agent: str) -> Client:
    """No device: no capabilities; a phone by its User-Agent stays a phone."""
    platform = declared_platform if declared_platform in PLATFORMS else "browser"
    if MOBILE_UA.search(user_agent or "") and platform not in MOBILE:
        platform = "mobile_browser"
    return Client(platform or "browser", frozenset(), None)


def session_client(session: AuthSession) -> Client:
    declared = session.capabilities.get("declared", []) if session.capabilities else []
    return Client(session.platform, frozenset(declared), session.device_id)


def default_policy(org_id: int) -> OrgPolicy:
    return OrgPolicy(
        org_id=org_id,
        registered_device_lgwan=False,
        registered_device_internet=False,
        mobile_encrypted_storage=True,
        mobile_save_allowed=False,
        mobile_screenshot_allowed=True,
        outbound_approval=False,
    )


async def get_policy(uow: Unit, org_id: int) -> OrgPolicy:
    found = await uow.session.get(OrgPolicy, org_id)
    return found if found is not None else default_policy(org_id)


def policy_dict(policy: OrgPolicy) -> dict[str, Any]:
    return {name: bool(getattr(policy, name)) for name in POLICY_FIELDS}


def admission(policy: OrgPolicy, side: str, client: Client) -> Forbidden | None:
    """Why this client may not sign in on ``side`` (``None``: it may)."""
    needs_device = (
        policy.registered_device_lgwan if side == "lgwan" else policy.registered_device_internet
    )
    if needs_device and not client.registered:
        return Forbidden(
            f"{SIDE_NAMES_JA[side]}では、登録済みの端末からしか利用できません。"
            "管理者から端末認証コードを受け取り、この端末を登録してください。",
            f"Only registered devices may sign in on the {SIDE_NAMES_EN[side]}. Ask your "
            "administrator for a device code (端末認証コード) and register this device.",
            code="device_not_registered",
            details={"side": side},
        )
    if client.mobile and policy.mobile_encrypted_storage:
        if "encrypted_storage" not in client.capabilities:
            return Forbidden(
                "この端末は保存領域が暗号化されていないため(または未登録のため)、利用できません。"
                "端末の暗号化を有効にしたうえで、登録済みのアプリから利用してください。",
                "Mobile devices must have encrypted storage (declared by a registered device).",
                code="encrypted_storage_required",
            )
    if client.mobile and not policy.mobile_screenshot_allowed:
        if "prevent_screenshot" not in client.capabilities:
            return Forbidden(
                "この組織ではスマートフォンでの画面撮影が禁止されていますが、この端末は撮影を"
                "防止できません。撮影防止に対応した登録済みのアプリから利用してください。",
                "Screenshots must be blocked on mobile devices, and this client cannot block "
                "them. Use a registered app that can.",
                code="screenshot_protection_required",
            )
    return None


@dataclass(frozen=True, slots=True)
class Restrictions:
    view_only: bool  # files only as view-only previews, never as bytes
    no_screenshots: bool  # the client must block screenshots (it declared it can)
    platform: str
    registered: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "view_only": self.view_only,
            "no_screenshots": self.no_screenshots,
            "platform": self.platform,
            "registered_device": self.registered,
        }


def restrictions(policy: OrgPolicy, client: Client) -> Restrictions:
    view_only = (
        client.mobile
        and not policy.mobile_save_allowed
        and "prevent_save" not in client.capabilities
    )
    return Restrictions(
        view_only=view_only,
        no_screenshots=client.mobile and not policy.mobile_screenshot_allowed,
        platform=client.platform,
        registered=client.registered,
    )


async def update_policy(
    uow: Unit, actor: Actor, org_id: int, changes: dict[str, bool]
) -> tuple[OrgPolicy, int]:
    """Change the policy (audited) and end the live sessions it no longer admits."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise BadRequest(
            "不明なポリシー項目があります。",
            "Unknown policy fields.",
            details={"fields": sorted(unknown)},
        )
    policy = await uow.session.get(OrgPolicy, org_id)
    if policy is None:
        policy = default_policy(org_id)
        uow.session.add(policy)
    before = policy_dict(policy)
    for name, value in changes.items():
        setattr(policy, name, bool(value))
    policy.updated_at = utcnow()
    await uow.session.flush()
    after = policy_dict(policy)
    ended = await _end_inadmissible_sessions(uow, org_id, policy)
    await audit.record(
        uow.session,
        actor,
        "policy.update",
        target_type="organisation",
        target_id=org_id,
        details={
            "changed": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            "sessions_ended": ended,
        },
        org_id=org_id,
    )
    return policy, ended


async def _end_inadmissible_sessions(uow: Unit, org_id: int, policy: OrgPolicy) -> int:
    rows = (
        await uow.session.execute(
            select(AuthSession)
            .join(User, User.id == AuthSession.user_id)
            .where(
                User.org_id == org_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
            )
        )
    ).scalars()
    ids = [s.id for s in rows if admission(policy, s.side, session_client(s)) is not None]
    from chat.auth import revoke_sessions  # auth checks admission at sign-in: import late

    await revoke_sessions(uow, ids, reason="policy_changed")
    return len(ids)
