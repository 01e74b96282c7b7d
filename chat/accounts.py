"""Organisation, departments (部 → 課 → 係) and users.

Every change an administrator makes here is on the audit record, written in the same
transaction as the change by the function that makes it (``actor``: who, from where).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from chat import audit
from chat.audit import Actor
from chat.auth import end_user_sessions
from chat.errors import BadRequest, Conflict, NotFound
from chat.models import Department, Organisation, User, utcnow
from chat.passwords import check_password_policy, hash_password
from chat.permissions import ROLES
from chat.unit import Unit

LOGIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_DEPARTMENT_DEPTH = 6


@dataclass
class UserInput:
    login_id: str
    display_name: str
    kana: str = ""
    department_id: int | None = None
    title: str = ""
    email: str = ""
    role: str = "member"
    password: str | None = None


def user_field_errors(data: UserInput) -> dict[str, str]:
    """Validate one user's fields; ``{field: English reason}`` (empty when valid)."""
    errors: dict[str, str] = {}
    if not LOGIN_ID_RE.match(data.login_id):
        errors["login_id"] = "1-64 characters: letters, digits and . _ @ -"
    if not data.display_name.strip() or len(data.display_name) > 100:
        errors["display_name"] = "required, at most 100 characters"
    if len(data.kana) > 100:
        errors["kana"] = "at most 100 characters"
    if len(data.title) > 100:
        errors["title"] = "at most 100 characters"
    if data.email and (len(data.email) > 254 or not EMAIL_RE.match(data.email)):
        errors["email"] = "not an e-mail address"
    if data.role not in ROLES:
        errors["role"] = "one of admin, supervisor, member"
    return errors


def _invalid_user(errors: dict[str, str]) -> BadRequest:
    fields = "、".join(errors)
    return BadRequest(
        f"入力に誤りがあります({fields})。",
        "Invalid fields: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
        details={"fields": errors},
    )


async def get_org(uow: Unit, org_id: int) -> Organisation:
    org = await uow.session.get(Organisation, org_id)
    if org is None:
        raise NotFound("組織が見つかりません。", "Organisation not found.")
    return org


async def create_organisation(uow: Unit, name: str) -> Organisation:
    org = Organisation(name=name)
    uow.session.add(org)
    await uow.session.flush()
    return org


async def update_password_policy(
    uow: Unit, org_id: int, *, min_length: int, min_classes: int, actor: Actor = audit.SYSTEM
) -> Organisation:
    if not 8 <= min_length <= 128 or not 1 <= min_classes <= 4:
        raise BadRequest(
            "最小文字数は8〜128、文字種は1〜4で指定してください。",
            "min_length must be 8-128 and min_classes 1-4.",
        )
    org = await get_org(uow, org_id)
    before = {"min_length": org.password_min_length, "min_classes": org.password_min_classes}
    org.password_min_length = min_length
    org.password_min_classes = min_classes
    await audit.record(
        uow.session,
        actor,
        "policy.password",
        target_type="organisation",
        target_id=org_id,
        details={"before": before, "after": {"min_length": min_length, "min_classes": min_classes}},
        org_id=org_id,
    )
    return org


async def get_department(uow: Unit, org_id: int, department_id: int) -> Department:
    dept = await uow.session.get(Department, department_id)
    if dept is None or dept.org_id != org_id:
        raise NotFound("部署が見つかりません。", "Department not found.")
    return dept


async def department_depth(uow: Unit, dept: Department) -> int:
    depth = 1
    while dept.parent_id is not None:
        parent = await uow.session.get(Department, dept.parent_id)
        assert parent is not None
        dept = parent
        depth += 1
    return depth


def _check_department_name(name: str) -> None:
    if not name.strip() or len(name) > 200:
        raise BadRequest(
            "部署名を200文字以内で入力してください。", "A department needs a name (≤ 200)."
        )


