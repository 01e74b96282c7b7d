"""RTF, rewritten group by group.

Dropped: embedded and linked objects (`\\object` with `\\objdata`, `\\objupdate`, links),
`\\datastore`, remote templates (`\\template`), and fields whose instruction fetches or runs
(DDE, INCLUDETEXT, INCLUDEPICTURE, IMPORT, LINK...), which are replaced by their last result.
Text, formatting and pictures stay. Anything after the closing brace of the document is gone.
"""

from __future__ import annotations

import re

from sanitizer import limits, mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.report import Blocked

_CONTROL = re.compile(rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?")
_DROP_GROUPS = {
    b"object": "ole_object",
    b"objdata": "ole_object",
    b"datastore": "ole_object",
    b"template": "external_template",
    b"objalias": "ole_object",
    b"objclass": "ole_object",
    b"xmlopen": "external_reference",
    b"userprops": "metadata",
}
_DROP_WORDS = frozenset({b"objupdate", b"objautlink", b"objlink", b"linkself"})
_FIELD_DANGER = re.compile(
    rb"^\s*(DDE|DDEAUTO|INCLUDETEXT|INCLUDEPICTURE|INCLUDE|IMPORT|LINK|DATABASE|MACROBUTTON)\b",
    re.IGNORECASE,
)


class _Group:
    __slots__ = ("items", "word")

    def __init__(self) -> None:
        self.items: list[bytes | _Group] = []
        self.word: bytes = b""  # first control word (destination), after an optional \*


def _parse(data: bytes) -> tuple[_Group, int]:
    """Parse the first top-level group; returns it and the offset after its closing brace."""
    if not data.startswith(b"{\\rtf"):
        raise Blocked("unparseable", "rtf header")
    stack: list[_Group] = []
    top: _Group | None = None
    i, n = 0, len(data)
    text_start = 0
    while i < n:
        c = data[i]
        if c == 0x7B:  # {
            if stack:
                stack[-1].items.append(data[text_start:i])
            group = _Group()
            if stack:
                stack[-1].items.append(group)
            stack.append(group)
            if len(stack) > limits.RTF_MAX_DEPTH:
                raise Blocked("limit_exceeded", "rtf depth")
            i += 1
            text_start = i
            m = _CONTROL.match(data, i + 2 if data.startswith(b"\\*\\", i) else i)
            if m:
                group.word = m.group(1)
            continue
        if c == 0x7D:  # }
            if not stack:
                raise Blocked("unparseable", "rtf braces")
            stack[-1].items.append(data[text_start:i])
            group = stack.pop()
            i += 1
            text_start = i
            if not stack:
                top = group
                break
            continue
        if c == 0x5C:  # backslash
            m = _CONTROL.match(data, i)
            if m and m.group(1) == b"bin" and m.group(2):
                length = int(m.group(2))
                if length < 0 or m.end() + length > n:
                    raise Blocked("unparseable", "rtf \\bin")
                i = m.end() + length
                continue
            i += 2
            continue
        i += 1
    if top is None:
        raise Blocked("unparseable", "rtf not closed")
    return top, i


def _field_instruction(group: _Group) -> bytes:
    for item in group.items:
        if isinstance(item, _Group) and item.word == b"fldinst":
            return _plain(item)
    return b""


def _plain(group: _Group) -> bytes:
    parts: list[bytes] = []
    for item in group.items:
        parts.append(_plain(item) if isinstance(item, _Group) else item)
    text = b"".join(parts)
    return re.sub(rb"\\[a-zA-Z]+-?\d* ?|\\\*", b"", text)


def _write(group: _Group, out: list[bytes], ctx: Context) -> None:
    out.append(b"{")
    for item in group.items:
        if isinstance(item, _Group):
            if item.word in _DROP_GROUPS:
                ctx.remove(_DROP_GROUPS[item.word], f"\\{item.word.decode()}")
                continue
            if item.word == b"field":
                instruction = _field_instruction(item)
                if _FIELD_DANGER.match(instruction):
                    ctx.remove("dde_field", instruction.strip()[:80].decode("latin-1"))
                    for sub in item.items:
                        if isinstance(sub, _Group) and sub.word == b"fldrslt":
                            _write(sub, out, ctx)
                    continue
            _write(item, out, ctx)
        else:
            out.append(_strip_words(item, ctx))
    out.append(b"}")


def _strip_words(chunk: bytes, ctx: Context) -> bytes:
    def repl(m: re.Match[bytes]) -> bytes:
        if m.group(1) in _DROP_WORDS:
            ctx.remove("ole_object", f"\\{m.group(1).decode()}")
            return b""
        return m.group(0)

    return _CONTROL.sub(repl, chunk) if b"\\obj" in chunk or b"\\link" in chunk else chunk


def disarm(data: bytes, ctx: Context) -> Disarmed:
    top, end = _parse(data)
    out: list[bytes] = []
    _write(top, out, ctx)
    if data[end:].strip(b"\r\n\t \x00"):
        ctx.remove("trailing_data", f"{len(data) - end} bytes after the document")
        ctx.warn("trailing_data_removed")
    kinds = {r.kind for r in ctx.removed}
    if "ole_object" in kinds:
        ctx.warn("objects_removed")
    if kinds & {"external_template", "external_reference"}:
        ctx.warn("links_removed")
    if "dde_field" in kinds:
        ctx.warn("fields_removed")
    return Disarmed(b"".join(out) + b"\r\n", mimes.RTF)
