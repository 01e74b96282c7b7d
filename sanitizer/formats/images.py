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


def disarm(data: bytes, ctx: Context, *, mime: str) -> Disarmed:
    from PIL import Image, ImageOps

    if mime == mimes.HEIC:
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width * height > limits.MAX_IMAGE_PIXELS or width <= 0 or height <= 0:
                    raise Blocked("limit_exceeded", f"{width}x{height} pixels")
                if getattr(im, "n_frames", 1) > 1:
                    ctx.warn("animation_dropped")
                had_metadata = _has_metadata(im)
                im.seek(0)
                im.load()
                image: Any = ImageOps.exif_transpose(im)
                out_mime = mimes.JPEG if mime == mimes.HEIC else mime
                body = _encode(image, out_mime)
    except Blocked:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Blocked("limit_exceeded", "pixels") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise Blocked("unparseable", f"image: {exc}") from exc
    except RuntimeError as exc:  # pillow-heif reports decoder errors as RuntimeError
        raise Blocked("unparseable", f"image: {exc}") from exc
    if had_metadata:
        ctx.remove("metadata", "image metadata (EXIF/XMP/ICC/comments)")
    ctx.warn("image_reencoded")
    if mime == mimes.HEIC:
        ctx.warn("heic_converted")
    return Disarmed(body, out_mime)


def _has_metadata(im: Any) -> bool:
    info_keys = set(im.info) - {"dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density"}
    info_keys -= {"progressive", "progression", "interlace", "gamma", "aspect", "adobe"}
    info_keys -= {"adobe_transform", "duration", "loop", "background", "transparency"}
    info_keys -= {"version", "extension", "mode", "lossless", "bit_depth", "primaries"}
    return bool(info_keys) or bool(im.getexif())


def _encode(image: Any, mime: str) -> bytes:
    out = io.BytesIO()
    fmt = _FORMATS[mime]
    # Encoders fall back on `info` for EXIF and ICC profiles: keep only what is pixels.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=90, optimize=False)
    elif fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    elif fmt == "GIF":
        image.save(out, "GIF")
    else:
        image.save(out, "WEBP", quality=90, method=4)
    return out.getvalue()
