"""SVG, HTML, RTF, text and CSV."""

from __future__ import annotations

import sancorpus as c
from defusedxml import ElementTree as DET
from sancorpus import Run, kinds

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def test_svg_is_rebuilt_without_script_handlers_or_external_refs(run: Run) -> None:
    result, out = run(c.svg_active(), "図.svg")
    assert result.verdict == "sanitized"
    root = DET.fromstring(out, forbid_dtd=True)
    tags = {el.tag for el in root.iter()}
    assert f"{SVG}script" not in tags and f"{SVG}foreignObject" not in tags
    for el in root.iter():
        for attr, value in el.attrib.items():
            assert not attr.lower().startswith("on"), attr
            if attr in (XLINK_HREF, "href"):
                assert value.startswith("#"), value
            assert "evil.example" not in value and "javascript:" not in value
    assert c.JA_TEXT in "".join(root.itertext())
    assert b"@import" not in out
    assert {"script", "event_handler", "foreign_object", "external_reference"} <= kinds(result)


def test_benign_svg_stays_vector_and_clean(run: Run) -> None:
    result, out = run(c.svg_benign(), "logo.svg")
    assert result.verdict == "clean"
    root = DET.fromstring(out, forbid_dtd=True)
    assert root.find(f"{SVG}rect") is not None
    assert root.find(f"{SVG}rect").get("fill") == "url(#g)"


def test_svg_with_entities_is_blocked(run: Run) -> None:
    result, _ = run(c.svg_entities(), "laughs.svg")
    assert result.verdict == "blocked"


def test_html_becomes_plain_text(run: Run) -> None:
    result, out = run(c.html_active(), "お知らせ.html")
    assert result.output_mime == "text/plain"
    assert result.output_filename == "お知らせ.txt"
    text = out.decode("utf-8")
    assert c.JA_TEXT in text and "お知らせ" in text
    assert "<" not in text and "alert" not in text


def test_benign_html_keeps_its_text(run: Run) -> None:
    page = f"<html><body><h1>会議のお知らせ</h1><p>{c.JA_TEXT}</p></body></html>".encode()
    result, out = run(page, "会議.html")
    assert result.verdict in ("sanitized", "clean") and result.output_mime == "text/plain"
    text = out.decode("utf-8")
    assert "会議のお知らせ" in text and c.JA_TEXT in text and "<" not in text


def test_rtf_loses_objects_dde_templates_and_trailing_payload(run: Run) -> None:
    result, out = run(c.rtf_active(), "文書.rtf")
    assert result.verdict == "sanitized"
    for word in (b"\\object", b"\\objdata", b"\\objupdate", b"DDEAUTO", b"\\template", b"MZ"):
        assert word not in out, word
    assert c.rtf_benign().split(b"\\pard")[1].split(b"\\par")[0] in out  # the Japanese text
    assert b"RESULT" in out  # the field's last result stays
    assert out.count(b"{") == out.count(b"}")


def test_benign_rtf_is_clean(run: Run) -> None:
    result, out = run(c.rtf_benign(), "a.rtf")
    assert result.verdict == "clean"
    assert out.strip() == c.rtf_benign()


def test_japanese_text_is_kept_byte_for_byte(run: Run) -> None:
    for encoding in ("utf-8", "utf-8-sig", "cp932"):
        data = ("議事録\r\n" + c.JA_TEXT + "\r\n=1+1 は本文です\r\n").encode(encoding)
        result, out = run(data, "議事録.txt")
        assert result.verdict == "clean", encoding
        assert out == data


def test_csv_formulas_are_neutralised_encoding_kept(run: Run) -> None:
    data = c.csv_cp932_with_formulas()
    result, out = run(data, "名簿.csv")
    assert result.verdict == "sanitized"
    text = out.decode("cp932")
    lines = text.split("\r\n")
    assert lines[0] == "氏名,金額,メモ"
    assert lines[1].startswith("山田,-500,'=HYPERLINK(")  # a number is not a formula
    assert lines[2].startswith("鈴木,+81,\"'@SUM")
    assert lines[3] == "佐藤,1200,'+1+2"
    assert out.replace(b"'", b"") == data.replace(b"'", b"")  # nothing else changed