async def create_department(
    uow: Unit,
    org_id: int,
    name: str,
    *,
    parent_id: int | None = None,
    code: str | None = None,
    actor: Actor = audit.SYSTEM,
) -> Department:
    _check_department_name(name)
    if parent_id is not None:
        parent = await get_department(uow, org_id, parent_id)
        if await department_depth(uow, parent) >= MAX_DEPARTMENT_DEPTH:
            raise BadRequest("部署の階層が深すぎます。", "Departments are nested too deeply.")
    if code is not None:
        exists = await uow.session.scalar(
            select(Department.id).where(Department.org_id == org_id, Department.code == code)
        )
        if exists is not None:
            raise Conflict(
                f"部署コード「{code}」は既に使われています。",
                f"The department code {code!r} is taken.",
                code="already_exists",
            )
    dept = Department(org_id=org_id, name=name.strip(), parent_id=parent_id, code=code)
    uow.session.add(dept)
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        "department.create",
        target_type="department",
        target_id=dept.id,
        details={"name": dept.name, "parent_id": parent_id, "code": code},
        org_id=org_id,
    )
    return dept


async def rename_department(
    uow: Unit, org_id: int, department_id: int, name: str, *, actor: Actor = audit.SYSTEM
) -> Department:
    _check_department_name(name)
    dept = await get_department(uow, org_id, department_id)
    before, dept.name = dept.name, name.strip()
    if dept.name != before:
        await audit.record(
            uow.session,
            actor,
            "department.rename",
            target_type="department",
            target_id=dept.id,
            details={"before": before, "after": dept.name},
            org_id=org_id,
        )
    return dept


async def list_departments(uow: Unit, org_id: int) -> list[Department]:
    rows = await uow.session.execute(
        select(Department).where(Department.org_id == org_id).order_by(Department.id)
    )
    return list(rows.scalars())


async def get_user(uow: Unit, org_id: int, user_id: int) -> User:
    user = await uow.session.get(User, user_id)
    if user is None or user.org_id != org_id:
        raise NotFound("ユーザーが見つかりません。", "User not found.")
    return user


async def login_id_taken(uow: Unit, login_id: str) -> bool:
    return (
        await uow.session.scalar(
            select(User.id).where(func.lower(User.login_id) == login_id.lower())
        )
    ) is not None


async def create_user(
    uow: Unit, org_id: int, data: UserInput, *, actor: Actor = audit.SYSTEM
) -> User:
    user = await insert_user(uow, org_id, data)
    await audit.record(
        uow.session,
        actor,
        "user.create",
        target_type="user",
        target_id=user.id,
        details=_user_details(user),
        org_id=org_id,
    )
    return user


def _user_details(user: User) -> dict[str, Any]:
    return {
        "login_id": user.login_id,
        "display_name": user.display_name,
        "role": user.role,
        "department_id": user.department_id,
    }


async def insert_user(uow: Unit, org_id: int, data: UserInput) -> User:
    """Check and add one user without an audit entry: for a caller that records the act
    itself (the CSV import records one entry for the whole file)."""
    errors = user_field_errors(data)
    if errors:
        raise _invalid_user(errors)
    org = await get_org(uow, org_id)
    if data.department_id is not None:
        await get_department(uow, org_id, data.department_id)
    if await login_id_taken(uow, data.login_id):
        raise Conflict(
            f"ログインID「{data.login_id}」は既に使われています。",
            f"The login id {data.login_id!r} is taken.",
            code="already_exists",
        )
    password_hash = None
    if data.password is not None:
        check_password_policy(org, data.password)
        password_hash = await hash_password(data.password)
    user = User(
        org_id=org_id,
        login_id=data.login_id,
        display_name=data.display_name.strip(),
        kana=data.kana.strip(),
        department_id=data.department_id,
        title=data.title.strip(),
        email=data.email.strip(),
        role=data.role,
        password_hash=password_hash,
    )
    uow.session.add(user)
    await uow.session.flush()
    return user


USER_FIELDS = ("display_name", "kana", "department_id", "title", "email", "role")


