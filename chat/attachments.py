"""Attachments (issue 5): a file of at most 20 MiB sent in a room, its sanitisation, and who
may fetch which rendition from which side.

Lifecycle: an upload stores the original blob and a row in state ``scanning`` (event
``attachment``); the sanitiser's result turns it ``ready`` (a rendition and a report) or
``blocked`` (a report with the reason), again as an ``attachment`` event.  A message carries
attachments its sender uploaded to the same room and has not sent yet.

Download rules (:func:`check_download`), checked on every request:

- not a member of the attachment's room, another organisation's id, or a file of a recalled
  message → ``not_found``;
- ``scanning`` → ``attachment_not_ready``;
- an original uploaded on the internet side is served to an LGWAN-side session only after a
  supervisor approved that person's release request (``original_not_released``;
  chat/approvals.py); one uploaded on the LGWAN side is served to both sides — to the
  internet side only once a supervisor approved the outbound transfer, when the
  organisation's policy asks for that (``outbound_pending``);
- a client that may not receive files (a phone that cannot prevent saving, under a no-save
  policy) gets no bytes (``view_only_device``), only view-only previews;
- ``blocked`` → ``attachment_blocked`` for everyone but an organisation administrator, who
  may fetch the original (not into the LGWAN side if it came from the internet side), even
  without being a member of the room, to investigate it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote, unquote

from sqlalchemy import delete, select, update

from chat import approvals, audit, policy
from chat.auth import Principal
from chat.errors import BadRequest, ChatError, Conflict, Forbidden, NotFound, RangeNotSatisfiable
from chat.models import Approval, Attachment, Message, Room, RoomMember, utcnow
from chat.rooms import check_writable
from chat.unit import Unit, append_event

SCANNING, READY, BLOCKED = "scanning", "ready", "blocked"
Variant = Literal["sanitized", "original"]
MAX_FILENAME_CHARS = 255
MAX_ATTACHMENTS_PER_MESSAGE = 20
# Originals of these types are served as bytes, never as something a browser would render.
RENDERABLE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
    }
)


def parse_filename(untrusted: str | None) -> str:
    """The display name from the ``X-Filename`` header (percent-encoded UTF-8): the last path
    component, NFC, without control characters, at most 255 characters."""
    if untrusted is None or not untrusted.strip():
        raise BadRequest(
            "ファイル名 (X-Filename ヘッダー) を指定してください。",
            "Give the file name in the X-Filename header (percent-encoded UTF-8).",
        )
    try:
        raw = untrusted.strip()
        if any(ord(c) > 0x7F for c in raw):  # UTF-8 sent as is: headers arrive as Latin-1
            raw = raw.encode("latin-1").decode("utf-8")
        name = unquote(raw, encoding="utf-8", errors="strict")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise BadRequest(
            "ファイル名は UTF-8 をパーセントエンコードして送ってください。",
            "X-Filename must be percent-encoded UTF-8.",
        ) from None
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    if not name:
        raise BadRequest("ファイル名が正しくありません。", "The file name is not usable.")
    if len(name) > MAX_FILENAME_CHARS:
        _stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 16 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep) - 1] + ("." + keep if keep else "")
    return name


def job_id(attachment: Attachment) -> str:
    """The sanitiser job of an attachment: its id and the start of its original's key, so a
    result left in a shared queue by another database never lands on the wrong row."""
    return f"att-{attachment.id}-{attachment.original_key[:16]}"


def parse_job_id(value: str) -> tuple[int, str] | None:
    parts = value.split("-")
    if len(parts) != 3 or parts[0] != "att" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def attachment_dict(a: Attachment) -> dict[str, Any]:
    return {
        "id": a.id,
        "room_id": a.room_id,
        "message_id": a.message_id,
        "uploader_id": a.uploader_id,
        "side": a.side,
        "filename": a.filename,
        "content_type": a.declared_type,
        "detected_type": a.detected_type,
        "size": a.size,
        "state": a.state,
        "sanitized_filename": a.sanitized_filename,
        "sanitized_type": a.sanitized_type,
        "sanitized_size": a.sanitized_size,
        "report": a.report,
        "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
    }


async def check_can_upload(uow: Unit, principal: Principal, room_id: int) -> None:
    """Before a byte is read: a member of a writable room."""
    await check_writable(uow, principal, room_id)


async def create(
    uow: Unit,
    principal: Principal,
    actor: audit.Actor,
    room_id: int,
    *,
    key: str,
    size: int,
    filename: str,
    declared_type: str,
) -> Attachment:
    """The row for a stored upload, its ``attachment`` event (scanning) and its audit entry."""
    await check_writable(uow, principal, room_id)
    now = utcnow()
    attachment = Attachment(
        org_id=principal.org_id,
        room_id=room_id,
        uploader_id=principal.user_id,
        side=principal.side,
        filename=filename,
        declared_type=declared_type[:255],
        size=size,
        original_key=key,
        state=SCANNING,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(attachment)
    await uow.session.flush()
    await append_event(
        uow, room_id, "attachment", {"attachment": attachment_dict(attachment)}, activity=False
    )
    await audit.record(
        uow.session,
        actor,
        "attachment.upload",
        target_type="attachment",
        target_id=attachment.id,
        details={"room_id": room_id, "filename": filename, "size": size, "sha256": key},
    )
    if (
        principal.side == "lgwan"
        and (await policy.get_policy(uow, principal.org_id)).outbound_approval
    ):
        await approvals.request_outbound(uow, actor, attachment, principal.user)
    return attachment


async def discard(uow: Unit, principal: Principal, actor: audit.Actor, attachment_id: int) -> None:
    """The uploader takes back an upload not sent yet (its blobs go with the next collection;
    a sanitiser result arriving later finds no row and is dropped)."""
    a = await _get(uow, principal, attachment_id)
    if a.uploader_id != principal.user_id:
        raise (
            not_found()
            if await uow.session.get(RoomMember, (a.room_id, principal.user_id)) is None
            else Forbidden(
                "送信前のファイルを取り消せるのは、アップロードした本人だけです。",
                "Only the uploader may take back an upload.",
            )
        )
    if a.message_id is not None:
        raise Conflict(
            "送信済みのファイルは取り消せません。メッセージを取り消してください。",
            "This file was sent: recall its message instead.",
            code="attachment_sent",
        )
    await uow.session.execute(delete(Approval).where(Approval.attachment_id == a.id))
    await uow.session.delete(a)
    await audit.record(
        uow.session,
        actor,
        "attachment.discard",
        target_type="attachment",
        target_id=attachment_id,
        details={"room_id": a.room_id, "filename": a.filename},
    )


async def take_for_message(
    uow: Unit, principal: Principal, room_id: int, message_id: int, ids: list[int]
) -> list[Attachment]:
    """Attach the sender's unsent uploads of this room to a new message (all or nothing)."""
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise BadRequest(
            f"添付できるファイルは1件のメッセージにつき{MAX_ATTACHMENTS_PER_MESSAGE}個までです。",
            f"A message may carry at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments.",
        )
    rows = list(
        (
            await uow.session.execute(
                select(Attachment)
                .where(
                    Attachment.id.in_(wanted),
                    Attachment.room_id == room_id,
                    Attachment.uploader_id == principal.user_id,
                    Attachment.message_id.is_(None),
                )
                .order_by(Attachment.id)
            )
        ).scalars()
    )
    if len(rows) != len(wanted):
        raise BadRequest(
            "添付ファイルが見つからないか、すでに送信されています。",
            "An attachment is not yours in this room, or it was already sent.",
            details={"attachment_ids": sorted(set(wanted) - {a.id for a in rows})},
        )
    taken = await uow.session.execute(
        update(Attachment)
        .where(Attachment.id.in_(wanted), Attachment.message_id.is_(None))
        .values(message_id=message_id)
    )
    if taken.rowcount != len(wanted):  # type: ignore[attr-defined]  # a concurrent send won
        raise BadRequest(
            "添付ファイルはすでに送信されています。",
            "An attachment was already sent with another message.",
        )
    for a in rows:
        a.message_id = message_id
    by_id = {a.id: a for a in rows}
    return [by_id[i] for i in wanted]


