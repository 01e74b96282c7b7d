"""Administration: departments, users, CSV import, password policy.  Each act is recorded
in the audit log by the domain function, with the caller as the actor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from chat import accounts
from chat.http.deps import ActorDep, CurrentUser, ServicesDep, read_csv_body
from chat.http.schemas import (
    DepartmentIn,
    DepartmentPatch,
    PasswordIn,
    PasswordPolicyIn,
    UserIn,
    UserPatch,
)
from chat.http.views import department_view, user_view
from chat.permissions import require_admin
from chat.user_import import import_users

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/departments")
async def list_departments(principal: CurrentUser, services: ServicesDep) -> Any:
    # Every member may read the directory's departments.
    async with services.read() as uow:
        depts = await accounts.list_departments(uow, principal.org_id)
    return {"departments": [department_view(d) for d in depts]}


@router.post("/departments", status_code=201)
async def create_department(
    body: DepartmentIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        dept = await accounts.create_department(
            uow,
            principal.org_id,
            body.name,
            parent_id=body.parent_id,
            code=body.code,
            actor=actor,
        )
    return department_view(dept)


@router.patch("/departments/{department_id}")
async def rename_department(
    department_id: int,
    body: DepartmentPatch,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        dept = await accounts.rename_department(
            uow, principal.org_id, department_id, body.name, actor=actor
        )
    return department_view(dept)


@router.get("/users")
async def list_users(
    principal: CurrentUser, services: ServicesDep, include_inactive: bool = False
) -> Any:
    if include_inactive:
        require_admin(principal)
    async with services.read() as uow:
        users = await accounts.list_users(uow, principal.org_id, include_inactive=include_inactive)
    return {"users": [user_view(u) for u in users]}


@router.post("/users", status_code=201)
async def create_user(
    body: UserIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        user = await accounts.create_user(
            uow, principal.org_id, accounts.UserInput(**body.model_dump()), actor=actor
        )
    return user_view(user)


@router.patch("/users/{user_id}")
async def update_user(
    user_id: int, body: UserPatch, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        user = await accounts.update_user(
            uow, principal.org_id, user_id, body.model_dump(exclude_unset=True), actor=actor
        )
    return user_view(user)


@router.post("/users/{user_id}/password")
async def set_password(
    user_id: int, body: PasswordIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    if principal.user_id != user_id:
        require_admin(principal)
    async with services.unit() as uow:
        await accounts.set_password(uow, principal.org_id, user_id, body.password, actor=actor)
    return {"ok": True}


@router.post("/users/{user_id}/deactivate")
async def deactivate_user(
    user_id: int, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        user = await accounts.deactivate_user(uow, principal.org_id, user_id, actor=actor)
    return user_view(user)


@router.post("/users/{user_id}/reactivate")
async def reactivate_user(
    user_id: int, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        user = await accounts.reactivate_user(uow, principal.org_id, user_id, actor=actor)
    return user_view(user)


@router.post(
    "/users/import",
    status_code=201,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_users_csv(
    request: Request, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    """The request body is the CSV file itself (UTF-8, UTF-8 with BOM or Shift_JIS)."""
    require_admin(principal)
    async with services.unit() as uow:
        created = await import_users(
            uow, principal.org_id, await read_csv_body(request), actor=actor
        )
    return {"created": created}


@router.put("/password-policy")
async def password_policy(
    body: PasswordPolicyIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        org = await accounts.update_password_policy(
            uow,
            principal.org_id,
            min_length=body.min_length,
            min_classes=body.min_classes,
            actor=actor,
        )
    return {"min_length": org.password_min_length, "min_classes": org.password_min_classes}
