"""ZIP: entry by entry, within limits; CP932 names stay readable."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
import sancorpus as c
from sancorpus import Run, kinds


def test_entries_are_sanitised_and_bad_ones_dropped(run: Run) -> None:
    data = c.zip_with_cp932_name(
        {
            "報告書.docm": c.docm_active(),
            "setup.exe": b"MZ\x90\x00" + b"\x00" * 100,
            "メモ.txt": "メモです".encode("cp932"),
            "eicar.com.txt": c.EICAR,
        }
    )
    result, out = run(data, "提出物.zip")
    assert result.verdict == "sanitized"
    z = zipfile.ZipFile(io.BytesIO(out))
    assert sorted(z.namelist()) == ["メモ.txt", "報告書.docx"]
    assert z.read("メモ.txt") == "メモです".encode("cp932")
    inner = z.read("報告書.docx")
    assert b"vbaProject" not in b"".join(
        zipfile.ZipFile(io.BytesIO(inner)).read(n)
        for n in zipfile.ZipFile(io.BytesIO(inner)).namelist()
    )
    assert docx.Document(io.BytesIO(inner)).paragraphs[0].text == c.JA_TEXT
    wheres = [r.where for r in result.report.removed]
    assert any(w.startswith("報告書.docm!/") for w in wheres)
    assert "blocked_entry" in kinds(result)


def test_traversal_absolute_and_link_entries_are_dropped(run: Run) -> None:
    data = c.zip_plain({"../evil.txt": b"x", "/abs.txt": b"y", "ok.txt": b"z"}, link="lnk")
    result, out = run(data, "a.zip")
    assert zipfile.ZipFile(io.BytesIO(out)).namelist() == ["ok.txt"]
    assert {"unsafe_path", "link"} <= kinds(result)


def test_encrypted_entry_is_dropped(run: Run) -> None:
    _result, out = run(c.zip_with_encrypted_entry(), "a.zip")
    assert zipfile.ZipFile(io.BytesIO(out)).namelist() == ["open.txt"]


def test_ratio_bomb_is_blocked(run: Run) -> None:
    result, _ = run(c.zip_bomb(), "bomb.zip")
    assert result.report.reason is not None
    assert result.report.reason.code == "limit_exceeded"


def test_depth_limit(run: Run) -> None:
    ok, out = run(c.nested_zip(2), "ok.zip")
    assert ok.verdict == "clean"
    assert zipfile.ZipFile(io.BytesIO(out)).namelist() == ["inner.zip"]
    deep, _ = run(c.nested_zip(4), "deep.zip")
    assert deep.report.reason is not None and deep.report.reason.code == "limit_exceeded"


def test_too_many_entries_is_blocked(run: Run) -> None:
    from sanitizer import limits

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for i in range(limits.ZIP_MAX_ENTRIES + 1):
            z.writestr(f"{i}.txt", b"")
    result, _ = run(out.getvalue(), "many.zip")
    assert result.report.reason is not None and result.report.reason.code == "limit_exceeded"


def test_total_uncompressed_size_is_limited(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from sanitizer import limits

    monkeypatch.setattr(limits, "ZIP_MAX_TOTAL_BYTES", 1500)  # in-process: the patch applies
    data = c.zip_plain({"a.txt": b"a" * 800, "b.txt": b"b" * 800})
    result, out = run(data, "大量.zip", use_sandbox=False)
    assert out is None
    assert result.report.reason is not None and result.report.reason.code == "limit_exceeded"
    ok, _ = run(c.zip_plain({"a.txt": b"a" * 800}), "少量.zip", use_sandbox=False)
    assert ok.verdict == "clean"
