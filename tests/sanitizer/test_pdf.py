"""PDF: rewritten by qpdf without scripts, actions, attachments or XFA; text stays text."""

from __future__ import annotations

import io
import random

import pikepdf
import sancorpus as c
from sancorpus import Run, kinds


def _walk_keys(pdf: pikepdf.Pdf) -> set[str]:
    keys: set[str] = set()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            keys.update(str(k) for k in obj.keys())
    return keys


def _actions(pdf: pikepdf.Pdf) -> list[tuple[str, str]]:
    found = []
    for page in pdf.pages:
        for annot in page.obj.get("/Annots", []):
            action = annot.get("/A")
            if action is not None:
                found.append((str(action.get("/S")), str(action.get("/URI", ""))))
    return found


def test_active_pdf_loses_scripts_actions_files_and_xfa(run: Run) -> None:
    result, out = run(c.pdf_active(), "申請書.pdf")
    assert result.verdict == "sanitized"
    pdf = pikepdf.open(io.BytesIO(out))
    assert "/OpenAction" not in pdf.Root
    assert "/JavaScript" not in pdf.Root.get("/Names", {})
    assert "/EmbeddedFiles" not in pdf.Root.get("/Names", {})
    assert "/XFA" not in pdf.Root.get("/AcroForm", {})
    keys = _walk_keys(pdf)
    assert not keys & {"/JS", "/AA", "/EF", "/EmbeddedFile"}
    assert b"MZ payload" not in out
    assert _actions(pdf) == [
        ("/URI", "https://www.city.example.jp/"),
        ("/URI", "mailto:soumu@city.example.jp"),
    ]
    subtypes = {str(a.get("/Subtype")) for a in pdf.pages[0].obj.get("/Annots", [])}
    assert subtypes == {"/Link"}  # the rich media annotation is gone
    assert not keys & {"/RichMediaContent", "/XFA"}
    assert len(pdf.pages) == 2
    assert {
        "javascript",
        "open_action",
        "launch_action",
        "remote_action",
        "submit_action",
        "unsafe_link",
        "rich_media",
        "embedded_file",
        "xfa_form",
    } <= kinds(result)


def test_text_survives_as_text(run: Run) -> None:
    original = pikepdf.open(io.BytesIO(c.pdf_benign(pages=3)))
    result, out = run(c.pdf_benign(pages=3), "資料.pdf")
    assert result.verdict == "clean"
    pdf = pikepdf.open(io.BytesIO(out))
    assert len(pdf.pages) == 3
    for before, after in zip(original.pages, pdf.pages, strict=True):
        assert before.obj.Contents.read_bytes() == after.obj.Contents.read_bytes()
    assert b"Page 2 plain text" in pdf.pages[1].obj.Contents.read_bytes()
    fonts = pdf.pages[0].obj.Resources.Font
    assert any("HeiseiMin" in str(f.get("/BaseFont")) for f in fonts.values())


def test_password_protected_pdf_is_blocked(run: Run) -> None:
    result, _ = run(c.pdf_encrypted(user="open-sesame"), "秘.pdf")
    assert result.verdict == "blocked"
    assert result.report.reason is not None and result.report.reason.code == "encrypted"


def test_pdf_with_only_an_owner_password_is_rewritten_unencrypted(run: Run) -> None:
    result, out = run(c.pdf_encrypted(user=""), "閲覧.pdf")
    assert result.verdict == "clean"
    assert not pikepdf.open(io.BytesIO(out)).is_encrypted


def test_earlier_revisions_and_trailing_bytes_are_gone(run: Run) -> None:
    data = c.pdf_benign() + b"\n%%EOF\nMZ hidden appended executable"
    result, out = run(data, "a.pdf")
    assert result.verdict in ("clean", "sanitized")
    assert b"hidden appended" not in out


def test_large_pdf_is_rewritten_file_to_file(run: Run) -> None:
    """Over the 1 MiB that detection reads, a PDF goes file to file (qpdf maps the input);
    the result is the same: rewritten whole, appended bytes gone, content kept."""
    pdf = pikepdf.open(io.BytesIO(c.pdf_benign(pages=2)))
    noise = random.Random(7).randbytes(3 * 1024 * 1024)
    blob = pdf.make_stream(noise)
    pdf.pages[1].obj.Resources.XObject = pikepdf.Dictionary(Blob=blob)
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("x"))
    buf = io.BytesIO()
    pdf.save(buf)
    data = buf.getvalue() + b"\n%%EOF\nMZ appended executable"
    assert len(data) > 3 * 1024 * 1024
    result, out = run(data, "大きい.pdf")
    assert result.verdict == "sanitized" and kinds(result) == {"open_action"}
    assert b"MZ appended" not in out
    rewritten = pikepdf.open(io.BytesIO(out))
    assert "/OpenAction" not in rewritten.Root
    assert len(rewritten.pages) == 2
    assert rewritten.pages[1].obj.Resources.XObject.Blob.read_bytes() == noise
    assert b"Page 2 plain text" in rewritten.pages[1].obj.Contents.read_bytes()
