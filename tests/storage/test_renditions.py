"""View-only previews rendered in a child process, marked with who is looking and when."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from reportlab.pdfgen import canvas

from storage.renditions import PreviewError, previewable, render_preview

MARK = "青木 アリス 2026-11-23 17:05"


def _pdf(path: Path, pages: int) -> None:
    c = canvas.Canvas(str(path))
    for i in range(pages):
        c.drawString(100, 700, f"page {i + 1}")
        c.showPage()
    c.save()


async def test_an_image_is_marked_across_and_at_the_bottom(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.new("RGB", (800, 600), (255, 255, 255)).save(source)
    preview = await render_preview(source, "image/png", page=1, mark=MARK)
    assert preview.pages == 1
    image = Image.open(io.BytesIO(preview.jpeg))
    assert image.format == "JPEG" and image.size == (800, 600)
    # the band at the bottom is dark, the watermark tints the white page
    assert sum(image.getpixel((400, 595))) < 400  # type: ignore[arg-type]  # white is 765
    colours = {image.getpixel((x, y)) for x in range(0, 800, 7) for y in range(0, 500, 7)}
    assert len(colours) > 10


async def test_a_pdf_page_by_number(tmp_path: Path) -> None:
    source = tmp_path / "doc.pdf"
    _pdf(source, 3)
    preview = await render_preview(source, "application/pdf", page=2, mark=MARK)
    assert preview.pages == 3
    assert Image.open(io.BytesIO(preview.jpeg)).format == "JPEG"
    with pytest.raises(PreviewError):
        await render_preview(source, "application/pdf", page=4, mark=MARK)


async def test_what_cannot_be_previewed_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(PreviewError):
        await render_preview(broken, "image/png", page=1, mark=MARK)
    assert not previewable(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    with pytest.raises(PreviewError):
        await render_preview(broken, "text/plain", page=1, mark=MARK)
