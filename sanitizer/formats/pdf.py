"""PDF, rewritten whole by qpdf (pikepdf).

Only objects reachable from the trailer are written and earlier revisions are gone. Before
writing, every dictionary is looked at: scripts, automatic actions (OpenAction, AA), actions
that launch, fetch or submit, embedded files, XFA and rich media go; URI actions stay only for
http, https and mailto. Text stays text (nothing is rasterised).
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

_MAX_DIRECT_DEPTH = 32
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SAFE_ACTIONS = frozenset({"/GoTo", "/URI", "/Named", "/Thread", "/SetOCGState", "/Trans"})
_DANGEROUS_ANNOTS = frozenset(
    {"/FileAttachment", "/RichMedia", "/Movie", "/Sound", "/Screen", "/3D"}
)
_REMOVED_KEYS = {
    "/JS": "javascript",
    "/AA": "additional_action",
    "/EmbeddedFile": "embedded_file",
    "/EF": "embedded_file",
    "/RichMediaContent": "rich_media",
    "/XFA": "xfa_form",
}
_WATCHED_KEYS = frozenset(_REMOVED_KEYS) | {"/A", "/Next", "/PA"}
_ACTION_KINDS = {
    "/JavaScript": "javascript",
    "/Launch": "launch_action",
    "/GoToR": "remote_action",
    "/GoToE": "remote_action",
    "/SubmitForm": "submit_action",
    "/ImportData": "remote_action",
    "/RichMediaExecute": "rich_media",
    "/Rendition": "rich_media",
    "/Movie": "rich_media",
    "/Sound": "rich_media",
    "/Hide": "javascript",
    "/ResetForm": "form_action",
}


def disarm(data: bytes, ctx: Context) -> Disarmed:
    """A PDF held in memory (an archive entry)."""
    out = io.BytesIO()
    _rewrite(io.BytesIO(data), out, ctx)
    return Disarmed(out.getvalue(), mimes.PDF)


def disarm_file(untrusted_in: BinaryIO, out: BinaryIO, ctx: Context) -> str:
    """A PDF rewritten from file to file: qpdf maps the input (no copy in memory) and writes
    the output as it goes, the same work as a bare pikepdf open+save plus the clean pass."""
    _rewrite(untrusted_in, out, ctx)
    return mimes.PDF


def _rewrite(untrusted_in: BinaryIO, out: BinaryIO, ctx: Context) -> None:
    import pikepdf

    try:
        pdf = pikepdf.open(untrusted_in, access_mode=_access_mode(untrusted_in))
    except pikepdf.PasswordError as exc:
        raise Blocked("encrypted", "pdf password") from exc
    except (pikepdf.PdfError, ValueError, OSError, RuntimeError) as exc:
        raise Blocked("unparseable", f"pdf: {exc}") from exc
    with pdf:
        try:
            _clean(pdf, ctx)
            pdf.save(out, encryption=False, linearize=False, preserve_pdfa=False)
        except Blocked:
            raise
        except (pikepdf.PdfError, ValueError, OSError, RuntimeError, TypeError) as exc:
            raise Blocked("unparseable", f"pdf: {exc}") from exc
    if ctx.removed:
        ctx.warn("pdf_actions_removed")


def _access_mode(stream: BinaryIO) -> Any:
    """mmap for a real file (no copy of it in memory), Python reads for an in-memory one."""
    import pikepdf

    try:
        stream.fileno()
    except (OSError, io.UnsupportedOperation):
        return pikepdf.AccessMode.stream
    return pikepdf.AccessMode.mmap


def _clean(pdf: Any, ctx: Context) -> None:
    import pikepdf

    root = pdf.Root
    for key in ("/OpenAction", "/AA"):
        if key in root:
            ctx.remove("open_action" if key == "/OpenAction" else "additional_action", f"Root{key}")
            del root[key]
    if "/Names" in root:
        names = root.Names
        for key, kind in (("/JavaScript", "javascript"), ("/EmbeddedFiles", "embedded_file")):
            if key in names:
                ctx.remove(kind, f"Root/Names{key}")
                del names[key]
    if "/AcroForm" in root and "/XFA" in root.AcroForm:
        ctx.remove("xfa_form", "Root/AcroForm/XFA")
        del root.AcroForm["/XFA"]
        ctx.warn("forms_removed")
    if "/Collection" in root:
        ctx.remove("embedded_file", "Root/Collection")
        del root["/Collection"]

    count = 0
    for obj in pdf.objects:
        count += 1
        if count > limits.PDF_MAX_OBJECTS:
            raise Blocked("limit_exceeded", "pdf objects")
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            _clean_dict(obj, f"obj {obj.objgen[0]}", ctx)

    # Page dictionaries are indirect objects, cleaned above; here only their annotations.
    for number, page in enumerate(pdf.pages, start=1):
        if "/Annots" not in page.obj:
            continue
        annots = page.obj.Annots
        if not isinstance(annots, pikepdf.Array):
            del page.obj["/Annots"]
            continue
        keep = pikepdf.Array()
        for annot in annots:
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            subtype = str(annot.get("/Subtype", ""))
            if subtype in _DANGEROUS_ANNOTS:
                ctx.remove("embedded_file" if "File" in subtype else "rich_media", f"page {number}")
                continue
            _clean_dict(annot, f"page {number} annotation", ctx)
            keep.append(annot)
        page.obj.Annots = keep


def _clean_dict(obj: Any, where: str, ctx: Context, depth: int = 0) -> None:
    import pikepdf

    keys = obj.keys()
    if not _WATCHED_KEYS.isdisjoint(keys):
        _clean_keys(obj, keys, where, ctx)
    if depth >= _MAX_DIRECT_DEPTH:
        return
    for _key, value in obj.items():
        if isinstance(value, pikepdf.Dictionary | pikepdf.Array):
            _clean_direct(value, where, ctx, depth + 1)


def _clean_keys(obj: Any, keys: Any, where: str, ctx: Context) -> None:
    import pikepdf

    for key, kind in _REMOVED_KEYS.items():
        if key in keys:
            ctx.remove(kind, where)
            del obj[key]
    for key in ("/A", "/Next", "/PA"):
        if key not in keys:
            continue
        action = obj[key]
        if isinstance(action, pikepdf.Array):
            ctx.remove("additional_action", f"{where} {key}")
            del obj[key]
            continue
        if not isinstance(action, pikepdf.Dictionary):
            continue
        kind = str(action.get("/S", ""))
        if kind == "/URI":
            uri = action.get("/URI")
            scheme = urlsplit(str(uri)).scheme.lower() if uri is not None else ""
            if scheme not in _SAFE_SCHEMES:
                ctx.remove("unsafe_link", where)
                del obj[key]
        elif kind not in _SAFE_ACTIONS:
            ctx.remove(_ACTION_KINDS.get(kind, "unknown_action"), f"{where} {kind}")
            del obj[key]


def _clean_direct(value: Any, where: str, ctx: Context, depth: int) -> None:
    """Clean dictionaries written inline (direct objects); indirect ones are visited anyway.

    Numbers, names and strings (most of a font's /Widths, a page's /MediaBox) are skipped
    without a call: only direct dictionaries and arrays can hold an action.
    """
    import pikepdf

    if depth >= _MAX_DIRECT_DEPTH or value.is_indirect:
        return
    if isinstance(value, pikepdf.Dictionary):
        _clean_dict(value, where, ctx, depth)
        return
    for item in value:
        if isinstance(item, pikepdf.Dictionary | pikepdf.Array):
            _clean_direct(item, where, ctx, depth + 1)
