"""Images: re-encoded from pixels; metadata, GPS and trailing data gone; bombs blocked."""

from __future__ import annotations

import io

import sancorpus as c
from PIL import Image
from sancorpus import Run


def test_jpeg_loses_exif_gps_and_trailing_data_and_is_rotated(run: Run) -> None:
    data = c.jpeg_with_gps(width=64, height=32, orientation=6)
    result, out = run(data, "現場.jpg")
    assert result.verdict == "sanitized"
    assert result.output_filename == "現場.jpg"
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG"
    assert im.size == (32, 64)  # orientation 6 applied
    assert not im.getexif()
    assert "exif" not in im.info and "comment" not in im.info and "icc_profile" not in im.info
    assert b"PK\x03\x04" not in out
    assert b"PhoneMaker" not in out


def test_png_loses_text_chunks_keeps_pixels(run: Run) -> None:
    _result, out = run(c.png_with_text(), "図.png")
    im = Image.open(io.BytesIO(out))
    assert im.size == (40, 30)
    assert im.mode == "RGBA"
    assert im.getpixel((0, 0)) == (0, 0, 255, 128)
    assert "Author" not in im.info
    assert "山田".encode() not in out


def test_gif_and_webp_are_reencoded(run: Run) -> None:
    for data, name, size in (
        (c.gif_animated(), "a.gif", (20, 20)),
        (c.webp_image(), "b.webp", (33, 17)),
    ):
        result, out = run(data, name)
        assert result.verdict in ("clean", "sanitized")
        assert Image.open(io.BytesIO(out)).size == size


def test_heic_becomes_jpeg(run: Run) -> None:
    result, out = run(c.heic_image(), "IMG_0001.HEIC")
    assert result.output_mime == "image/jpeg"
    assert result.output_filename == "IMG_0001.jpg"
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG"
    assert im.size == (64, 48)


def test_pixel_bomb_is_blocked_not_warned(run: Run) -> None:
    result, _ = run(c.png_pixel_bomb(), "bomb.png")
    assert result.verdict == "blocked"
    assert result.report.reason is not None and result.report.reason.code == "limit_exceeded"


def test_truncated_image_is_blocked(run: Run) -> None:
    data = c.jpeg_with_gps()
    result, _ = run(data[:200], "broken.jpg")
    assert result.verdict == "blocked"


def test_webp_and_heic_lose_exif_gps(run: Run) -> None:
    for data, name, fmt, size in (
        (c.webp_with_gps(), "地図.webp", "WEBP", (33, 17)),
        (c.heic_with_gps(), "IMG_0002.HEIC", "JPEG", (64, 48)),
    ):
        assert b"PhoneMaker" in data  # the sample does carry it
        result, out = run(data, name)
        assert result.verdict == "sanitized", name
        im = Image.open(io.BytesIO(out))
        assert (im.format, im.size) == (fmt, size)
        assert not im.getexif().get_ifd(0x8825) and not im.getexif()
        assert "exif" not in im.info and b"PhoneMaker" not in out
        assert "metadata" in {r.kind for r in result.report.removed}
