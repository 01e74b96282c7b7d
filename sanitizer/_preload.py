"""Imported once by the sandbox's forkserver so that each forked job starts warm.

This is the one module that does work at import time, on purpose: it is imported only by
the forkserver process (see sandbox.py), never by the library or the app.
"""

from __future__ import annotations

import bz2  # noqa: F401
import csv  # noqa: F401
import email.parser  # noqa: F401
import encodings.ascii
import encodings.cp437
import encodings.cp932
import encodings.latin_1
import encodings.utf_8_sig
import encodings.utf_16
import encodings.utf_16_be
import encodings.utf_16_le  # noqa: F401
import gc
import gzip  # noqa: F401
import html.parser  # noqa: F401
import lzma  # noqa: F401
import xml.dom.expatbuilder
import xml.dom.minidom
import xml.sax.expatreader  # noqa: F401

import cryptography.hazmat.backends.openssl  # noqa: F401  (msoffcrypto decrypting)
import lxml.etree  # noqa: F401
import msoffcrypto
import msoffcrypto.format.doc97
import msoffcrypto.format.ooxml
import msoffcrypto.format.ppt97
import msoffcrypto.format.xls97  # noqa: F401
import olefile  # noqa: F401
import oletools.olevba  # noqa: F401
import pikepdf  # noqa: F401
import pillow_heif
from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401

from sanitizer import context, core, detect, engine, registry, sandbox  # noqa: F401

Image.init()
pillow_heif.register_heif_opener()
detect.libmagic_mime(b"warm up")
sandbox._libc()
# Everything imported so far is shared with each forked job: keep the collector off it,
# so a job's garbage collection does not touch (and copy) the forkserver's pages.
gc.freeze()
