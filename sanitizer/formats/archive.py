"""ZIP archives, entry by entry.

Every entry goes through the same pipeline as a top-level file (detection, name check,
disarming), one level deeper; an entry that is blocked is left out and listed in the report.
Entry names that climb out (`..`), absolute paths, drive letters, links and device files are
left out too. Limits on entries, total size, ratio and depth apply while streaming; going over
one blocks the whole archive. Windows (CP932) names are kept readable and written as UTF-8.
"""

from __future__ import annotations

import io
import posixpath
import stat
import zipfile

from sanitizer import mimes, zipsafe
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked


def _safe_name(name: str) -> str | None:
    name = name.replace("\\", "/")
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    if any(ord(c) < 0x20 for c in name):
        return None
    parts = name.split("/")
    if any(p == ".." for p in parts):
        return None
    normal = posixpath.normpath(name)
    if normal.startswith(("..", "/")) or normal == ".":
        return None
    return normal


def disarm(data: bytes, ctx: Context) -> Disarmed:
    from sanitizer import engine

    zf = zipsafe.open_zip(data)
    out = io.BytesIO()
    written: set[str] = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zout:
        for info in zf.infolist():
            raw_name = zipsafe.entry_name(info)
            if info.is_dir():
                continue
            name = _safe_name(raw_name)
            mode = (info.external_attr >> 16) & 0xFFFF
            if name is None:
                ctx.remove("unsafe_path", raw_name)
                continue
            if mode and not (stat.S_ISREG(mode) or mode & 0o170000 == 0):
                ctx.remove("link", raw_name)
                continue
            if name.lower() in written:
                ctx.remove("duplicate_entry", raw_name)
                continue
            if zipsafe.is_encrypted(info):
                ctx.remove("blocked_entry", f"{raw_name} (encrypted)")
                continue
            entry_ctx = ctx.nested(name)
            body = zipsafe.read_entry(zf, info, ctx.budget)
            try:
                result = engine.process(body, entry_ctx)
            except Blocked as exc:
                if exc.code == "limit_exceeded":
                    raise
                ctx.remove("blocked_entry", f"{raw_name} ({exc.code})")
                continue
            new_name = _renamed(name, result.mime, entry_ctx)
            written.add(new_name.lower())
            zout.writestr(zipsafe.fixed_info(new_name), result.data)
    if any(r.kind in ("blocked_entry", "unsafe_path", "link") for r in ctx.removed):
        ctx.warn("archive_entries_removed")
    return Disarmed(out.getvalue(), mimes.ZIP)


def _renamed(name: str, mime: str, ctx: Context) -> str:
    from sanitizer.engine import output_filename

    renamed = output_filename(name, mime)
    if len(renamed) > 1024:
        raise Blocked("limit_exceeded", "entry name")
    return renamed