async def update_user(
    uow: Unit, org_id: int, user_id: int, changes: dict[str, Any], *, actor: Actor = audit.SYSTEM
) -> User:
    """Change a user's fields; what changed is on the record, before → after (a change of role
    under an action of its own, ``user.role_change``, so that it is easy to find)."""
    user = await get_user(uow, org_id, user_id)
    merged = UserInput(
        login_id=user.login_id,
        display_name=changes.get("display_name", user.display_name),
        kana=changes.get("kana", user.kana),
        department_id=changes.get("department_id", user.department_id),
        title=changes.get("title", user.title),
        email=changes.get("email", user.email),
        role=changes.get("role", user.role),
    )
    errors = user_field_errors(merged)
    if errors:
        raise _invalid_user(errors)
    if merged.department_id is not None:
        await get_department(uow, org_id, merged.department_id)
    changed: dict[str, dict[str, Any]] = {}
    for key in USER_FIELDS:
        before, after = getattr(user, key), getattr(merged, key)
        if before != after:
            changed[key] = {"before": before, "after": after}
            setattr(user, key, after)
    if changed:
        await audit.record(
            uow.session,
            actor,
            "user.role_change" if "role" in changed else "user.update",
            target_type="user",
            target_id=user.id,
            details={"login_id": user.login_id, "changes": changed},
            org_id=org_id,
        )
    return user


async def set_password(
    uow: Unit, org_id: int, user_id: int, password: str, *, actor: Actor = audit.SYSTEM
) -> User:
    """Set a password: the user's own change, or an administrator's reset (which also lifts
    a lockout); the record says which."""
    user = await get_user(uow, org_id, user_id)
    check_password_policy(await get_org(uow, org_id), password)
    user.password_hash = await hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    own = actor.user_id is not None and actor.user_id == user.id
    await audit.record(
        uow.session,
        actor,
        "user.password_change" if own else "user.password_reset",
        target_type="user",
        target_id=user.id,
        details={"login_id": user.login_id},
        org_id=org_id,
    )
    return user


async def deactivate_user(
    uow: Unit, org_id: int, user_id: int, *, actor: Actor = audit.SYSTEM
) -> User:
    """Deactivate and end every session at once (live websockets are closed by the hub)."""
    user = await get_user(uow, org_id, user_id)
    was_active = user.is_active
    user.is_active = False
    user.deactivated_at = utcnow()
    ended = await end_user_sessions(uow, user.id, reason="account_deactivated")
    if was_active or ended:
        await audit.record(
            uow.session,
            actor,
            "user.deactivate",
            target_type="user",
            target_id=user.id,
            details={"login_id": user.login_id, "sessions_ended": len(ended)},
            org_id=org_id,
        )
    return user


async def reactivate_user(
    uow: Unit, org_id: int, user_id: int, *, actor: Actor = audit.SYSTEM
) -> User:
    user = await get_user(uow, org_id, user_id)
    was_active = user.is_active
    user.is_active = True
    user.deactivated_at = None
    if not was_active:
        await audit.record(
            uow.session,
            actor,
            "user.reactivate",
            target_type="user",
            target_id=user.id,
            details={"login_id": user.login_id},
            org_id=org_id,
        )
    return user


async def list_users(uow: Unit, org_id: int, *, include_inactive: bool = False) -> list[User]:
    query = select(User).where(User.org_id == org_id)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    rows = await uow.session.execute(query.order_by(User.kana, User.id))
    return list(rows.scalars())


def generate_password() -> str:
    """A one-time password that satisfies any policy up to 4 classes and 20 characters."""
    return secrets.token_urlsafe(15) + "-Aa1"


async def bootstrap(uow: Unit, org_name: str, login_id: str) -> tuple[User, str] | None:
    """Create the organisation and a first administrator when the database has no user."""
    if await uow.session.scalar(select(func.count(User.id))):
        return None
    org = await create_organisation(uow, org_name)
    password = generate_password()
    admin = await create_user(
        uow,
        org.id,
        UserInput(login_id=login_id, display_name="管理者", role="admin", password=password),
    )
    return admin, password
