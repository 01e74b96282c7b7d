"""Pictures inside OOXML: raster ones re-encoded without metadata, SVG ones rebuilt, broken
ones removed without losing the document. Checked by re-opening the output's parts with
Pillow and defusedxml and the documents with their own libraries, not by the report."""

from __future__ import annotations

import io
import posixpath
import zipfile

import docx
import openpyxl
import pptx
import pytest
import sancorpus as c
from defusedxml import ElementTree as DET
from PIL import Image
from sancorpus import Run, kinds

from sanitizer import limits

SVG = "{http://www.w3.org/2000/svg}"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
GPS_IFD = 0x8825
KINDS = ("docx", "xlsx", "pptx")


def _texts(kind: str, data: bytes) -> str:
    """The document's text as its own library reads it."""
    if kind == "docx":
        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    if kind == "xlsx":
        return str(openpyxl.load_workbook(io.BytesIO(data))["写真"]["A1"].value)
    prs = pptx.Presentation(io.BytesIO(data))
    return "\n".join(s.text_frame.text for s in prs.slides[0].shapes if s.has_text_frame)


def _pictures(data: bytes) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return {n: z.read(n) for n in z.namelist() if "/media/" in n}


def _check_relationships_resolve(data: bytes) -> None:
    """Every internal relationship and content-type override of the output names a part
    that exists."""
    z = zipfile.ZipFile(io.BytesIO(data))
    names = set(z.namelist())
    types = DET.fromstring(z.read("[Content_Types].xml"), forbid_dtd=True)
    for override in types.iter(f"{CT}Override"):
        assert override.get("PartName", "").lstrip("/") in names, override.get("PartName")
    for rels in (n for n in names if n.endswith(".rels")):
        source_dir = posixpath.dirname(posixpath.dirname(rels))
        for rel in DET.fromstring(z.read(rels), forbid_dtd=True).iter(f"{REL}Relationship"):
            if rel.get("TargetMode") == "External":
                continue
            target = rel.get("Target", "")
            part = (
                target.lstrip("/") if target.startswith("/") else posixpath.join(source_dir, target)
            )
            assert posixpath.normpath(part) in names, (rels, target)


@pytest.mark.parametrize("kind", KINDS)
def test_pictures_lose_exif_gps_and_svg_scripts(run: Run, kind: str) -> None:
    data = c.office_with_pictures(kind)
    before = _pictures(data)
    jpeg_name = next(n for n in before if n.endswith((".jpg", ".jpeg")))
    assert Image.open(io.BytesIO(before[jpeg_name])).getexif().get_ifd(GPS_IFD)  # the sample
    assert b"<script" in before[next(n for n in before if n.endswith(".svg"))]

    result, out = run(data, f"写真.{kind}")
    assert result.verdict == "sanitized"
    after = _pictures(out)
    assert set(after) == set(before)  # same parts: nothing else in the document changes
    im = Image.open(io.BytesIO(after[jpeg_name]))
    assert im.format == "JPEG"
    assert im.size == (32, 64)  # pixels kept, EXIF orientation 6 applied
    assert not im.getexif() and not im.getexif().get_ifd(GPS_IFD)
    assert "exif" not in im.info and "comment" not in im.info
    assert b"PhoneMaker" not in after[jpeg_name] and b"appended zip" not in after[jpeg_name]

    root = DET.fromstring(after[next(n for n in after if n.endswith(".svg"))], forbid_dtd=True)
    assert root.tag == f"{SVG}svg"
    assert f"{SVG}script" not in {el.tag for el in root.iter()}
    for el in root.iter():
        assert not any(a.lower().startswith("on") for a in el.attrib), el.attrib
        assert not any("evil.example" in v or "javascript:" in v for v in el.attrib.values())
    assert c.JA_TEXT in "".join(root.itertext())  # the SVG stays a vector image with its text

    assert c.JA_TEXT in _texts(kind, out)
    _check_relationships_resolve(out)
    assert {"metadata", "script", "event_handler"} <= kinds(result)
    assert any(
        r.kind == "script" and r.where.startswith(posixpath.dirname(jpeg_name))
        for r in result.report.removed
    )


@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_picture_is_removed_and_the_document_kept(run: Run, kind: str) -> None:
    data = c.office_with_pictures(kind, broken=b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    broken = next(n for n in _pictures(data) if n.endswith(".png"))
    result, out = run(data, f"写真.{kind}")
    assert result.verdict == "sanitized"
    after = _pictures(out)
    assert broken not in after
    assert any(n.endswith((".jpg", ".jpeg")) for n in after)  # the good picture stays
    assert c.JA_TEXT in _texts(kind, out)
    _check_relationships_resolve(out)
    assert f"{broken} (unparseable)" in {
        r.where for r in result.report.removed if r.kind == "picture"
    }
    assert "pictures_removed" in {w.code for w in result.report.warnings}


def test_pixel_bomb_picture_is_removed_without_decoding(run: Run) -> None:
    data = c.office_with_pictures("docx", broken=c.png_pixel_bomb())
    result, out = run(data, "爆弾.docx")
    assert result.verdict == "sanitized"
    assert not any(n.endswith(".png") for n in _pictures(out))
    assert any(r.kind == "picture" and "limit_exceeded" in r.where for r in result.report.removed)
    assert docx.Document(io.BytesIO(out)).paragraphs[0].text == c.JA_TEXT


def test_too_many_pictures_block_the_document(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "OOXML_MAX_PICTURES", 1)  # in-process, so the patch applies
    result, out = run(c.office_with_pictures("docx"), "多数.docx", use_sandbox=False)
    assert out is None
    assert result.report.reason is not None and result.report.reason.code == "limit_exceeded"


def test_picture_pixels_count_against_the_whole_document(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_TOTAL_IMAGE_PIXELS", 64 * 32 + 10)  # one JPEG, not two
    data = c.office_with_pictures("xlsx", broken=c.jpeg_with_gps())
    result, out = run(data, "多数.xlsx", use_sandbox=False)
    assert out is None
    assert result.report.reason is not None and result.report.reason.code == "limit_exceeded"
