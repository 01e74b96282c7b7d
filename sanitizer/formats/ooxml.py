"""Word, Excel and PowerPoint (OOXML) packages, macro-enabled ones included.

The package is rebuilt from an allowlist: starting at the package relationships, only parts
reached through relationship types known to be inert are kept; every kept XML part is parsed
and written back with references to dropped parts, DDE and fetching fields, DDE and
web formulas, auto-run macro names and program-launching actions removed. The content types
are rebuilt from the kept parts, and the main part of a macro-enabled file gets the
macro-free type (.docm -> .docx).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

from sanitizer import limits, mimes, xmlsafe, zipsafe
from sanitizer.context import Budget, Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
R_NS_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

MAIN_TYPES: dict[str, str] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": mimes.DOCX,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": mimes.DOCX,
    "application/vnd.ms-word.document.macroenabled.main+xml": mimes.DOCM,
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml": mimes.DOCM,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": mimes.XLSX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": mimes.XLSX,
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": mimes.XLSM,
    "application/vnd.ms-excel.template.macroenabled.main+xml": mimes.XLSM,
    "application/vnd.ms-excel.addin.macroenabled.main+xml": mimes.XLSM,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": (
        mimes.PPTX
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": mimes.PPTX,
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": mimes.PPTX,
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": mimes.PPTM,
    "application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml": mimes.PPTM,
    "application/vnd.ms-powerpoint.template.macroenabled.main+xml": mimes.PPTM,
    "application/vnd.ms-powerpoint.addin.macroenabled.main+xml": mimes.PPTM,
}

MACRO_FREE = {mimes.DOCM: mimes.DOCX, mimes.XLSM: mimes.XLSX, mimes.PPTM: mimes.PPTX}

OUTPUT_MAIN_TYPE = {
    mimes.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    mimes.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    mimes.PPTX: (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    ),
}

#: Relationship types (last segment of the type URI, lower case) whose targets are inert.
ALLOWED_REL_TYPES = frozenset(
    """officedocument core-properties metadata/core-properties extended-properties
    custom-properties thumbnail theme themeoverride image hdphoto customxml customxmlprops
    styles styleswitheffects settings websettings fonttable numbering footnotes endnotes header
    footer comments commentsextended commentsids commentsextensible people glossarydocument font
    chart chartusershapes chartstyle chartcolorstyle diagramdata diagramlayout diagramquickstyle
    diagramcolors diagramdrawing worksheet sharedstrings calcchain chartsheet drawing table
    pivottable pivotcachedefinition pivotcacherecords vmldrawing sheetmetadata threadedcomment
    person slicer slicercache timeline timelinecache namedsheetview slide slidelayout
    slidemaster notesslide notesmaster handoutmaster presprops viewprops tablestyles tags
    commentauthors classificationlabels revisioninfo authors rdrichvaluestructure
    metadata/thumbnail metadata/custom-properties
    rdrichvalue rdrichvaluetypes richvaluerel richstyles""".split()
)

#: Relationship types that are dropped, and the kind recorded for them.
REMOVED_KINDS: dict[str, str] = {
    "vbaproject": "vba_macro",
    "wordvbadata": "vba_macro",
    "vbaprojectsignature": "vba_macro",
    "vbaprojectsignatureagile": "vba_macro",
    "vbaprojectsignaturev3": "vba_macro",
    "xlmacrosheet": "xlm_macro_sheet",
    "xlintlmacrosheet": "xlm_macro_sheet",
    "control": "activex",
    "activexcontrolbinary": "activex",
    "oleobject": "ole_object",
    "package": "embedded_package",
    "attachedtemplate": "external_template",
    "externallink": "external_link",
    "externallinkpath": "external_link",
    "connections": "data_connection",
    "querytable": "data_connection",
    "extensibility": "custom_ui",
    "ui/extensibility": "custom_ui",
    "attachedtoolbars": "custom_ui",
    "keymapcustomizations": "custom_ui",
    "afchunk": "embedded_document",
    "subdocument": "external_reference",
    "frame": "external_reference",
    "webextension": "add_in",
    "webextensiontaskpanes": "add_in",
    "hyperlink": "unsafe_link",
    "ctrlprop": "form_control",
    "video": "media",
    "audio": "media",
    "media": "media",
}

#: Inert relationship types that are dropped without a report entry (binary printer setup).
SILENTLY_DROPPED = frozenset({"printersettings"})

#: Relationship types whose targets are pictures (re-encoded, or rebuilt when SVG).
_PICTURE_RELS = frozenset({"image", "hdphoto", "thumbnail", "metadata/thumbnail"})

#: Why a picture may be removed without blocking its document.
_PICTURE_FAILURES = frozenset({"unparseable", "limit_exceeded", "unsupported_type"})

_MACRO_KINDS = frozenset({"vba_macro", "xlm_macro_sheet", "macro_name", "form_control"})
_OBJECT_KINDS = frozenset({"activex", "ole_object", "embedded_package", "embedded_document"})
_LINK_KINDS = frozenset(
    {"external_template", "external_link", "data_connection", "external_reference", "add_in"}
)

_DENIED_CT_WORDS = ("macro", "vba", "activex", "oleobject", "customui", "ribbon")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
#: zlib level of the rebuilt package: level 1 deflates XML ~3x faster than 6 for ~15% more.
_DEFLATE_LEVEL = 1
_COMPRESSED_MAGICS = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF")
_FONT_CTS = ("application/x-fontdata", "application/x-font", "font/", "application/vnd.ms-")

_FIELD_DANGER = re.compile(
    r"^\s*(DDE|DDEAUTO|INCLUDETEXT|INCLUDEPICTURE|INCLUDE|IMPORT|LINK|DATABASE|MACROBUTTON|"
    r"GOTOBUTTON|AUTOTEXTLIST)\b",
    re.IGNORECASE,
)
_FORMULA_DANGER = re.compile(
    r"([A-Za-z0-9_.\-]+\s*\|)|\b(WEBSERVICE|CALL|REGISTER|REGISTER\.ID|EXEC|RTD|FILTERXML)\s*\(",
    re.IGNORECASE,
)
_AUTO_NAMES = re.compile(r"^(_xlnm\.)?auto_(open|close|activate|deactivate)", re.IGNORECASE)
_PPT_DANGER_ACTION = re.compile(r"^\s*ppaction://(program|macro|ole)", re.IGNORECASE)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _rel_kind(rel_type: str) -> str:
    lowered = rel_type.lower()
    for prefix in (
        "http://schemas.openxmlformats.org/officedocument/2006/relationships/",
        "http://schemas.openxmlformats.org/package/2006/relationships/",
        "http://purl.oclc.org/ooxml/officedocument/relationships/",
        "http://schemas.microsoft.com/office/",
    ):
        if lowered.startswith(prefix):
            rest = lowered[len(prefix) :]
            if prefix.startswith("http://schemas.microsoft.com"):
                rest = rest.split("/relationships/", 1)[-1]
            return rest
    return lowered.rsplit("/", 1)[-1]


@dataclass
class _Package:
    zf: zipfile.ZipFile
    infos: dict[str, zipfile.ZipInfo]  # lower-case part name -> entry
    budget: Budget
    defaults: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name.lower() in self.infos

    def read(self, name: str) -> bytes:
        return zipsafe.read_entry(self.zf, self.infos[name.lower()], self.budget)

    def content_type(self, name: str) -> str:
        ct = self.overrides.get(name.lower())
        if ct is None:
            ct = self.defaults.get(posixpath.splitext(name)[1].lstrip(".").lower(), "")
        return ct


def _open(data: bytes, budget: Budget) -> _Package:
    zf = zipsafe.open_zip(data)
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        key = info.filename.lower()
        if key in infos:
            raise Blocked("unparseable", f"duplicate part {info.filename!r}")
        infos[key] = info
    pkg = _Package(zf, infos, budget)
    if not pkg.has("[Content_Types].xml"):
        raise Blocked("unparseable", "no content types")
    root = xmlsafe.parse_et(pkg.read("[Content_Types].xml"))
    for el in root:
        if el.tag == f"{{{CT_NS}}}Default":
            pkg.defaults[el.get("Extension", "").lower()] = el.get("ContentType", "")
        elif el.tag == f"{{{CT_NS}}}Override":
            pkg.overrides[el.get("PartName", "").lstrip("/").lower()] = el.get("ContentType", "")
    return pkg


@dataclass(frozen=True)
class _Rel:
    rid: str
    rtype: str
    target: str
    external: bool


def _rels_name(part: str) -> str:
    directory, base = posixpath.split(part)
    return posixpath.join(directory, "_rels", f"{base}.rels")


def _read_rels(pkg: _Package, part: str) -> list[_Rel]:
    name = _rels_name(part) if part else "_rels/.rels"
    if not pkg.has(name):
        return []
    root = xmlsafe.parse_et(pkg.read(name))
    rels = []
    for el in root:
        if el.tag != f"{{{REL_NS}}}Relationship":
            continue
        rels.append(
            _Rel(
                rid=el.get("Id", ""),
                rtype=el.get("Type", ""),
                target=el.get("Target", ""),
                external=el.get("TargetMode", "").lower() == "external",
            )
        )
    return rels


def _resolve(source: str, target: str) -> str | None:
    target = unquote(target.split("#", 1)[0])
    if not target:
        return None
    if target.startswith("/"):
        joined = target.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(source), target)
    normal = posixpath.normpath(joined)
    if normal.startswith("..") or normal.startswith("/") or normal == ".":
        return None
    return normal


def _main_part(pkg: _Package) -> tuple[str, str]:
    for rel in _read_rels(pkg, ""):
        if _rel_kind(rel.rtype) == "officedocument" and not rel.external:
            part = _resolve("", rel.target)
            if part and pkg.has(part):
                ct = pkg.content_type(part).lower()
                if ct in MAIN_TYPES:
                    return part, MAIN_TYPES[ct]
                raise Blocked("unsupported_type", f"ooxml main part {ct}")
    raise Blocked("unparseable", "no main document part")


def package_kind(data: bytes) -> str:
    """The canonical MIME of an OOXML package (used by detection)."""
    pkg = _open(data, Budget())
    return _main_part(pkg)[1]


def disarm(data: bytes, ctx: Context) -> Disarmed:
    pkg = _open(data, ctx.budget)
    main, kind = _main_part(pkg)
    out_mime = MACRO_FREE.get(kind, kind)

    kept: dict[str, list[_Rel]] = {}  # part ("" = package) -> kept relationships
    dropped: dict[str, set[str]] = {}  # part -> dropped relationship ids
    rel_types: dict[str, str] = {}  # part -> kind of relationship that reached it
    queue: deque[str] = deque([""])
    seen = {""}
    while queue:
        source = queue.popleft()
        keep: list[_Rel] = []
        drop: set[str] = set()
        for rel in _read_rels(pkg, source):
            rkind = _rel_kind(rel.rtype)
            where = source or "/"
            if rel.external:
                scheme = urlsplit(rel.target.strip()).scheme.lower()
                if rkind == "hyperlink" and scheme in _SAFE_SCHEMES:
                    keep.append(rel)
                else:
                    drop.add(rel.rid)
                    _record(ctx, REMOVED_KINDS.get(rkind, "external_relationship"), where, rel)
                continue
            target = _resolve(source, rel.target)
            if rkind not in ALLOWED_REL_TYPES or target is None or not pkg.has(target):
                drop.add(rel.rid)
                if rkind not in SILENTLY_DROPPED and (target is None or pkg.has(target)):
                    _record(ctx, REMOVED_KINDS.get(rkind, "unknown_part"), where, rel)
                continue
            ct = pkg.content_type(target).lower()
            if target != main and any(word in ct for word in _DENIED_CT_WORDS):
                drop.add(rel.rid)
                kind_of = "xlm_macro_sheet" if "macrosheet" in ct else "vba_macro"
                if "activex" in ct:
                    kind_of = "activex"
                elif "oleobject" in ct:
                    kind_of = "ole_object"
                elif "customui" in ct or "ribbon" in ct:
                    kind_of = "custom_ui"
                _record(ctx, kind_of, where, rel)
                continue
            keep.append(rel)
            if target.lower() not in seen:
                seen.add(target.lower())
                rel_types[target] = rkind
                queue.append(target)
        kept[source] = keep
        dropped[source] = drop

    pictures = _clean_pictures(pkg, [p for p in kept if rel_types.get(p) in _PICTURE_RELS], ctx)
    gone = {part.lower() for part, body in pictures.items() if body is None}
    if gone:
        _forget_parts(kept, dropped, gone)

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        write = partial(zout.writestr, compresslevel=_DEFLATE_LEVEL)
        write(zipsafe.fixed_info("[Content_Types].xml"), _content_types(pkg, kept, main))
        write(zipsafe.fixed_info("_rels/.rels"), _write_rels(kept[""]))
        for part, rels in kept.items():
            if not part:
                continue
            if part in pictures:
                body = pictures[part]
            else:
                body = _clean_part(pkg, part, rel_types.get(part, ""), dropped[part], ctx)
            if body is None:
                continue
            compress = not body.startswith(_COMPRESSED_MAGICS)
            write(zipsafe.fixed_info(part, compress=compress), body)
            if rels or pkg.has(_rels_name(part)):
                write(zipsafe.fixed_info(_rels_name(part)), _write_rels(rels))
    _warn_for(ctx, kind != out_mime)
    return Disarmed(out.getvalue(), out_mime)


def _clean_pictures(pkg: _Package, parts: list[str], ctx: Context) -> dict[str, bytes | None]:
    """Every picture re-encoded from pixels (raster) or rebuilt (SVG); None for a picture that
    cannot be read or is over the per-picture limits: it is removed and reported, and the
    document keeps the rest. Limits of the whole document (count, total pixels) block it."""
    if len(parts) > limits.OOXML_MAX_PICTURES:
        raise Blocked("limit_exceeded", f"{len(parts)} pictures")
    done: dict[str, bytes | None] = {}
    for part in parts:
        data = pkg.read(part)
        try:
            done[part] = _clean_picture(data, pkg.content_type(part).lower(), ctx.embedded(part))
        except Blocked as exc:
            if ctx.budget.exhausted or exc.code not in _PICTURE_FAILURES:
                raise
            ctx.remove("picture", f"{part} ({exc.code})")
            ctx.warn("pictures_removed")
            done[part] = None
    return done


def _clean_picture(data: bytes, ct: str, ctx: Context) -> bytes:
    from sanitizer.formats import images, svg

    if images.picture_format(data) is not None:
        return images.disarm_picture(data, ctx)
    if images.is_metafile(data):
        return data  # EMF/WMF: vector drawing records, kept as they are (see docs)
    if ct == mimes.SVG or data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return svg.disarm(data, ctx).data
    raise Blocked("unparseable", f"picture of type {ct!r}")


def _forget_parts(
    kept: dict[str, list[_Rel]], dropped: dict[str, set[str]], gone: set[str]
) -> None:
    """Forget removed parts (no part, no content type) and the relationships to them; the
    references to those relationships are scrubbed from the XML later."""
    for part in [p for p in kept if p.lower() in gone]:
        del kept[part]
    for source, rels in kept.items():
        keep = []
        for rel in rels:
            target = None if rel.external else _resolve(source, rel.target)
            if target is not None and target.lower() in gone:
                dropped.setdefault(source, set()).add(rel.rid)
            else:
                keep.append(rel)
        kept[source] = keep


def _record(ctx: Context, kind: str, where: str, rel: _Rel) -> None:
    target = rel.target if len(rel.target) < 200 else rel.target[:200] + "…"
    ctx.remove(kind, f"{where} -> {target}")


def _warn_for(ctx: Context, converted: bool) -> None:
    kinds = {r.kind for r in ctx.removed}
    if kinds & _MACRO_KINDS:
        ctx.warn("macros_removed")
    if kinds & _OBJECT_KINDS:
        ctx.warn("objects_removed")
    if kinds & _LINK_KINDS or "external_relationship" in kinds or "unsafe_link" in kinds:
        ctx.warn("links_removed")
    if kinds & {"dde_field", "remote_field", "dde_formula"}:
        ctx.warn("fields_removed")
    if converted:
        ctx.warn("type_converted")


def _content_types(pkg: _Package, kept: dict[str, list[_Rel]], main: str) -> bytes:
    from lxml import etree

    root = etree.Element(f"{{{CT_NS}}}Types", nsmap={None: CT_NS})
    etree.SubElement(
        root,
        f"{{{CT_NS}}}Default",
        Extension="rels",
        ContentType="application/vnd.openxmlformats-package.relationships+xml",
    )
    etree.SubElement(root, f"{{{CT_NS}}}Default", Extension="xml", ContentType="application/xml")
    for part in kept:
        if not part:
            continue
        ct = pkg.content_type(part)
        if part == main:
            kind = MAIN_TYPES[ct.lower()]
            ct = OUTPUT_MAIN_TYPE[MACRO_FREE.get(kind, kind)]
        if not ct:
            continue
        etree.SubElement(root, f"{{{CT_NS}}}Override", PartName=f"/{part}", ContentType=ct)
    return xmlsafe.serialize(root)


def _write_rels(rels: list[_Rel]) -> bytes:
    from lxml import etree

    root = etree.Element(f"{{{REL_NS}}}Relationships", nsmap={None: REL_NS})
    for rel in rels:
        attrs = {"Id": rel.rid, "Type": rel.rtype, "Target": rel.target}
        if rel.external:
            attrs["TargetMode"] = "External"
        etree.SubElement(root, f"{{{REL_NS}}}Relationship", attrs)
    return xmlsafe.serialize(root)


def _clean_part(
    pkg: _Package, part: str, rkind: str, dropped: set[str], ctx: Context
) -> bytes | None:
    ct = pkg.content_type(part).lower()
    data = pkg.read(part)
    if ct.endswith("xml") or part.lower().endswith((".xml", ".vml", ".rels")):
        root = xmlsafe.parse(data)
        _scrub(root, part, dropped, ctx)
        return xmlsafe.serialize(root)
    if rkind == "font" and ct.startswith(_FONT_CTS):
        return data
    ctx.remove("unknown_part", part)
    return None


def _by_name(root: Any, *names: str) -> list[Any]:
    """Elements with these local names in any namespace (lxml filters in C)."""
    return list(root.iter(*(f"{{*}}{n}" for n in names)))


def _scrub(root: Any, part: str, dropped: set[str], ctx: Context) -> None:
    """Remove active elements from one XML part."""
    removals: list[Any] = []
    unwraps: list[Any] = []
    for el in _by_name(root, "object", "OLEObject", "oleObjects", "controls", "oleObj", "altChunk"):
        target = el
        name = _local(el.tag)
        if name in ("oleObj", "controls") and el.tag.startswith(
            "{http://schemas.openxmlformats.org/presentationml"
        ):
            frame = _ancestor(el, "graphicFrame")
            target = frame if frame is not None else el
        removals.append(target)
    removals += _by_name(root, "attachedTemplate", "mailMerge", "externalReferences", "FmlaMacro")
    for el in _by_name(root, "hlinkClick", "hlinkHover", "hlinkMouseOver"):
        if _PPT_DANGER_ACTION.match(el.get("action", "")):
            ctx.remove("launch_action", part)
            removals.append(el)
    for el in _by_name(root, "definedName"):
        if _is_macro_name(el):
            ctx.remove("macro_name", f"{part}: {el.get('name', '')}")
            removals.append(el)
    for el in _by_name(root, "f"):
        if el.text and _FORMULA_DANGER.search(el.text):
            ctx.remove("dde_formula", f"{part}: {el.text[:80]}")
            removals.append(el)
    for el in _by_name(root, "fldSimple"):
        instr = el.get(f"{{{W_NS}}}instr", "")
        if _FIELD_DANGER.match(instr):
            ctx.remove("dde_field", f"{part}: {instr[:80]}")
            unwraps.append(el)
    if dropped:
        attrs = root.xpath("//@*[namespace-uri()=$a or namespace-uri()=$b]", a=R_NS, b=R_NS_STRICT)
        for value in attrs:
            if str(value) not in dropped:
                continue
            el = value.getparent()
            name = _local(el.tag)
            if name == "hyperlink":
                unwraps.append(el)
            elif name in ("sheet", "externalReference", "svgBlip"):
                removals.append(el)
            else:
                el.attrib.pop(value.attrname, None)
    _scrub_complex_fields(root, part, ctx)
    for el in unwraps:
        _unwrap(el)
    for el in removals:
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)


def _is_macro_name(el: Any) -> bool:
    if _AUTO_NAMES.match(el.get("name", "")):
        return True
    if any(el.get(a) in ("1", "true") for a in ("function", "vbProcedure", "xlm")):
        return True
    return bool(el.text and _FORMULA_DANGER.search(el.text))


def _scrub_complex_fields(root: Any, part: str, ctx: Context) -> None:
    """Blank the instructions of DDE and fetching fields, however they are split in runs."""
    fld_char = f"{{{W_NS}}}fldChar"
    instr_text = f"{{{W_NS}}}instrText"
    stack: list[list[Any]] = []
    for el in root.iter(fld_char, instr_text):
        if el.tag == instr_text:
            if stack:
                stack[-1].append(el)
            continue
        kind = el.get(f"{{{W_NS}}}fldCharType")
        if kind == "begin":
            stack.append([])
        elif kind in ("separate", "end") and stack:
            instrs = stack[-1]
            text = "".join(i.text or "" for i in instrs)
            if _FIELD_DANGER.match(text):
                ctx.remove("dde_field", f"{part}: {text.strip()[:80]}")
                for i in instrs:
                    i.text = ""
            instrs.clear()
            if kind == "end":
                stack.pop()


def _ancestor(el: Any, name: str) -> Any:
    parent = el.getparent()
    while parent is not None:
        if _local(parent.tag) == name:
            return parent
        parent = parent.getparent()
    return None


def _unwrap(el: Any) -> None:
    parent = el.getparent()
    if parent is None:
        return
    index = parent.index(el)
    for offset, child in enumerate(list(el)):
        parent.insert(index + offset, child)
    parent.remove(el)
