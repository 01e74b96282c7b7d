"""HTML is not delivered as HTML: its visible text is delivered as a UTF-8 text file.

Scripts, styles and every tag and attribute are dropped; only the text a reader would see
remains, with block elements turned into line breaks.
"""

from __future__ import annotations

from html.parser import HTMLParser

from sanitizer import mimes
from sanitizer.context import Context
from sanitizer.formats import Disarmed
from sanitizer.formats.text import decode

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object"})
_BLOCK = frozenset(
    """p div br li tr h1 h2 h3 h4 h5 h6 table ul ol section article header footer title
    blockquote pre hr dt dd""".split()
)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
            if tag == "script":
                self.scripts += 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skipping:
            self.skipping -= 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def disarm(data: bytes, ctx: Context) -> Disarmed:
    text, _encoding = decode(data)
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    body = "\n".join(line for line in lines if line) + "\n"
    if parser.scripts:
        ctx.remove("script", f"{parser.scripts} script element(s)")
    ctx.remove("html_markup", "all tags and attributes")
    ctx.warn("html_to_text")
    return Disarmed(body.encode("utf-8"), mimes.TEXT)
