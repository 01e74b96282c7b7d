"""The client's files themselves: small, self-contained, CSP-clean, both languages complete."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parents[2] / "web"
CODE = sorted([*WEB.glob("js/**/*.js"), *WEB.glob("css/*.css")])
BUDGET_BYTES = 300 * 1024


def test_javascript_and_css_are_well_under_budget() -> None:
    raw = sum(p.stat().st_size for p in CODE)
    compressed = sum(len(gzip.compress(p.read_bytes())) for p in CODE)
    assert CODE and raw < BUDGET_BYTES, raw
    assert compressed < BUDGET_BYTES // 4, compressed


def test_both_languages_have_the_same_keys_and_every_key_used_exists() -> None:
    ja = json.loads((WEB / "i18n/ja.json").read_text(encoding="utf-8"))
    en = json.loads((WEB / "i18n/en.json").read_text(encoding="utf-8"))
    assert set(ja) == set(en)
    for key, value in en.items():
        assert not re.search("[ぁ-んァ-ヶ一-龠]", value) or key.startswith("lang."), key
    used = set()
    for path in CODE:
        used |= set(re.findall(r"\bt\('([a-z_]+\.[a-z_.]+)'", path.read_text(encoding="utf-8")))
    assert used and used <= set(ja), used - set(ja)


def test_no_html_from_strings_no_inline_code_no_outside_urls() -> None:
    for path in CODE:
        text = path.read_text(encoding="utf-8")
        assert not re.search(
            r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write", text
        ), path
        assert not re.search(r"\beval\(|setAttribute\(\s*'(style|on\w+)'", text), path
        assert not re.search(r"new Function\(", text), path
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), path
        assert not re.search(r"https?://(?!\$\{)", text.replace("https?:\\/\\/", "")), path
    html = (WEB / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son[a-z]+=|\sstyle=|<style", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