async def for_messages(uow: Unit, message_ids: list[int]) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    rows = await uow.session.execute(
        select(Attachment).where(Attachment.message_id.in_(message_ids)).order_by(Attachment.id)
    )
    out: dict[int, list[Attachment]] = {}
    for a in rows.scalars():
        assert a.message_id is not None
        out.setdefault(a.message_id, []).append(a)
    return out


@dataclass(frozen=True)
class Outcome:
    """What the sanitiser decided, as the app stores it."""

    verdict: str  # clean | sanitized | blocked
    report: dict[str, Any]
    rendition_key: str | None = None
    rendition_size: int | None = None


async def finish(uow: Unit, attachment_id: int, key_prefix: str, outcome: Outcome) -> bool:
    """Store the sanitiser's outcome once: False when the attachment is not (or no longer)
    scanning, e.g. a result delivered twice.

    Rows are locked in the order a message send takes them (chat/messages.py): the room (its
    sequence number), then the attachment.  The other order deadlocks, on PostgreSQL, with a
    send carrying this attachment."""
    room_id = await uow.session.scalar(
        select(Attachment.room_id).where(Attachment.id == attachment_id)
    )
    if room_id is None:
        return False
    await uow.session.execute(select(Room.id).where(Room.id == room_id).with_for_update())
    attachment = await uow.session.get(Attachment, attachment_id, with_for_update=True)
    if (
        attachment is None
        or attachment.state != SCANNING
        or not attachment.original_key.startswith(key_prefix)
    ):
        return False
    report = outcome.report
    attachment.detected_type = str(report.get("detected_type") or "")[:255] or None
    attachment.report = report
    attachment.updated_at = utcnow()
    if outcome.verdict == BLOCKED or outcome.rendition_key is None:
        attachment.state = BLOCKED
    else:
        attachment.state = READY
        attachment.sanitized_key = outcome.rendition_key
        attachment.sanitized_size = outcome.rendition_size
        name = report.get("output_filename") or attachment.filename
        attachment.sanitized_filename = str(name)[:MAX_FILENAME_CHARS]
        attachment.sanitized_type = str(report.get("output_mime") or "application/octet-stream")
        attachment.sanitized_type = attachment.sanitized_type[:255]
    await append_event(
        uow,
        attachment.room_id,
        "attachment",
        {"attachment": attachment_dict(attachment)},
        activity=False,
    )
    return True


