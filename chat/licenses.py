"""Licenses per user and per side, drawn from the organisation's pool for that side.

Every change goes through :func:`apply`: it computes the state after the change, checks the
side's pool and any department quota that would grow, and only then writes — so a change that
does not fit (one license or a whole CSV) changes nothing.  Taking a side's license away ends
the user's sessions on that side at once (their websockets close), and leaves the other side's
sessions alone.  Every change is on the audit record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from chat import audit
from chat.audit import Actor
from chat.auth import revoke_sessions
from chat.errors import BadRequest, Conflict, NotFound
from chat.models import (
    AuthSession,
    Department,
    DepartmentQuota,
    License,
    LicensePool,
    User,
    utcnow,
)
from chat.orgtree import DepartmentTree, load_tree
from chat.sides import SIDE_NAMES_EN, SIDE_NAMES_JA, SIDES, parse_side
from chat.unit import Unit
from chat.user_import import RowError, csv_error, decode_csv

USAGE_WINDOW = timedelta(days=30)
MAX_POOL_SIZE = 1_000_000
# CSV columns: a roster with one column per side (1/0, ○/×, 有/無, yes/no; empty: unchanged).
CSV_HEADERS: dict[str, str] = {
    "login_id": "login_id",
    "ログインid": "login_id",
    "ログインＩＤ": "login_id",
    "lgwan": "lgwan",
    "lgwan接続系": "lgwan",
    "internet": "internet",
    "インターネット": "internet",
    "インターネット接続系": "internet",
}
YES = frozenset({"1", "○", "◯", "有", "あり", "yes", "y", "true", "on"})
NO = frozenset({"0", "×", "✕", "無", "なし", "no", "n", "false", "off", "-"})


def check_side(untrusted: str) -> str:
    side = parse_side(untrusted)
    if side is None:
        raise BadRequest(
            "側は lgwan(LGWAN接続系)か internet(インターネット接続系)で指定してください。",
            "The side must be lgwan or internet.",
            code="invalid_side",
        )
    return side


@dataclass
class Change:
    """What a batch does: per user, per side, licensed afterwards (True) or not (False)."""

    wanted: dict[tuple[int, str], bool] = field(default_factory=dict)

    def set(self, user_id: int, side: str, licensed: bool) -> None:
        self.wanted[(user_id, side)] = licensed


@dataclass
class Outcome:
    assigned: list[tuple[int, str]]
    revoked: list[tuple[int, str]]
    sessions_ended: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "assigned": [{"user_id": u, "side": s} for u, s in self.assigned],
            "revoked": [{"user_id": u, "side": s} for u, s in self.revoked],
            "sessions_ended": self.sessions_ended,
        }


async def pools(uow: Unit, org_id: int, *, lock: bool = False) -> dict[str, int]:
    query = select(LicensePool.side, LicensePool.size).where(LicensePool.org_id == org_id)
    if lock:
        query = query.with_for_update()
    sizes: dict[str, int] = {side: 0 for side in SIDES}
    sizes.update({side: size for side, size in (await uow.session.execute(query)).all()})
    return sizes


async def assigned_counts(uow: Unit, org_id: int) -> dict[str, int]:
    rows = await uow.session.execute(
        select(License.side, func.count()).where(License.org_id == org_id).group_by(License.side)
    )
    counts: dict[str, int] = {side: 0 for side in SIDES}
    counts.update({side: n for side, n in rows.all()})
    return counts


async def pool_status(uow: Unit, org_id: int) -> list[dict[str, Any]]:
    sizes, used = await pools(uow, org_id), await assigned_counts(uow, org_id)
    return [
        {
            "side": side,
            "name": SIDE_NAMES_JA[side],
            "size": sizes[side],
            "assigned": used[side],
            "available": max(sizes[side] - used[side], 0),
        }
        for side in SIDES
    ]


async def _lock_pools(uow: Unit, org_id: int) -> None:
    """Serialise license changes of one organisation (PostgreSQL: row locks on its pools;
    SQLite: the single writer already does).  Missing pool rows are created at size 0."""
    present = await pools(uow, org_id, lock=True)
    rows = (
        await uow.session.execute(select(LicensePool.side).where(LicensePool.org_id == org_id))
    ).scalars()
    missing = set(SIDES) - set(rows)
    for side in missing:
        uow.session.add(LicensePool(org_id=org_id, side=side, size=present[side]))
    if missing:
        await uow.session.flush()


async def set_pool(uow: Unit, actor: Actor, org_id: int, side: str, size: int) -> dict[str, Any]:
    side = check_side(side)
    if not 0 <= size <= MAX_POOL_SIZE:
        raise BadRequest(
            f"ライセンス数は0〜{MAX_POOL_SIZE:,}の範囲で指定してください。",
            f"The pool size must be between 0 and {MAX_POOL_SIZE:,}.",
        )
    await _lock_pools(uow, org_id)
    used = (await assigned_counts(uow, org_id))[side]
    if size < used:
        raise Conflict(
            f"{SIDE_NAMES_JA[side]}のライセンスは既に{used}件割り当て済みです。"
            f"{size}件に減らすには、先に{used - size}件の割り当てを解除してください。",
            f"{used} licenses of the {SIDE_NAMES_EN[side]} are assigned; revoke {used - size} "
            f"before shrinking the pool to {size}.",
            code="pool_below_assigned",
            details={"side": side, "assigned": used, "size": size},
        )
    pool = await uow.session.get(LicensePool, (org_id, side))
    assert pool is not None
    before = pool.size
    pool.size, pool.updated_at = size, utcnow()
    await audit.record(
        uow.session,
        actor,
        "license.pool",
        target_type="license_pool",
        target_id=side,
        details={"side": side, "before": before, "after": size},
        org_id=org_id,
    )
    return {"side": side, "size": size, "assigned": used}


async def set_quota(
    uow: Unit, actor: Actor, org_id: int, department_id: int, side: str, size: int | None
) -> None:
    """Set aside ``size`` of the side's pool for a department and its sub-departments
    (``None``: no quota of its own)."""
    side = check_side(side)
    tree = await load_tree(uow, org_id)
    tree.require(department_id)
    await _lock_pools(uow, org_id)
    quota = await uow.session.get(DepartmentQuota, (department_id, side))
    before = quota.size if quota else None
    if size is None:
        if quota is not None:
            await uow.session.delete(quota)
    else:
        pool = (await pools(uow, org_id))[side]
        if not 0 <= size <= pool:
            raise BadRequest(
                f"部署の割当上限は0〜{pool}(この側のライセンス総数)の範囲で指定してください。",
                f"A department's quota must be between 0 and the pool's {pool}.",
                code="invalid_quota",
            )
        holders = await _holders_in(uow, tree.subtree(department_id), side)
        if size < holders:
            raise Conflict(
                f"この部署では既に{holders}人がライセンスを持っています。上限を{size}にするには、"
                f"先に{holders - size}件の割り当てを解除してください。",
                f"{holders} people of this department hold the license; revoke "
                f"{holders - size} first.",
                code="quota_below_assigned",
                details={"side": side, "assigned": holders, "size": size},
            )
        if quota is None:
            uow.session.add(DepartmentQuota(department_id=department_id, side=side, size=size))
        else:
            quota.size = size
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        "license.quota",
        target_type="department",
        target_id=department_id,
        details={"side": side, "before": before, "after": size},
        org_id=org_id,
    )


async def list_quotas(uow: Unit, org_id: int) -> list[dict[str, Any]]:
    tree = await load_tree(uow, org_id)
    rows = (
        await uow.session.execute(
            select(DepartmentQuota).where(DepartmentQuota.department_id.in_(tree.names or {-1}))
        )
    ).scalars()
    out = []
    for q in rows:
        holders = await _holders_in(uow, tree.subtree(q.department_id), q.side)
        out.append(
            {
                "department_id": q.department_id,
                "department": tree.path(q.department_id),
                "side": q.side,
                "size": q.size,
                "assigned": holders,
            }
        )
    return sorted(out, key=lambda q: (q["department"], q["side"]))


async def move_quota(
    uow: Unit, actor: Actor, org_id: int, side: str, from_id: int, to_id: int, count: int
) -> None:
    """Move ``count`` licenses of a side's quota from one department to another, atomically."""
    side = check_side(side)
    if count <= 0:
        raise BadRequest("移す数は1以上にしてください。", "The count must be at least 1.")
    if from_id == to_id:
        raise BadRequest("移動元と移動先が同じ部署です。", "The two departments are the same.")
    source = await uow.session.get(DepartmentQuota, (from_id, side))
    if source is None or source.size < count:
        raise Conflict(
            f"移動元の部署の割当上限が{count}件に足りません。",
            f"The source department's quota has fewer than {count} licenses.",
            code="quota_exhausted",
        )
    target = await uow.session.get(DepartmentQuota, (to_id, side))
    await set_quota(uow, actor, org_id, from_id, side, source.size - count)
    await set_quota(uow, actor, org_id, to_id, side, (target.size if target else 0) + count)


