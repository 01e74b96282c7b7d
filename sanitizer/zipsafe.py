"""Reading ZIP containers (attachments and OOXML packages) within our own limits.

Python 3.11's zipfile does not detect overlapping entries (the "better zip bomb"), trusts
declared sizes and follows no ratio limit. Everything is checked here, while streaming.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import IO

from sanitizer import limits
from sanitizer.context import Budget
from sanitizer.report import Blocked

_CHUNK_BYTES = 1024 * 1024
_ZIP_FLAG_ENCRYPTED = 0x1
_ZIP_FLAG_UTF8 = 0x800


def open_zip(data: bytes) -> zipfile.ZipFile:
    """Open `data` as a ZIP and check entry count and overlaps; blocked when it is not one."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise Blocked("unparseable", f"zip: {exc}") from exc
    if len(infos) > limits.ZIP_MAX_ENTRIES:
        raise Blocked("limit_exceeded", "zip entries")
    _check_no_overlap(infos, len(data))
    return zf


def _check_no_overlap(infos: list[zipfile.ZipInfo], size: int) -> None:
    spans = sorted((i.header_offset, i.compress_size, _raw_name_len(i), i.filename) for i in infos)
    end = 0
    for offset, csize, name_len, name in spans:
        if offset < end:
            raise Blocked("limit_exceeded", f"overlapping zip entry {name!r}")
        # 30 bytes of local header + name; the local extra field's length is unknown here,
        # so the next entry must start after at least header + name + data.
        end = offset + 30 + name_len + csize
        if end > size:
            raise Blocked("unparseable", f"zip entry {name!r} beyond end of file")


def _raw_name_len(info: zipfile.ZipInfo) -> int:
    encoding = "utf-8" if info.flag_bits & _ZIP_FLAG_UTF8 else "cp437"
    try:
        return len(info.orig_filename.encode(encoding))
    except UnicodeEncodeError:
        return 0


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, with Windows (CP932) names read as Japanese."""
    name = info.filename
    if not info.flag_bits & _ZIP_FLAG_UTF8:
        try:
            name = name.encode("cp437").decode("cp932")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def is_encrypted(info: zipfile.ZipInfo) -> bool:
    return bool(info.flag_bits & _ZIP_FLAG_ENCRYPTED)


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> bytes:
    """Read one entry, streaming, within the per-entry, ratio and total limits."""
    if is_encrypted(info):
        raise Blocked("encrypted", f"zip entry {info.filename!r}")
    if info.file_size > limits.ZIP_MAX_ENTRY_BYTES:
        raise Blocked("limit_exceeded", f"zip entry {info.filename!r} size")
    max_bytes = min(limits.ZIP_MAX_ENTRY_BYTES, info.file_size)
    out = bytearray()
    try:
        with zf.open(info) as stream:
            for chunk in _chunks(stream):
                out += chunk
                budget.spend(len(chunk))
                if len(out) > max_bytes:
                    raise Blocked("limit_exceeded", f"zip entry {info.filename!r} grows")
                if len(out) > limits.ZIP_RATIO_MIN_BYTES and len(out) > limits.ZIP_MAX_RATIO * max(
                    info.compress_size, 1
                ):
                    raise Blocked("limit_exceeded", f"zip entry {info.filename!r} ratio")
    except Blocked:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise Blocked("unparseable", f"zip entry {info.filename!r}: {exc}") from exc
    except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted entries
        raise Blocked("encrypted", f"zip entry {info.filename!r}") from exc
    return bytes(out)


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def fixed_info(name: str, *, compress: bool = True) -> zipfile.ZipInfo:
    """A ZipInfo with a fixed date, so that the same input always gives the same output."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info