async def scanning(uow: Unit, *, older_than_s: float | None = None) -> list[Attachment]:
    """Attachments whose sanitisation has not ended (to queue again), optionally only those
    uploaded more than ``older_than_s`` seconds ago."""
    query = select(Attachment).where(Attachment.state == SCANNING)
    if older_than_s is not None:
        query = query.where(Attachment.created_at < utcnow() - timedelta(seconds=older_than_s))
    rows = await uow.session.execute(query.order_by(Attachment.id))
    return list(rows.scalars())


def not_found() -> NotFound:
    return NotFound("添付ファイルが見つかりません。", "Attachment not found.")


@dataclass(frozen=True)
class Grant:
    """One permitted download: which blob, under which name and type."""

    attachment: Attachment
    variant: Variant
    key: str
    size: int
    filename: str
    content_type: str


async def _get(uow: Unit, principal: Principal, attachment_id: int) -> Attachment:
    """The organisation's attachment, unless the message carrying it was recalled."""
    row = (
        await uow.session.execute(
            select(Attachment, Message.recalled_at)
            .outerjoin(Message, Message.id == Attachment.message_id)
            .where(Attachment.id == attachment_id, Attachment.org_id == principal.org_id)
        )
    ).one_or_none()
    if row is None or row[1] is not None:
        raise not_found()
    attachment: Attachment = row[0]
    return attachment


