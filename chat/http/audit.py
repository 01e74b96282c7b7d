"""The audit log for administrators: search, export (CSV / JSON Lines, streamed) and verify.

Exporting and verifying are acts on the record themselves (``audit.export``, ``audit.verify``).
"""

from __future__ import annotations

import string
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from chat import audit
from chat.http.deps import ActorDep, CurrentUser, ServicesDep
from chat.permissions import require_admin

router = APIRouter(prefix="/api/admin/audit", tags=["audit"])


@router.get("")
async def search(
    principal: CurrentUser,
    services: ServicesDep,
    actor: str | None = None,
    action: str | None = None,
    side: str | None = None,
    since: str | None = None,
    until: str | None = None,
    target: str | None = None,
    before_seq: int | None = None,
    limit: int = audit.SEARCH_DEFAULT_LIMIT,
) -> Any:
    """Newest first.  ``actor``: a login id or a user id; ``action``: exact, or a prefix
    ending in ``.`` (``license.``); ``since``/``until``: ISO 8601 or a date (Japan time);
    ``target``: ``type`` or ``type:id``; the next page: ``before_seq=next_before_seq``."""
    require_admin(principal)
    filters = audit.Filters.parse(
        actor=actor, action=action, side=side, since=since, until=until, target=target
    )
    audit.check_limit(limit)
    async with services.read() as uow:
        page = await audit.search(
            uow.session, principal.org_id, filters, before_seq=before_seq, limit=limit
        )
    return page.to_dict()


SAFE_FILENAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def content_disposition(fallback: str, filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the RFC 5987 / 6266
    ``filename*`` (UTF-8, percent-encoded) that browsers prefer: no quote, no path, no header
    injection can get through either."""
    safe = "".join(c if c in SAFE_FILENAME_CHARS else "_" for c in fallback).lstrip(".") or "export"
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/export")
async def export(
    principal: CurrentUser,
    who: ActorDep,
    services: ServicesDep,
    untrusted_format: Annotated[str, Query(alias="format")] = "csv",
    since: str | None = None,
    until: str | None = None,
    lang: str = "ja",
) -> Any:
    """The entries of a period, oldest first, as CSV (UTF-8 with BOM, for Excel; ``lang=en``
    for English headers) or JSON Lines (every field, with the hashes).  Streamed."""
    require_admin(principal)
    fmt = audit.check_format(untrusted_format)
    language = audit.check_lang(lang)
    since_at, until_at = audit.parse_range(since, until)
    async with services.unit() as uow:
        # On the record before a byte leaves; the export ends with this very entry.
        entry = await audit.record(
            uow.session,
            who,
            "audit.export",
            target_type="audit_log",
            details={
                "format": fmt,
                "lang": language,
                "since": since_at.isoformat() if since_at else None,
                "until": until_at.isoformat() if until_at else None,
            },
            org_id=principal.org_id,
        )
        up_to = entry.seq
    chunks = audit.export_chunks(
        services.db,
        fmt,
        org_id=principal.org_id,
        since=since_at,
        until=until_at,
        lang=language,
        up_to_seq=up_to,
    )
    disposition = content_disposition(
        audit.export_filename(fmt, since_at, until_at),
        audit.export_filename(fmt, since_at, until_at, lang=language),
    )
    return StreamingResponse(
        chunks,
        media_type=audit.EXPORT_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": disposition},
    )


@router.get("/verify")
async def verify(principal: CurrentUser, who: ActorDep, services: ServicesDep) -> Any:
    """Walk the whole chain; ``ok`` is false when any entry or the head does not hold, and
    every such entry is named in ``problems``."""
    require_admin(principal)
    result = await audit.verify(services.db)
    async with services.unit() as uow:
        await audit.record(
            uow.session,
            who,
            "audit.verify",
            target_type="audit_log",
            details={
                "ok": result.ok,
                "count": result.count,
                "problems": result.problem_count,
                "head_seq": result.head_seq,
            },
            org_id=principal.org_id,
        )
    return result.to_dict()
