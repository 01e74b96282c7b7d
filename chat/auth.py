"""Sign-in, opaque session tokens (stored as SHA-256), expiry, sign-out, lockout."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from chat.db import Database
from chat.errors import Forbidden, Unauthenticated
from chat.models import AuthSession, Organisation, User, utcnow
from chat.passwords import verify_password
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

    @property
    def user_id(self) -> int:
        return self.user.id

    @property
    def org_id(self) -> int:
        return self.user.org_id


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


async def sign_in(
    db: Database,
    login_id: str,
    password: str,
    *,
    ttl: timedelta,
    address: str = "",
    user_agent: str = "",
) -> SignIn:
    now = utcnow()
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
            if user.failed_logins >= org.lockout_threshold:
                user.failed_logins = 0
                user.locked_until = now + timedelta(minutes=org.lockout_minutes)
                locked = user
            else:
                locked = None
            await s.flush()
        elif not user.is_active:
            locked = None
        else:
            user.failed_logins = 0
            user.locked_until = None
            token = secrets.token_urlsafe(TOKEN_BYTES)
            row = AuthSession(
                user_id=user.id,
                token_hash=hash_token(token),
                created_at=now,
                expires_at=now + ttl,
                address=address[:64],
                user_agent=user_agent[:256],
            )
            s.add(row)
            await s.flush()
            return SignIn(token, Principal(user, row.id))
    if not ok:
        raise _locked(locked) if locked is not None else _invalid()
    raise Forbidden(
        "このアカウントは無効です。管理者にお問い合わせください。",
        "This account is deactivated. Ask your administrator.",
        code="account_inactive",
    )


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


async def authenticate(db: Database, token: str | None) -> Principal:
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
    return Principal(user, session.id)


async def sign_out(uow: Unit, session_id: int) -> None:
    await revoke_sessions(uow, [session_id])


async def sign_out_everywhere(uow: Unit, user_id: int) -> list[int]:
    ids = list(
        (
            await uow.session.execute(
                select(AuthSession.id).where(
                    AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
                )
            )
        ).scalars()
    )
    await revoke_sessions(uow, ids)
    return ids


async def revoke_sessions(uow: Unit, session_ids: list[int]) -> None:
    if not session_ids:
        return
    await uow.session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    uow.control("revoke_sessions", session_ids=session_ids)
