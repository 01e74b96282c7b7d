"""The pipeline for one file, run inside the sandbox: detect, look up, disarm.

`process()` is what the sandboxed child runs; it is also called for each entry of an archive.
It trusts nothing about its input and returns only what a disarmer rebuilt.
"""

from __future__ import annotations

import errno

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.detect import detect, libmagic_mime
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked


def process(data: bytes, ctx: Context) -> Disarmed:
    """Detect and disarm `data`; raises Blocked."""
    return process_detected(data, ctx)[1]


def process_detected(data: bytes, ctx: Context) -> tuple[str, Disarmed]:
    """The detected type and the disarmed file; raises Blocked (with `detected_type` set)."""
    from sanitizer.registry import REGISTRY

    if len(data) > limits.MAX_INPUT_BYTES and ctx.depth == 0:
        raise Blocked("file_too_large")
    try:
        detected = detect(data, ctx.filename)
    except Blocked as exc:
        if not exc.detected_type:
            exc.detected_type = libmagic_mime(data)
        raise
    except Exception as exc:  # a structural parse choking on hostile input: fail closed
        raise Blocked("unparseable", f"{type(exc).__name__}: {exc}") from exc
    disarmer = REGISTRY.get(detected)
    if disarmer is None:
        raise Blocked("unsupported_type", detected, detected_type=detected)
    try:
        result = disarmer(data, ctx)
    except Blocked as exc:
        exc.detected_type = exc.detected_type or detected
        raise
    except MemoryError as exc:
        raise Blocked("limit_exceeded", "memory", detected_type=detected) from exc
    except ImportError as exc:  # our fault (a module not preloaded), not the file's
        raise Blocked("crashed", f"import: {exc}", detected_type=detected) from exc
    except RecursionError as exc:
        raise Blocked("limit_exceeded", "recursion", detected_type=detected) from exc
    except OSError as exc:
        code = "limit_exceeded" if exc.errno == errno.EFBIG else "unparseable"
        raise Blocked(code, f"{type(exc).__name__}: {exc}", detected_type=detected) from exc
    except Exception as exc:  # a parser choking on hostile input: fail closed
        raise Blocked(
            "unparseable", f"{type(exc).__name__}: {exc}", detected_type=detected
        ) from exc
    if result.mime not in mimes.OUTPUT_MIMES:
        raise Blocked("unsupported_type", f"output {result.mime}", detected_type=detected)
    if len(result.data) > limits.MAX_OUTPUT_BYTES:
        raise Blocked("limit_exceeded", "output size", detected_type=detected)
    return detected, result


def output_filename(filename: str | None, mime: str) -> str:
    """The name of a rendition: the same stem, with the extension of the output type unless
    the original extension already belongs to that type (.jpeg stays .jpeg)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "attachment"
    directory = (
        (filename or "").replace("\\", "/").rsplit("/", 1)[0] if "/" in (filename or "") else ""
    )
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    wanted = mimes.EXTENSION_OF_MIME.get(mime, "bin")
    same_family = mimes.FAMILY_OF_EXTENSION.get(ext.lower()) == mimes.FAMILY_OF_MIME.get(mime)
    keep = ext and same_family and ext.lower() in _KEEP_EXTENSIONS.get(mime, (wanted,))
    new = name if keep else f"{stem}.{wanted}"
    return f"{directory}/{new}" if directory else new


_KEEP_EXTENSIONS: dict[str, tuple[str, ...]] = {
    mimes.JPEG: ("jpg", "jpeg", "jpe", "jfif"),
    mimes.TEXT: ("txt", "text", "log", "md", "json"),
    mimes.CSV: ("csv", "tsv"),
    mimes.DOC: ("doc", "dot"),
    mimes.XLS: ("xls", "xlt"),
    mimes.PPT: ("ppt", "pps", "pot"),
    mimes.JTD: ("jtd", "jtt", "jtdc"),
}
