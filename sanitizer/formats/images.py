"""Raster images from cameras and phones: JPEG, PNG, GIF, WebP and HEIC/HEIF.

Decoded and encoded again from pixels only: the orientation is applied, every piece of
metadata (EXIF with its GPS position, XMP, comments, ICC profiles, trailing data) is left
behind, HEIC becomes JPEG, and an image with more than MAX_IMAGE_PIXELS is blocked before
it is decoded.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

_FORMATS = {mimes.JPEG: "JPEG", mimes.PNG: "PNG", mimes.GIF: "GIF", mimes.WEBP: "WEBP"}

#: Pillow plugins allowed to open a top-level image of each detected type (never "any").
_OPEN_FORMATS = {mimes.HEIC: "HEIF", **_FORMATS}

#: Pictures inside documents, by magic number -> the one Pillow plugin that may open them.
_PICTURE_MAGICS = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def disarm(data: bytes, ctx: Context, *, mime: str) -> Disarmed:
    """A top-level image: re-encoded in its own type (HEIC -> JPEG)."""
    if mime == mimes.HEIC:
        import pillow_heif

        pillow_heif.register_heif_opener()
    out_mime = mimes.JPEG if mime == mimes.HEIC else mime
    body, had_metadata, frames = _reencode(data, ctx, _OPEN_FORMATS[mime], _FORMATS[out_mime])
    if had_metadata:
        ctx.remove("metadata", "image metadata (EXIF/XMP/ICC/comments)")
    if frames > 1:
        ctx.warn("animation_dropped")
    ctx.warn("image_reencoded")
    if mime == mimes.HEIC:
        ctx.warn("heic_converted")
    return Disarmed(body, out_mime)


def picture_format(data: bytes) -> str | None:
    """The Pillow format of a raster picture inside a document, from its magic number."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _PICTURE_MAGICS:
        if data.startswith(magic):
            return fmt
    return None


def is_metafile(data: bytes) -> bool:
    """EMF or WMF (Windows vector pictures), which Pillow cannot redraw."""
    emf = data[:4] == b"\x01\x00\x00\x00" and data[40:44] == b" EMF"
    wmf = data[:4] == b"\xd7\xcd\xc6\x9a" or (
        data[:2] in (b"\x01\x00", b"\x02\x00") and data[2:4] == b"\x09\x00"
    )
    return emf or wmf


def disarm_picture(data: bytes, ctx: Context) -> bytes:
    """A raster picture inside a document, re-encoded in its own format without metadata
    (same part name and content type, so the document needs no other change); Blocked when
    it cannot be read or is over the pixel limits."""
    fmt = picture_format(data)
    if fmt is None:
        raise Blocked("unparseable", "picture of unknown type")
    body, had_metadata, frames = _reencode(data, ctx, fmt, fmt)
    if had_metadata:
        ctx.remove("metadata", "picture metadata (EXIF/XMP/ICC/comments)")
        ctx.warn("image_reencoded")
    if frames > 1:
        ctx.warn("animation_dropped")
    return body


def _reencode(data: bytes, ctx: Context, open_fmt: str, out_fmt: str) -> tuple[bytes, bool, int]:
    """(encoded pixels, whether metadata was found, frames in the input)."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[open_fmt]) as im:
                width, height = im.size
                if width * height > limits.MAX_IMAGE_PIXELS or width <= 0 or height <= 0:
                    raise Blocked("limit_exceeded", f"{width}x{height} pixels")
                ctx.budget.spend_pixels(width * height)
                frames = getattr(im, "n_frames", 1)
                had_metadata = _has_metadata(im)
                im.seek(0)
                im.load()
                jpeg_tables = _jpeg_tables(im) if out_fmt == "JPEG" else None
                ImageOps.exif_transpose(im, in_place=True)
                # A plain Image over the decoded pixels (shared, not copied): nothing of the
                # plugin's state (EXIF, TIFF tags, markers, `info`) reaches the encoder.
                image: Any = im._new(im.im)
                body = _encode(image, out_fmt, jpeg_tables)
    except Blocked:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Blocked("limit_exceeded", "pixels") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise Blocked("unparseable", f"image: {exc}") from exc
    except RuntimeError as exc:  # pillow-heif reports decoder errors as RuntimeError
        raise Blocked("unparseable", f"image: {exc}") from exc
    return body, had_metadata, frames


def _has_metadata(im: Any) -> bool:
    info_keys = set(im.info) - {"dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density"}
    info_keys -= {"progressive", "progression", "interlace", "gamma", "aspect", "adobe"}
    info_keys -= {"adobe_transform", "duration", "loop", "background", "transparency"}
    info_keys -= {"version", "extension", "mode", "lossless", "bit_depth", "primaries"}
    info_keys -= {"compression", "resolution"}
    return bool(info_keys) or bool(im.getexif())


def _jpeg_tables(im: Any) -> dict[str, Any] | None:
    """The source JPEG's quantisation tables and subsampling, to re-encode at its quality."""
    from PIL import JpegImagePlugin

    if im.format != "JPEG" or not getattr(im, "quantization", None):
        return None
    return {
        "qtables": im.quantization,
        "subsampling": JpegImagePlugin.get_sampling(im),
    }


def _encode(image: Any, fmt: str, jpeg_tables: dict[str, Any] | None = None) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    # Encoders fall back on `info` for EXIF and ICC profiles: keep only what is pixels.
    transparency = image.info.get("transparency")
    if type(image) is not Image.Image:  # a plain Image: no plugin state (TIFF tags) follows
        raise TypeError("only a plain Image is encoded")
    image.info = {} if transparency is None else {"transparency": transparency}
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        if jpeg_tables is not None and jpeg_tables["subsampling"] != -1:
            try:
                image.save(out, "JPEG", optimize=False, **jpeg_tables)
                return out.getvalue()
            except (ValueError, OSError, TypeError):  # odd tables: use our own quality
                out = io.BytesIO()
        image.save(out, "JPEG", quality=90, optimize=False)
    elif fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    elif fmt == "GIF":
        image.save(out, "GIF")
    elif fmt == "TIFF":
        image.save(out, "TIFF", compression="tiff_deflate")
    elif fmt == "BMP":
        if image.mode not in ("1", "L", "P", "RGB", "RGBA"):
            image = image.convert("RGB")
        image.save(out, "BMP")
    else:
        image.save(out, "WEBP", quality=90, method=4)
    return out.getvalue()
