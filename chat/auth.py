"""Sign-in, opaque session tokens (stored as SHA-256), expiry, sign-out, lockout."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chat import audit
from chat.audit import Actor
from chat.db import Database
from chat.errors import ChatError, Forbidden, Unauthenticated
from chat.models import AuthSession, License, Organisation, OrgPolicy, User, utcnow
from chat.passwords import verify_password
from chat.policy import (
    UNREGISTERED_BROWSER,
    Client,
    admission,
    check_capabilities,
    default_policy,
    session_client,
    unregistered_client,
)
from chat.sides import SIDE_NAMES_EN, SIDE_NAMES_JA
from chat.unit import Unit

TOKEN_BYTES = 32
JST = ZoneInfo("Asia/Tokyo")  # the sentences speak to Japanese municipal staff


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(token: str) -> str:
    """The CSRF token is derived from the session token, so it needs no storage of its own and
    is useless without the HttpOnly cookie it belongs to."""
    return hashlib.sha256(b"kakehashi-csrf:" + token.encode()).hexdigest()


def csrf_matches(token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token_for(token), presented)


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: int
    side: str  # the session's side: it is valid only on requests arriving on this side
    client: Client = UNREGISTERED_BROWSER  # what counts of the client's declaration

    @property
    def user_id(self) -> int:
        return self.user.id

    @property
    def org_id(self) -> int:
        return self.user.org_id


@dataclass(frozen=True)
class ClientClaim:
    """What a client says about itself at sign-in (only a registered device's words count)."""

    platform: str | None = None
    capabilities: tuple[str, ...] = ()
    device_id: int | None = None
    device_credential: str | None = None


@dataclass(frozen=True)
class SignIn:
    token: str
    principal: Principal


def _invalid() -> Unauthenticated:
    return Unauthenticated(
        "ログインIDまたはパスワードが違います。",
        "The login id or the password is wrong.",
        code="invalid_credentials",
    )


def license_required(side: str) -> Forbidden:
    ja, en = SIDE_NAMES_JA[side], SIDE_NAMES_EN[side]
    return Forbidden(
        f"{ja}のライセンスが割り当てられていないため、{ja}からは利用できません。"
        "所属の情報管理課(システム管理者)にライセンスの割り当てを依頼してください。",
        f"You hold no license for the {en}, so you cannot use Kakehashi from it. "
        "Ask your administrator (情報管理課) to assign you one.",
        code="license_required",
        details={"side": side},
    )


async def sign_in(
    db: Database,
    login_id: str,
    password: str,
    *,
    ttl: timedelta,
    side: str,
    address: str = "",
    user_agent: str = "",
    claim: ClientClaim | None = None,
) -> SignIn:
    """Check the password, the account, the license for ``side`` and the organisation's
    device policy; every attempt, good or bad, is on the audit record (side and address)."""
    now = utcnow()
    try:
        return await _sign_in(
            db, login_id, password, ttl, side, address, user_agent, now, claim or ClientClaim()
        )
    except ChatError as exc:
        async with db.session() as s:
            user = (
                await s.execute(select(User).where(func.lower(User.login_id) == login_id.lower()))
            ).scalar_one_or_none()
            actor = Actor(
                user.id if user else None,
                login_id[:64],
                user.org_id if user else None,
                side,
                address,
            )
            await audit.record(
                s,
                actor,
                "auth.sign_in_failed",
                target_type="user",
                target_id=user.id if user else "",
                details={"reason": exc.code},
            )
        raise


async def _sign_in(
    db: Database,
    login_id: str,
    password: str,
    ttl: timedelta,
    side: str,
    address: str,
    user_agent: str,
    now: datetime,
    claim: ClientClaim,
) -> SignIn:
    async with db.session() as s:
        # Login ids are unique regardless of case (accounts.login_id_taken).
        user = (
            await s.execute(select(User).where(func.lower(User.login_id) == login_id.lower()))
        ).scalar_one_or_none()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            raise _locked(user)
    ok = await verify_password(user.password_hash if user else None, password)
    async with db.session() as s:
        if user is None:
            raise _invalid()
        # The row lock serialises concurrent attempts, so no failure is lost to a race.
        user = (
            await s.execute(select(User).where(User.id == user.id).with_for_update())
        ).scalar_one()
        if user.locked_until is not None and user.locked_until > now:
            raise _locked(user)  # locked by an attempt that finished while we verified
        org = await s.get(Organisation, user.org_id)
        assert org is not None
        if not ok:
            user.failed_logins += 1
            refusal: ChatError = _invalid()
            if user.failed_logins >= org.lockout_threshold:
                user.failed_logins = 0
                user.locked_until = now + timedelta(minutes=org.lockout_minutes)
                refusal = _locked(user)
            await s.flush()
        elif not user.is_active:
            refusal = Forbidden(
                "このアカウントは無効です。管理者にお問い合わせください。",
                "This account is deactivated. Ask your administrator.",
                code="account_inactive",
            )
        else:
            user.failed_logins = 0
            user.locked_until = None
            # Locked with the license row, so a revocation cannot slip in between.
            held = await s.get(License, (user.id, side), with_for_update=True)
            client = await _client(s, user, claim, user_agent)
            policy = await s.get(OrgPolicy, user.org_id) or default_policy(user.org_id)
            if held is None:
                refusal = license_required(side)
            elif client is None:
                refusal = Forbidden(
                    "この端末の登録は取り消されたか、無効です。管理者に確認してください。",
                    "This device's registration was revoked or is not valid. Ask your "
                    "administrator.",
                    code="device_invalid",
                )
            elif (refused := admission(policy, side, client)) is not None:
                refusal = refused
            else:
                held.last_used_at = now
                token = secrets.token_urlsafe(TOKEN_BYTES)
                row = AuthSession(
                    user_id=user.id,
                    token_hash=hash_token(token),
                    created_at=now,
                    expires_at=now + ttl,
                    address=address[:64],
                    user_agent=user_agent[:256],
                    side=side,
                    device_id=client.device_id,
                    platform=client.platform,
                    capabilities={"declared": sorted(client.capabilities)},
                )
                s.add(row)
                await s.flush()
                await audit.record(
                    s,
                    Actor(user.id, user.login_id, user.org_id, side, address),
                    "auth.sign_in",
                    target_type="session",
                    target_id=row.id,
                    details={"platform": client.platform, "device_id": client.device_id},
                )
                return SignIn(token, Principal(user, row.id, side, client))
    # Committed first: the failure count and the lock outlive the refusal.
    raise refusal


async def _client(
    s: AsyncSession, user: User, claim: ClientClaim, user_agent: str
) -> Client | None:
    """What counts of the claim: a registered device's platform and declared capabilities, or
    an unregistered client with none; ``None`` for a device credential that does not hold."""
    if claim.device_id is None:
        return unregistered_client(claim.platform, user_agent)
    from chat import devices  # devices revoke sessions through this module: import late

    device = await devices.verify(s, user, claim.device_id, claim.device_credential or "")
    if device is None:
        return None
    registered = frozenset(device.capabilities.get("declared", []))
    # A sign-in may declare less than the registration did (a setting turned off), never more.
    declared = (
        check_capabilities(list(claim.capabilities)) & registered
        if claim.capabilities
        else registered
    )
    return Client(device.platform, declared, device.id)


def _locked(user: User) -> Forbidden:
    assert user.locked_until is not None
    until = user.locked_until
    local = until.astimezone(JST).strftime("%m月%d日 %H:%M")
    return Forbidden(
        f"ログインに続けて失敗したため、{local}(日本時間)までロックされています。"
        "時間をおいてから再度お試しください。",
        f"Too many failed sign-ins: locked until {until.isoformat()}.",
        code="account_locked",
        details={"locked_until": until.isoformat()},
    )


async def authenticate(db: Database, token: str | None, side: str) -> Principal:
    """The session behind ``token``, valid on ``side`` only: a session opened on one side is
    not a key to the other (a user who holds no license there is told so)."""
    if not token:
        raise Unauthenticated("ログインしてください。", "Please sign in.")
    async with db.read_sessions() as s:
        row = (
            await s.execute(
                select(AuthSession, User)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.token_hash == hash_token(token))
            )
        ).one_or_none()
    if row is None:
        raise Unauthenticated("ログインしてください。", "Please sign in.")
    session, user = row
    if session.revoked_at is not None or session.expires_at <= utcnow() or not user.is_active:
        raise Unauthenticated(
            "セッションの有効期限が切れました。もう一度ログインしてください。",
            "Your session has ended. Please sign in again.",
            code="session_expired",
        )
    if session.side != side:
        async with db.read_sessions() as s:
            held = await s.get(License, (user.id, side))
        if held is None:
            raise license_required(side)
        raise Unauthenticated(
            f"{SIDE_NAMES_JA[side]}で改めてログインしてください。",
            f"Please sign in again on the {SIDE_NAMES_EN[side]}.",
            code="session_other_side",
        )
    return Principal(user, session.id, side, session_client(session))


async def sign_out(uow: Unit, actor: Actor, session_id: int) -> None:
    await revoke_sessions(uow, [session_id])
    await audit.record(
        uow.session, actor, "auth.sign_out", target_type="session", target_id=session_id
    )


async def sign_out_everywhere(uow: Unit, actor: Actor, user_id: int) -> list[int]:
    ids = await end_user_sessions(uow, user_id)
    await audit.record(
        uow.session,
        actor,
        "auth.sign_out_everywhere",
        target_type="user",
        target_id=user_id,
        details={"sessions": len(ids)},
    )
    return ids


async def end_user_sessions(
    uow: Unit, user_id: int, *, reason: str = "session_revoked"
) -> list[int]:
    """Revoke every live session of the user (their sockets close in every process)."""
    ids = list(
        (
            await uow.session.execute(
                select(AuthSession.id).where(
                    AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
                )
            )
        ).scalars()
    )
    await revoke_sessions(uow, ids, reason=reason)
    return ids


async def revoke_sessions(
    uow: Unit, session_ids: list[int], *, reason: str = "session_revoked"
) -> None:
    if not session_ids:
        return
    await uow.session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    uow.control("revoke_sessions", session_ids=session_ids, reason=reason)