async def _holders_in(uow: Unit, department_ids: set[int], side: str) -> int:
    if not department_ids:
        return 0
    return (
        await uow.session.scalar(
            select(func.count())
            .select_from(License)
            .join(User, User.id == License.user_id)
            .where(License.side == side, User.department_id.in_(department_ids))
        )
    ) or 0


async def holdings(uow: Unit, user_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = list(user_ids)
    held: dict[int, set[str]] = {uid: set() for uid in ids}
    if ids:
        rows = await uow.session.execute(
            select(License.user_id, License.side).where(License.user_id.in_(ids))
        )
        for uid, side in rows.all():
            held[uid].add(side)
    return held


async def apply(
    uow: Unit, actor: Actor, org_id: int, change: Change, *, action: str = "license.change"
) -> Outcome:
    """Make ``change`` happen entirely or not at all (see the module's docstring)."""
    await _lock_pools(uow, org_id)
    user_ids = {uid for uid, _ in change.wanted}
    users = {
        u.id: u
        for u in (
            await uow.session.execute(
                select(User).where(User.id.in_(user_ids), User.org_id == org_id)
            )
        ).scalars()
    }
    unknown = sorted(user_ids - set(users))
    if unknown:
        raise NotFound(
            "指定された利用者が見つかりません。",
            "No such user in this organisation.",
            details={"user_ids": unknown},
        )
    held = await holdings(uow, user_ids)
    assign = [
        (uid, side) for (uid, side), on in change.wanted.items() if on and side not in held[uid]
    ]
    revoke = [
        (uid, side) for (uid, side), on in change.wanted.items() if not on and side in held[uid]
    ]
    inactive = sorted({uid for uid, _ in assign if not users[uid].is_active})
    if inactive:
        raise Conflict(
            "無効化された利用者にはライセンスを割り当てられません。",
            "A deactivated user cannot be given a license.",
            code="user_inactive",
            details={"user_ids": inactive},
        )
    await _check_fits(uow, org_id, users, assign, revoke)
    now = utcnow()
    for uid, side in revoke:
        await uow.session.execute(
            delete(License).where(License.user_id == uid, License.side == side)
        )
    for uid, side in assign:
        uow.session.add(
            License(
                user_id=uid, side=side, org_id=org_id, assigned_at=now, assigned_by=actor.user_id
            )
        )
    await uow.session.flush()
    ended = await _end_sessions(uow, revoke)
    for uid, side in assign:
        await audit.record(
            uow.session,
            actor,
            "license.assign",
            target_type="user",
            target_id=uid,
            details={"side": side, "login_id": users[uid].login_id, "via": action},
            org_id=org_id,
        )
    for uid, side in revoke:
        await audit.record(
            uow.session,
            actor,
            "license.revoke",
            target_type="user",
            target_id=uid,
            details={"side": side, "login_id": users[uid].login_id, "via": action},
            org_id=org_id,
        )
    return Outcome(assign, revoke, ended)


async def _check_fits(
    uow: Unit,
    org_id: int,
    users: dict[int, User],
    assign: list[tuple[int, str]],
    revoke: list[tuple[int, str]],
) -> None:
    sizes, used = await pools(uow, org_id), await assigned_counts(uow, org_id)
    for side in SIDES:
        delta = sum(1 for _, s in assign if s == side) - sum(1 for _, s in revoke if s == side)
        after = used[side] + delta
        if delta > 0 and after > sizes[side]:
            raise Conflict(
                f"{SIDE_NAMES_JA[side]}のライセンスが足りません(購入数{sizes[side]}件、"
                f"割当済み{used[side]}件、今回{delta}件の追加)。何も変更していません。"
                "割り当てを解除するか、ライセンス数を増やしてください。",
                f"Not enough {SIDE_NAMES_EN[side]} licenses: the pool has {sizes[side]}, "
                f"{used[side]} are assigned and this adds {delta}. Nothing was changed.",
                code="license_pool_exhausted",
                details={
                    "side": side,
                    "pool": sizes[side],
                    "assigned": used[side],
                    "requested": delta,
                },
            )
    quotas = list(
        (
            await uow.session.execute(
                select(DepartmentQuota)
                .join(Department, Department.id == DepartmentQuota.department_id)
                .where(Department.org_id == org_id)
            )
        ).scalars()
    )
    if not quotas:
        return
    tree = await load_tree(uow, org_id)
    for quota in quotas:
        subtree = tree.subtree(quota.department_id)
        delta = sum(
            1 for uid, s in assign if s == quota.side and users[uid].department_id in subtree
        ) - sum(1 for uid, s in revoke if s == quota.side and users[uid].department_id in subtree)
        if delta <= 0:
            continue
        before = await _holders_in(uow, subtree, quota.side)
        if before + delta > quota.size:
            name = tree.path(quota.department_id)
            raise Conflict(
                f"部署「{name}」の{SIDE_NAMES_JA[quota.side]}ライセンスの割当上限({quota.size}件)"
                f"を超えます(割当済み{before}件、今回{delta}件の追加)。何も変更していません。",
                f"The quota of {name} for the {SIDE_NAMES_EN[quota.side]} is {quota.size}; "
                f"{before} are assigned and this adds {delta}. Nothing was changed.",
                code="department_quota_exhausted",
                details={
                    "department_id": quota.department_id,
                    "side": quota.side,
                    "quota": quota.size,
                    "assigned": before,
                    "requested": delta,
                },
            )


async def _end_sessions(uow: Unit, revoked: list[tuple[int, str]]) -> int:
    """End the sessions on the side whose license was taken away (their sockets close at
    once, in every app process); the other side's sessions stay."""
    ids: list[int] = []
    now = utcnow()
    for uid, side in revoked:
        ids.extend(
            (
                await uow.session.execute(
                    select(AuthSession.id).where(
                        AuthSession.user_id == uid,
                        AuthSession.side == side,
                        AuthSession.revoked_at.is_(None),
                        AuthSession.expires_at > now,
                    )
                )
            ).scalars()
        )
    await revoke_sessions(uow, ids, reason="license_revoked")
    return len(ids)


async def move(
    uow: Unit, actor: Actor, org_id: int, side: str, from_user: int, to_user: int
) -> Outcome:
    side = check_side(side)
    if from_user == to_user:
        raise BadRequest("移動元と移動先が同じ利用者です。", "The two users are the same.")
    held = await holdings(uow, [from_user])
    if side not in held[from_user]:
        raise Conflict(
            "移動元の利用者はこのライセンスを持っていません。",
            "The source user does not hold this license.",
            code="license_not_held",
        )
    change = Change()
    change.set(from_user, side, False)
    change.set(to_user, side, True)
    return await apply(uow, actor, org_id, change, action="license.move")


def _cell(untrusted: str) -> bool | None:
    value = untrusted.strip().lower()
    if value == "":
        return None
    if value in YES:
        return True
    if value in NO:
        return False
    raise ValueError(value)


async def import_csv(uow: Unit, actor: Actor, org_id: int, untrusted: bytes) -> Outcome:
    """A roster CSV (login_id + one column per side): the whole file applies, or nothing."""
    text = decode_csv(untrusted)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadRequest("CSVが空です。", "The CSV is empty.", code="csv_invalid") from None
    except csv.Error as exc:
        raise csv_error(
            [RowError(1, "", "csv_syntax", f"CSV syntax: {exc}", "CSVの形式が正しくありません。")]
        ) from None
    columns = [CSV_HEADERS.get(h.strip().lower()) for h in header]
    errors: list[RowError] = []
    if "login_id" not in columns or not {"lgwan", "internet"} & set(columns):
        raise csv_error(
            [
                RowError(
                    1,
                    "",
                    "missing_column",
                    "the header needs login_id and at least one of lgwan / internet",
                    "見出しに「ログインID」と、「LGWAN接続系」「インターネット接続系」の"
                    "少なくとも一方が必要です。",
                )
            ]
        )
    logins = {
        u.lower(): uid
        for uid, u in (
            await uow.session.execute(select(User.id, User.login_id).where(User.org_id == org_id))
        ).all()
    }
    change = Change()
    seen: dict[str, int] = {}
    last_line = reader.line_num
    try:
        for record in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            cells = {
                name: value
                for name, value in zip(columns, record, strict=False)
                if name is not None
            }
            login = cells.get("login_id", "").strip()
            uid = logins.get(login.lower())
            if uid is None:
                errors.append(
                    RowError(
                        line,
                        "login_id",
                        "unknown_user",
                        f"no user {login!r}",
                        f"ログインID「{login}」の利用者が見つかりません。",
                    )
                )
                continue
            if login.lower() in seen:
                errors.append(
                    RowError(
                        line,
                        "login_id",
                        "duplicate_in_file",
                        f"duplicate of line {seen[login.lower()]}",
                        f"{seen[login.lower()]}行目と同じログインIDです。",
                    )
                )
                continue
            seen[login.lower()] = line
            for side in SIDES:
                if side not in cells:
                    continue
                try:
                    wanted = _cell(cells[side])
                except ValueError:
                    errors.append(
                        RowError(
                            line,
                            side,
                            "invalid_value",
                            "write 1 or 0 (○/×, 有/無, yes/no), or leave it empty",
                            "1 か 0(○/×、有/無)で指定するか、空欄にしてください。",
                        )
                    )
                    continue
                if wanted is not None:
                    change.set(uid, side, wanted)
    except csv.Error as exc:
        errors.append(
            RowError(
                last_line + 1,
                "",
                "csv_syntax",
                f"CSV syntax: {exc}",
                "CSVの形式が正しくありません。",
            )
        )
    if errors:
        raise csv_error(errors)
    return await apply(uow, actor, org_id, change, action="license.import")


async def usage_report(
    uow: Unit, org_id: int, *, within: set[int] | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per side and per department: licenses assigned, used in the last 30 days, never used.
    ``within`` limits the report to those departments (a supervisor's own)."""
    now = now or utcnow()
    since = now - USAGE_WINDOW
    tree = await load_tree(uow, org_id)
    rows = await uow.session.execute(
        select(User.department_id, License.side, License.last_used_at)
        .join(User, User.id == License.user_id)
        .where(License.org_id == org_id)
    )
    stats: dict[tuple[int | None, str], dict[str, int]] = {}
    for dept_id, side, last_used in rows.all():
        if within is not None and dept_id not in within:
            continue
        entry = stats.setdefault((dept_id, side), {"assigned": 0, "used_30d": 0, "never_used": 0})
        entry["assigned"] += 1
        if last_used is None:
            entry["never_used"] += 1
        elif last_used >= since:
            entry["used_30d"] += 1
    quotas = {
        (q.department_id, q.side): q.size
        for q in (await uow.session.execute(select(DepartmentQuota))).scalars()
        if q.department_id in tree.names
    }
    report = []
    for (dept_id, side), entry in sorted(
        stats.items(), key=lambda kv: (SIDES.index(kv[0][1]), tree.path(kv[0][0]))
    ):
        report.append(
            {
                "side": side,
                "department_id": dept_id,
                "department": tree.path(dept_id),
                "quota": quotas.get((dept_id, side)) if dept_id is not None else None,
                **entry,
            }
        )
    return report


USAGE_CSV_COLUMNS = (
    ("side", "側"),
    ("department", "部署"),
    ("quota", "部署の割当上限"),
    ("assigned", "割当数"),
    ("used_30d", "30日以内に利用"),
    ("never_used", "未使用"),
)


def usage_csv(report: list[dict[str, Any]]) -> bytes:
    """UTF-8 with BOM and CRLF: what Excel opens without asking."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([ja for _, ja in USAGE_CSV_COLUMNS])
    for row in report:
        values = dict(row)
        values["side"] = SIDE_NAMES_JA[row["side"]]
        writer.writerow(["" if values[k] is None else values[k] for k, _ in USAGE_CSV_COLUMNS])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


async def list_holders(
    uow: Unit, org_id: int, *, within: set[int] | None = None
) -> list[dict[str, Any]]:
    """Every active user (of ``within`` departments) with their licenses and last use."""
    users = list(
        (
            await uow.session.execute(
                select(User)
                .where(User.org_id == org_id, User.is_active)
                .order_by(User.kana, User.id)
            )
        ).scalars()
    )
    if within is not None:
        users = [u for u in users if u.department_id in within]
    licenses: dict[int, dict[str, Any]] = {}
    rows = await uow.session.execute(
        select(License).where(License.org_id == org_id, License.user_id.in_([u.id for u in users]))
    )
    for lic in rows.scalars():
        licenses.setdefault(lic.user_id, {})[lic.side] = {
            "assigned_at": lic.assigned_at.isoformat(),
            "last_used_at": lic.last_used_at.isoformat() if lic.last_used_at else None,
        }
    return [
        {
            "user_id": u.id,
            "login_id": u.login_id,
            "display_name": u.display_name,
            "department_id": u.department_id,
            "licenses": licenses.get(u.id, {}),
        }
        for u in users
    ]


def subtree_or_all(tree: DepartmentTree, department_id: int | None) -> set[int] | None:
    return None if department_id is None else tree.subtree(department_id)


INITIAL_POOL_SIZE = 30  # the seed municipality's budget: 30 licenses a side


async def bootstrap(uow: Unit, org_id: int, admin_id: int) -> None:
    """A new organisation's pools, and both sides' licenses for its first administrator."""
    for side in SIDES:
        uow.session.add(LicensePool(org_id=org_id, side=side, size=INITIAL_POOL_SIZE))
    await uow.session.flush()
    change = Change()
    for side in SIDES:
        change.set(admin_id, side, True)
    await apply(uow, audit.SYSTEM, org_id, change, action="license.bootstrap")
