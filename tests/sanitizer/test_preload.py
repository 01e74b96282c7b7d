"""The forkserver's preloads cover every job: a job that imports a module pays for finding,
reading (and, where no bytecode was cached, compiling) it in every child, since nothing a
child loads survives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sancorpus as c

# After `sanitizer._preload`, the job of every sample, in this one process (unconfined): the
# modules the jobs imported, and the verdicts (so that each sample reached its disarmer).
_PROBE = """
import json, sys
from pathlib import Path
import sanitizer._preload
from sanitizer import core
before = set(sys.modules)
verdicts = {}
for n, path in enumerate(sorted(Path(sys.argv[1]).iterdir())):
    out = Path(sys.argv[2])
    core._job_child(str(path), path.name, str(out / f"o{n}"), str(out / f"r{n}.json"),
                    network_isolated=False, confined=False)
    verdicts[path.name] = json.loads((out / f"r{n}.json").read_text())["verdict"]
print(json.dumps({"imported": sorted(set(sys.modules) - before), "verdicts": verdicts}))
"""


def _samples() -> dict[str, bytes]:
    return {
        "random.bin": os.urandom(64 * 1024),
        "active.docm": c.docm_active(),
        "active.xlsm": c.xlsm_active(),
        "active.pptm": c.pptm_active(),
        "protected.xlsx": c.encrypt_ooxml(c.xlsm_active(), "VelvetSweatshop"),
        "letter.doc": c.doc_benign(),
        "sheet.xls": c.xls_benign(),
        "slides.ppt": c.ppt_benign(),
        "ichitaro.jtd": c.jtd_benign(),
        "active.rtf": c.rtf_active(),
        "active.pdf": c.pdf_active(),
        "gps.jpg": c.jpeg_with_gps(),
        "gps.heic": c.heic_with_gps(),
        "gps.webp": c.webp_with_gps(),
        "text.png": c.png_with_text(),
        "animated.gif": c.gif_animated(),
        "active.svg": c.svg_active(),
        "active.html": c.html_active(),
        "formulas.csv": c.csv_cp932_with_formulas(),
        "files.zip": c.zip_plain({"a.txt": "あいう".encode(), "b.csv": b"=1+1\r\n"}),
    }


def test_a_job_of_any_type_imports_nothing_the_forkserver_has_not(tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    samples = _samples()
    for name, data in samples.items():
        (inputs / name).write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-B", "-c", _PROBE, str(inputs), str(outputs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe["imported"] == [], probe["imported"]
    verdicts = probe["verdicts"]
    assert set(verdicts) == set(samples)
    blocked = sorted(name for name, verdict in verdicts.items() if verdict == "blocked")
    assert blocked == ["random.bin"], verdicts
