"""What a file is, from its bytes: libmagic first, then a structural look.

The name is never used to choose a parser. It is used only to refuse more: a name that
contradicts the content (`type_mismatch`), a name that Windows would run (`executable`), and
a `.csv` name that makes a text file subject to formula neutralisation (Excel opens it).
"""

from __future__ import annotations

import io
import zipfile
from functools import lru_cache
from typing import Any

from sanitizer import mimes
from sanitizer.report import Blocked

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

#: Names that Windows (or a shell) would execute, open with a script host, or mount.
EXECUTABLE_EXTENSIONS = frozenset(
    """exe dll com scr pif cpl msi msp mst bat cmd ps1 psm1 psd1 ps1xml vbs vbe js jse mjs
    wsf wsh wsc hta lnk jar reg inf scf sh bash zsh csh py pyw pyc pl rb php apk app dmg iso
    img vhd vhdx url chm msc ocx sys drv xll appref-ms settingcontent-ms library-ms gadget
    application cab xbap run jnlp elf so dylib ws sct msh msh1 msh2 mshxml lib u3p""".split()
)

_EXECUTABLE_MIMES = frozenset(
    {
        "application/x-dosexec",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-pie-executable",
        "application/x-mach-binary",
        "application/x-msi",
        "application/x-ms-installer",
        "application/x-ms-shortcut",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "application/x-elf",
        "application/x-java-applet",
        "application/java-archive",
        "application/x-java-archive",
        "application/vnd.android.package-archive",
        "text/x-shellscript",
        "text/x-msdos-batch",
        "application/x-bat",
        "application/javascript",
        "text/javascript",
        "application/x-bytecode.python",
    }
)

_EXECUTABLE_MAGICS = (
    b"MZ",
    b"\x7fELF",
    b"\xca\xfe\xba\xbe",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"L\x00\x00\x00\x01\x14\x02\x00",
    b"#!",
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

#: Bytes that detection looks at (libmagic's window), except in ZIP and OLE containers.
HEAD_BYTES = 1024 * 1024

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


@lru_cache(maxsize=1)
def _magic() -> Any:
    import magic

    return magic.Magic(mime=True)


def libmagic_mime(data: bytes) -> str:
    try:
        return str(_magic().from_buffer(data[:HEAD_BYTES]))
    except Exception:  # libmagic raises its own MagicException for odd input
        return "application/octet-stream"


def needs_whole_file(head: bytes) -> bool:
    """Whether detection must see the whole file: a ZIP or OLE directory is at its end.
    For every other type `detect(head)` with `HEAD_BYTES` of head gives the same answer."""
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06", _OLE_MAGIC))


def extension(filename: str | None) -> str:
    if not filename:
        return ""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().rstrip(". ")
    if "." not in base:
        return ""
    return base.rsplit(".", 1)[-1].lower()


def detect(data: bytes, filename: str | None) -> str:
    """The canonical MIME type of `data` (a key of the registry), or Blocked."""
    head = data[:4096]
    if EICAR in head:
        raise Blocked("malware_test")
    ext = extension(filename)
    if ext in EXECUTABLE_EXTENSIONS:
        raise Blocked("executable", f"name .{ext}")
    magic_mime = libmagic_mime(data)
    try:
        if magic_mime in _EXECUTABLE_MIMES or head.startswith(_EXECUTABLE_MAGICS):
            raise Blocked("executable", magic_mime)
        mime = _structural(data, magic_mime, ext)
        check_name(mime, ext)
    except Blocked as exc:
        # A refusal reports libmagic's type, asked once: on a megabyte of binary it can take
        # milliseconds (a file led by zero bytes: ~5 ms here).
        exc.detected_type = exc.detected_type or magic_mime
        raise
    return mime


def _structural(data: bytes, magic_mime: str, ext: str) -> str:
    head = data[:4096]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    if head.startswith(_OLE_MAGIC):
        return _ole_kind(data, magic_mime)
    if b"%PDF-" in data[:1024]:
        return mimes.PDF
    if head.startswith(b"{\\rtf"):
        return mimes.RTF
    if head.startswith(b"\xff\xd8\xff"):
        return mimes.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return mimes.PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return mimes.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return mimes.WEBP
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return mimes.HEIC
    text_head = _decoded_head(head)
    if text_head is None:
        raise Blocked("unsupported_type", magic_mime)
    lowered = text_head.lstrip("\ufeff \t\r\n").lower()
    if magic_mime == "image/svg+xml" or (
        lowered.startswith(("<?xml", "<svg", "<!--", "<!doctype svg")) and "<svg" in lowered
    ):
        return mimes.SVG
    if magic_mime in ("text/html", "application/xhtml+xml") or lowered.startswith(
        ("<!doctype html", "<html")
    ):
        return mimes.HTML
    if magic_mime in ("text/xml", "application/xml") or lowered.startswith("<?xml"):
        raise Blocked("unsupported_type", magic_mime)
    if magic_mime == "text/csv" or ext in ("csv", "tsv"):
        return mimes.CSV
    return mimes.TEXT


def _decoded_head(head: bytes) -> str | None:
    """The start of `head` as text if it is text in an encoding we accept, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head[2:].decode("utf-16-le" if head[1] == 0xFE else "utf-16-be", "ignore")
    sample = head[:-4] if len(head) == 4096 else head  # a cut multi-byte character
    if b"\x00" in sample:
        return None
    for encoding in ("utf-8", "cp932"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\t\r\n\f\x1a\ufeff" for c in text):
            return text
    return None


def _zip_kind(data: bytes) -> str:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise Blocked("unparseable", f"zip: {exc}") from exc
    if "[Content_Types].xml" in names:
        from sanitizer.formats import ooxml

        return ooxml.package_kind(data)
    if "META-INF/MANIFEST.MF" in names and any(n.endswith(".class") for n in names):
        raise Blocked("executable", "java archive")
    if "AndroidManifest.xml" in names or "classes.dex" in names:
        raise Blocked("executable", "android package")
    if "mimetype" in names and any(n.startswith("META-INF/manifest.xml") for n in names):
        raise Blocked("unsupported_type", "OpenDocument")
    return mimes.ZIP


def _ole_kind(data: bytes, magic_mime: str) -> str:
    from sanitizer.formats import ole

    return ole.container_kind(data, magic_mime)


def check_name(mime: str, ext: str) -> None:
    """Block a name whose extension belongs to another family than the content."""
    family = mimes.FAMILY_OF_EXTENSION.get(ext)
    if family is None:
        return
    if mimes.FAMILY_OF_MIME.get(mime) not in mimes.COMPATIBLE_FAMILIES[family]:
        raise Blocked("type_mismatch", f".{ext} but {mime}", detected_type=mime)
