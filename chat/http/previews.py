"""View-only previews: what a phone that may not save files is shown instead of a file."""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response

from chat import attachments, audit
from chat.auth import JST
from chat.errors import BadRequest, ChatError, Forbidden
from chat.http.deps import ActorDep, CurrentUser, ServicesDep
from chat.models import utcnow
from storage.renditions import PreviewError, previewable, render_preview

router = APIRouter(prefix="/api", tags=["attachments"])
PREVIEW_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Content-Disposition": 'inline; filename="preview.jpg"',
}
PREVIEW_PAGE_MAX = 10_000


def _mark(display_name: str, at: datetime) -> str:
    return f"{display_name} {at.astimezone(JST).strftime('%Y-%m-%d %H:%M')} 閲覧"


@router.get("/attachments/{attachment_id}/preview", response_class=Response)
async def preview(
    attachment_id: int,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
    page: int = 1,
) -> Any:
    """An image, or one page of a PDF, rendered as a JPEG marked with the viewer's name and
    the time (``Cache-Control: no-store``).  The pages of a PDF are in ``X-Preview-Pages``.
    Other types cannot be previewed: 403 ``preview_unavailable`` (open it on a PC)."""
    if not 1 <= page <= PREVIEW_PAGE_MAX:
        raise BadRequest("ページ番号が正しくありません。", "No such page.", code="invalid_page")
    async with services.read() as uow:
        grant = await attachments.check_download(
            uow, principal, attachment_id, "sanitized", preview=True
        )
    if not previewable(grant.content_type):
        raise Forbidden(
            "このファイルはこの端末では表示できません。PCで開いてください。",
            "This file cannot be shown on this device. Open it on a PC.",
            code="preview_unavailable",
        )
    tmp = services.settings.data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    source = tmp / f"preview-{secrets.token_hex(8)}"
    now = utcnow()
    try:
        with source.open("wb") as out:
            async for chunk in services.blobs.read(grant.key):
                out.write(chunk)
        shown = await render_preview(
            source, grant.content_type, page=page, mark=_mark(principal.user.display_name, now)
        )
    except PreviewError:
        raise ChatError(
            "プレビューを作成できませんでした。PCで開いてください。",
            "The preview could not be made. Open the file on a PC.",
            code="preview_failed",
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
    async with services.unit() as uow:
        await audit.record(
            uow.session,
            actor,
            "attachment.preview",
            target_type="attachment",
            target_id=attachment_id,
            details={"page": page, "room_id": grant.attachment.room_id},
            org_id=grant.attachment.org_id,
        )
    return Response(
        shown.jpeg,
        media_type="image/jpeg",
        headers={**PREVIEW_HEADERS, "X-Preview-Pages": str(shown.pages)},
    )
