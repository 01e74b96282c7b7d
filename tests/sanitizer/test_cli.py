"""`kakehashi sanitize INPUT -o OUTPUT --json`: exit codes and JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sancorpus as c

from sanitizer.cli import main


def test_sanitized_file_is_written_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "議事録.docm"
    source.write_bytes(c.docm_active())
    out = tmp_path / "out.docx"
    assert main(["sanitize", str(source), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "sanitized"
    assert report["detected_type"] == "application/vnd.ms-word.document.macroEnabled.12"
    assert {"kind", "where"} == set(report["removed"][0])
    assert report["reason"] is None
    assert any(w["ja"].startswith("マクロを削除") for w in report["warnings"])
    assert report["output_filename"] == "議事録.docx"
    assert out.read_bytes()[:2] == b"PK"


def test_blocked_exit_1_and_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "invoice.pdf"
    source.write_bytes(b"MZ\x90\x00" + b"\x00" * 64)
    out = tmp_path / "out.pdf"
    out.write_bytes(b"stale output from an earlier run")
    assert main(["sanitize", str(source), "-o", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "blocked"
    assert report["reason"] == "executable"
    assert report["removed"] == [] and report["warnings"] == []
    assert report["reason_ja"] and report["reason_en"]
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sanitize"],
        ["sanitize", "missing-input-file", "-o", "x"],
        ["frobnicate"],
        ["sanitize", "--json"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], tmp_path: Path) -> None:
    assert main(argv) == 2


def test_output_directory_must_exist(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("x")
    assert main(["sanitize", str(source), "-o", str(tmp_path / "no" / "such" / "out")]) == 2


def test_python_dash_m_works_standalone(tmp_path: Path) -> None:
    source = tmp_path / "メモ.txt"
    source.write_bytes("テキスト\n".encode("cp932"))
    out = tmp_path / "o.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "sanitizer", "sanitize", str(source), "-o", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "clean"
    assert out.read_bytes() == source.read_bytes()


def test_kakehashi_console_script(tmp_path: Path) -> None:
    """The command exactly as documented: `kakehashi sanitize INPUT -o OUTPUT --json`."""
    kakehashi = Path(sys.executable).with_name("kakehashi")
    source = tmp_path / "申請書.pdf"
    source.write_bytes(c.pdf_active())
    out = tmp_path / "o.pdf"
    bad = tmp_path / "setup.exe"
    bad.write_bytes(b"MZ\x90\x00" + b"\x00" * 100)
    bad_out = tmp_path / "o.bin"
    proc = subprocess.run(
        [str(kakehashi), "sanitize", str(source), "-o", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) >= {"verdict", "detected_type", "removed", "warnings", "reason"}
    assert report["verdict"] == "sanitized" and out.read_bytes().startswith(b"%PDF-")
    proc = subprocess.run(
        [str(kakehashi), "sanitize", str(bad), "-o", str(bad_out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["reason"] == "executable"
    assert not bad_out.exists()
