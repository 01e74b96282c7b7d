"""Legacy OLE2 Office and 一太郎: benign ones delivered after the structural check; macros,
objects and DDE blocked with a reason that tells the sender what to do."""

from __future__ import annotations

import olefile
import sancorpus as c
from sancorpus import Run


def test_benign_doc_xls_jtd_are_delivered_unchanged(run: Run) -> None:
    for data, name, mime in (
        (c.doc_benign(), "議事録.doc", "application/msword"),
        (c.xls_benign(), "名簿.xls", "application/vnd.ms-excel"),
        (c.jtd_benign(), "文書.jtd", "application/x-js-taro"),
        (c.ppt_benign(), "説明会.ppt", "application/vnd.ms-powerpoint"),
    ):
        result, out = run(data, name)
        assert result.verdict == "clean", name
        assert result.detected_type == mime
        assert out == data
        assert olefile.isOleFile(out)
        assert "legacy_format_checked" in {w.code for w in result.report.warnings}


def test_appended_payload_after_the_last_sector_is_cut(run: Run) -> None:
    data = c.doc_benign()
    result, out = run(data + b"MZ\x90\x00" + b"payload" * 100, "a.doc")
    assert result.verdict == "sanitized"
    assert out == data


def test_macros_and_xlm_sheets_are_blocked_with_advice(run: Run) -> None:
    for data, name in ((c.doc_with_macros(), "m.doc"), (c.xls_with_macro_sheet(), "m.xls")):
        result, out = run(data, name)
        assert out is None
        assert result.report.reason is not None
        assert result.report.reason.code == "legacy_macros"
        assert ".docx" in result.report.reason.ja and ".xlsx" in result.report.reason.en


def test_embedded_objects_are_blocked(run: Run) -> None:
    result, _ = run(c.doc_with_object(), "o.doc")
    assert result.report.reason is not None
    assert result.report.reason.code == "legacy_embedded_object"


def test_dde_field_in_doc_is_blocked(run: Run) -> None:
    data = c.ole_file({"WordDocument": c._fib() + b'DDEAUTO c:\\cmd.exe "/c calc"', "1Table": b""})
    result, _ = run(data, "dde.doc")
    assert result.report.reason is not None
    assert result.report.reason.code == "legacy_embedded_object"


def test_powerpoint_with_objects_or_macros_is_blocked_with_advice(run: Run) -> None:
    for data, code in (
        (c.ppt_with_object(), "legacy_embedded_object"),
        (c.ppt_with_macros(), "legacy_macros"),
    ):
        result, out = run(data, "説明会.ppt")
        assert out is None
        assert result.report.reason is not None and result.report.reason.code == code
        assert ".pptx" in result.report.reason.ja
