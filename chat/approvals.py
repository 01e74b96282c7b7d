"""Approvals by supervisors (課長・班長): releasing an original, and outbound transfers.

``release``: a file sent from the internet side reaches LGWAN-side members only sanitised.  An
LGWAN-side member may ask for the original with a reason; a supervisor of the requester's
department (or one above it; an administrator when the department has none) approves or
rejects.  An approval releases the original to that requester only.

``outbound``: when the organisation's policy asks for it, a file sent from the LGWAN side
reaches the room's internet-side members only after a supervisor of the sender's department
approves the transfer (the seed municipality's rule: data leaves only with the 課長・班長's
permission).

Every request and decision is audited; the people concerned get a personal ``notice`` on
their open connections, and find everything again in their inbox.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chat import audit
from chat.audit import Actor
from chat.auth import Principal
from chat.errors import BadRequest, Conflict, Forbidden, NotFound
from chat.models import Approval, Attachment, User, utcnow
from chat.orgtree import load_tree
from chat.permissions import require_decider
from chat.unit import Unit

REASON_MAX_CHARS = 500
KINDS = ("release", "outbound")


def approval_dict(
    a: Approval, attachment: Attachment | None = None, requester: User | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "kind": a.kind,
        "attachment_id": a.attachment_id,
        "requester_id": a.requester_id,
        "department_id": a.department_id,
        "reason": a.reason,
        "state": a.state,
        "created_at": a.created_at.isoformat(),
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "note": a.note,
    }
    if attachment is not None:
        out["filename"] = attachment.filename
        out["room_id"] = attachment.room_id
        out["size"] = attachment.size
    if requester is not None:
        out["requester_name"] = requester.display_name
    return out


async def approvers_of(uow: Unit, org_id: int, department_id: int | None) -> list[int]:
    """Supervisors of the department or of one above it; administrators if there are none."""
    tree = await load_tree(uow, org_id)
    chain: list[int] = []
    node = department_id
    while node is not None and node in tree.names and len(chain) < 64:
        chain.append(node)
        node = tree.parent[node]
    ids: list[int] = []
    if chain:
        ids = list(
            (
                await uow.session.execute(
                    select(User.id).where(
                        User.org_id == org_id,
                        User.is_active,
                        User.role == "supervisor",
                        User.department_id.in_(chain),
                    )
                )
            ).scalars()
        )
    if not ids:
        ids = list(
            (
                await uow.session.execute(
                    select(User.id).where(
                        User.org_id == org_id, User.is_active, User.role == "admin"
                    )
                )
            ).scalars()
        )
    return ids


def _notify(uow: Unit, user_ids: list[int], notice: dict[str, Any]) -> None:
    if user_ids:
        uow.control("notify_users", user_ids=user_ids, notice=notice)


async def _tell_approvers(uow: Unit, approval: Approval, attachment: Attachment) -> None:
    """A new request reaches everyone who may decide it (never its own requester)."""
    approvers = await approvers_of(uow, approval.org_id, approval.department_id)
    _notify(
        uow,
        [uid for uid in approvers if uid != approval.requester_id],
        {"notice": "approval_requested", "approval": approval_dict(approval, attachment)},
    )


async def request_release(
    uow: Unit, principal: Principal, actor: Actor, attachment: Attachment, untrusted_reason: str
) -> Approval:
    """Ask for the original of a file sent from the internet side (the caller is on the LGWAN
    side and a member of its room: the transport checked ``attachments.visible``)."""
    if not (attachment.side == "internet" and principal.side == "lgwan"):
        raise BadRequest(
            "このファイルの原本は申請しなくても受け取れます。",
            "This original needs no release: you may download it as it is.",
            code="release_not_needed",
        )
    if attachment.state != "ready":
        raise Conflict(
            "無害化が終わっていないか、安全でないと判定されたファイルの原本は申請できません。",
            "Only a sanitised, ready file's original can be requested.",
            code="attachment_not_ready",
        )
    reason = untrusted_reason.strip()
    if not 1 <= len(reason) <= REASON_MAX_CHARS:
        raise BadRequest(
            f"申請の理由を1〜{REASON_MAX_CHARS}文字で書いてください。",
            f"Give a reason of 1-{REASON_MAX_CHARS} characters.",
            code="reason_required",
        )
    existing = (
        await uow.session.execute(
            select(Approval).where(
                Approval.kind == "release",
                Approval.attachment_id == attachment.id,
                Approval.requester_id == principal.user_id,
                Approval.state.in_(("pending", "approved")),
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            "このファイルの原本は既に申請済みです。",
            "You already asked for this original.",
            code="already_requested",
            details={"approval_id": existing.id, "state": existing.state},
        )
    approval = Approval(
        org_id=principal.org_id,
        kind="release",
        attachment_id=attachment.id,
        requester_id=principal.user_id,
        department_id=principal.user.department_id,
        reason=reason,
        state="pending",
        created_at=utcnow(),
    )
    uow.session.add(approval)
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        "release.request",
        target_type="attachment",
        target_id=attachment.id,
        details={"approval_id": approval.id, "filename": attachment.filename, "reason": reason},
    )
    await _tell_approvers(uow, approval, attachment)
    return approval


async def request_outbound(
    uow: Unit, actor: Actor, attachment: Attachment, uploader: User
) -> Approval:
    """Called when a file is sent from the LGWAN side under the outbound-approval policy."""
    approval = Approval(
        org_id=attachment.org_id,
        kind="outbound",
        attachment_id=attachment.id,
        requester_id=uploader.id,
        department_id=uploader.department_id,
        reason="",
        state="pending",
        created_at=utcnow(),
    )
    uow.session.add(approval)
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        "outbound.request",
        target_type="attachment",
        target_id=attachment.id,
        details={"approval_id": approval.id, "filename": attachment.filename},
    )
    await _tell_approvers(uow, approval, attachment)
    return approval


async def _may_decide(uow: Unit, principal: Principal, approval: Approval) -> None:
    if approval.requester_id == principal.user_id:
        raise Forbidden(
            "自分の申請は自分で承認できません。",
            "You cannot decide your own request.",
            code="own_request",
        )
    require_decider(principal, await load_tree(uow, principal.org_id), approval.department_id)


async def decide(
    uow: Unit,
    principal: Principal,
    actor: Actor,
    approval_id: int,
    *,
    approve: bool,
    note: str = "",
) -> tuple[Approval, Attachment]:
    approval = (
        await uow.session.execute(
            select(Approval).where(Approval.id == approval_id).with_for_update()
        )
    ).scalar_one_or_none()
    if approval is None or approval.org_id != principal.org_id:
        raise NotFound("申請が見つかりません。", "No such request.")
    await _may_decide(uow, principal, approval)
    if approval.state != "pending":
        raise Conflict(
            "この申請は既に決定済みです。",
            "This request was already decided.",
            code="already_decided",
            details={"state": approval.state},
        )
    attachment = await uow.session.get(Attachment, approval.attachment_id)
    assert attachment is not None
    approval.state = "approved" if approve else "rejected"
    approval.decided_by, approval.decided_at = principal.user_id, utcnow()
    approval.note = note.strip()[:REASON_MAX_CHARS]
    await uow.session.flush()
    await audit.record(
        uow.session,
        actor,
        f"{approval.kind}.{'approve' if approve else 'reject'}",
        target_type="attachment",
        target_id=attachment.id,
        details={
            "approval_id": approval.id,
            "requester_id": approval.requester_id,
            "filename": attachment.filename,
            "note": approval.note,
        },
    )
    _notify(
        uow,
        [approval.requester_id],
        {"notice": "approval_decided", "approval": approval_dict(approval, attachment)},
    )
    return approval, attachment


async def inbox(
    uow: Unit, principal: Principal, *, state: str | None = "pending", limit: int = 200
) -> dict[str, list[dict[str, Any]]]:
    """What the caller may decide (supervisors: their departments; administrators: all), and
    the caller's own requests."""
    query = (
        select(Approval, Attachment, User)
        .join(Attachment, Attachment.id == Approval.attachment_id)
        .join(User, User.id == Approval.requester_id)
        .where(Approval.org_id == principal.org_id)
        .order_by(Approval.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(Approval.state == state)
    to_decide: list[dict[str, Any]] = []
    role = principal.user.role
    if role in ("admin", "supervisor"):
        scoped = query
        if role == "supervisor":
            dept = principal.user.department_id
            subtree = (await load_tree(uow, principal.org_id)).subtree(dept) if dept else set()
            scoped = query.where(Approval.department_id.in_(subtree or {-1}))
        to_decide = [
            approval_dict(a, att, u)
            for a, att, u in (await uow.session.execute(scoped)).all()
            if a.requester_id != principal.user_id
        ]
    mine = [
        approval_dict(a, att, u)
        for a, att, u in (
            await uow.session.execute(query.where(Approval.requester_id == principal.user_id))
        ).all()
    ]
    return {"to_decide": to_decide, "mine": mine}


async def released_to(uow: Unit, attachment_id: int, user_id: int) -> bool:
    return (
        await uow.session.scalar(
            select(Approval.id).where(
                Approval.kind == "release",
                Approval.attachment_id == attachment_id,
                Approval.requester_id == user_id,
                Approval.state == "approved",
            )
        )
    ) is not None


async def outbound_state(uow: Unit, attachment_id: int) -> str | None:
    """``pending`` / ``approved`` / ``rejected`` (the latest), or ``None`` when not asked."""
    return await uow.session.scalar(
        select(Approval.state)
        .where(Approval.kind == "outbound", Approval.attachment_id == attachment_id)
        .order_by(Approval.id.desc())
        .limit(1)
    )
