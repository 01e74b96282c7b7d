"""View-only previews: an image, or one page of a PDF, rendered on the server as a JPEG and
marked with the viewer's name and the time, for clients that may not receive files (a phone
that cannot prevent saving, under a no-save policy).

Rendering parses a file, so it runs in a child process of its own (``python -m
storage.renditions``) with CPU, memory and time limits; only the sanitised rendition is ever
rendered.  The child writes one JSON line (``{"pages": N}``) then the JPEG to stdout; the
parent reads it as untrusted and checks its size and form.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

PREVIEW_MAX_EDGE = 1600  # pixels, the longer side
PREVIEW_MAX_SOURCE_PIXELS = 64_000_000
PREVIEW_MAX_OUTPUT_BYTES = 8 * 1024 * 1024
PREVIEW_TIMEOUT_S = 20.0
PREVIEW_CPU_S = 20
PREVIEW_MEMORY_BYTES = 1536 * 1024 * 1024
PREVIEW_JPEG_QUALITY = 80
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PDF_TYPE = "application/pdf"
FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)


class PreviewError(Exception):
    """The preview could not be made (the reason is for the log, not for the user)."""


@dataclass(frozen=True)
class Preview:
    jpeg: bytes
    pages: int


def previewable(content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in IMAGE_TYPES or kind == PDF_TYPE


def _limits() -> None:  # pragma: no cover - runs in the child
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (PREVIEW_CPU_S, PREVIEW_CPU_S))
    resource.setrlimit(resource.RLIMIT_AS, (PREVIEW_MEMORY_BYTES, PREVIEW_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def render_preview(source: Path, content_type: str, *, page: int, mark: str) -> Preview:
    """Render ``page`` (1-based; images have one) of ``source`` with ``mark`` written over it."""
    if not previewable(content_type):
        raise PreviewError(f"not previewable: {content_type}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "storage.renditions",
        str(source),
        content_type.split(";")[0].strip().lower(),
        str(page),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_limits,  # its own process group and limits, set before exec
    )
    try:
        async with asyncio.timeout(PREVIEW_TIMEOUT_S):
            untrusted_out, _ = await proc.communicate(mark.encode("utf-8")[:1024])
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise PreviewError("timed out") from None
    if proc.returncode != 0:
        raise PreviewError(f"renderer exited with {proc.returncode}")
    header, _, untrusted_jpeg = untrusted_out.partition(b"\n")
    try:
        pages = int(json.loads(header)["pages"])
    except (ValueError, KeyError, TypeError):
        raise PreviewError("bad header") from None
    if not untrusted_jpeg.startswith(b"\xff\xd8") or len(untrusted_jpeg) > PREVIEW_MAX_OUTPUT_BYTES:
        raise PreviewError("bad image")
    return Preview(untrusted_jpeg, max(pages, 1))


# --- the child ---------------------------------------------------------------------------------


def _font(size: int):  # type: ignore[no-untyped-def]  # pragma: no cover - child
    from PIL import ImageFont

    for path in FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _mark(image, text: str):  # type: ignore[no-untyped-def]  # pragma: no cover - child
    """The viewer's name and the time, across the picture and in a band at the bottom."""
    from PIL import Image, ImageDraw

    base = image.convert("RGB")
    w, h = base.size
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(14, min(w, h) // 24)
    font = _font(size)
    step_y = size * 5
    step_x = max(size * len(text), 200)
    for row, y in enumerate(range(-h, 2 * h, step_y)):
        for x in range(-w + (row % 2) * step_x // 2, 2 * w, step_x):
            draw.text((x, y), text, font=font, fill=(200, 0, 0, 56))
    layer = layer.rotate(30, resample=Image.Resampling.BICUBIC, center=(w // 2, h // 2))
    band = ImageDraw.Draw(layer)
    band.rectangle((0, h - size * 2, w, h), fill=(0, 0, 0, 150))
    band.text((size // 2, h - size * 2 + size // 3), text, font=font, fill=(255, 255, 255, 255))
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def _child(path: str, content_type: str, page: int, text: str) -> None:  # pragma: no cover
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = PREVIEW_MAX_SOURCE_PIXELS
    if content_type == PDF_TYPE:
        import pypdfium2

        pdf = pypdfium2.PdfDocument(path)
        pages = len(pdf)
        if not 1 <= page <= pages:
            raise SystemExit(3)
        pdf_page = pdf[page - 1]
        width, height = pdf_page.get_size()
        scale = min(PREVIEW_MAX_EDGE / max(width, height, 1.0), 3.0)
        image = pdf_page.render(scale=scale).to_pil()
    else:
        pages = 1
        if page != 1:
            raise SystemExit(3)
        with Image.open(path) as source:
            source.seek(0)
            image = source.convert("RGB")
        image.thumbnail((PREVIEW_MAX_EDGE, PREVIEW_MAX_EDGE))
    marked = _mark(image, text)
    out = sys.stdout.buffer
    out.write(json.dumps({"pages": pages}).encode() + b"\n")
    marked.save(out, "JPEG", quality=PREVIEW_JPEG_QUALITY)
    out.flush()


if __name__ == "__main__":  # pragma: no cover
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.stdin.read()[:200])
