"""Sanitiser benchmark: seconds, MB/s and peak memory for ~20 MiB office files and PDF, a
12 MP JPEG, the per-job sandbox overhead, and a bare pikepdf open+save of the same PDF as
the floor. All inputs are generated here.

    .venv/bin/python bench/sanitize.py [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_BYTES = 20 * 1024 * 1024 - 512 * 1024
JA = "市役所の会議資料です。無害化のベンチマーク用の日本語テキストです。"


def _noise_jpeg(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    im = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def _photo_jpeg() -> bytes:
    """12 MP (4000x3000), photo-like: gradients with noise, with EXIF GPS."""
    from PIL import Image, ImageChops

    rng = random.Random(12)
    base = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.frombytes("L", (4000, 3000), rng.randbytes(4000 * 3000))
    green = ImageChops.add(base.transpose(Image.Transpose.ROTATE_180), noise, scale=2.0)
    im = Image.merge("RGB", (base, green, noise.point(lambda v: v // 2)))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0), 3: "E", 4: (139.0, 41.0, 30.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _images_until(budget: int, seed: int) -> list[bytes]:
    """Incompressible pictures adding up to at most `budget` bytes."""
    images: list[bytes] = []
    total = 0
    while True:
        data = _noise_jpeg(1600, 1200, seed + len(images))
        if total + len(data) > budget:
            return images
        images.append(data)
        total += len(data)


def make_docx() -> bytes:
    import docx
    from docx.shared import Inches

    d = docx.Document()
    for i in range(3000):
        d.add_paragraph(f"{i}: {JA}")
    for img in _images_until(TARGET_BYTES - 400_000, 1):
        d.add_picture(io.BytesIO(img), width=Inches(5))
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_xlsx() -> bytes:
    import openpyxl
    from openpyxl.drawing.image import Image as XlImage

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in range(1, 20001):
        ws.append([r, "東京都千代田区", r * 3.5, f"=A{r}*2", JA])
    for n, img in enumerate(_images_until(TARGET_BYTES - 1_500_000, 100)):
        ws.add_image(XlImage(io.BytesIO(img)), f"H{1 + n * 30}")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def make_pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    prs = pptx.Presentation()
    for n, img in enumerate(_images_until(TARGET_BYTES - 100_000, 200)):
        slide = prs.slides.add_slide(prs.slide_layouts[5])
        slide.shapes.title.text = f"{n}: 防災訓練"
        slide.shapes.add_picture(io.BytesIO(img), Inches(1), Inches(1.5), width=Inches(6))
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def make_pdf() -> bytes:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    out = io.BytesIO()
    c = canvas.Canvas(out)
    for page in range(150):
        c.setFont("HeiseiMin-W3", 10)
        for line in range(40):
            c.drawString(40, 800 - line * 18, f"{page}-{line} {JA}")
        c.showPage()
    for img in _images_until(TARGET_BYTES - 4_500_000, 300):
        c.drawImage(ImageReader(io.BytesIO(img)), 40, 200, width=500, height=375)
        c.showPage()
    c.save()
    return out.getvalue()


def _median_time(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_rss_mib(path: Path, name: str) -> float:
    """Peak RSS of a fresh process sanitising `path` in-process (what a sandbox child uses)."""
    code = (
        "import sys;from sanitizer import sanitize;"
        "r=sanitize(sys.argv[1],filename=sys.argv[2],output_path=sys.argv[1]+'.out',use_sandbox=False);"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), name], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip()) / 1024


def main() -> None:
    from sanitizer import sandbox, sanitize

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kakehashi-bench-"))
    samples = {
        "docx": ("report.docx", make_docx()),
        "xlsx": ("table.xlsx", make_xlsx()),
        "pptx": ("slides.pptx", make_pptx()),
        "pdf": ("document.pdf", make_pdf()),
        "jpeg": ("photo.jpg", _photo_jpeg()),
    }
    sandbox.warm_up()
    print(f"{'file':6} {'MiB':>6} {'sec':>7} {'MB/s':>7} {'verdict':>9} {'peak MiB':>9}")
    for key, (name, data) in samples.items():
        path = work / name
        path.write_bytes(data)
        verdicts: list[str] = []

        def once(path: Path = path, name: str = name, verdicts: list[str] = verdicts) -> None:
            verdicts.append(sanitize(path, filename=name, output_path=work / "out").verdict)

        seconds = _median_time(once, args.runs)
        mib = len(data) / 2**20
        rss = _peak_rss_mib(path, name)
        rate = len(data) / 1e6 / seconds
        print(f"{key:6} {mib:6.1f} {seconds:7.3f} {rate:7.1f} {verdicts[-1]:>9} {rss:9.0f}")

    import pikepdf

    pdf_path = work / "document.pdf"

    def bare() -> None:
        with pikepdf.open(pdf_path) as pdf:
            pdf.save(work / "bare.pdf")

    floor = _median_time(bare, args.runs)
    print(f"pdf floor (bare pikepdf open+save): {floor:.3f} s")

    lim = sandbox.SandboxLimits()
    noop = _median_time(lambda: sandbox.run(sandbox._noop, (), lim), 20)
    tiny = work / "tiny.txt"
    tiny.write_bytes(b"hello\n")
    boxed = _median_time(lambda: sanitize(tiny, filename="a.txt", output_path=work / "t"), 20)
    bare_job = _median_time(
        lambda: sanitize(tiny, filename="a.txt", output_path=work / "t", use_sandbox=False), 20
    )
    print(
        f"sandbox: empty job {noop * 1000:.1f} ms; tiny file {boxed * 1000:.1f} ms in the sandbox"
        f" vs {bare_job * 1000:.1f} ms in-process (overhead {(boxed - bare_job) * 1000:.1f} ms)"
    )
    print(f"parent peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for p in work.iterdir():
        os.unlink(p)
    work.rmdir()


if __name__ == "__main__":
    main()
