"""The browser client's size budget (issue 6) and its shell's self-containment: deterministic,
so tested here; how fast the client is, is measured by bench/web.py, never asserted."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

WEB = Path(__file__).resolve().parents[1] / "web"
BUDGET_BYTES = 300_000  # "JavaScript and CSS under 300 KB compressed"
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "srcset", "poster", "data", "content"}


def code_files() -> list[Path]:
    return sorted([*WEB.glob("**/*.js"), *WEB.glob("**/*.css")])


def test_javascript_and_css_are_under_300_kb_gzipped() -> None:
    files = code_files()
    assert any(p.suffix == ".js" for p in files) and any(p.suffix == ".css" for p in files)
    # Each file is sent (and compressed) on its own, at gzip's usual server level.
    compressed = {p: len(gzip.compress(p.read_bytes(), compresslevel=6)) for p in files}
    total = sum(compressed.values())
    largest = sorted(compressed.items(), key=lambda kv: -kv[1])[:5]
    assert total < BUDGET_BYTES, (total, [(str(p.relative_to(WEB)), n) for p, n in largest])


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value:
                for part in value.split(","):  # srcset: "url 1x, url 2x"
                    self.refs.append((tag, name, part.strip().split(" ")[0]))


def test_index_html_references_no_other_host() -> None:
    html = (WEB / "index.html").read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(html)
    local = [(tag, name, url) for tag, name, url in parser.refs if name != "content"]
    assert {tag for tag, _, _ in local} >= {"link", "script"}, local
    for tag, name, url in parser.refs:
        parts = urlsplit(url)
        if name == "content":  # <meta content>: only a URL-looking value matters
            assert not re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I), (tag, url)
            continue
        assert not parts.scheme and not parts.netloc, (tag, name, url)
        # ... and what it names is one of our own files.
        assert (WEB / parts.path.lstrip("/")).is_file(), (tag, name, url)
    assert not re.search(r"(?<![\w])(https?:)?//[\w.-]+\.[a-z]{2,}", html, re.I)
    assert not re.search(r"<base\b", html, re.I)
