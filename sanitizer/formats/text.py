"""Plain text and CSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, Shift_JIS/CP932).

Text is kept byte for byte. In CSV (and TSV) a cell that Excel would evaluate as a formula
(starting with = + - @, or a tab or carriage return before one) gets a leading apostrophe,
inside its quotes when it is quoted; nothing else changes, and the encoding is kept.
"""

from __future__ import annotations

import re

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_NUMBER = re.compile(r"^[+-]?(\d[\d,]*)?(\.\d+)?([eE][+-]?\d+)?$")


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was written in, or Blocked."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "cp932"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text, encoding
    raise Blocked("unparseable", "text encoding")


def disarm_text(data: bytes, ctx: Context) -> Disarmed:
    decode(data)
    return Disarmed(data, mimes.TEXT)


def disarm_csv(data: bytes, ctx: Context) -> Disarmed:
    text, encoding = decode(data)
    delimiter = "\t" if text.count("\t") > text.count(",") else ","
    cleaned, changed = neutralise(text, delimiter)
    if not changed:
        return Disarmed(data, mimes.CSV)
    for row, col in changed[: limits.CSV_MAX_REPORTED_CELLS]:
        ctx.remove("csv_formula", f"row {row}, column {col}")
    ctx.warn("csv_formulas_neutralised")
    bom = b""
    if encoding == "utf-16":
        bom, encoding = (
            (b"\xff\xfe", "utf-16-le")
            if data[:2] == b"\xff\xfe"
            else (
                b"\xfe\xff",
                "utf-16-be",
            )
        )
    return Disarmed(bom + cleaned.encode(encoding), mimes.CSV)


def _dangerous(cell: str) -> bool:
    if not cell.startswith(_FORMULA_START):
        return False
    return not (cell[0] in "+-" and _NUMBER.match(cell) and len(cell) > 1)


def neutralise(text: str, delimiter: str) -> tuple[str, list[tuple[int, int]]]:
    """Insert ' before formula cells; returns the text and the (row, column) changed."""
    out: list[str] = []
    changed: list[tuple[int, int]] = []
    row, col = 1, 1
    i, n = 0, len(text)
    while i <= n:
        # at the start of a cell
        if i < n and text[i] == '"':
            j = i + 1
            chunks = []
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        chunks.append('""')
                        j += 2
                        continue
                    break
                chunks.append(text[j])
                j += 1
            inner = "".join(chunks)
            if _dangerous(inner.replace('""', '"')):
                changed.append((row, col))
                out.append("\"'" + inner + '"')
            else:
                out.append('"' + inner + '"')
            i = min(j + 1, n)
            k = i
            while k < n and text[k] not in (delimiter, "\n", "\r"):
                k += 1
            out.append(text[i:k])
            i = k
        else:
            k = i
            while k < n and text[k] not in (delimiter, "\n", "\r"):
                k += 1
            cell = text[i:k]
            if _dangerous(cell):
                changed.append((row, col))
                out.append("'" + cell)
            else:
                out.append(cell)
            i = k
        if i >= n:
            break
        sep = text[i]
        if sep == delimiter:
            out.append(sep)
            col += 1
            i += 1
            continue
        if sep == "\r" and i + 1 < n and text[i + 1] == "\n":
            out.append("\r\n")
            i += 2
        else:
            out.append(sep)
            i += 1
        row, col = row + 1, 1
        if i == n:
            break
    return "".join(out), changed
