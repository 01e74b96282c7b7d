"""Malformed input always ends in a verdict: never an exception, a hang or oversize output."""

from __future__ import annotations

import random
from pathlib import Path

import sancorpus as c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanitizer import limits, sanitize
from sanitizer.context import Context
from sanitizer.engine import process_detected
from sanitizer.report import Blocked

SEEDS = {
    "a.docx": c.docx_benign,
    "a.xlsm": c.xlsm_active,
    "a.pdf": c.pdf_active,
    "a.rtf": c.rtf_active,
    "a.svg": c.svg_active,
    "a.jpg": c.jpeg_with_gps,
    "a.png": c.png_with_text,
    "a.csv": c.csv_cp932_with_formulas,
    "a.zip": lambda: c.zip_plain({"a.txt": b"x", "b.svg": c.svg_active()}),
    "a.doc": c.doc_benign,
    "a.xls": c.xls_with_macro_sheet,
}


def _in_process(data: bytes, name: str | None) -> str:
    try:
        _detected, result = process_detected(data, Context(filename=name))
    except Blocked as exc:
        return exc.code
    assert len(result.data) <= limits.MAX_OUTPUT_BYTES
    return "ok"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), name=st.sampled_from([None, "a.txt", "a.pdf", "a.zip", "x"]))
def test_random_bytes_end_in_a_verdict(data: bytes, name: str | None) -> None:
    _in_process(data, name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(
        [b"PK\x03\x04", b"%PDF-1.7\n", b"{\\rtf1 ", b"\x89PNG\r\n\x1a\n", b"<svg "]
    ),
    body=st.binary(max_size=1024),
)
def test_magic_prefixed_garbage_ends_in_a_verdict(prefix: bytes, body: bytes) -> None:
    _in_process(prefix + body, None)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        op = rng.random()
        pos = rng.randrange(len(buf))
        if op < 0.6:
            buf[pos] = rng.randrange(256)
        elif op < 0.8:
            del buf[pos : pos + rng.randint(1, 64)]
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return bytes(buf)


def test_mutated_samples_end_in_a_verdict_in_the_sandbox(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    verdicts: dict[str, int] = {}
    for name, make in SEEDS.items():
        seed = make()
        for i in range(6):
            out = tmp_path / f"{name}-{i}"
            result = sanitize(_mutate(seed, rng), filename=name, output_path=out, timeout_s=10)
            verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
            assert result.verdict in ("clean", "sanitized", "blocked")
            if result.verdict == "blocked":
                assert not out.exists()
                assert result.report.reason is not None
            else:
                assert out.stat().st_size <= limits.MAX_OUTPUT_BYTES
    assert verdicts.get("blocked", 0) > 0  # the mutations do break files


def test_truncations_end_in_a_verdict() -> None:
    for name, make in SEEDS.items():
        seed = make()
        for cut in (1, 8, len(seed) // 3, len(seed) // 2, len(seed) - 1):
            _in_process(seed[:cut], name)
