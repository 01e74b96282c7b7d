"""Licenses per side: pools, assignments (one, many, CSV), moves, quotas, the usage report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from chat import licenses
from chat.http.deps import ActorDep, CurrentUser, ServicesDep, read_csv_body
from chat.http.schemas import (
    LicenseChangeIn,
    LicenseMoveIn,
    PoolIn,
    QuotaIn,
    QuotaMoveIn,
)
from chat.orgtree import load_tree
from chat.permissions import require_admin, require_supervisor_scope

router = APIRouter(prefix="/api/admin/licenses", tags=["licenses"])


@router.get("/pools")
async def get_pools(principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        require_supervisor_scope(principal, await load_tree(uow, principal.org_id))
        return {"pools": await licenses.pool_status(uow, principal.org_id)}


@router.put("/pools/{side}")
async def put_pool(
    side: str, body: PoolIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        await licenses.set_pool(uow, actor, principal.org_id, side, body.size)
        return {"pools": await licenses.pool_status(uow, principal.org_id)}


@router.get("")
async def list_licenses(
    principal: CurrentUser, services: ServicesDep, department_id: int | None = None
) -> Any:
    """Who holds which license (a supervisor sees their own departments)."""
    async with services.read() as uow:
        tree = await load_tree(uow, principal.org_id)
        within = require_supervisor_scope(principal, tree, department_id)
        return {"users": await licenses.list_holders(uow, principal.org_id, within=within)}


async def _change(
    body: LicenseChangeIn, licensed: bool, principal: Any, actor: Any, services: Any
) -> Any:
    """Assign (``licensed``) or revoke one side's license for the listed users, all or none."""
    require_admin(principal)
    side = licenses.check_side(body.side)
    change = licenses.Change()
    for uid in body.user_ids:
        change.set(uid, side, licensed)
    action = "license.assign" if licensed else "license.revoke"
    async with services.unit() as uow:
        outcome = await licenses.apply(uow, actor, principal.org_id, change, action=action)
        return {**outcome.to_dict(), "pools": await licenses.pool_status(uow, principal.org_id)}


@router.post("/assign")
async def assign(
    body: LicenseChangeIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    return await _change(body, True, principal, actor, services)


@router.post("/revoke")
async def revoke(
    body: LicenseChangeIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    return await _change(body, False, principal, actor, services)


@router.post("/move")
async def move(
    body: LicenseMoveIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        outcome = await licenses.move(
            uow, actor, principal.org_id, body.side, body.from_user_id, body.to_user_id
        )
        return {**outcome.to_dict(), "pools": await licenses.pool_status(uow, principal.org_id)}


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_csv(
    request: Request, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    """The body is a roster CSV: ``login_id`` plus ``lgwan`` / ``internet`` columns (1/0,
    ○/×, 有/無; empty leaves it as it is).  UTF-8, UTF-8 with BOM or Shift_JIS.  The whole
    file applies or nothing does; bad rows are listed by line and column."""
    require_admin(principal)
    async with services.unit() as uow:
        outcome = await licenses.import_csv(
            uow, actor, principal.org_id, await read_csv_body(request)
        )
        return {**outcome.to_dict(), "pools": await licenses.pool_status(uow, principal.org_id)}


@router.get("/quotas")
async def get_quotas(principal: CurrentUser, services: ServicesDep) -> Any:
    """Every department quota with how many of its people (and sub-departments') hold it."""
    async with services.read() as uow:
        require_supervisor_scope(principal, await load_tree(uow, principal.org_id))
        return {"quotas": await licenses.list_quotas(uow, principal.org_id)}


@router.put("/quotas/{department_id}/{side}")
async def put_quota(
    department_id: int,
    side: str,
    body: QuotaIn,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        await licenses.set_quota(uow, actor, principal.org_id, department_id, side, body.size)
    return {"department_id": department_id, "side": side, "size": body.size}


@router.post("/quotas/move")
async def move_quota(
    body: QuotaMoveIn, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    require_admin(principal)
    async with services.unit() as uow:
        await licenses.move_quota(
            uow,
            actor,
            principal.org_id,
            body.side,
            body.from_department_id,
            body.to_department_id,
            body.count,
        )
    return {"ok": True}


@router.get("/usage", response_model=None)
async def usage(
    principal: CurrentUser,
    services: ServicesDep,
    department_id: int | None = None,
    format: str = "json",
) -> Any:
    """Per side and department: assigned, used in the last 30 days, never used.  ``format=csv``
    gives a file Excel opens (UTF-8 with BOM)."""
    async with services.read() as uow:
        tree = await load_tree(uow, principal.org_id)
        within = require_supervisor_scope(principal, tree, department_id)
        report = await licenses.usage_report(uow, principal.org_id, within=within)
        pools = await licenses.pool_status(uow, principal.org_id)
    if format == "csv":
        return Response(
            licenses.usage_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="license-usage.csv"; '
                "filename*=UTF-8''%E3%83%A9%E3%82%A4%E3%82%BB%E3%83%B3%E3%82%B9%E5%88%A9%E7%94%A8%E7%8A%B6%E6%B3%81.csv"
            },
        )
    return {"pools": pools, "departments": report}
