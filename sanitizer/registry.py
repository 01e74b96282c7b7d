"""The explicit table of which disarmer handles which detected type. No discovery, no globbing:
a type that is not a key here is blocked (`unsupported_type`)."""

from __future__ import annotations

from functools import partial

from sanitizer import mimes
from sanitizer.formats import (
    Disarmer,
    StreamingDisarmer,
    archive,
    html,
    images,
    ole,
    ooxml,
    pdf,
    rtf,
    svg,
    text,
)

REGISTRY: dict[str, Disarmer] = {
    mimes.DOCX: ooxml.disarm,
    mimes.XLSX: ooxml.disarm,
    mimes.PPTX: ooxml.disarm,
    mimes.DOCM: ooxml.disarm,
    mimes.XLSM: ooxml.disarm,
    mimes.PPTM: ooxml.disarm,
    mimes.OOXML_ENCRYPTED: ole.disarm_encrypted,
    mimes.DOC: partial(ole.disarm_legacy, mime=mimes.DOC),
    mimes.XLS: partial(ole.disarm_legacy, mime=mimes.XLS),
    mimes.PPT: partial(ole.disarm_legacy, mime=mimes.PPT),
    mimes.JTD: partial(ole.disarm_legacy, mime=mimes.JTD),
    mimes.RTF: rtf.disarm,
    mimes.PDF: pdf.disarm,
    mimes.JPEG: partial(images.disarm, mime=mimes.JPEG),
    mimes.PNG: partial(images.disarm, mime=mimes.PNG),
    mimes.GIF: partial(images.disarm, mime=mimes.GIF),
    mimes.WEBP: partial(images.disarm, mime=mimes.WEBP),
    mimes.HEIC: partial(images.disarm, mime=mimes.HEIC),
    mimes.SVG: svg.disarm,
    mimes.HTML: html.disarm,
    mimes.TEXT: text.disarm_text,
    mimes.CSV: text.disarm_csv,
    mimes.ZIP: archive.disarm,
}

#: Types rewritten from file to file in the sandbox (no copy of the file in memory); the
#: same types stay in REGISTRY for files nested in archives.
STREAMING: dict[str, StreamingDisarmer] = {
    mimes.PDF: pdf.disarm_file,
}
