"""Executables, scripts, EICAR, unknown types, type mismatches and oversize files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import sancorpus as c
from sancorpus import Run

from sanitizer import detect, limits, sanitize
from sanitizer.context import Context
from sanitizer.detect import HEAD_BYTES
from sanitizer.engine import process_file
from sanitizer.report import Blocked

ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 100
LNK = b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 100


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"MZ\x90\x00\x03" + b"\x00" * 200, "setup.exe", "executable"),
        (b"MZ\x90\x00\x03" + b"\x00" * 200, "readme.txt", "executable"),
        (ELF, "tool", "executable"),
        (LNK, "shortcut.lnk", "executable"),
        (b"WScript.Echo 1\r\n", "a.vbs", "executable"),
        (b"var s = new ActiveXObject('WScript.Shell');", "invoice.js", "executable"),
        (b"@echo off\r\ndel *\r\n", "run.bat", "executable"),
        (b"Get-ChildItem\r\n", "x.ps1", "executable"),
        (b"<html><script>x</script></html>", "app.hta", "executable"),
        (b"#!/bin/sh\nrm -rf /\n", "notes.txt", "executable"),
        (c.EICAR, "eicar.txt", "malware_test"),
        (bytes(range(256)) * 4, "data.bin", "unsupported_type"),
        (c.docx_benign(), "請求書.pdf", "type_mismatch"),
        (c.pdf_benign(), "請求書.docx", "type_mismatch"),
        (c.jpeg_with_gps(), "写真.txt", "type_mismatch"),
        (c.xlsx_benign(), "a.docx", "type_mismatch"),
        (b"<?xml version='1.0'?><root/>", "a.xml", "unsupported_type"),
    ],
)
def test_blocked(run: Run, data: bytes, name: str, code: str) -> None:
    result, out = run(data, name)
    assert out is None
    assert result.verdict == "blocked"
    assert result.report.reason is not None
    assert result.report.reason.code == code
    assert result.report.reason.ja and result.report.reason.en
    d = result.report.to_dict()
    assert d["reason"] == code and d["removed"] == [] and d["verdict"] == "blocked"


def test_over_20_mib_is_blocked_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.docx"
    with open(big, "wb") as f:
        f.truncate(limits.MAX_INPUT_BYTES + 1)  # sparse: nothing to parse
    out = tmp_path / "out"
    out.write_bytes(b"stale")
    result = sanitize(big, filename="big.docx", output_path=out)
    assert result.report.reason is not None and result.report.reason.code == "file_too_large"
    assert not out.exists()
    assert limits.MAX_INPUT_BYTES == 20_971_520


def test_exactly_20_mib_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a" * limits.MAX_INPUT_BYTES)
    result = sanitize(path, filename="a.txt", output_path=tmp_path / "o")
    assert result.verdict == "clean"
    assert os.path.getsize(tmp_path / "o") == limits.MAX_INPUT_BYTES


class CountingReader(io.FileIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk or b"")
        return chunk or b""


def test_a_large_file_of_no_supported_type_is_refused_from_its_head(tmp_path: Path) -> None:
    """Only the head is read when the type has no disarmer; a supported type is read whole,
    once."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(8 * 1024 * 1024))
    with CountingReader(path) as reader, pytest.raises(Blocked) as blocked:
        process_file(reader, io.BytesIO(), Context("data.bin"))
    assert blocked.value.code == "unsupported_type"
    assert reader.read_bytes == HEAD_BYTES

    text = ("市役所の会議資料です。\n" * 200_000).encode()  # > HEAD_BYTES
    path.write_bytes(text)
    out = io.BytesIO()
    with CountingReader(path) as reader:
        detected, mime = process_file(reader, out, Context("notes.txt"))
    assert (detected, mime) == ("text/plain", "text/plain")
    assert reader.read_bytes == HEAD_BYTES + len(text)  # the head, then the whole file once
    assert out.getvalue().decode("utf-8").count("市役所") == 200_000


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (bytes(16) + os.urandom(HEAD_BYTES), "data.bin", "unsupported_type"),
        (b"<?xml version='1.0'?><root/>", "a.xml", "unsupported_type"),
        (ELF, "tool", "executable"),
        (b"MZ\x90\x00\x03" + b"\x00" * 200, "setup.exe", "executable"),
        (c.pdf_benign(), "請求書.docx", "type_mismatch"),
    ],
)
def test_a_refused_file_is_looked_at_by_libmagic_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data: bytes, name: str, code: str
) -> None:
    """libmagic can take milliseconds over a head of binary; a refusal reports the type it
    gave without asking it again."""
    real = detect._magic()
    calls: list[int] = []

    class Counting:
        def from_buffer(self, buffer: bytes) -> str:
            calls.append(len(buffer))
            return str(real.from_buffer(buffer))

    monkeypatch.setattr(detect, "_magic", Counting)
    path = tmp_path / "upload"
    path.write_bytes(data)
    with open(path, "rb") as untrusted, pytest.raises(Blocked) as blocked:
        process_file(untrusted, io.BytesIO(), Context(name))
    assert blocked.value.code == code
    assert len(calls) == 1
    if code != "type_mismatch":  # a mismatch reports the type the structure showed
        assert blocked.value.detected_type == real.from_buffer(data[:HEAD_BYTES])
    else:
        assert blocked.value.detected_type == "application/pdf"
