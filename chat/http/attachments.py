"""Attachments over REST: upload (the raw body is the file) and download.  Parsing and
headers only; chat/attachments.py decides."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from chat import attachments
from chat.errors import Forbidden, RangeNotSatisfiable
from chat.http.deps import ActorDep, CurrentUser, ServicesDep
from storage.errors import FileTooLarge
from storage.uploads import MAX_ATTACHMENT_BYTES, receive_upload

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["attachments"])

DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
    "Accept-Ranges": "bytes",
}


@router.post("/rooms/{room_id}/attachments", status_code=201)
async def upload(
    room_id: int,
    request: Request,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
    x_filename: str | None = Header(default=None),
    content_type: str | None = Header(default=None),
    content_length: int | None = Header(default=None, ge=0),
) -> Any:
    """The request body is the file's bytes (no multipart); ``X-Filename`` is its name,
    percent-encoded UTF-8.  At most 20 MiB: a larger ``Content-Length`` is refused before a
    byte is read, a longer body at the first byte too many; nothing is kept either way."""
    filename = attachments.parse_filename(x_filename)
    if content_length is not None and content_length > MAX_ATTACHMENT_BYTES:
        raise FileTooLarge(MAX_ATTACHMENT_BYTES)
    async with services.read() as uow:
        await attachments.check_can_upload(uow, principal, room_id)
    try:
        blob = await receive_upload(services.blobs, request.stream())
    except ClientDisconnect:  # the sender went away: nothing was kept, nobody to answer
        log.info("upload to room %s abandoned by the client", room_id)
        return Response(status_code=400)
    async with services.unit() as uow:
        attachment = await attachments.create(
            uow,
            principal,
            actor,
            room_id,
            key=blob.key,
            size=blob.size,
            filename=filename,
            declared_type=content_type or "application/octet-stream",
        )
    await services.sanitizing.submit(attachment)
    return attachments.attachment_dict(attachment)


@router.get("/attachments/{attachment_id}")
async def get_attachment(attachment_id: int, principal: CurrentUser, services: ServicesDep) -> Any:
    async with services.read() as uow:
        attachment = await attachments.visible(uow, principal, attachment_id)
    return attachments.attachment_dict(attachment)


@router.delete("/attachments/{attachment_id}")
async def discard(
    attachment_id: int, principal: CurrentUser, actor: ActorDep, services: ServicesDep
) -> Any:
    """Take back an upload that was not sent with a message."""
    async with services.unit() as uow:
        await attachments.discard(uow, principal, actor, attachment_id)
    return {"ok": True}


@router.get("/attachments/{attachment_id}/content")
async def download(
    attachment_id: int,
    request: Request,
    principal: CurrentUser,
    actor: ActorDep,
    services: ServicesDep,
    variant: Literal["sanitized", "original"] = "sanitized",
) -> Any:
    """The sanitised rendition (default) or the original, if the caller may have it from
    this side; a single ``Range`` is answered with 206."""
    try:
        async with services.unit() as uow:
            grant = await attachments.check_download(uow, principal, attachment_id, variant)
            byte_range = attachments.parse_range(request.headers.get("range"), grant.size)
            await services.blobs.size(grant.key)  # BlobNotFound before any header is sent
            await attachments.record_download(uow, actor, grant, byte_range)
    except RangeNotSatisfiable as exc:
        return JSONResponse(
            {"error": exc.to_dict()},
            status_code=416,
            headers={**DOWNLOAD_HEADERS, "Content-Range": f"bytes */{exc.details['size']}"},
        )
    except Forbidden as exc:
        async with services.unit() as uow:
            await attachments.record_refusal(uow, actor, attachment_id, variant, exc)
        raise
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Disposition": attachments.content_disposition(grant.filename),
    }
    start, end = byte_range if byte_range is not None else (0, grant.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{grant.size}"
    # As is: a media_type would get "; charset=utf-8" added to text/*, wrong for CP932 text.
    headers["Content-Type"] = grant.content_type
    return StreamingResponse(
        services.blobs.read(grant.key, start, end), status_code=status, headers=headers
    )
