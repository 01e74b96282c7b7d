"""OOXML: rebuilt without active parts; checked by re-reading the package, not the report."""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
import pptx
import sancorpus as c
from defusedxml import ElementTree as DET
from PIL import Image
from sancorpus import Run, kinds, zip_names

from sanitizer import SanitizeResult

ACTIVE_WORDS = (
    b"vbaProject",
    b"DDEAUTO",
    b"attachedTemplate",
    b"evil.example",
    b"OLEObject",
    b"w:control",
    b"CommandButton1",
    b"activeX",
)
THUMBNAIL = "docProps/thumbnail.jpeg"


def _all_bytes(data: bytes) -> bytes:
    z = zipfile.ZipFile(io.BytesIO(data))
    return b"".join(z.read(n) for n in z.namelist())


def _check_xml_parts(data: bytes) -> None:
    z = zipfile.ZipFile(io.BytesIO(data))
    for name in z.namelist():
        if name.endswith((".xml", ".rels")):
            DET.fromstring(z.read(name), forbid_dtd=True)


def _only_thumbnail_metadata_removed(result: SanitizeResult, out: bytes) -> None:
    """python-docx/-pptx templates carry a thumbnail with EXIF and an ICC profile: that
    metadata goes (the thumbnail is re-encoded like every picture), nothing else."""
    assert result.verdict == "sanitized"
    assert [(r.kind, r.where.split(":")[0]) for r in result.report.removed] == [
        ("metadata", "docProps/thumbnail.jpeg")
    ]
    thumbnail = Image.open(io.BytesIO(zipfile.ZipFile(io.BytesIO(out)).read(THUMBNAIL)))
    assert not thumbnail.getexif() and "icc_profile" not in thumbnail.info


def test_benign_docx_keeps_japanese(run: Run) -> None:
    result, out = run(c.docx_benign(), "報告書.docx")
    _only_thumbnail_metadata_removed(result, out)
    assert result.output_filename == "報告書.docx"
    document = docx.Document(io.BytesIO(out))
    assert document.paragraphs[0].text == c.JA_TEXT
    assert document.tables[0].rows[0].cells[1].text == "情報管理課"


def test_docm_becomes_docx_without_active_content(run: Run) -> None:
    result, out = run(c.docm_active(), "議事録.docm")
    assert result.verdict == "sanitized"
    assert result.output_filename == "議事録.docx"
    assert result.output_mime == c.__dict__.get("DOCX", result.output_mime)
    names = zip_names(out)
    assert not any(
        "vba" in n.lower() or "embeddings" in n or "customUI" in n or "activeX" in n for n in names
    )
    everything = _all_bytes(out)
    for word in ACTIVE_WORDS:
        assert word not in everything, word
    assert b"https://www.city.example.jp/" in everything  # a plain web link may stay
    assert b"file://" not in everything
    ct = zipfile.ZipFile(io.BytesIO(out)).read("[Content_Types].xml")
    assert b"macroEnabled" not in ct
    assert b"wordprocessingml.document.main+xml" in ct
    _check_xml_parts(out)
    document = docx.Document(io.BytesIO(out))
    assert c.JA_TEXT in [p.text for p in document.paragraphs]
    assert "結果" in "".join(p.text for p in document.paragraphs)  # the field's shown result
    assert {"vba_macro", "dde_field", "external_template", "ole_object", "activex"} <= kinds(result)
    assert "macros_removed" in {w.code for w in result.report.warnings}
    ja = [w.ja for w in result.report.warnings]
    assert "マクロを削除したため、ブックの自動処理は動作しません。" in ja


def test_benign_xlsx_keeps_cells(run: Run) -> None:
    result, out = run(c.xlsx_benign(), "人口.xlsx")
    assert result.verdict == "clean"
    ws = openpyxl.load_workbook(io.BytesIO(out))["集計"]
    assert ws["A2"].value == "東京都千代田区"
    assert ws["B2"].value == 66680
    assert ws["B3"].value == "=SUM(B2:B2)"


def test_xlsm_loses_macros_xlm_dde_and_links(run: Run) -> None:
    result, out = run(c.xlsm_active(), "集計.xlsm")
    assert result.verdict == "sanitized"
    assert result.output_filename == "集計.xlsx"
    names = zip_names(out)
    assert not any(
        part in n
        for n in names
        for part in ("vbaProject", "macrosheets", "externalLinks", "connections")
    )
    everything = _all_bytes(out)
    assert b"Auto_Open" not in everything
    assert b"cmd|" not in everything
    assert b"EXEC(" not in everything
    assert b"Macro1" not in zipfile.ZipFile(io.BytesIO(out)).read("xl/workbook.xml")
    _check_xml_parts(out)
    wb = openpyxl.load_workbook(io.BytesIO(out))
    assert wb.sheetnames == ["集計"]
    assert wb["集計"]["A2"].value == "東京都千代田区"
    assert "Keep" in wb.defined_names
    assert {"vba_macro", "xlm_macro_sheet", "macro_name", "dde_formula"} <= kinds(result)


def test_pptm_loses_macros_and_program_actions(run: Run) -> None:
    result, out = run(c.pptm_active(), "訓練.pptm")
    assert result.verdict == "sanitized"
    assert result.output_filename == "訓練.pptx"
    everything = _all_bytes(out)
    assert b"ppaction://program" not in everything
    assert not any("vba" in n.lower() for n in zip_names(out))
    prs = pptx.Presentation(io.BytesIO(out))
    texts = [s.text_frame.text for s in prs.slides[0].shapes if s.has_text_frame]
    assert c.JA_TEXT in texts


def test_benign_pptx_keeps_its_slide(run: Run) -> None:
    result, out = run(c.pptx_benign(), "資料.pptx")
    _only_thumbnail_metadata_removed(result, out)
    prs = pptx.Presentation(io.BytesIO(out))
    assert len(prs.slides) == 1
    assert c.JA_TEXT in [s.text_frame.text for s in prs.slides[0].shapes if s.has_text_frame]


def test_encrypted_with_default_password_is_opened_and_sanitised(run: Run) -> None:
    result, out = run(c.encrypt_ooxml(c.xlsm_active(), "VelvetSweatshop"), "保護.xlsx")
    assert result.verdict == "sanitized"
    assert out[:2] == b"PK"  # no longer encrypted
    wb = openpyxl.load_workbook(io.BytesIO(out))
    assert wb["集計"]["A1"].value == "住所"
    assert "vba_macro" in kinds(result)


def test_encrypted_with_a_real_password_is_blocked(run: Run) -> None:
    result, _out = run(c.encrypt_ooxml(c.docx_benign(), "himitsu"), "秘密.docx")
    assert result.verdict == "blocked"
    assert result.report.reason is not None
    assert result.report.reason.code == "encrypted"
    assert "パスワード" in result.report.reason.ja
