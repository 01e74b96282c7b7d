"""The pipeline for one file, run inside the sandbox: detect, look up, disarm.

`process_file()` is what the sandboxed child runs (file in, file out); `process()` is called
for each entry of an archive (bytes in, bytes out). Both trust nothing about their input and
return only what a disarmer rebuilt.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.detect import HEAD_BYTES, detect, libmagic_mime, needs_whole_file
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked


def process(data: bytes, ctx: Context) -> Disarmed:
    """Detect and disarm `data`; raises Blocked."""
    return process_detected(data, ctx)[1]


def process_detected(data: bytes, ctx: Context) -> tuple[str, Disarmed]:
    """The detected type and the disarmed file; raises Blocked (with `detected_type` set)."""
    if len(data) > limits.MAX_INPUT_BYTES and ctx.depth == 0:
        raise Blocked("file_too_large")
    detected = _detect(data, ctx)
    return detected, _disarm(detected, data, ctx)


def process_file(untrusted_in: BinaryIO, out: BinaryIO, ctx: Context) -> tuple[str, str]:
    """Detect and disarm the open file `untrusted_in`, writing the rendition to `out`.

    Returns the detected type and the output's type; raises Blocked. Detection needs only the
    first `detect.HEAD_BYTES` (except for ZIP and OLE containers, read whole); a type with a
    streaming disarmer (PDF) is then rewritten from file to file, never held in memory twice;
    a type without a disarmer is blocked before the rest is read; the others are read whole in
    one piece (not the rest joined to the head: 20 MiB held once, not twice).
    """
    from sanitizer.registry import REGISTRY, STREAMING

    if os.fstat(untrusted_in.fileno()).st_size > limits.MAX_INPUT_BYTES:
        raise Blocked("file_too_large")
    head = untrusted_in.read(HEAD_BYTES)
    whole = len(head) < HEAD_BYTES
    if not whole and needs_whole_file(head):
        head += untrusted_in.read(limits.MAX_INPUT_BYTES + 1 - len(head))
        whole = True
    if whole and len(head) > limits.MAX_INPUT_BYTES:
        raise Blocked("file_too_large")
    detected = _detect(head, ctx)
    streamer = STREAMING.get(detected)
    if streamer is not None:
        untrusted_in.seek(0)
        with _failing_closed(detected):
            mime = streamer(untrusted_in, out, ctx)
        out.flush()
        _check_output(mime, out.tell(), detected)
        return detected, mime
    if detected not in REGISTRY:
        raise Blocked("unsupported_type", detected, detected_type=detected)
    if whole:
        data = head
    else:  # one read of the whole file, not the rest joined to the head (one copy less)
        del head
        untrusted_in.seek(0)
        data = untrusted_in.read(limits.MAX_INPUT_BYTES + 1)
    if len(data) > limits.MAX_INPUT_BYTES:
        raise Blocked("file_too_large", detected_type=detected)
    result = _disarm(detected, data, ctx)
    out.write(result.data)
    out.flush()
    return detected, result.mime


def _detect(data: bytes, ctx: Context) -> str:
    try:
        return detect(data, ctx.filename)
    except Blocked as exc:
        if not exc.detected_type:
            exc.detected_type = libmagic_mime(data)
        raise
    except Exception as exc:  # a structural parse choking on hostile input: fail closed
        raise Blocked("unparseable", f"{type(exc).__name__}: {exc}") from exc


def _disarm(detected: str, data: bytes, ctx: Context) -> Disarmed:
    from sanitizer.registry import REGISTRY

    disarmer = REGISTRY.get(detected)
    if disarmer is None:
        raise Blocked("unsupported_type", detected, detected_type=detected)
    with _failing_closed(detected):
        result = disarmer(data, ctx)
    _check_output(result.mime, len(result.data), detected)
    return result


def _check_output(mime: str, size: int, detected: str) -> None:
    if mime not in mimes.OUTPUT_MIMES:
        raise Blocked("unsupported_type", f"output {mime}", detected_type=detected)
    if size > limits.MAX_OUTPUT_BYTES:
        raise Blocked("limit_exceeded", "output size", detected_type=detected)


@contextmanager
def _failing_closed(detected: str) -> Iterator[None]:
    """Turn whatever a disarmer raises into Blocked with a stable code."""
    try:
        yield
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