async def check_download(
    uow: Unit,
    principal: Principal,
    attachment_id: int,
    variant: Variant,
    *,
    preview: bool = False,
) -> Grant:
    """Who may fetch what (the rules of the module docstring); raises with a stable code.
    ``preview``: for a view-only preview rendered by the server, not the bytes themselves."""
    a = await _get(uow, principal, attachment_id)
    is_admin = principal.user.role == "admin"
    member = await uow.session.get(RoomMember, (a.room_id, principal.user_id))
    if member is None and not (is_admin and a.state == BLOCKED):
        raise not_found()
    if a.state == SCANNING:
        raise Conflict(
            "このファイルは無害化の処理中です。しばらくしてからもう一度お試しください。",
            "The file is still being sanitised; try again shortly.",
            code="attachment_not_ready",
        )
    current = await policy.get_policy(uow, principal.org_id)
    if (
        a.side == "lgwan"
        and principal.side == "internet"
        and current.outbound_approval
        and a.uploader_id != principal.user_id
        and await approvals.outbound_state(uow, a.id) != "approved"
    ):
        raise Forbidden(
            "LGWAN接続系から送られたこのファイルは、所属長(課長・班長)の承認を待っています。"
            "承認されるとインターネット接続系でも受け取れます。",
            "This file from the LGWAN side waits for a supervisor's approval before it may "
            "reach the internet side.",
            code="outbound_pending",
        )
    if (
        variant == "original"
        and a.side == "internet"
        and principal.side == "lgwan"
        and not await approvals.released_to(uow, a.id, principal.user_id)
    ):
        raise Forbidden(
            "インターネット接続系から送られたファイルの原本は、LGWAN接続系では無害化済みの"
            "ファイルだけを受け取れます。原本が必要な場合は、所属長(上長)に原本の受け取りを"
            "申請してください。",
            "Files sent from the internet side reach the LGWAN side only sanitised. To receive "
            "the original, ask your supervisor to approve its release.",
            code="original_not_released",
        )
    if a.state == BLOCKED and (not is_admin or variant != "original"):
        reason = (a.report or {}).get("reason_ja") or ""
        raise Forbidden(
            "このファイルは安全でないため受け取れません。" + (f"({reason})" if reason else ""),
            "This file was blocked as unsafe and cannot be downloaded.",
            code="attachment_blocked",
            details={"reason": (a.report or {}).get("reason")},
        )
    if not preview and policy.restrictions(current, principal.client).view_only:
        raise Forbidden(
            "この端末では保存できません。ファイルはプレビューで表示します"
            "(画像とPDF以外はPCで開いてください)。",
            "This device may not save files: they are shown as previews (open other types "
            "on a PC).",
            code="view_only_device",
        )
    if variant == "sanitized":
        assert a.sanitized_key is not None and a.sanitized_size is not None
        return Grant(
            a,
            variant,
            a.sanitized_key,
            a.sanitized_size,
            a.sanitized_filename or a.filename,
            a.sanitized_type or "application/octet-stream",
        )
    content_type = a.detected_type or "application/octet-stream"
    if a.state == BLOCKED or content_type.split(";")[0].strip() in RENDERABLE_TYPES:
        content_type = "application/octet-stream"
    return Grant(a, variant, a.original_key, a.size, a.filename, content_type)


async def record_download(
    uow: Unit, actor: audit.Actor, grant: Grant, byte_range: tuple[int, int] | None
) -> None:
    details: dict[str, Any] = {
        "room_id": grant.attachment.room_id,
        "variant": grant.variant,
        "filename": grant.filename,
    }
    if byte_range is not None:
        details["range"] = [byte_range[0], byte_range[1]]
    await audit.record(
        uow.session,
        actor,
        "attachment.download",
        target_type="attachment",
        target_id=grant.attachment.id,
        details=details,
        org_id=grant.attachment.org_id,
    )


async def record_refusal(
    uow: Unit, actor: audit.Actor, attachment_id: int, variant: Variant, error: ChatError
) -> None:
    """A refused download of an attachment the caller could see (403) is audited too."""
    await audit.record(
        uow.session,
        actor,
        "attachment.download_refused",
        target_type="attachment",
        target_id=attachment_id,
        details={"variant": variant, "code": error.code},
    )


async def visible(uow: Unit, principal: Principal, attachment_id: int) -> Attachment:
    """The attachment, to a member of its room (anyone else: ``not_found``)."""
    a = await _get(uow, principal, attachment_id)
    if await uow.session.get(RoomMember, (a.room_id, principal.user_id)) is None:
        raise not_found()
    return a


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    ascii_name = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\;%' else "_" for c in filename
    ).strip()
    stem, dot, ext = ascii_name.rpartition(".")
    if not ascii_name or not (stem if dot else ascii_name).strip("_ "):
        ascii_name = "download" + ("." + ext if dot and ext.strip("_") else "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as ``(start, end_exclusive)``; None for no (or an ignored
    multi-range) header; :class:`RangeNotSatisfiable` when it cannot be served."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown unit or several ranges: the whole file (RFC 9110 allows it)
    first, dash, last = (part.strip() for part in spec.strip().partition("-"))
    if not dash or not (first or last) or not (first + last).isdigit():
        return None  # malformed: ignored, as RFC 9110 says
    unsatisfiable = RangeNotSatisfiable(
        "指定された範囲はファイルの外です。",
        "The requested range is outside the file.",
        details={"size": size},
    )
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(size - suffix, 0), size
    start = int(first)
    if last and int(last) < start:
        return None  # last before first: invalid, ignored
    if start >= size:
        raise unsatisfiable
    end = int(last) + 1 if last else size
    return start, min(end, size)
