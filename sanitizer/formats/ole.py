"""Legacy OLE2 containers: Word/Excel/PowerPoint 97-2003 (.doc/.xls/.ppt), 一太郎 (.jtd),
and OOXML files encrypted into an OLE container.

Legacy files are not rebuilt (there is no safe writer for them here). They are delivered
only after a structural check proves they carry no VBA project, no Excel 4.0 macro sheet or
auto-run name, no embedded or linked object, no ActiveX and no DDE field; with any of these
they are blocked with a reason that tells the sender to save as .docx/.xlsx/.pptx. Bytes
after the last used sector are cut off.

Encrypted OOXML is opened with the application's default password ("VelvetSweatshop",
used by Excel for workbooks that are only write-protected); if that fails it is blocked.
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

from sanitizer import mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

DEFAULT_PASSWORD = "VelvetSweatshop"  # noqa: S105 (public, documented by Microsoft)

_FREESECT = 0xFFFFFFFF
_WORD_DANGER = re.compile(rb"(DDEAUTO|DDE |INCLUDETEXT|INCLUDEPICTURE|IMPORT )", re.IGNORECASE)
_WORD_DANGER_16 = re.compile(
    b"|".join(re.escape(w.encode("utf-16-le")) for w in ("DDEAUTO", "DDE ", "INCLUDETEXT")),
    re.IGNORECASE,
)
_PPT_OBJECT_RECORDS = frozenset({0x1011, 0x0FEE, 0x0FCC, 0x0FC3, 0x1006})  # ExOleObjStg etc.


def _open(data: bytes) -> Any:
    import olefile

    try:
        return olefile.OleFileIO(data)
    except Exception as exc:  # olefile raises OSError, struct.error, IndexError...
        raise Blocked("unparseable", f"ole: {exc}") from exc


def _names(ole: Any) -> list[list[str]]:
    try:
        return [list(p) for p in ole.listdir(streams=True, storages=True)]
    except Exception as exc:
        raise Blocked("unparseable", f"ole directory: {exc}") from exc


def container_kind(data: bytes, magic_mime: str) -> str:
    ole = _open(data)
    try:
        top = {p[0].lower() for p in _names(ole) if p}
    finally:
        ole.close()
    if "encryptioninfo" in top and "encryptedpackage" in top:
        return mimes.OOXML_ENCRYPTED
    if "worddocument" in top:
        return mimes.DOC
    if "workbook" in top or "book" in top:
        return mimes.XLS
    if "powerpoint document" in top:
        return mimes.PPT
    if magic_mime == "application/x-js-taro" or "documenttext" in top:
        return mimes.JTD
    raise Blocked("unsupported_type", f"ole container ({magic_mime})")


def disarm_legacy(data: bytes, ctx: Context, *, mime: str) -> Disarmed:
    _refuse_encrypted(data)
    ole = _open(data)
    try:
        paths = _names(ole)
        lowered = [[part.lower() for part in p] for p in paths]
        if any(p[-1] in ("macros", "_vba_project_cur", "vba", "_vba_project") for p in lowered):
            raise Blocked("legacy_macros", "vba storage")
        if any(p[0] == "objectpool" and len(p) > 1 for p in lowered) or any(
            p[0].startswith("mbd") for p in lowered
        ):
            raise Blocked("legacy_embedded_object", "object storage")
        if any(
            len(p) > 1 and p[-1] in ("\x01ole10native", "\x01ole", "\x01compobj") for p in lowered
        ):
            raise Blocked("legacy_embedded_object", "nested ole object")
        if mime == mimes.DOC:
            _check_word(_read(ole, "WordDocument"))
        elif mime == mimes.XLS:
            _check_excel(_read(ole, "Workbook" if ole.exists("Workbook") else "Book"))
        elif mime == mimes.PPT:
            _check_powerpoint(_read(ole, "PowerPoint Document"))
        end = _used_size(ole, len(data))
    finally:
        ole.close()
    _check_vba_with_oletools(data)
    if end < len(data) and data[end:].strip(b"\x00"):
        ctx.remove("trailing_data", f"{len(data) - end} bytes after the last sector")
        ctx.warn("trailing_data_removed")
        data = data[:end]
    ctx.warn("legacy_format_checked")
    return Disarmed(data, mime)


def _read(ole: Any, name: str) -> bytes:
    try:
        return bytes(ole.openstream(name).read())
    except Exception as exc:
        raise Blocked("unparseable", f"ole stream {name}: {exc}") from exc


def _refuse_encrypted(data: bytes) -> None:
    import msoffcrypto

    try:
        encrypted = msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted()
    except Exception:  # msoffcrypto does not know every OLE file (一太郎): not its call
        return
    if encrypted:
        raise Blocked("encrypted", "legacy office")


def _check_word(stream: bytes) -> None:
    if len(stream) < 12 or struct.unpack_from("<H", stream, 0)[0] != 0xA5EC:
        raise Blocked("unparseable", "word FIB")
    if _WORD_DANGER.search(stream) or _WORD_DANGER_16.search(stream):
        raise Blocked("legacy_embedded_object", "dde or include field")


def _check_excel(stream: bytes) -> None:
    offset, n = 0, len(stream)
    while offset + 4 <= n:
        rtype, length = struct.unpack_from("<HH", stream, offset)
        body = stream[offset + 4 : offset + 4 + length]
        if len(body) != length:
            raise Blocked("unparseable", "biff record")
        if rtype == 0x0085 and length >= 6 and body[5] in (0x01, 0x06):  # BOUNDSHEET dt
            raise Blocked("legacy_macros", "excel 4.0 macro sheet")
        if rtype == 0x0018 and length >= 16:  # NAME (Lbl)
            grbit = body[0]
            if grbit & 0x0E:  # fFunc, fOB, fProc: a macro name
                raise Blocked("legacy_macros", "macro name")
            if grbit & 0x20 and body[15] in (0x01, 0x02):  # built-in Auto_Open/Auto_Close
                raise Blocked("legacy_macros", "auto_open name")
        if rtype == 0x0023:  # EXTERNNAME: DDE and OLE links
            raise Blocked("legacy_embedded_object", "external name (DDE/OLE link)")
        offset += 4 + length


def _check_powerpoint(stream: bytes) -> None:
    offset, n = 0, len(stream)
    while offset + 8 <= n:
        ver_inst, rtype, length = struct.unpack_from("<HHI", stream, offset)
        if rtype in _PPT_OBJECT_RECORDS:
            raise Blocked("legacy_embedded_object", f"powerpoint record 0x{rtype:04x}")
        if ver_inst & 0x000F == 0x000F:  # container: walk into it
            offset += 8
            continue
        offset += 8 + length
        if offset > n:
            raise Blocked("unparseable", "powerpoint record")


def _check_vba_with_oletools(data: bytes) -> None:
    from oletools.olevba import VBA_Parser

    try:
        parser = VBA_Parser("attachment", data=data)
        try:
            found = parser.detect_vba_macros() or parser.detect_xlm_macros()
        finally:
            parser.close()
    except Blocked:
        raise
    except Exception as exc:  # olevba raises many types on hostile input
        raise Blocked("unparseable", f"olevba: {exc}") from exc
    if found:
        raise Blocked("legacy_macros", "olevba")


def _used_size(ole: Any, size: int) -> int:
    """Bytes up to the end of the last sector the FAT uses."""
    fat = getattr(ole, "fat", None)
    sector = int(getattr(ole, "sectorsize", 512))
    if not fat:
        return size
    last = -1
    for index in range(len(fat) - 1, -1, -1):
        if fat[index] != _FREESECT:
            last = index
            break
    return min(size, (last + 2) * sector)


def disarm_encrypted(data: bytes, ctx: Context) -> Disarmed:
    import msoffcrypto

    from sanitizer.formats import ooxml

    out = io.BytesIO()
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=DEFAULT_PASSWORD, verify_password=True)
        office.decrypt(out)
    except Exception as exc:  # wrong password, unknown scheme or damaged container
        raise Blocked("encrypted", f"ooxml: {exc}") from exc
    plain = out.getvalue()
    if not plain.startswith(b"PK"):
        raise Blocked("encrypted", "ooxml did not decrypt")
    ooxml.package_kind(plain)
    ctx.remove("encryption", f"default password ({DEFAULT_PASSWORD})")
    return ooxml.disarm(plain, ctx)
