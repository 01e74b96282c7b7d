from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from sanitizer import SanitizeResult, sanitize

Run = Callable[..., tuple[SanitizeResult, bytes | None]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Sanitise bytes in the real sandbox; returns the result and the output's bytes."""
    counter = iter(range(10_000))

    def _run(
        data: bytes, filename: str | None, *, use_sandbox: bool = True
    ) -> tuple[SanitizeResult, bytes | None]:
        out = tmp_path / f"out-{next(counter)}"
        result = sanitize(data, filename=filename, output_path=out, use_sandbox=use_sandbox)
        if result.verdict == "blocked":
            assert not out.exists()
            assert result.output is None
            return result, None
        assert result.output == out
        return result, out.read_bytes()

    return _run


def zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def kinds(result: SanitizeResult) -> set[str]:
    return {r.kind for r in result.report.removed}
